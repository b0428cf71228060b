//! `brainscope bench train`: training throughput of the low-level model at the paper's size
//! (forward + L1 loss + backward + AdamW step on random data, CPU), beside the identical PyTorch
//! model (`bench/train_reference.py`, fused AdamW, `THP_MEM_ALLOC_ENABLE=1`) run in the same
//! sitting, as a ratio. Also the optimizer step alone in both, peak RSS (VmHWM) and each side's
//! f32 GEMM rate (2048^3: the `gemm` crate here, PyTorch's BLAS there). `--json` prints one
//! object `{"burn_s", "torch_s", "ratio", ...}` on stdout instead of the human lines.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use indicatif::{ProgressBar, ProgressStyle};

use crate::models::lowlevel::LowLevelConfig;
use crate::train::adamw::AdamWConfig;

/// Arguments of `brainscope bench train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input voxels (the paper's subj01: 39548).
    #[arg(long, default_value_t = 39548)]
    pub voxels: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Timed steps (medians are reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Benchmark the MLP and projection only (no upsampler), in both.
    #[arg(long)]
    pub mlp_only: bool,
    /// Skip the PyTorch reference.
    #[arg(long)]
    pub no_reference: bool,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The reference script.
    #[arg(long, default_value = "bench/train_reference.py")]
    pub reference: PathBuf,
    /// Device for burn's side: cpu, wgpu, cuda (the reference stays on the CPU; see
    /// scripts/gpu-check.sh for PyTorch on CUDA).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
    /// Print one JSON object on stdout: `{"burn_s", "torch_s", "ratio"}` (medians in s/step,
    /// ratio = torch_s / burn_s; null without the reference) and each side's figures.
    #[arg(long)]
    pub json: bool,
}

/// Size of the GEMM whose rate is reported beside the step (`n x n x n`).
const GEMM_N: usize = 2048;

