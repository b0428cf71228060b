//! `brainscope decode --vae DIR LATENT.npy -o OUT.png`: decode a scaled latent with a VAE.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::ArrayD;

/// Arguments of `brainscope decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// VAE hub folder (config.json + diffusion_pytorch_model.safetensors).
    #[arg(long)]
    pub vae: PathBuf,
    /// Latent npy (f32 or f16), `[C, h, w]` or `[B, C, h, w]`, scaled by the VAE's scaling factor.
    pub latent: PathBuf,
    /// Output PNG (a batch is laid out left to right).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Device: cpu, wgpu, cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Read an f32 or f16 npy as a rank-4 f32 array (rank 3 gets a batch axis).
pub fn read_latent_npy(path: &std::path::Path) -> anyhow::Result<(Vec<f32>, [usize; 4])> {
    let a: ArrayD<f32> = match ndarray_npy::read_npy::<_, ArrayD<f32>>(path) {
        Ok(a) => a,
        Err(_) => {
            let h: ArrayD<half::f16> = ndarray_npy::read_npy(path)
                .with_context(|| format!("{}: not an f32/f16 npy file", path.display()))?;
            h.mapv(|v| v.to_f32())
        }
    };
    let shape: [usize; 4] = match a.shape() {
        [c, h, w] => [1, *c, *h, *w],
        [b, c, h, w] => [*b, *c, *h, *w],
        s => bail!("{}: latent must be [C,h,w] or [B,C,h,w], got {s:?}", path.display()),
    };
    Ok((a.iter().copied().collect(), shape))
}

/// Run `brainscope decode`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = crate::backend::device(&args.device)?;
    let (values, shape) = read_latent_npy(&args.latent)?;
    let vae = crate::models::vae::load_vae(&args.vae, &device)?;
    if shape[1] != vae.config.latent_channels {
        bail!(
            "{}: latent has {} channels but the VAE in {} expects {}",
            args.latent.display(),
            shape[1],
            args.vae.display(),
            vae.config.latent_channels
        );
    }
    let z = Tensor::<4>::from_data(TensorData::new(values, shape), &device)
        .div_scalar(vae.config.scaling_factor); // [B, C, h, w] unscaled
    let images = vae.model.decode(z); // [B, 3, H, W]
    crate::imageio::save_png(images, &args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
