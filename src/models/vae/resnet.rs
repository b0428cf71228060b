//! `ResnetBlock2D` of diffusers (no time embedding, as in the VAE): GroupNorm -> SiLU -> conv3x3,
//! twice, plus a 1x1 `conv_shortcut` when the channel count changes.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::models::fast_cpu;

/// GroupNorm epsilon used everywhere in diffusers' `AutoencoderKL` (`resnet_eps=1e-6`).
pub const NORM_EPS: f64 = 1e-6;

/// A 3x3 convolution with padding 1 (diffusers' default `Conv2d(.., kernel_size=3, padding=1)`).
pub fn conv3x3(in_channels: usize, out_channels: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// A GroupNorm with diffusers' VAE epsilon.
pub fn group_norm(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels).with_epsilon(NORM_EPS).init(device)
}

/// Configuration of a [`ResnetBlock2d`].
#[derive(Config, Debug)]
pub struct ResnetBlock2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// GroupNorm groups (`norm_num_groups`).
    pub groups: usize,
}

/// diffusers `ResnetBlock2D` without time embedding. Keys: `norm1`, `conv1`, `norm2`, `conv2`,
/// `conv_shortcut` (only when `in_channels != out_channels`).
#[derive(Module, Debug)]
pub struct ResnetBlock2d {
    /// First GroupNorm (on the input channels).
    pub norm1: GroupNorm,
    /// First 3x3 convolution.
    pub conv1: Conv2d,
    /// Second GroupNorm (on the output channels).
    pub norm2: GroupNorm,
    /// Second 3x3 convolution.
    pub conv2: Conv2d,
    /// 1x1 projection of the residual when the channel count changes.
    pub conv_shortcut: Option<Conv2d>,
}

impl ResnetBlock2dConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> ResnetBlock2d {
        let (i, o) = (self.in_channels, self.out_channels);
        ResnetBlock2d {
            norm1: group_norm(self.groups, i, device),
            conv1: conv3x3(i, o, device),
            norm2: group_norm(self.groups, o, device),
            conv2: conv3x3(o, o, device),
            conv_shortcut: (i != o).then(|| Conv2dConfig::new([i, o], [1, 1]).init(device)),
        }
    }
}

impl ResnetBlock2d {
    /// `[B, in, H, W] -> [B, out, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = fast_cpu::conv2d(&self.conv1, fast_cpu::group_norm(&self.norm1, x.clone(), true)); // [B, out, H, W]
        let h = fast_cpu::conv2d(&self.conv2, fast_cpu::group_norm(&self.norm2, h, true)); // [B, out, H, W]
        let residual = match &self.conv_shortcut {
            Some(conv) => fast_cpu::conv2d(conv, x),
            None => x,
        };
        residual + h
    }
}
