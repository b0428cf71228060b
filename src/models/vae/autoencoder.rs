//! diffusers `AutoencoderKL`: encoder + `quant_conv` -> diagonal Gaussian; `post_quant_conv` +
//! decoder. Keys: `encoder.*`, `quant_conv.*`, `post_quant_conv.*`, `decoder.*`.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

use crate::models::fast_cpu;

use super::config::AutoencoderKLConfig;
use super::decoder::Decoder;
use super::encoder::Encoder;
use super::posterior::DiagonalGaussian;

/// The SD VAE. Latents from [`AutoencoderKL::encode`] are unscaled (multiply by the config's
/// `scaling_factor` for diffusion use).
#[derive(Module, Debug)]
pub struct AutoencoderKL {
    /// Image -> moments.
    pub encoder: Encoder,
    /// Latent -> image.
    pub decoder: Decoder,
    /// 1x1 conv on the moments (absent when `use_quant_conv` is false).
    pub quant_conv: Option<Conv2d>,
    /// 1x1 conv on the latent before decoding (absent when `use_post_quant_conv` is false).
    pub post_quant_conv: Option<Conv2d>,
}

impl AutoencoderKLConfig {
    /// Build the model with random weights (call [`AutoencoderKLConfig::validate`] first).
    pub fn init(&self, device: &Device) -> AutoencoderKL {
        let z = self.latent_channels;
        AutoencoderKL {
            encoder: self.encoder().init(device),
            decoder: self.decoder().init(device),
            quant_conv: self
                .use_quant_conv
                .then(|| Conv2dConfig::new([2 * z, 2 * z], [1, 1]).init(device)),
            post_quant_conv: self
                .use_post_quant_conv
                .then(|| Conv2dConfig::new([z, z], [1, 1]).init(device)),
        }
    }
}

impl AutoencoderKL {
    /// Images `[B, 3, H, W]` in [-1, 1] -> posterior over latents `[B, C, H/f, W/f]`.
    pub fn encode(&self, images: Tensor<4>) -> DiagonalGaussian {
        let mut moments = self.encoder.forward(images); // [B, 2C, h, w]
        if let Some(conv) = &self.quant_conv {
            moments = fast_cpu::conv2d(conv, moments);
        }
        DiagonalGaussian::from_moments(moments)
    }

    /// Unscaled latents `[B, C, h, w]` -> images `[B, 3, h*f, w*f]` (roughly in [-1, 1]).
    pub fn decode(&self, latents: Tensor<4>) -> Tensor<4> {
        let z = match &self.post_quant_conv {
            Some(conv) => fast_cpu::conv2d(conv, latents),
            None => latents,
        };
        self.decoder.forward(z)
    }
}
