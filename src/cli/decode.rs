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
    /// Rows to decode when LATENT is an `[N, C, h, w]` cache (repeatable; default all).
    #[arg(long = "row")]
    pub rows: Vec<usize>,
    /// Output PNG (a batch is laid out left to right).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
    /// The float precision.
    #[command(flatten)]
    pub dtype: crate::cli::device_arg::DtypeArg,
}

/// Read an f32 npy `[C,h,w]`/`[B,C,h,w]`, or rows of an f16/f32 `[N,C,h,w]` latent cache
/// (`rows` empty = all), as rank-4 f32 values.
pub fn read_latent_npy(
    path: &std::path::Path,
    rows: &[usize],
) -> anyhow::Result<(Vec<f32>, [usize; 4])> {
    if rows.is_empty()
        && let Ok(a) = ndarray_npy::read_npy::<_, ArrayD<f32>>(path)
    {
        let shape: [usize; 4] = match a.shape() {
            [c, h, w] => [1, *c, *h, *w],
            [b, c, h, w] => [*b, *c, *h, *w],
            s => bail!("{}: latent must be [C,h,w] or [B,C,h,w], got {s:?}", path.display()),
        };
        return Ok((a.iter().copied().collect(), shape));
    }
    let cache = crate::latents::LatentCache::open(path).with_context(|| {
        format!("{}: not an f32 latent or an [N,C,h,w] f16/f32 cache", path.display())
    })?;
    let rows: Vec<usize> = if rows.is_empty() { (0..cache.len()).collect() } else { rows.to_vec() };
    let [c, h, w] = cache.shape();
    let a = cache.rows(&rows)?;
    Ok((a.into_raw_vec_and_offset().0, [rows.len(), c, h, w]))
}

/// Run `brainscope decode`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let precision = args.dtype.precision;
    let device = args.device.device_for(precision)?;
    let (values, shape) = read_latent_npy(&args.latent, &args.rows)?;
    let mut vae = crate::models::vae::load_vae(&args.vae, &device)?;
    vae.model = crate::dtype::cast_module(vae.model, precision);
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
    let images = crate::dtype::to_f32(vae.model.decode(z)); // [B, 3, H, W]
    crate::imageio::save_png(images, &args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
