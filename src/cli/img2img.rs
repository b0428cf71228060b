//! `brainscope img2img --sd DIR --image IMG --prompt P [--negative P] [--strength 0.75]
//! [--guidance 6] [--steps 50] [--scheduler pndm|ddim] [--latent-mode sample|argmax] [--seed N]
//! [--noise N.npy] [--posterior-noise E.npy] -o OUT.png`: Stable Diffusion 1.x img2img
//! (diffusers' `StableDiffusionImg2ImgPipeline`) from a hub pipeline folder.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::dtype::{Precision, cast_module, cast_pipeline, to_f32};
use crate::pipelines::img2img::{self, NoisePredictor, preprocess_image, read_noise};
use crate::pipelines::{Img2ImgOptions, LatentMode, Randomness, SdPipeline, sd};
use crate::schedulers::{Scheduler, SchedulerKind, img2img_start};

/// Long help of `brainscope img2img`.
pub const LONG_ABOUT: &str = "Stable Diffusion 1.x img2img, as diffusers' StableDiffusionImg2ImgPipeline.

DIR is a diffusers hub pipeline folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), e.g. runwayml/stable-diffusion-v1-5. The image is floored to a multiple of the VAE factor (8) and Lanczos-resized when needed. `t_start = steps - int(steps * strength)`: 50 steps at strength 0.75 with PNDM run 38 UNet calls from t = 741.

Randomness: --noise (add_noise's noise) and --posterior-noise (the eps of the posterior sample) inject float32 npy arrays of the latent shape [1, 4, H/8, W/8] exactly (e.g. saved from PyTorch); whatever is not injected is drawn from a ChaCha8 generator seeded with --seed (posterior eps first, then the noise; not torch's numbers).

No safety checker is run: outputs are not filtered.";

/// The img2img settings `img2img` and `recon` share, with the paper's defaults (strength 0.75,
/// guidance 6, 50 PNDM steps).
#[derive(Debug, Clone, clap::Args)]
pub struct DiffusionArgs {
    /// Noise strength in (0, 1].
    #[arg(long, default_value_t = 0.75)]
    pub strength: f64,
    /// Classifier-free guidance scale (none at <= 1).
    #[arg(long, default_value_t = 6.0)]
    pub guidance: f64,
    /// Scheduler steps before the strength cut.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Scheduler: the pipeline's PNDM, or DDIM built from its config (DDIMScheduler.from_config).
    #[arg(long, value_enum, default_value_t = SchedulerKind::Pndm)]
    pub scheduler: SchedulerKind,
    /// Posterior sample (diffusers' default) or its mode.
    #[arg(long, value_enum, default_value_t = LatentMode::Sample)]
    pub latent_mode: LatentMode,
    /// Seed of our ChaCha8 generator for the noise not injected (`recon`: plus each sample's
    /// dataset row).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Float precision of the UNet, VAE and text encoder: f32, or f16 on a GPU device.
    #[arg(long = "dtype", value_enum, default_value_t = crate::dtype::Precision::F32)]
    pub dtype: crate::dtype::Precision,
}

/// Arguments of `brainscope img2img`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hub pipeline folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/).
    #[arg(long)]
    pub sd: PathBuf,
    /// Input image (PNG or JPEG).
    #[arg(long)]
    pub image: PathBuf,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// The negative prompt (default: empty, as diffusers).
    #[arg(long, default_value = "")]
    pub negative: String,
    /// Strength, guidance, steps, scheduler, latent mode, seed.
    #[command(flatten)]
    pub diffusion: DiffusionArgs,
    /// add_noise's noise, float32 npy [1, 4, H/8, W/8].
    #[arg(long)]
    pub noise: Option<PathBuf>,
    /// The posterior sample's eps, float32 npy [1, 4, H/8, W/8] (--latent-mode sample).
    #[arg(long)]
    pub posterior_noise: Option<PathBuf>,
    /// Output PNG.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// The UNet of the pipeline folder `dir` (`unet/`) as the pipeline's noise predictor, its
/// weights in `precision`.
pub fn load_noise_predictor(
    dir: &Path,
    device: &burn::tensor::Device,
    precision: Precision,
) -> anyhow::Result<Box<dyn NoisePredictor>> {
    let unet = crate::models::unet::load_unet(&dir.join("unet"), device)?.model;
    Ok(Box::new(cast_module(unet, precision)))
}

/// Run `brainscope img2img`.
pub fn run(args: Args) -> anyhow::Result<()> {
    img2img_start(args.diffusion.steps, args.diffusion.strength)?;
    if args.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref()
        != Some("png")
    {
        anyhow::bail!("{}: the output must be a .png file", args.output.display());
    }
    sd::check_layout(&args.sd)?;
    let precision = args.diffusion.dtype;
    let device = args.device.device_for(precision)?;
    let pipeline = cast_pipeline(SdPipeline::load(&args.sd, &device)?, precision);
    // The scheduler's own checks (steps <= num_train_timesteps, config values) before any work.
    Scheduler::from_config(
        args.diffusion.scheduler,
        &pipeline.scheduler_config,
        Some(args.sd.join("scheduler/scheduler_config.json")),
    )?
    .set_img2img_timesteps(args.diffusion.steps, args.diffusion.strength)?;
    let factor = pipeline.vae_scale_factor();
    let image = preprocess_image(&args.image, factor as u32, &device)?; // [1, 3, H, W]
    let [_, _, h, w] = image.dims();
    let shape = pipeline.latent_shape(h, w);
    let read = |path: &Option<PathBuf>, what| {
        path.as_ref().map(|p| read_noise(p, what, shape, factor, &device)).transpose()
    };
    let randomness = Randomness {
        seed: args.diffusion.seed,
        noise: read(&args.noise, "noise")?,
        posterior_noise: read(&args.posterior_noise, "posterior noise")?,
    };
    if randomness.posterior_noise.is_some() && args.diffusion.latent_mode == LatentMode::Argmax {
        anyhow::bail!("--posterior-noise is only used with --latent-mode sample");
    }
    let unet = load_noise_predictor(&args.sd, &device, precision)?;
    let options = Img2ImgOptions {
        prompt: args.prompt,
        negative_prompt: args.negative,
        strength: args.diffusion.strength,
        guidance_scale: args.diffusion.guidance,
        steps: args.diffusion.steps,
        scheduler: args.diffusion.scheduler,
        latent_mode: args.diffusion.latent_mode,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} UNet steps  {elapsed} (eta {eta})")
            .expect("valid template"),
    );
    let out = img2img::img2img(
        &pipeline,
        unet.as_ref(),
        image,
        &options,
        &randomness,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?; // [1, 3, H, W] in [0, 1]
    bar.finish_and_clear();
    let tmp = args.output.with_extension("png.tmp");
    crate::imageio::save_png(to_f32(out).mul_scalar(2.0).sub_scalar(1.0), &tmp)?;
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.output.display()))?;
    eprintln!("wrote {} ({w}x{h})", args.output.display());
    Ok(())
}
