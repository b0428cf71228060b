//! diffusers `ResnetBlock2D`: GroupNorm -> SiLU -> conv3x3, twice, plus a 1x1 `conv_shortcut`
//! when the channel count changes; optionally the UNet's time-embedding input (`time_emb_proj`,
//! `time_embedding_norm: "default"`: the projected embedding is added after the first conv).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::models::fast_cpu;

/// GroupNorm epsilon used everywhere in diffusers' `AutoencoderKL` (`resnet_eps=1e-6`) and in
/// every `Transformer2DModel`.
pub const NORM_EPS: f64 = 1e-6;

/// A 3x3 convolution with padding 1 (diffusers' default `Conv2d(.., kernel_size=3, padding=1)`).
pub fn conv3x3(in_channels: usize, out_channels: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// A 1x1 convolution (with bias).
pub fn conv1x1(in_channels: usize, out_channels: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [1, 1]).init(device)
}

/// A GroupNorm with diffusers' VAE epsilon ([`NORM_EPS`]).
pub fn group_norm(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    group_norm_eps(groups, channels, NORM_EPS, device)
}

/// A GroupNorm with an explicit epsilon (the UNet's `norm_eps`, 1e-5 in SD).
pub fn group_norm_eps(groups: usize, channels: usize, eps: f64, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels).with_epsilon(eps).init(device)
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
    /// Width of the time embedding (`temb_channels`); `None` = no `time_emb_proj` (the VAE).
    #[config(default = "None")]
    pub temb_channels: Option<usize>,
    /// GroupNorm epsilon (`resnet_eps`).
    #[config(default = 1e-6)]
    pub eps: f64,
    /// The output is `(shortcut + h) / output_scale_factor`.
    #[config(default = 1.0)]
    pub output_scale_factor: f64,
}

/// diffusers `ResnetBlock2D`. Keys: `norm1`, `conv1`, `time_emb_proj` (UNet only), `norm2`,
/// `conv2`, `conv_shortcut` (only when `in_channels != out_channels`).
#[derive(Module, Debug)]
pub struct ResnetBlock2d {
    /// First GroupNorm (on the input channels).
    pub norm1: GroupNorm,
    /// First 3x3 convolution.
    pub conv1: Conv2d,
    /// Time embedding -> per-channel bias after `conv1` (`Linear(temb_channels, out)`).
    pub time_emb_proj: Option<Linear>,
    /// Second GroupNorm (on the output channels).
    pub norm2: GroupNorm,
    /// Second 3x3 convolution.
    pub conv2: Conv2d,
    /// 1x1 projection of the residual when the channel count changes.
    pub conv_shortcut: Option<Conv2d>,
    /// Divisor of the output.
    #[module(skip)]
    pub output_scale_factor: f64,
}

impl ResnetBlock2dConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> ResnetBlock2d {
        let (i, o) = (self.in_channels, self.out_channels);
        ResnetBlock2d {
            norm1: group_norm_eps(self.groups, i, self.eps, device),
            conv1: conv3x3(i, o, device),
            time_emb_proj: self.temb_channels.map(|t| LinearConfig::new(t, o).init(device)),
            norm2: group_norm_eps(self.groups, o, self.eps, device),
            conv2: conv3x3(o, o, device),
            conv_shortcut: (i != o).then(|| conv1x1(i, o, device)),
            output_scale_factor: self.output_scale_factor,
        }
    }
}

impl ResnetBlock2d {
    /// `[B, in, H, W]` (+ time embedding `[B, temb_channels]`, before its SiLU) `-> [B, out, H, W]`.
    ///
    /// A `temb` is ignored by a block without `time_emb_proj`; a block with one requires it.
    ///
    /// # Panics
    /// If the block has a `time_emb_proj` and `temb` is `None`.
    pub fn forward(&self, x: Tensor<4>, temb: Option<Tensor<2>>) -> Tensor<4> {
        let mut h =
            fast_cpu::conv2d(&self.conv1, fast_cpu::group_norm(&self.norm1, x.clone(), true)); // [B, out, H, W]
        if let Some(proj) = &self.time_emb_proj {
            let temb = temb.expect("a ResnetBlock2D with time_emb_proj needs the time embedding");
            let t = proj.forward(silu(temb)); // [B, out]
            let [b, c] = t.dims();
            h = h + t.reshape([b, c, 1, 1]);
        }
        let h = fast_cpu::conv2d(&self.conv2, fast_cpu::group_norm(&self.norm2, h, true)); // [B, out, H, W]
        let residual = match &self.conv_shortcut {
            Some(conv) => fast_cpu::conv2d(conv, x),
            None => x,
        };
        let out = residual + h;
        if self.output_scale_factor == 1.0 { out } else { out.div_scalar(self.output_scale_factor) }
    }
}
