//! `brainscope train-vae --data DIR --out weights/demo/vae [--steps N]`: train the small demo
//! `AutoencoderKL` on a dataset's training images and save it as a diffusers hub folder.

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
    /// Optimiser steps.
    #[arg(long, default_value_t = 1500)]
    pub steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Adam learning rate (cosine-decayed to 10%).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// KL weight per latent element.
    #[arg(long, default_value_t = 1e-4)]
    pub kl_weight: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Run `brainscope train-vae`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let subject = crate::data::algonauts::Subject::open(&args.data, &args.subject)?;
    let images = subject.train_images().to_vec();
    anyhow::ensure!(!images.is_empty(), "{}: no training images", subject.dir().display());
    let config = demo_vae_config();
    let settings = TrainVaeSettings {
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        kl_weight: args.kl_weight,
        seed: args.seed,
        progress: true,
    };
    let (model, l1) = train_vae(&config, &images, &settings, &device)?;
    crate::models::vae::save_vae(&model, &config, &args.out)?;
    // Held-out check on the test images when the dataset has them.
    let mut report = serde_json::json!({ "out": args.out, "steps": args.steps, "train_l1": l1 });
    if let Some(test) = subject.test() {
        let take: Vec<PathBuf> = test.images.iter().take(32).cloned().collect();
        let size = config.sample_size as u32;
        let x = crate::imageio::load_batch(&take, size, size, &device)?;
        let recon = model.decode(model.encode(x.clone()).mode());
        report["heldout_psnr_db"] = psnr(recon, x).into();
        report["heldout_images"] = take.len().into();
    }
    println!("{report}");
    Ok(())
}
