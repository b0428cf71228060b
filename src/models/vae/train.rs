//! Training a small `AutoencoderKL` from scratch (the demo VAE): L1 + MSE reconstruction loss of
//! the sampled latent plus a small KL term, burn autodiff and burn's Adam, random image batches.

use std::path::PathBuf;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{AutoencoderKL, AutoencoderKLConfig};
use crate::imageio::{self, ImageIoError};

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

/// Settings of [`train_vae`].
#[derive(Debug, Clone)]
pub struct TrainVaeSettings {
    /// Optimiser steps.
    pub steps: usize,
    /// Images per step.
    pub batch: usize,
    /// Adam learning rate (cosine-decayed to 10% over the run).
    pub lr: f64,
    /// Weight of the KL term (per latent element).
    pub kl_weight: f64,
    /// Seed of initialisation, batch order, flips and posterior samples.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// Train `config` on `images` (resized to `config.sample_size`). Returns the trained model on
/// the plain (non-autodiff) device and the final smoothed L1 loss.
pub fn train_vae(
    config: &AutoencoderKLConfig,
    images: &[PathBuf],
    settings: &TrainVaeSettings,
    device: &Device,
) -> Result<(AutoencoderKL, f64), ImageIoError> {
    let size = config.sample_size as u32;
    // Decode every image once: [N, 3, S, S] values in [-1, 1] on the CPU side.
    let per_image = 3 * (size * size) as usize;
    let mut pixels = Vec::with_capacity(images.len() * per_image);
    for p in images {
        pixels.extend(imageio::rgb_to_chw(&imageio::load_rgb(p, size, size)?));
    }
    let ad = device.clone().autodiff();
    burn::tensor::Tensor::<1>::zeros([1], &ad); // make sure the autodiff device is initialised
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut model = config.init(&ad);
    let mut optim = AdamConfig::new().init();
    let bar = if settings.progress {
        ProgressBar::new(settings.steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("train-vae {bar:40} {pos}/{len} [{elapsed} < {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut order: Vec<usize> = (0..images.len()).collect();
    let mut cursor = order.len();
    let mut ema = f64::NAN;
    let s = size as usize;
    for step in 0..settings.steps {
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
        let z = post.sample(rng.random());
        let recon = model.decode(z); // [B, 3, S, S]
        let diff = recon - x;
        let l1 = diff.clone().abs().mean();
        let mse = diff.powi_scalar(2).mean();
        let n_latent = post.mean.dims().iter().skip(1).product::<usize>() as f64;
        let kl = post.kl().mean().div_scalar(n_latent);
        let loss = l1.clone() + mse + kl.mul_scalar(settings.kl_weight);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let progress = step as f64 / settings.steps.max(1) as f64;
        let lr = settings.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
        model = optim.step(lr, model, grads);
        let l1v = l1.into_scalar::<f32>() as f64;
        ema = if ema.is_nan() { l1v } else { 0.95 * ema + 0.05 * l1v };
        bar.set_message(format!("L1 {ema:.4}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((model.valid(), ema))
}

/// Peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2), over all pixels.
pub fn psnr(a: Tensor<4>, b: Tensor<4>) -> f64 {
    let mse =
        (a.clamp(-1.0, 1.0) - b.clamp(-1.0, 1.0)).powi_scalar(2).mean().into_scalar::<f32>() as f64;
    10.0 * (4.0 / mse.max(1e-12)).log10()
}
