//! Training a small `AutoencoderKL` from scratch (the demo VAE): L1 + MSE reconstruction loss
//! of the sampled latent, the same on 4x4 block averages (colour and low frequencies), plus a
//! small KL term; burn autodiff (the CPU fast ops of `models::fast_cpu`), the project's AdamW
//! (`train::adamw`), random image batches with flips; periodic checkpoints that a killed run
//! resumes from.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{AutoencoderKL, AutoencoderKLConfig};
use crate::imageio::{self, ImageIoError};
use crate::models::weights::WeightsError;
use crate::train::adamw::{AdamW, AdamWConfig, AdamWError};

/// The demo VAE: 64x64 RGB -> [4, 16, 16], three blocks, single-head mid-block attention.
pub fn demo_vae_config() -> AutoencoderKLConfig {
    AutoencoderKLConfig {
        block_out_channels: vec![16, 32, 64],
        down_block_types: vec!["DownEncoderBlock2D".into(); 3],
        up_block_types: vec!["UpDecoderBlock2D".into(); 3],
        layers_per_block: 1,
        norm_num_groups: 8,
        sample_size: 64,
        // Roughly unit variance for the demo latents, like 0.18215 for SD.
        scaling_factor: 1.0,
        ..AutoencoderKLConfig::stable_diffusion()
    }
}

