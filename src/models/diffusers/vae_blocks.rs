//! The VAE's blocks above the resnet: `UNetMidBlock2D`, `DownEncoderBlock2D` with
//! `Downsample2D` (`padding=0`), `UpDecoderBlock2D` with `Upsample2D` (all as in diffusers, no
//! time embedding).

use burn::prelude::*;

use super::attention::{Attention, AttentionConfig};
use super::resnet::{ResnetBlock2d, ResnetBlock2dConfig};
use super::sampling::{Downsample2d, Upsample2d};

/// Configuration of a [`MidBlock`].
#[derive(Config, Debug)]
pub struct MidBlockConfig {
    /// Channels (the last entry of `block_out_channels`).
    pub channels: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// Whether the attention block is present (`mid_block_add_attention`).
    #[config(default = true)]
    pub add_attention: bool,
}

/// `UNetMidBlock2D`: resnet -> attention -> resnet. Keys: `resnets.{0,1}`, `attentions.0`.
#[derive(Module, Debug)]
pub struct MidBlock {
    /// The two resnets.
    pub resnets: Vec<ResnetBlock2d>,
    /// Zero or one attention block.
    pub attentions: Vec<Attention>,
}

impl MidBlockConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> MidBlock {
        let res =
            || ResnetBlock2dConfig::new(self.channels, self.channels, self.groups).init(device);
        let attentions = if self.add_attention {
            vec![AttentionConfig::new(self.channels, self.groups).init(device)]
        } else {
            Vec::new()
        };
        MidBlock { resnets: vec![res(), res()], attentions }
    }
}

impl MidBlock {
    /// `[B, C, H, W] -> [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.resnets[0].forward(x, None);
        if let Some(attn) = self.attentions.first() {
            x = attn.forward(x);
        }
        self.resnets[1].forward(x, None)
    }
}

/// Configuration of a [`DownEncoderBlock`].
#[derive(Config, Debug)]
pub struct DownEncoderBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of resnets (`layers_per_block`).
    pub num_layers: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// Whether a downsampler follows (all blocks but the last).
    pub add_downsample: bool,
}

/// `DownEncoderBlock2D`. Keys: `resnets.N`, `downsamplers.0`.
#[derive(Module, Debug)]
pub struct DownEncoderBlock {
    /// The resnets.
    pub resnets: Vec<ResnetBlock2d>,
    /// Zero or one downsampler.
    pub downsamplers: Vec<Downsample2d>,
}

impl DownEncoderBlockConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> DownEncoderBlock {
        let resnets = (0..self.num_layers)
            .map(|i| {
                let cin = if i == 0 { self.in_channels } else { self.out_channels };
                ResnetBlock2dConfig::new(cin, self.out_channels, self.groups).init(device)
            })
            .collect();
        let downsamplers = if self.add_downsample {
            vec![Downsample2d::new(self.out_channels, 0, device)]
        } else {
            Vec::new()
        };
        DownEncoderBlock { resnets, downsamplers }
    }
}

impl DownEncoderBlock {
    /// `[B, in, H, W] -> [B, out, H', W']`.
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for res in &self.resnets {
            x = res.forward(x, None);
        }
        for down in &self.downsamplers {
            x = down.forward(x);
        }
        x
    }
}

/// Configuration of an [`UpDecoderBlock`].
#[derive(Config, Debug)]
pub struct UpDecoderBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of resnets (`layers_per_block + 1` in the decoder).
    pub num_layers: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// Whether an upsampler follows (all blocks but the last).
    pub add_upsample: bool,
}

/// `UpDecoderBlock2D`. Keys: `resnets.N`, `upsamplers.0`.
#[derive(Module, Debug)]
pub struct UpDecoderBlock {
    /// The resnets.
    pub resnets: Vec<ResnetBlock2d>,
    /// Zero or one upsampler.
    pub upsamplers: Vec<Upsample2d>,
}

impl UpDecoderBlockConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> UpDecoderBlock {
        let resnets = (0..self.num_layers)
            .map(|i| {
                let cin = if i == 0 { self.in_channels } else { self.out_channels };
                ResnetBlock2dConfig::new(cin, self.out_channels, self.groups).init(device)
            })
            .collect();
        let upsamplers = if self.add_upsample {
            vec![Upsample2d::new(self.out_channels, device)]
        } else {
            Vec::new()
        };
        UpDecoderBlock { resnets, upsamplers }
    }
}

impl UpDecoderBlock {
    /// `[B, in, H, W] -> [B, out, H', W']`.
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for res in &self.resnets {
            x = res.forward(x, None);
        }
        for up in &self.upsamplers {
            x = up.forward(x);
        }
        x
    }
}
