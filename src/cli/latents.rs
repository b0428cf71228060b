//! `brainscope latents --data DIR --vae DIR [--out FILE] [--batch N] [--sample --seed N]`: encode
//! every training (then test) image of a subject into the latent cache (see [`crate::latents`]).

use std::path::PathBuf;

use crate::latents::{LatentJob, LatentMode, default_cache_path, ensure_latent_cache};

/// Arguments of `brainscope latents`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset root (containing the subject folder) or the subject folder itself.
    #[arg(long)]
    pub data: PathBuf,
    /// Subject folder name under `--data`.
    #[arg(long, default_value = "subj01")]
    pub subject: String,
    /// VAE hub folder (config.json + diffusion_pytorch_model.safetensors).
    #[arg(long)]
    pub vae: PathBuf,
    /// Cache file; default `<subject dir>/latents/<vae-name>-<mode>.npy`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Sample the posterior (seeded per image) instead of taking its mode.
    #[arg(long)]
    pub sample: bool,
    /// Seed for `--sample`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image size; default 512 for the SD VAE, else the config's `sample_size`.
    #[arg(long)]
    pub size: Option<u32>,
    /// Leave out the test images.
    #[arg(long)]
    pub train_only: bool,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Run `brainscope latents`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let subject = crate::data::algonauts::Subject::open(&args.data, &args.subject)?;
    let mut images = subject.train_images().to_vec();
    let n_train = images.len();
    if !args.train_only
        && let Some(test) = subject.test()
    {
        images.extend(test.images.iter().cloned());
    }
    let mode = if args.sample { LatentMode::Sample { seed: args.seed } } else { LatentMode::Mode };
    let out = args.out.unwrap_or_else(|| default_cache_path(subject.dir(), &args.vae, mode));
    let job = LatentJob {
        dataset: subject.dir().to_path_buf(),
        images,
        n_train,
        vae: args.vae,
        out,
        batch: args.batch,
        mode,
        image_size: args.size,
        progress: true,
    };
    let built = ensure_latent_cache(&job, &device)?;
    if let Some(reason) = &built.rebuilt_because {
        eprintln!("latent cache out of date: {reason}");
    }
    let path = built.path;
    let cache = crate::latents::LatentCache::open(&path)?;
    println!(
        "{}",
        serde_json::json!({
            "cache": path,
            "rows": cache.len(),
            "n_train": n_train,
            "shape": cache.shape(),
            "mode": mode.tag(),
        })
    );
    Ok(())
}