/// Errors of [`train_vae`].
#[derive(Debug, thiserror::Error)]
pub enum TrainVaeError {
    /// A training or held-out image could not be read.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// A checkpoint's weights could not be written or read.
    #[error("checkpoint weights")]
    Weights(#[from] WeightsError),
    /// A checkpoint's optimizer state could not be written or read.
    #[error("checkpoint optimizer state")]
    Optimizer(#[from] AdamWError),
    /// A checkpoint's step file could not be written or read.
    #[error("checkpoint step file {path} (delete the checkpoint folder to start afresh)")]
    Step {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Settings of [`train_vae`].
#[derive(Debug, Clone)]
pub struct TrainVaeSettings {
    /// Optimiser steps (in total, counting the steps of a resumed checkpoint).
    pub steps: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak AdamW learning rate (linear warm-up over the first 2% of steps, then cosine decay
    /// to 5%).
    pub lr: f64,
    /// Weight of the KL term (per latent element).
    pub kl_weight: f64,
    /// Weight of the L1 + MSE loss on 4x4 block averages (the latent's grid): the colours.
    pub lowpass_weight: f64,
    /// Seed of initialisation, batch order, flips and posterior samples.
    pub seed: u64,
    /// Print a progress line to stderr every this many steps (0: never).
    pub log_every: usize,
    /// Checkpoint every this many steps (0: never), into `checkpoint`.
    pub save_every: usize,
    /// Checkpoint folder: `vae/` (hub folder), `adamw.safetensors`, `step`. A folder with a
    /// `step` file is resumed from.
    pub checkpoint: Option<PathBuf>,
    /// Held-out images measured (PSNR of the posterior mean) at every checkpoint and log line.
    pub heldout: Vec<PathBuf>,
}

/// The result of [`train_vae`].
#[derive(Debug)]
pub struct TrainedVae {
    /// The trained model on the plain (non-autodiff) device.
    pub model: AutoencoderKL,
    /// Smoothed L1 loss of the last steps.
    pub train_l1: f64,
    /// Step the run started from (0, or the resumed checkpoint's).
    pub start_step: usize,
}

/// Load `images` as one `[N, 3, S, S]` buffer of values in [-1, 1].
fn load_pixels(images: &[PathBuf], size: u32) -> Result<Vec<f32>, ImageIoError> {
    let mut pixels = Vec::with_capacity(images.len() * 3 * (size * size) as usize);
    for p in images {
        pixels.extend(imageio::rgb_to_chw(&imageio::load_rgb(p, size, size)?));
    }
    Ok(pixels)
}

/// Train `config` on `images` (resized to `config.sample_size`), resuming from
/// `settings.checkpoint` when it holds one.
pub fn train_vae(
    config: &AutoencoderKLConfig,
    images: &[PathBuf],
    settings: &TrainVaeSettings,
    device: &Device,
) -> Result<TrainedVae, TrainVaeError> {
    let size = config.sample_size as u32;
    let s = size as usize;
    let per_image = 3 * s * s;
    let pixels = load_pixels(images, size)?;
    let heldout = if settings.heldout.is_empty() {
        None
    } else {
        Some(imageio::load_batch(&settings.heldout, size, size, device)?) // [T, 3, S, S]
    };
    let ad = device.clone().autodiff();
    burn::tensor::Tensor::<1>::zeros([1], &ad); // make sure the autodiff device is initialised
    let optim_config = AdamWConfig { weight_decay: 0.0, ..AdamWConfig::default() };
    let (mut model, mut optim, start_step) = match &settings.checkpoint {
        Some(dir) if dir.join("step").is_file() => {
            let step_file = dir.join("step");
            let step_err = |source| TrainVaeError::Step { path: step_file.clone(), source };
            let text = std::fs::read_to_string(&step_file).map_err(step_err)?;
            let step: usize = text
                .trim()
                .parse()
                .map_err(|e| step_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            // Loaded straight onto the autodiff device: the parameters keep their gradients.
            let model = super::load_vae(&dir.join("vae"), &ad)?.model;
            let optim = AdamW::load(&dir.join("adamw.safetensors"), &model)?;
            (model, optim, step)
        }
        _ => (config.init(&ad), optim_config.init(), 0),
    };
    // A resumed run draws its batches from a generator seeded by the step.
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ (start_step as u64).rotate_left(32));
    let mut order: Vec<usize> = (0..images.len()).collect();
    let mut cursor = order.len();
    let mut ema = f64::NAN;
    let started = Instant::now();
    let mut last_log = (Instant::now(), start_step);
    let total = settings.steps.max(1) as f64;
    let warmup = (settings.steps / 50).max(1);
    for step in start_step..settings.steps {
        // Batch of images with random horizontal flips.
        let mut batch = Vec::with_capacity(settings.batch * per_image);
        for _ in 0..settings.batch {
            if cursor == order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            let img = &pixels[order[cursor] * per_image..][..per_image];
            cursor += 1;
            if rng.random_bool(0.5) {
                for row in img.chunks_exact(s) {
                    batch.extend(row.iter().rev());
                }
            } else {
                batch.extend_from_slice(img);
            }
        }
        let x = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(batch, [settings.batch, 3, s, s]),
            &ad,
        ); // [B, 3, S, S]
        let post = model.encode(x.clone());
        let z = post.sample(rng.random()); // [B, 4, S/4, S/4]
        let recon = model.decode(z); // [B, 3, S, S]
        let diff = recon - x; // [B, 3, S, S]
        let l1 = diff.clone().abs().mean();
        let mse = diff.clone().powi_scalar(2).mean();
        // Block averages of the error: the reconstruction's colour on the latent's grid.
        let low = diff
            .reshape([settings.batch, 3, s / 4, 4, s / 4, 4])
            .mean_dim(5)
            .mean_dim(3)
            .reshape([settings.batch, 3, s / 4, s / 4]); // [B, 3, S/4, S/4]
        let low_loss = low.clone().abs().mean() + low.powi_scalar(2).mean();
        let n_latent = post.mean.dims().iter().skip(1).product::<usize>() as f64;
        let kl = post.kl().mean().div_scalar(n_latent);
        let loss = l1.clone()
            + mse
            + low_loss.mul_scalar(settings.lowpass_weight)
            + kl.mul_scalar(settings.kl_weight);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = if step < warmup {
            settings.lr * (step + 1) as f64 / warmup as f64
        } else {
            let progress = (step - warmup) as f64 / (total - warmup as f64).max(1.0);
            settings.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
        };
        model = optim.step(model, grads, lr, 0.9);
        let l1v = l1.into_scalar::<f32>() as f64;
        ema = if ema.is_nan() { l1v } else { 0.95 * ema + 0.05 * l1v };
        let done = step + 1;
        let log_now = settings.log_every > 0 && done % settings.log_every == 0;
        let save_now = settings.save_every > 0 && done % settings.save_every == 0;
        if log_now || save_now || done == settings.steps {
            let now = Instant::now();
            let per_step = (now - last_log.0).as_secs_f64() / (done - last_log.1).max(1) as f64;
            last_log = (now, done);
            let db = heldout.as_ref().map(|x| {
                let plain = model.valid();
                psnr(plain.decode(plain.encode(x.clone()).mode()), x.clone())
            });
            let db = db.map(|d| format!(" heldout {d:.2} dB")).unwrap_or_default();
            eprintln!(
                "train-vae step {done}/{} L1 {ema:.4} lr {lr:.2e} {per_step:.2} s/step{db} [{:.0} s]",
                settings.steps,
                started.elapsed().as_secs_f64()
            );
        }
        if save_now && let Some(dir) = &settings.checkpoint {
            save_checkpoint(dir, &model.valid(), config, &optim, done)?;
        }
    }
    Ok(TrainedVae { model: model.valid(), train_l1: ema, start_step })
}

/// Write a checkpoint: the hub folder, then the optimizer state, then the step (last, so a
/// folder with a `step` file is complete).
fn save_checkpoint(
    dir: &Path,
    model: &AutoencoderKL,
    config: &AutoencoderKLConfig,
    optim: &AdamW,
    step: usize,
) -> Result<(), TrainVaeError> {
    super::save_vae(model, config, &dir.join("vae"))?;
    optim.save(&dir.join("adamw.safetensors"))?;
    let path = dir.join("step");
    let tmp = dir.join("step.tmp");
    std::fs::write(&tmp, format!("{step}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| TrainVaeError::Step { path, source })
}

/// Peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2), over all pixels.
pub fn psnr(a: Tensor<4>, b: Tensor<4>) -> f64 {
    let mse =
        (a.clamp(-1.0, 1.0) - b.clamp(-1.0, 1.0)).powi_scalar(2).mean().into_scalar::<f32>() as f64;
    10.0 * (4.0 / mse.max(1e-12)).log10()
}
