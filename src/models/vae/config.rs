//! The `config.json` of a diffusers `AutoencoderKL` hub folder, checked for what this port supports.

use serde::{Deserialize, Serialize};

use super::decoder::DecoderConfig;
use super::encoder::EncoderConfig;

/// The fields of diffusers' `AutoencoderKL` config (`vae/config.json`). Unknown fields are
/// ignored; missing ones take diffusers' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderKLConfig {
    /// diffusers class name; must be `AutoencoderKL` when present.
    #[serde(rename = "_class_name", default = "default_class")]
    pub class_name: String,
    /// Image channels.
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Output image channels.
    #[serde(default = "three")]
    pub out_channels: usize,
    /// Encoder block types; only `DownEncoderBlock2D` is supported.
    #[serde(default = "default_down")]
    pub down_block_types: Vec<String>,
    /// Decoder block types; only `UpDecoderBlock2D` is supported.
    #[serde(default = "default_up")]
    pub up_block_types: Vec<String>,
    /// Channels of each block.
    #[serde(default = "default_channels")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder block (decoder blocks have one more).
    #[serde(default = "one")]
    pub layers_per_block: usize,
    /// Activation; only `silu` is supported.
    #[serde(default = "default_act")]
    pub act_fn: String,
    /// Latent channels.
    #[serde(default = "four")]
    pub latent_channels: usize,
    /// GroupNorm groups.
    #[serde(default = "default_groups")]
    pub norm_num_groups: usize,
    /// Image size the VAE was trained on (512 for SD 1.x; used to resize inputs).
    #[serde(default = "default_sample_size")]
    pub sample_size: usize,
    /// Latent scaling factor (0.18215 for SD 1.x).
    #[serde(default = "default_scaling")]
    pub scaling_factor: f64,
    /// Latent shift (SD3/Flux); must be absent or null.
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// Whether `quant_conv` exists.
    #[serde(default = "yes")]
    pub use_quant_conv: bool,
    /// Whether `post_quant_conv` exists.
    #[serde(default = "yes")]
    pub use_post_quant_conv: bool,
    /// Whether the mid blocks have attention.
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
}

fn default_class() -> String {
    "AutoencoderKL".into()
}
fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn default_down() -> Vec<String> {
    vec!["DownEncoderBlock2D".into()]
}
fn default_up() -> Vec<String> {
    vec!["UpDecoderBlock2D".into()]
}
fn default_channels() -> Vec<usize> {
    vec![64]
}
fn default_act() -> String {
    "silu".into()
}
fn default_groups() -> usize {
    32
}
fn default_sample_size() -> usize {
    32
}
fn default_scaling() -> f64 {
    0.18215
}

impl AutoencoderKLConfig {
    /// The SD 1.x VAE config (`runwayml/stable-diffusion-v1-5/vae/config.json`).
    pub fn stable_diffusion() -> Self {
        Self {
            class_name: default_class(),
            in_channels: 3,
            out_channels: 3,
            down_block_types: vec!["DownEncoderBlock2D".into(); 4],
            up_block_types: vec!["UpDecoderBlock2D".into(); 4],
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            act_fn: default_act(),
            latent_channels: 4,
            norm_num_groups: 32,
            sample_size: 512,
            scaling_factor: 0.18215,
            shift_factor: None,
            use_quant_conv: true,
            use_post_quant_conv: true,
            mid_block_add_attention: true,
        }
    }

    /// Check that this port supports the config; `Err` holds the reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.class_name != "AutoencoderKL" {
            return Err(format!("_class_name is '{}', expected 'AutoencoderKL'", self.class_name));
        }
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err("block_out_channels is empty".into());
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(format!(
                "{} block_out_channels but {} down and {} up block types",
                n,
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        if let Some(t) = self.down_block_types.iter().find(|t| *t != "DownEncoderBlock2D") {
            return Err(format!("unsupported down block type '{t}' (only DownEncoderBlock2D)"));
        }
        if let Some(t) = self.up_block_types.iter().find(|t| *t != "UpDecoderBlock2D") {
            return Err(format!("unsupported up block type '{t}' (only UpDecoderBlock2D)"));
        }
        if self.act_fn != "silu" {
            return Err(format!("unsupported act_fn '{}' (only silu)", self.act_fn));
        }
        if self.shift_factor.is_some_and(|s| s != 0.0) {
            return Err("shift_factor is not supported (SD 1.x VAEs have none)".into());
        }
        if self.norm_num_groups == 0 {
            return Err("norm_num_groups is 0".into());
        }
        if let Some(c) = self.block_out_channels.iter().find(|c| *c % self.norm_num_groups != 0) {
            return Err(format!(
                "block channel {c} not divisible by norm_num_groups {}",
                self.norm_num_groups
            ));
        }
        if self.layers_per_block == 0 || self.latent_channels == 0 {
            return Err("layers_per_block and latent_channels must be positive".into());
        }
        Ok(())
    }

    /// Spatial downsampling factor of the encoder (`2^(blocks - 1)`).
    pub fn downsample_factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }

    /// The encoder's configuration.
    pub fn encoder(&self) -> EncoderConfig {
        EncoderConfig::new(
            self.in_channels,
            self.latent_channels,
            self.block_out_channels.clone(),
            self.layers_per_block,
        )
        .with_norm_num_groups(self.norm_num_groups)
        .with_mid_block_add_attention(self.mid_block_add_attention)
    }

    /// The decoder's configuration.
    pub fn decoder(&self) -> DecoderConfig {
        DecoderConfig::new(
            self.latent_channels,
            self.out_channels,
            self.block_out_channels.clone(),
            self.layers_per_block,
        )
        .with_norm_num_groups(self.norm_num_groups)
        .with_mid_block_add_attention(self.mid_block_add_attention)
    }
}
