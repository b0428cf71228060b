//! diffusers `StableDiffusionImg2ImgPipeline` over any [`NoisePredictor`] (the UNet): prompt and
//! negative prompt through the CLIP text encoder, classifier-free guidance on the batch
//! `[uncond, text]`, the image VAE-encoded (posterior sample or mode) and scaled, noised at the
//! first kept timestep, the scheduler loop, VAE decode, postprocess to [0, 1].
//!
//! Randomness: the posterior's eps and `add_noise`'s noise are either injected exactly (float32
//! npy files, e.g. written from PyTorch) or drawn from one ChaCha8 generator seeded with `seed`,
//! eps first (sample mode only) then the noise, in diffusers' order (not torch's numbers).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops::FilterType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::sd::{PipelineError, SdPipeline};
use crate::schedulers::{Scheduler, SchedulerKind};

/// The denoising model: the UNet's noise prediction.
pub trait NoisePredictor {
    /// Latents `[b, 4, h, w]`, the (integer-valued) timestep, text context `[b, 77, d]` ->
    /// predicted noise `[b, 4, h, w]`.
    fn predict(&self, latents: Tensor<4>, timestep: f32, context: Tensor<3>) -> Tensor<4>;
}

/// How the image's latent is taken from the VAE posterior (diffusers `retrieve_latents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatentMode {
    /// `latent_dist.sample()`: mean + std * eps (the pipeline's default).
    Sample,
    /// `latent_dist.mode()`: the posterior mean.
    Argmax,
}

/// img2img settings (diffusers' argument names).
#[derive(Debug, Clone)]
pub struct Img2ImgOptions {
    /// The prompt.
    pub prompt: String,
    /// The negative prompt (diffusers' default is "").
    pub negative_prompt: String,
    /// How much noise to add, in (0, 1]: `int(steps * strength)` of the steps run.
    pub strength: f64,
    /// Classifier-free guidance scale (no guidance at <= 1).
    pub guidance_scale: f64,
    /// Scheduler steps before the strength cut.
    pub steps: usize,
    /// Which scheduler (DDIM is built from the pipeline's config as `DDIMScheduler.from_config`).
    pub scheduler: SchedulerKind,
    /// Posterior sample or mode.
    pub latent_mode: LatentMode,
}

/// Where the two random tensors come from.
#[derive(Debug, Clone)]
pub struct Randomness {
    /// Seed of the ChaCha8 generator for whatever is not injected.
    pub seed: u64,
    /// `add_noise`'s noise `[1, C, h, w]`.
    pub noise: Option<Tensor<4>>,
    /// The posterior sample's eps `[1, C, h, w]` (sample mode).
    pub posterior_noise: Option<Tensor<4>>,
}

/// Read an image for the pipeline as diffusers' `VaeImageProcessor.preprocess`: RGB, width and
/// height floored to a multiple of the VAE factor, Lanczos resized when that changed the size,
/// mapped to [-1, 1]: `[1, 3, H, W]`. Errors for an image smaller than one latent pixel.
pub fn preprocess_image(
    path: &Path,
    factor: u32,
    device: &Device,
) -> Result<Tensor<4>, PipelineError> {
    let img = image::open(path)
        .map_err(|source| crate::imageio::ImageIoError::Read { path: path.into(), source })?
        .to_rgb8();
    let (w, h) = (img.width() - img.width() % factor, img.height() - img.height() % factor);
    if w == 0 || h == 0 {
        return Err(PipelineError::ImageTooSmall {
            path: path.into(),
            width: img.width(),
            height: img.height(),
            min: factor,
        });
    }
    let img = if (w, h) == img.dimensions() {
        img
    } else {
        image::imageops::resize(&img, w, h, FilterType::Lanczos3)
    };
    let values = crate::imageio::rgb_to_chw(&img);
    Ok(Tensor::from_data(TensorData::new(values, [1, 3, h as usize, w as usize]), device))
}

/// Read an injected noise npy (float32/16/64) and check it is `expected`.
pub fn read_noise(
    path: &Path,
    what: &'static str,
    expected: [usize; 4],
    factor: usize,
    device: &Device,
) -> Result<Tensor<4>, PipelineError> {
    use crate::data::npy;
    let file_err = |source| PipelineError::NoiseFile { what, source };
    let (_, header) = npy::open_with_header(path, what).map_err(file_err)?;
    if header.shape != expected {
        return Err(PipelineError::NoiseShape {
            path: path.into(),
            what,
            found: header.shape,
            expected,
            factor,
        });
    }
    if header.fortran_order {
        return Err(file_err(crate::data::DataError::FortranOrder { path: path.into() }));
    }
    let rows = npy::NpyMatrix::open_rows(path, what).map_err(file_err)?;
    let mut values = vec![0f32; rows.cols()];
    rows.read_row_into(0, &mut values).map_err(file_err)?;
    Ok(Tensor::from_data(TensorData::new(values, expected), device))
}

