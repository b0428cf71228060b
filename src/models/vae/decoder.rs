//! The VAE decoder (diffusers `Decoder`), also usable standalone: the low-level model reuses it as
//! its upsampler (`Decoder(in_channels=64, out_channels=4, block_out_channels=[64,128,256],
//! layers_per_block=1)`).
//!
//! Parameter keys are identical to diffusers' `Decoder` state dict, so a PyTorch state dict loads
//! by prefix remapping only (plus `to_out.0` -> `to_out`, see [`crate::models::vae::DIFFUSERS_REMAP`]):
//! `conv_in.weight`, `mid_block.resnets.0.norm1.weight`, `mid_block.attentions.0.to_q.weight`,
//! `up_blocks.0.resnets.1.conv2.weight`, `up_blocks.0.upsamplers.0.conv.weight`,
//! `conv_norm_out.weight`, `conv_out.bias`, ...

use crate::models::fast_cpu;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::models::diffusers::resnet::{conv3x3, group_norm};
use crate::models::diffusers::vae_blocks::{
    MidBlock, MidBlockConfig, UpDecoderBlock, UpDecoderBlockConfig,
};

/// Configuration of a [`Decoder`] (the fields of diffusers' `Decoder.__init__` that matter).
#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Channels of the input (latent channels for the VAE).
    pub in_channels: usize,
    /// Channels of the output (3 for RGB).
    pub out_channels: usize,
    /// `block_out_channels`, in encoder order (the decoder walks them reversed).
    pub block_out_channels: Vec<usize>,
    /// Resnets per up block minus one (diffusers uses `layers_per_block + 1`).
    pub layers_per_block: usize,
    /// GroupNorm groups.
    #[config(default = 32)]
    pub norm_num_groups: usize,
    /// Whether the mid block has its attention (`mid_block_add_attention`).
    #[config(default = true)]
    pub mid_block_add_attention: bool,
}

/// diffusers `Decoder`: conv_in -> mid block -> up blocks -> GroupNorm -> SiLU -> conv_out.
/// Spatial size grows by `2^(len(block_out_channels) - 1)`.
#[derive(Module, Debug)]
pub struct Decoder {
    /// 3x3 conv from the input channels to the widest block.
    pub conv_in: Conv2d,
    /// `UNetMidBlock2D`.
    pub mid_block: MidBlock,
    /// Up blocks, widest first.
    pub up_blocks: Vec<UpDecoderBlock>,
    /// Final GroupNorm.
    pub conv_norm_out: GroupNorm,
    /// 3x3 conv to the output channels.
    pub conv_out: Conv2d,
}

impl DecoderConfig {
    /// Build the decoder with random weights.
    ///
    /// # Panics
    /// If `block_out_channels` is empty or a channel count is not divisible by `norm_num_groups`.
    pub fn init(&self, device: &Device) -> Decoder {
        assert!(!self.block_out_channels.is_empty(), "block_out_channels must not be empty");
        let groups = self.norm_num_groups;
        let reversed: Vec<usize> = self.block_out_channels.iter().rev().copied().collect();
        let top = reversed[0];
        let mut prev = top;
        let up_blocks = reversed
            .iter()
            .enumerate()
            .map(|(i, &out)| {
                let block = UpDecoderBlockConfig::new(
                    prev,
                    out,
                    self.layers_per_block + 1,
                    groups,
                    i + 1 < reversed.len(),
                )
                .init(device);
                prev = out;
                block
            })
            .collect();
        let first = self.block_out_channels[0];
        Decoder {
            conv_in: conv3x3(self.in_channels, top, device),
            mid_block: MidBlockConfig::new(top, groups)
                .with_add_attention(self.mid_block_add_attention)
                .init(device),
            up_blocks,
            conv_norm_out: group_norm(groups, first, device),
            conv_out: conv3x3(first, self.out_channels, device),
        }
    }
}

impl Decoder {
    /// `[B, in_channels, h, w] -> [B, out_channels, h * 2^(n-1), w * 2^(n-1)]`.
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut x = fast_cpu::conv2d(&self.conv_in, z); // [B, top, h, w]
        x = self.mid_block.forward(x);
        for block in &self.up_blocks {
            x = block.forward(x);
        }
        let x = fast_cpu::group_norm(&self.conv_norm_out, x, true); // [B, first, H, W]
        fast_cpu::conv2d(&self.conv_out, x) // [B, out, H, W]
    }
}
