//! `brainscope bench unet`: one SD 1.5 UNet call (batch 2 = classifier-free guidance, latents
//! `[2, 4, 64, 64]`, context `[2, 77, 768]`, random weights), median seconds, beside diffusers on
//! the same machine in the same run (`bench/unet_reference.py`) as a ratio (> 1: burn slower).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use burn::prelude::*;

use crate::models::unet::UNet2DConditionModelConfig;

/// Arguments of `brainscope bench unet`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Reference script; skipped when it cannot run.
    #[arg(long, default_value = "bench/unet_reference.py")]
    pub reference: PathBuf,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Device: cpu, wgpu, cuda (`cuda:N` for another GPU).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
}

fn median_secs(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = crate::backend::device(&args.device)?;
    let config = UNet2DConditionModelConfig::stable_diffusion_v1();
    let plan = config.validate().map_err(anyhow::Error::msg)?;
    let model = config.init(&plan, &device);
    let latents = crate::models::vae::posterior::seeded_normal([2, 4, 64, 64], 0, &device);
    let context: Tensor<3> =
        crate::models::vae::posterior::seeded_normal([2, 77, 768, 1], 1, &device).squeeze_dim(3);
    let runs = args.repeats.max(1) + 1;
    eprintln!("burn: UNet [2, 4, 64, 64] x [2, 77, 768], {runs} runs (one warm-up)...");
    let unet_s = median_secs(args.repeats, || {
        let _ = model.forward(latents.clone(), 741.0, context.clone()).into_data(); // wait
    });
    eprintln!("burn: median {unet_s:.2} s; now diffusers ({})...", args.reference.display());
    let mut report = serde_json::json!({
        "burn": { "unet_s": unet_s, "fast_cpu": crate::models::fast_cpu::enabled() }
    });
    let reference = Command::new(&args.python)
        .arg(&args.reference)
        .args(["--repeats", &args.repeats.to_string()])
        .output()
        .with_context(|| format!("running {} {}", args.python, args.reference.display()));
    match reference {
        Ok(out) if out.status.success() => {
            let torch: serde_json::Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("{}: output is not JSON", args.reference.display()))?;
            report["ratio_burn_over_diffusers"] =
                torch["unet_s"].as_f64().map(|t| unet_s / t).into();
            report["diffusers"] = torch;
        }
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            report["diffusers_error"] =
                format!("{} exited with {}: {}", args.python, out.status, stderr.trim()).into();
        }
        Err(e) => report["diffusers_error"] = format!("{e:#}").into(),
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
