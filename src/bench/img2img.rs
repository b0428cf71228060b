//! `brainscope bench img2img`: the paper's high-level step on one image at SD 1.5 size with
//! random weights: CLIP ViT-L/14 text encoder, the SD VAE and UNet, a 512x512 image, strength
//! 0.75, guidance 6, PNDM; 50 steps = 38 UNet calls of batch 2. Prints seconds per image (a
//! figure, not a goal: real runs are for GPU boxes) and the UNet-call count, so a shorter
//! `--steps` run says what it measured. `--reference bench/img2img_reference.py` also runs
//! diffusers' `StableDiffusionImg2ImgPipeline` with the same settings and gives the ratio (off by
//! default: it takes as long again).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::models::clip::{Clip, ClipBuild, ClipConfig, ClipTokenizer};
use crate::models::unet::UNet2DConditionModelConfig;
use crate::models::vae::{AutoencoderKLConfig, Vae};
use crate::pipelines::img2img::{Img2ImgOptions, LatentMode, Randomness, img2img};
use crate::pipelines::sd::SdPipeline;
use crate::schedulers::{SchedulerConfig, SchedulerKind};

/// Arguments of `brainscope bench img2img`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scheduler steps before the strength cut (50: 38 UNet calls at strength 0.75).
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// img2img strength.
    #[arg(long, default_value_t = 0.75)]
    pub strength: f64,
    /// Classifier-free guidance scale (> 1: batch 2 per UNet call).
    #[arg(long, default_value_t = 6.0)]
    pub guidance: f64,
    /// Image side in pixels (a multiple of 8).
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    /// A CLIP tokenizer folder (vocab.json + merges.txt); the fixture one has the real vocabulary.
    #[arg(long, default_value = "tests/fixtures/sd/pipeline/tokenizer")]
    pub tokenizer: PathBuf,
    /// Device: cpu, wgpu, cuda (`cuda:N` for another GPU).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
    /// Also run this diffusers script with the same settings (`bench/img2img_reference.py`).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
}

/// SD 1.5's `scheduler/scheduler_config.json`.
const SD15_SCHEDULER: &str = r#"{"_class_name": "PNDMScheduler", "beta_end": 0.012,
  "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false,
  "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true,
  "steps_offset": 1, "trained_betas": null}"#;

/// SD 1.5's `text_encoder/config.json` (CLIP ViT-L/14's text tower), the fields that matter.
fn sd15_text_encoder() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
        "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
        "projection_dim": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1
    })
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1");
    anyhow::ensure!(
        args.size >= 8 && args.size.is_multiple_of(8),
        "--size {} must be a positive multiple of 8",
        args.size
    );
    let device = crate::backend::device(&args.device)?;
    let config = ClipConfig::from_json(&sd15_text_encoder()).map_err(anyhow::Error::msg)?;
    let text = config.text.clone().context("the text encoder config has a text tower")?;
    let build = ClipBuild {
        text: Some(text),
        vision: None,
        text_projection: None,
        visual_projection: None,
    };
    let text_encoder = Clip { model: build.init(&device), config, dir: PathBuf::from("(random)") };
    let tokenizer = ClipTokenizer::from_dir(&args.tokenizer, 77)
        .with_context(|| format!("loading the CLIP tokenizer from {}", args.tokenizer.display()))?;
    let vae_config = AutoencoderKLConfig::stable_diffusion();
    let vae = Vae { model: vae_config.init(&device), config: vae_config, dir: "(random)".into() };
    let scheduler_config: SchedulerConfig = serde_json::from_str(SD15_SCHEDULER)?;
    let sd = SdPipeline { dir: "(random)".into(), text_encoder, tokenizer, vae, scheduler_config };
    let unet_config = UNet2DConditionModelConfig::stable_diffusion_v1();
    let plan = unet_config.validate().map_err(anyhow::Error::msg)?;
    let unet = unet_config.init(&plan, &device);
    let side = args.size;
    let image = crate::models::vae::posterior::seeded_normal([1, 3, side, side], 1, &device)
        .clamp(-1.0, 1.0); // [1, 3, H, W]
    let options = Img2ImgOptions {
        prompt: "a photograph of a cat sitting on a wooden table".into(),
        negative_prompt: String::new(),
        strength: args.strength,
        guidance_scale: args.guidance,
        steps: args.steps,
        scheduler: SchedulerKind::Pndm,
        latent_mode: LatentMode::Sample,
    };
    let randomness = Randomness { seed: 0, noise: None, posterior_noise: None };
    let batch = if args.guidance > 1.0 { 2 } else { 1 };
    eprintln!(
        "burn: img2img {side}x{side}, strength {}, guidance {}, {} PNDM steps (batch {batch})...",
        args.strength, args.guidance, args.steps
    );
    let start = Instant::now();
    let mut calls = 0;
    let out = img2img(&sd, &unet, image, &options, &randomness, &mut |done, total| {
        calls = total;
        eprintln!("  UNet call {done}/{total}, {:.1} s", start.elapsed().as_secs_f64());
    })?;
    let _ = out.into_data(); // wait for the decode
    let s = start.elapsed().as_secs_f64();
    let mut report = serde_json::json!({
        "burn": {
            "s_per_image": s,
            "unet_calls": calls,
            "batch": batch,
            "steps": args.steps,
            "strength": args.strength,
            "guidance": args.guidance,
            "size": side,
            "fast_cpu": crate::models::fast_cpu::enabled(),
        }
    });
    if let Some(script) = &args.reference {
        eprintln!("burn: {s:.1} s per image; now diffusers ({})...", script.display());
        let flags = [
            ("--steps", args.steps.to_string()),
            ("--strength", args.strength.to_string()),
            ("--guidance", args.guidance.to_string()),
            ("--size", side.to_string()),
            ("--tokenizer", args.tokenizer.display().to_string()),
        ];
        match super::run_reference(&args.python, script, &flags)? {
            Ok(torch) => {
                report["ratio_burn_over_diffusers"] =
                    torch["s_per_image"].as_f64().map(|t| s / t).into();
                report["diffusers"] = torch;
            }
            Err(why) => report["diffusers_error"] = why.into(),
        }
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
