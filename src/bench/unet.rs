//! `brainscope bench unet`: one SD 1.5 UNet call (batch 2 = classifier-free guidance, latents
//! `[2, 4, 64, 64]`, context `[2, 77, 768]`, random weights), median seconds, beside diffusers on
//! the same machine in the same run (`bench/unet_reference.py`) as a ratio (> 1: burn slower).
//!
//! `--blocks` times the UNet's parts instead, each at the sizes SD 1.5 runs it (median of
//! `--repeats`, with how many of each one call runs): resnets, the transformer's self-attention
//! at 4096 / 1024 / 256 tokens, cross-attention on the 77 text states, the GEGLU feed-forward,
//! `proj_in` (a 1x1 conv) and a 3x3 conv.

use std::path::PathBuf;

use super::median_secs;
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
    /// Time each block type at its SD 1.5 sizes instead of whole calls (no reference run).
    #[arg(long)]
    pub blocks: bool,
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = crate::backend::device(&args.device)?;
    if args.blocks {
        return blocks(&args, &device);
    }
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
    let flags = [("--repeats", args.repeats.to_string())];
    match super::run_reference(&args.python, &args.reference, &flags)? {
        Ok(torch) => {
            report["ratio_burn_over_diffusers"] =
                torch["unet_s"].as_f64().map(|t| unet_s / t).into();
            report["diffusers"] = torch;
        }
        Err(why) => report["diffusers_error"] = why.into(),
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `--blocks`: each part at its SD 1.5 sizes (batch 2), median seconds and the count per call.
fn blocks(args: &Args, device: &Device) -> anyhow::Result<()> {
    use crate::models::diffusers::attention::CrossAttentionConfig;
    use crate::models::diffusers::resnet::{ResnetBlock2dConfig, conv3x3};
    use crate::models::diffusers::transformer::FeedForwardConfig;
    use crate::models::fast_cpu;
    let noise3 = |shape: [usize; 3], seed| {
        let [a, b, c] = shape;
        crate::models::vae::posterior::seeded_normal([a, b, c, 1], seed, device).squeeze_dim::<3>(3)
    };
    let noise4 =
        |shape: [usize; 4], seed| crate::models::vae::posterior::seeded_normal(shape, seed, device);
    let wait3 = |t: Tensor<3>| {
        let _ = t.into_data();
    };
    let wait4 = |t: Tensor<4>| {
        let _ = t.into_data();
    };
    let context = noise3([2, 77, 768], 1);
    let temb = noise3([2, 1280, 1], 2).squeeze_dim::<2>(2);
    let mut rows: Vec<(String, usize, f64)> = Vec::new();
    // (channels, side, resnets, transformers) per resolution of one SD 1.5 call: down, mid, up.
    for (c, side, resnets, transformers) in
        [(320usize, 64usize, 5usize, 5usize), (640, 32, 5, 5), (1280, 16, 5, 5), (1280, 8, 7, 1)]
    {
        let tokens = side * side;
        let x = noise4([2, c, side, side], 3);
        let res = ResnetBlock2dConfig::new(c, c, 32)
            .with_temb_channels(Some(1280))
            .with_eps(1e-5)
            .init(device);
        let t = median_secs(args.repeats, || wait4(res.forward(x.clone(), Some(temb.clone()))));
        rows.push((format!("resnet {c} ch, {side}x{side}"), resnets, t));
        let heads = 8;
        let h = noise3([2, tokens, c], 4);
        let attn1 = CrossAttentionConfig::new(c, heads, c / heads).init(device);
        let t = median_secs(args.repeats, || wait3(attn1.forward(h.clone(), None)));
        rows.push((format!("self-attention {tokens} tokens x {c}"), transformers, t));
        let attn2 =
            CrossAttentionConfig::new(c, heads, c / heads).with_context_dim(Some(768)).init(device);
        let t =
            median_secs(args.repeats, || wait3(attn2.forward(h.clone(), Some(context.clone()))));
        rows.push((format!("cross-attention {tokens} x 77 tokens, {c}"), transformers, t));
        let ff = FeedForwardConfig::new(c).init(device);
        let t = median_secs(args.repeats, || wait3(ff.forward(h.clone())));
        rows.push((format!("GEGLU feed-forward {tokens} tokens x {c}"), transformers, t));
        let proj = crate::models::diffusers::resnet::conv1x1(c, c, device);
        let t = median_secs(args.repeats, || wait4(fast_cpu::conv2d(&proj, x.clone())));
        rows.push((format!("proj_in/out 1x1 conv {c} ch, {side}x{side}"), 2 * transformers, t));
        let conv = conv3x3(c, c, device);
        let t = median_secs(args.repeats, || wait4(fast_cpu::conv2d(&conv, x.clone())));
        rows.push((format!("3x3 conv {c} ch, {side}x{side} (2 per resnet)"), 0, t));
    }
    let mut total = 0.0;
    for (what, n, t) in &rows {
        total += *n as f64 * t;
        eprintln!("{what:<44} {t:>8.3} s  x{n:<2} = {:>7.2} s", *n as f64 * t);
    }
    eprintln!(
        "{:<44} {:>8} {:>16.2} s (per call, approximate: counts are per resolution)",
        "sum", "", total
    );
    let report: Vec<_> = rows
        .iter()
        .map(|(what, n, t)| serde_json::json!({"block": what, "s": t, "per_call": n}))
        .collect();
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "burn_blocks": report }))?);
    Ok(())
}
