//! Building blocks of diffusers models shared by the VAE ([`crate::models::vae`]) and the UNet
//! ([`crate::models::unet`]), with diffusers' parameter names:
//!
//! - [`resnet`]: `ResnetBlock2D` (optional time-embedding input), conv / GroupNorm helpers;
//! - [`attention`]: the VAE's spatial `Attention` and the transformer blocks' `CrossAttention`;
//! - [`transformer`]: `Transformer2DModel`, `BasicTransformerBlock`, GEGLU `FeedForward`;
//! - [`embeddings`]: sinusoidal `Timesteps` and `TimestepEmbedding`;
//! - [`sampling`]: `Downsample2D` / `Upsample2D`;
//! - [`vae_blocks`]: the VAE's `UNetMidBlock2D`, `DownEncoderBlock2D`, `UpDecoderBlock2D`.

pub mod attention;
pub mod embeddings;
pub mod resnet;
pub mod sampling;
pub mod transformer;
pub mod vae_blocks;
