//! `brainscope bench vae`: decode of one `[1, 4, 64, 64]` latent and encode of one 512x512 image
//! with the SD VAE at its real size (random weights), median seconds, beside diffusers on the same
//! machine (`bench/vae_reference.py`) as a ratio. `--json` prints one object
//! `{"decode": {"burn_s", "torch_s", "ratio"}, "encode": {...}}` (ratio = torch_s / burn_s,
//! null where the reference could not run) instead of the report.

use std::path::PathBuf;

use burn::prelude::*;

use crate::models::vae::AutoencoderKLConfig;

/// Arguments of `brainscope bench vae`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Timed repetitions per figure (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Reference script; skipped when it cannot run.
    #[arg(long, default_value = "bench/vae_reference.py")]
    pub reference: PathBuf,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Device: cpu, wgpu, cuda (`cuda:N` for another GPU). (Spelled here rather than taken from
    /// `cli`: the CLI uses the benchmarks, not the other way round.)
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
    /// Skip the diffusers reference (torch_s and ratio null).
    #[arg(long)]
    pub no_reference: bool,
    /// Print one JSON object `{"decode": {"burn_s", "torch_s", "ratio"}, "encode": {...}}`.
    #[arg(long)]
    pub json: bool,
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = crate::backend::device(&args.device)?;
    let model = AutoencoderKLConfig::stable_diffusion().init(&device);
    let latent = crate::models::vae::posterior::seeded_normal([1, 4, 64, 64], 0, &device);
    let image =
        crate::models::vae::posterior::seeded_normal([1, 3, 512, 512], 1, &device).clamp(-1.0, 1.0);
    let sync = |t: Tensor<4>| {
        let _ = t.into_data(); // wait for the result
    };
    let runs = args.repeats.max(1) + 1;
    eprintln!("burn: decode [1, 4, 64, 64] -> 512x512, {runs} runs (one warm-up)...");
    let decode_s = super::median_secs(args.repeats, || sync(model.decode(latent.clone())));
    eprintln!("burn: decode median {decode_s:.2} s; encode 512x512, {runs} runs...");
    let encode_s = super::median_secs(args.repeats, || sync(model.encode(image.clone()).mode()));
    eprintln!(
        "burn: encode median {encode_s:.2} s; now diffusers ({})...",
        args.reference.display()
    );
    let mut report = serde_json::json!({
        "burn": { "decode_s": decode_s, "encode_s": encode_s, "fast_cpu": crate::models::fast_cpu::enabled() }
    });
    let reference = if args.no_reference {
        Err("skipped (--no-reference)".to_string())
    } else {
        let flags = [("--repeats", args.repeats.to_string())];
        super::run_reference(&args.python, &args.reference, &flags)?
    };
    match reference {
        Ok(torch) => {
            let ratio = |ours: f64, k: &str| torch[k].as_f64().map(|t| ours / t);
            let ratios = serde_json::json!({
                "decode": ratio(decode_s, "decode_s"),
                "encode": ratio(encode_s, "encode_s"),
            });
            report["diffusers"] = torch;
            report["ratio_burn_over_diffusers"] = ratios;
        }
        Err(why) => report["diffusers_error"] = why.into(),
    }
    if args.json {
        println!("{}", contract(&report, decode_s, encode_s));
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// The `--json` object: per figure `{"burn_s", "torch_s", "ratio": torch_s / burn_s}`.
fn contract(report: &serde_json::Value, decode_s: f64, encode_s: f64) -> serde_json::Value {
    let figure = |burn_s: f64, key: &str| {
        let torch_s = report["diffusers"][key].as_f64();
        serde_json::json!({
            "burn_s": burn_s,
            "torch_s": torch_s,
            "ratio": torch_s.map(|t| t / burn_s),
        })
    };
    let mut out = serde_json::json!({
        "decode": figure(decode_s, "decode_s"),
        "encode": figure(encode_s, "encode_s"),
        "fast_cpu": crate::models::fast_cpu::enabled(),
    });
    if let Some(e) = report.get("diffusers_error") {
        out["diffusers_error"] = e.clone();
    }
    out
}