/// Medians of one side of the comparison.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct Figures {
    s_per_step: f64,
    optim_s: f64,
    fwd_bwd_s: f64,
    samples_per_s: f64,
    peak_rss_mb: f64,
    /// f32 GFLOP/s of a 2048^3 GEMM on the same threads (the `gemm` crate here).
    #[serde(default)]
    gemm_gflops: Option<f64>,
    /// The same through OpenBLAS (built with the `openblas` feature; null otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openblas_gflops: Option<f64>,
    /// Achieved f32 GFLOP/s of the step's convolutions and linear layers (counted analytically:
    /// forward, input and weight gradients), null for PyTorch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step_gflops: Option<f64>,
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.steps > 0 && args.batch > 0 && args.voxels > 0,
        "--steps, --batch and --voxels must be > 0"
    );
    let profile = if cfg!(debug_assertions) {
        "dev (deps opt-level 3, crate opt-level 1)"
    } else {
        "release"
    };
    let header = format!(
        "bench train: V={} batch={} steps={} (+{} warm-up), {}, profile {profile}, {} threads",
        args.voxels,
        args.batch,
        args.steps,
        args.warmup,
        if args.mlp_only { "MLP + projection only" } else { "full model" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Human lines go to stdout, or to stderr when stdout carries the JSON object.
    let say = |line: &str| if args.json { eprintln!("{line}") } else { println!("{line}") };
    say(&header);
    let device = crate::backend::device(&args.device)?;
    let burn = run_burn(&args, device);
    say(&figures_line(&format!("burn ({})", args.device), &burn));
    let torch = if args.no_reference { None } else { Some(run_reference(&args)?) };
    if let Some(torch) = &torch {
        say(&figures_line("PyTorch", torch));
        say(&format!(
            "ratio (PyTorch s/step / burn s/step): {:.2}   optimizer step ratio: {:.2}",
            torch.s_per_step / burn.s_per_step,
            torch.optim_s / burn.optim_s
        ));
    }
    if args.json {
        let torch_s = torch.as_ref().map(|t| t.s_per_step);
        let report = serde_json::json!({
            "burn_s": burn.s_per_step,
            "torch_s": torch_s,
            "ratio": torch_s.map(|t| t / burn.s_per_step),
            "mlp_only": args.mlp_only,
            "burn": burn,
            "torch": torch,
        });
        println!("{report}");
    }
    Ok(())
}

fn figures_line(name: &str, f: &Figures) -> String {
    let mut gemm =
        f.gemm_gflops.map_or(String::new(), |g| format!("; GEMM {GEMM_N}^3 {g:.1} GFLOP/s"));
    if let Some(g) = f.openblas_gflops {
        gemm += &format!(" (OpenBLAS {g:.1})");
    }
    if let Some(g) = f.step_gflops {
        gemm += &format!("; step achieves {g:.1} GFLOP/s");
    }
    format!(
        "{name:>12}: {:.3} s/step ({:.1} samples/s): forward+backward {:.3} s, optimizer {:.3} s; peak RSS {:.0} MB{gemm}",
        f.s_per_step, f.samples_per_s, f.fwd_bwd_s, f.optim_s, f.peak_rss_mb
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Peak resident set size of this process in MB (`VmHWM`), NaN where /proc is missing.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn run_burn(args: &Args, device: Device) -> Figures {
    let device = device.autodiff();
    let config = LowLevelConfig::paper(args.voxels);
    let mut model = config.init(&device, 0);
    let mut optim = AdamWConfig::default().init();
    let x = Tensor::<2>::random([args.batch, args.voxels], Distribution::Normal(0.0, 1.0), &device);
    let forward = |m: &crate::models::lowlevel::LowLevelModel, x: Tensor<2>| {
        if args.mlp_only { m.forward_features(x) } else { m.forward(x) }
    };
    let out_dims = forward(&model, x.clone()).dims();
    let y = Tensor::<4>::random(out_dims, Distribution::Normal(0.0, 1.0), &device);

    let bar = ProgressBar::new((args.warmup + args.steps) as u64)
        .with_style(
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} steps")
                .expect("valid template"),
        )
        .with_message("burn");
    let (mut step_t, mut optim_t, mut fb_t) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.warmup + args.steps {
        let t0 = Instant::now();
        let loss = (forward(&model, x.clone()) - y.clone()).abs().mean(); // L1
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let _ = device.sync();
        let t1 = Instant::now();
        model = optim.step(model, grads, 5e-4, 0.9);
        // A GPU queues the work: wait for it, so the step is timed, not its submission.
        let _ = device.sync();
        let t2 = Instant::now();
        if i >= args.warmup {
            step_t.push((t2 - t0).as_secs_f64());
            optim_t.push((t2 - t1).as_secs_f64());
            fb_t.push((t1 - t0).as_secs_f64());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let s = median(step_t);
    Figures {
        s_per_step: s,
        optim_s: median(optim_t),
        fwd_bwd_s: median(fb_t),
        samples_per_s: args.batch as f64 / s,
        peak_rss_mb: peak_rss_mb(),
        gemm_gflops: Some(super::gemm::gemm_gflops(GEMM_N, 3)),
        openblas_gflops: super::gemm::openblas_gflops(GEMM_N, 3),
        step_gflops: Some(step_flops(&config, args) / s / 1e9),
    }
}

/// Flops of one training step's GEMM work (linear layers, convolutions, the mid-block
/// attention's projections): `2 m n k` per product, three products per layer (forward, input and
/// weight gradient) except for the first linear layer, whose input needs no gradient.
fn step_flops(config: &LowLevelConfig, args: &Args) -> f64 {
    let b = args.batch as f64;
    let w = &config.widths;
    let (v, h) = (config.input_voxels as f64, w.hidden as f64);
    let s = config.proj_size;
    let proj = (w.proj_channels * s * s) as f64;
    let mut fwd_mlp = 2.0 * b * (w.blocks as f64 * h * h + h * proj);
    let first = 2.0 * b * v * h; // forward + weight gradient only
    fwd_mlp *= 3.0;
    if args.mlp_only {
        return fwd_mlp + 2.0 * first;
    }
    // Convolutions of the diffusers Decoder: `2 * B * H * W * C_out * C_in * k^2` each.
    let conv = |hw: usize, ci: usize, co: usize, k: usize| {
        2.0 * b * (hw * hw) as f64 * (ci * co * k * k) as f64
    };
    let resnet = |hw: usize, ci: usize, co: usize| {
        conv(hw, ci, co, 3) + conv(hw, co, co, 3) + if ci != co { conv(hw, ci, co, 1) } else { 0.0 }
    };
    let chans = &w.upsampler_channels;
    let top = *chans.last().expect("upsampler_channels is not empty");
    let mut side = s;
    let mut f = conv(side, w.proj_channels, top, 3) + 2.0 * resnet(side, top, top);
    // Attention: four [hw, C] x [C, C] projections and the two [hw, hw] products.
    let tokens = (side * side) as f64;
    f += 2.0 * b * (4.0 * tokens * (top * top) as f64 + 2.0 * tokens * tokens * top as f64);
    let mut prev = top;
    for (i, &out) in chans.iter().rev().enumerate() {
        f += resnet(side, prev, out);
        for _ in 0..config.layers_per_block {
            f += resnet(side, out, out);
        }
        if i + 1 < chans.len() {
            side *= 2;
            f += conv(side, out, out, 3);
        }
        prev = out;
    }
    f += conv(side, chans[0], config.out_channels, 3);
    fwd_mlp + 2.0 * first + 3.0 * f
}

fn run_reference(args: &Args) -> anyhow::Result<Figures> {
    let spinner = ProgressBar::new_spinner().with_message("PyTorch reference running");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut cmd = Command::new(&args.python);
    cmd.arg(&args.reference)
        .args(["--voxels", &args.voxels.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--gemm", &GEMM_N.to_string()])
        .env("THP_MEM_ALLOC_ENABLE", "1");
    if args.mlp_only {
        cmd.arg("--mlp-only");
    }
    let out = cmd.output().with_context(|| {
        format!(
            "cannot run {} {}: install Python with torch, or pass --no-reference",
            args.python,
            args.reference.display()
        )
    })?;
    spinner.finish_and_clear();
    anyhow::ensure!(
        out.status.success(),
        "{} failed ({}): {}",
        args.reference.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .with_context(|| format!("unexpected output from {}: {stdout}", args.reference.display()))
}
