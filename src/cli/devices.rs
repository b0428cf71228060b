//! `brainscope devices [--json]`: what this build can run on — the CPU, each wgpu adapter (when
//! built with `wgpu`, the default), each CUDA GPU (when built with `cuda`) — with the `--device`
//! value that selects each.

use crate::backend::{DeviceInfo, list_devices};

/// Arguments of `brainscope devices`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON array of `{"device", "name", "kind", "backend", "memory_bytes", "f16"}`
    /// instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `brainscope devices`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let devices = list_devices();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    println!("{:<8} {:<15} {:<7} {:>10} {:<4}  NAME", "DEVICE", "KIND", "BACKEND", "MEMORY", "F16");
    for d in &devices {
        println!("{}", row(d));
    }
    if !devices.iter().any(|d| d.device.starts_with("wgpu")) {
        println!("{}", wgpu_note());
    }
    Ok(())
}

/// One table row.
fn row(d: &DeviceInfo) -> String {
    let memory =
        d.memory_bytes.map_or("-".into(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64));
    let f16 = if d.f16 { "yes" } else { "no" };
    format!("{:<8} {:<15} {:<7} {:>10} {:<4}  {}", d.device, d.kind, d.backend, memory, f16, d.name)
}

/// Why no wgpu adapter is listed.
fn wgpu_note() -> String {
    #[cfg(feature = "wgpu")]
    {
        match crate::backend::wgpu::adapters() {
            Err(cause) => format!("no wgpu adapter: {cause}"),
            Ok(_) => "no wgpu adapter".into(),
        }
    }
    #[cfg(not(feature = "wgpu"))]
    {
        "wgpu is not compiled into this binary (cargo feature `wgpu`)".into()
    }
}
