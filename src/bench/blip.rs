//! `brainscope bench blip`: one caption of one 384x384 image with a
//! blip-image-captioning-large-sized BLIP (random weights): vision tower + exactly `--tokens`
//! generated tokens, greedy and `--beams` beams, median seconds per caption, beside transformers'
//! `generate` on the same machine (`bench/blip_reference.py`) as a ratio (> 1: burn is faster).

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::models::blip::generate::{self, GenerateOptions, SpecialIds};
use crate::models::blip::{BlipConfig, BlipTextConfig, BlipVisionConfig};

/// Arguments of `brainscope bench blip`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generated tokens per caption (after [DEC]).
    #[arg(long, default_value_t = 20)]
    pub tokens: usize,
    /// Beams of the beam-search run.
    #[arg(long, default_value_t = 3)]
    pub beams: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Reference script; skipped when it cannot run.
    #[arg(long, default_value = "bench/blip_reference.py")]
    pub reference: PathBuf,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Salesforce/blip-image-captioning-large's architecture.
pub fn blip_large() -> BlipConfig {
    BlipConfig {
        text_config: BlipTextConfig {
            hidden_size: 768,
            encoder_hidden_size: 1024,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            ..Default::default()
        },
        vision_config: BlipVisionConfig {
            hidden_size: 1024,
            intermediate_size: 4096,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            ..Default::default()
        },
    }
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let config = blip_large();
    config.validate().map_err(anyhow::Error::msg)?;
    let model = config.init(&device);
    let pixels = Tensor::<4>::random([1, 3, 384, 384], Distribution::Normal(0.0, 1.0), &device);
    let ids = SpecialIds { bos: 30522, sep: 102 };
    let length = args.tokens + 1;
    let mut report = serde_json::json!({ "tokens": args.tokens });
    for (name, beams) in [("greedy", 1), ("beams", args.beams.max(1))] {
        let opts = GenerateOptions {
            max_length: length,
            min_length: length,
            num_beams: beams,
            ..Default::default()
        };
        let caption = || -> anyhow::Result<()> {
            let embeds = model.vision_model.forward(pixels.clone()); // [1, 577, 1024]
            let out = generate::generate(&model.text_decoder, embeds, &[ids.bos], &opts, ids)?;
            anyhow::ensure!(out[0].len() == length, "generated {} tokens", out[0].len());
            Ok(())
        };
        eprintln!(
            "burn: BLIP-large caption, {name} ({beams} beam(s)), {} runs...",
            args.repeats + 1
        );
        caption()?;
        let mut times = Vec::new();
        for _ in 0..args.repeats.max(1) {
            let start = Instant::now();
            caption()?;
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        report["burn"][name] =
            serde_json::json!({ "s_per_caption": times[times.len() / 2], "num_beams": beams });
    }
    eprintln!("burn done; now transformers ({})...", args.reference.display());
    let flags = [
        ("--tokens", args.tokens.to_string()),
        ("--beams", args.beams.to_string()),
        ("--repeats", args.repeats.to_string()),
    ];
    match super::run_reference(&args.python, &args.reference, &flags)? {
        Ok(torch) => {
            for name in ["greedy", "beams"] {
                let ratio = torch[name]["s_per_caption"]
                    .as_f64()
                    .zip(report["burn"][name]["s_per_caption"].as_f64())
                    .map(|(t, b)| t / b);
                report[format!("ratio_{name}_transformers_s_over_burn_s")] = ratio.into();
            }
            report["transformers"] = torch;
        }
        Err(why) => report["transformers_error"] = why.into(),
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
