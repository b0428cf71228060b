//! `brainscope encode --vae DIR IMG [-o LATENT.npy] [--sample --seed N]`: encode an image into a
//! scaled VAE latent (`scaling_factor * mode`, or a seeded sample).

use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `brainscope encode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// VAE hub folder (config.json + diffusion_pytorch_model.safetensors).
    #[arg(long)]
    pub vae: PathBuf,
    /// Input image (PNG or JPEG); resized bicubically to the VAE's size.
    pub image: PathBuf,
    /// Output npy (f32 `[1, C, h, w]`); default: IMAGE with extension `.latent.npy`.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Image size to resize to; default 512 for the SD VAE, else the config's `sample_size`.
    #[arg(long)]
    pub size: Option<u32>,
    /// Sample the posterior instead of taking its mode.
    #[arg(long)]
    pub sample: bool,
    /// Seed for `--sample`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Run `brainscope encode`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let vae = crate::models::vae::load_vae(&args.vae, &device)?;
    let size = args.size.unwrap_or(vae.config.sample_size as u32);
    let image = crate::imageio::load_image_tensor(&args.image, size, size, &device)?; // [1, 3, S, S]
    let latent = crate::latents::encode_scaled(&vae, image, args.sample.then_some(args.seed));
    let output = args.output.unwrap_or_else(|| args.image.with_extension("latent.npy"));
    let dims = latent.dims();
    let values: Vec<f32> = latent
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let array = ndarray::Array4::from_shape_vec(dims, values)?;
    ndarray_npy::write_npy(&output, &array)
        .with_context(|| format!("writing {}", output.display()))?;
    eprintln!("wrote {} {:?}", output.display(), dims);
    Ok(())
}
