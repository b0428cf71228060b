//! The VAE encoder (diffusers `Encoder` with `double_z=True`). Keys as in diffusers: `conv_in`,
//! `down_blocks.N.resnets.M.*`, `down_blocks.N.downsamplers.0.conv`, `mid_block.*`,
//! `conv_norm_out`, `conv_out`.

use crate::models::fast_cpu;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::models::diffusers::resnet::{conv3x3, group_norm};
use crate::models::diffusers::vae_blocks::{
    DownEncoderBlock, DownEncoderBlockConfig, MidBlock, MidBlockConfig,
};

/// Configuration of an [`Encoder`].
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Image channels (3 for RGB).
    pub in_channels: usize,
    /// Latent channels; the encoder outputs twice as many (mean and log-variance).
    pub latent_channels: usize,
    /// `block_out_channels`, one down block each.
    pub block_out_channels: Vec<usize>,
    /// Resnets per down block.
    pub layers_per_block: usize,
    /// GroupNorm groups.
    #[config(default = 32)]
    pub norm_num_groups: usize,
    /// Whether the mid block has its attention.
    #[config(default = true)]
    pub mid_block_add_attention: bool,
}

/// diffusers `Encoder`: conv_in -> down blocks -> mid block -> GroupNorm -> SiLU -> conv_out.
#[derive(Module, Debug)]
pub struct Encoder {
    /// 3x3 conv from the image to the first block width.
    pub conv_in: Conv2d,
    /// Down blocks.
    pub down_blocks: Vec<DownEncoderBlock>,
    /// `UNetMidBlock2D`.
    pub mid_block: MidBlock,
    /// Final GroupNorm.
    pub conv_norm_out: GroupNorm,
    /// 3x3 conv to `2 * latent_channels`.
    pub conv_out: Conv2d,
}

impl EncoderConfig {
    /// Build the encoder with random weights.
    ///
    /// # Panics
    /// If `block_out_channels` is empty or a channel count is not divisible by `norm_num_groups`.
    pub fn init(&self, device: &Device) -> Encoder {
        assert!(!self.block_out_channels.is_empty(), "block_out_channels must not be empty");
        let groups = self.norm_num_groups;
        let chans = &self.block_out_channels;
        let n = chans.len();
        let down_blocks = (0..n)
            .map(|i| {
                let cin = if i == 0 { chans[0] } else { chans[i - 1] };
                DownEncoderBlockConfig::new(cin, chans[i], self.layers_per_block, groups, i + 1 < n)
                    .init(device)
            })
            .collect();
        let top = chans[n - 1];
        Encoder {
            conv_in: conv3x3(self.in_channels, chans[0], device),
            down_blocks,
            mid_block: MidBlockConfig::new(top, groups)
                .with_add_attention(self.mid_block_add_attention)
                .init(device),
            conv_norm_out: group_norm(groups, top, device),
            conv_out: conv3x3(top, 2 * self.latent_channels, device),
        }
    }
}

impl Encoder {
    /// `[B, in, H, W] -> [B, 2 * latent, H / 2^(n-1), W / 2^(n-1)]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = fast_cpu::conv2d(&self.conv_in, x); // [B, c0, H, W]
        for block in &self.down_blocks {
            x = block.forward(x);
        }
        x = self.mid_block.forward(x);
        let x = fast_cpu::group_norm(&self.conv_norm_out, x, true);
        fast_cpu::conv2d(&self.conv_out, x) // [B, 2 * latent, h, w]
    }
}
