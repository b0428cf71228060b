//! `brainscope bench clip`: CLIP ViT-L/14 image embedding (vision tower + projection, the paper's
//! voting/eval model) at its real size with random weights, a batch of 224x224 images, median
//! seconds per batch and images/s, beside transformers on the same machine
//! (`bench/clip_reference.py`) as a ratio (> 1: burn is faster).

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::models::clip::{ClipBuild, ClipVisionConfig};

/// Arguments of `brainscope bench clip`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Reference script; skipped when it cannot run.
    #[arg(long, default_value = "bench/clip_reference.py")]
    pub reference: PathBuf,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let vision = ClipVisionConfig::vit_large_patch14();
    let build = ClipBuild {
        text: None,
        vision: Some(vision.clone()),
        text_projection: None,
        visual_projection: Some(vision.projection_dim),
    };
    let model = build.init(&device);
    let (tower, proj) =
        (model.vision_model.as_ref().unwrap(), model.visual_projection.as_ref().unwrap());
    let batch = args.batch.max(1);
    let pixels = Tensor::<4>::random([batch, 3, 224, 224], Distribution::Normal(0.0, 1.0), &device);
    let embed = || {
        let pooled = tower.forward(pixels.clone()).pooler_output; // [batch, 1024]
        let _ = proj.forward(pooled).into_data(); // [batch, 768]; wait for the result
    };
    eprintln!(
        "burn: ViT-L/14 image embedding, batch {batch}, {} runs (one warm-up)...",
        args.repeats + 1
    );
    let s = super::median_secs(args.repeats, embed);
    eprintln!(
        "burn: median {s:.2} s per batch; now transformers ({})...",
        args.reference.display()
    );
    let mut report = serde_json::json!({
        "burn": { "s_per_batch": s, "images_per_s": batch as f64 / s, "batch": batch, "repeats": args.repeats }
    });
    let flags = [("--batch", batch.to_string()), ("--repeats", args.repeats.to_string())];
    match super::run_reference(&args.python, &args.reference, &flags)? {
        Ok(torch) => {
            let ratio = torch["images_per_s"].as_f64().map(|t| batch as f64 / s / t);
            report["transformers"] = torch;
            report["ratio_burn_over_transformers_images_per_s"] = ratio.into();
        }
        Err(why) => report["transformers_error"] = why.into(),
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
