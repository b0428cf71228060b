//! `brainscope train-vae --data DIR --out weights/demo/vae [--steps N]`: train the small demo
//! `AutoencoderKL` on a dataset's training images and save it as a diffusers hub folder.
//!
//! Every `--save-every` steps the weights (a hub folder, `vae/`), the optimizer state and the
//! step go to `--checkpoint` (default `<out>.ckpt`), so a killed run keeps its progress; running
//! the same command again resumes from the checkpoint.

use std::path::PathBuf;

use crate::models::vae::train::{TrainVaeSettings, demo_vae_config, psnr, train_vae};

/// Arguments of `brainscope train-vae`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset root (with the subject folder) or subject folder; its training images are used.
    #[arg(long)]
    pub data: PathBuf,
    /// Subject folder name under `--data`.
    #[arg(long, default_value = "subj01")]
    pub subject: String,
    /// Output hub folder (config.json + diffusion_pytorch_model.safetensors).
    #[arg(long, default_value = "weights/demo/vae")]
    pub out: PathBuf,
    /// Optimiser steps in total (a resumed run continues to this count).
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Peak AdamW learning rate (2% linear warm-up, cosine decay to 5%).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// KL weight per latent element.
    #[arg(long, default_value_t = 1e-4)]
    pub kl_weight: f64,
    /// Weight of the loss on 4x4 block averages (colours).
    #[arg(long, default_value_t = 1.0)]
    pub lowpass_weight: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print a progress line (loss, lr, s/step, held-out PSNR) every this many steps.
    #[arg(long, default_value_t = 25)]
    pub log_every: usize,
    /// Checkpoint every this many steps (0: never).
    #[arg(long, default_value_t = 100)]
    pub save_every: usize,
    /// Checkpoint folder (resumed from when it holds a checkpoint) [default: `<out>.ckpt`].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Held-out images measured during training and in the final report.
const HELDOUT_IMAGES: usize = 32;

/// Run `brainscope train-vae`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let subject = crate::data::algonauts::Subject::open(&args.data, &args.subject)?;
    let images = subject.train_images().to_vec();
    anyhow::ensure!(!images.is_empty(), "{}: no training images", subject.dir().display());
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let config = demo_vae_config();
    let heldout: Vec<PathBuf> = subject
        .test()
        .map(|t| t.images.iter().take(HELDOUT_IMAGES).cloned().collect())
        .unwrap_or_default();
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| {
        let mut name = args.out.file_name().unwrap_or_default().to_os_string();
        name.push(".ckpt");
        args.out.with_file_name(name)
    });
    let settings = TrainVaeSettings {
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        kl_weight: args.kl_weight,
        lowpass_weight: args.lowpass_weight,
        seed: args.seed,
        log_every: args.log_every,
        save_every: args.save_every,
        checkpoint: (args.save_every > 0).then_some(checkpoint.clone()),
        heldout: heldout.clone(),
    };
    let trained = train_vae(&config, &images, &settings, &device)?;
    crate::models::vae::save_vae(&trained.model, &config, &args.out)?;
    let mut report = serde_json::json!({
        "out": args.out,
        "steps": args.steps,
        "resumed_from_step": trained.start_step,
        "train_l1": trained.train_l1,
    });
    if !heldout.is_empty() {
        let size = config.sample_size as u32;
        let x = crate::imageio::load_batch(&heldout, size, size, &device)?;
        let model = &trained.model;
        let recon = model.decode(model.encode(x.clone()).mode());
        report["heldout_psnr_db"] = psnr(recon, x).into();
        report["heldout_images"] = heldout.len().into();
    }
    println!("{report}");
    Ok(())
}