fn normal(rng: &mut ChaCha8Rng, shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Run img2img on `image` (`[1, 3, H, W]` in [-1, 1], H and W multiples of the VAE factor) and
/// return the image `[1, 3, H, W]` in [0, 1]. `on_step(done, total)` is called after every
/// denoising step (a progress bar).
pub fn img2img(
    sd: &SdPipeline,
    unet: &dyn NoisePredictor,
    image: Tensor<4>,
    options: &Img2ImgOptions,
    randomness: &Randomness,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>, PipelineError> {
    let device = image.device();
    let mut scheduler = Scheduler::from_config(
        options.scheduler,
        &sd.scheduler_config,
        Some(sd.dir.join("scheduler/scheduler_config.json")),
    )?;
    let timesteps = scheduler.set_img2img_timesteps(options.steps, options.strength)?;
    let [_, _, h, w] = image.dims();
    let shape = sd.latent_shape(h, w);
    let check = |t: &Option<Tensor<4>>, what| match t {
        Some(t) if t.dims() != shape => Err(PipelineError::NoiseShape {
            path: "(tensor)".into(),
            what,
            found: t.dims().to_vec(),
            expected: shape,
            factor: sd.vae_scale_factor(),
        }),
        _ => Ok(()),
    };
    check(&randomness.noise, "noise")?;
    check(&randomness.posterior_noise, "posterior noise")?;

    // Text: [uncond, text] when guiding.
    let cfg = options.guidance_scale > 1.0;
    let context = if cfg {
        sd.encode_prompts(&[options.negative_prompt.clone(), options.prompt.clone()], &device)?
    } else {
        sd.encode_prompts(std::slice::from_ref(&options.prompt), &device)?
    }; // [1 or 2, 77, d]

    // Image -> scaled latent, noised at the first kept timestep.
    let mut rng = ChaCha8Rng::seed_from_u64(randomness.seed);
    let posterior = sd.vae.model.encode(image); // mean [1, C, h, w]
    let latent = match options.latent_mode {
        LatentMode::Argmax => posterior.mode(),
        LatentMode::Sample => {
            let eps = match &randomness.posterior_noise {
                Some(e) => e.clone(),
                None => normal(&mut rng, shape, &device),
            };
            posterior.mean.clone() + posterior.std() * eps
        }
    };
    let init = latent.mul_scalar(sd.vae.config.scaling_factor as f32); // [1, C, h, w]
    let noise = match &randomness.noise {
        Some(n) => n.clone(),
        None => normal(&mut rng, shape, &device),
    };
    let mut latents = scheduler.add_noise(init, noise, timesteps[0]); // [1, C, h, w]

    let total = timesteps.len();
    for (i, &t) in timesteps.iter().enumerate() {
        let input = if cfg {
            Tensor::cat(vec![latents.clone(), latents.clone()], 0)
        } else {
            latents.clone()
        }; // [b, C, h, w]
        let pred = unet.predict(input, t as f32, context.clone()); // [b, C, h, w]
        let pred = if cfg {
            let [b, c, lh, lw] = pred.dims();
            let uncond = pred.clone().slice([0..b / 2, 0..c, 0..lh, 0..lw]);
            let text = pred.slice([b / 2..b, 0..c, 0..lh, 0..lw]);
            uncond.clone() + (text - uncond).mul_scalar(options.guidance_scale as f32)
        } else {
            pred
        }; // [1, C, h, w]
        latents = scheduler.step(pred, t, latents)?;
        on_step(i + 1, total);
    }

    let decoded = sd.vae.model.decode(latents.div_scalar(sd.vae.config.scaling_factor as f32)); // [1, 3, H, W]
    Ok(decoded.div_scalar(2.0).add_scalar(0.5).clamp(0.0, 1.0))
}

/// The ported `UNet2DConditionModel` is the pipeline's noise predictor (one timestep shared by
/// the `[uncond, text]` batch).
impl NoisePredictor for crate::models::unet::UNet2DConditionModel {
    fn predict(&self, latents: Tensor<4>, timestep: f32, context: Tensor<3>) -> Tensor<4> {
        self.forward(latents, timestep, context) // [b, 4, h, w]
    }
}
