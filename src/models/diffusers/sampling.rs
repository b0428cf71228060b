//! diffusers `Downsample2D` and `Upsample2D` (both with their conv, key `conv`).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::resnet::conv3x3;
use crate::models::fast_cpu;

/// `Downsample2D` with `use_conv=True`: a stride-2 3x3 conv. Key: `conv`.
#[derive(Module, Debug)]
pub struct Downsample2d {
    /// The stride-2 convolution.
    pub conv: Conv2d,
}

impl Downsample2d {
    /// Build with random weights. `padding` is diffusers' `padding` / `downsample_padding`:
    /// 0 (the VAE) pads right and bottom by one before the conv, 1 (the UNet) pads all sides.
    pub fn new(channels: usize, padding: usize, device: &Device) -> Self {
        // burn's explicit padding is (top, left, bottom, right).
        let pad = if padding == 0 {
            PaddingConfig2d::Explicit(0, 0, 1, 1)
        } else {
            PaddingConfig2d::Explicit(padding, padding, padding, padding)
        };
        let conv = Conv2dConfig::new([channels, channels], [3, 3])
            .with_stride([2, 2])
            .with_padding(pad)
            .init(device);
        Self { conv }
    }

    /// `[B, C, H, W] -> [B, C, H/2, W/2]` (rounded as PyTorch does).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        fast_cpu::conv2d(&self.conv, x) // stride 2: the fast path's phase decomposition
    }
}

/// `Upsample2D` with a conv: nearest-neighbour upsampling, then a 3x3 conv. Key: `conv`.
#[derive(Module, Debug)]
pub struct Upsample2d {
    /// The 3x3 convolution after upsampling.
    pub conv: Conv2d,
}

impl Upsample2d {
    /// Build with random weights.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self { conv: conv3x3(channels, channels, device) }
    }

    /// `[B, C, H, W] -> [B, C, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        fast_cpu::conv2d(&self.conv, fast_cpu::upsample_nearest2x(x))
    }

    /// `[B, C, H, W] -> [B, C, size[0], size[1]]`: diffusers' `upsample_size` (the UNet passes the
    /// next skip connection's size when the latent is not a multiple of the downsampling factor).
    pub fn forward_to(&self, x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        if size == [2 * h, 2 * w] {
            return self.forward(x);
        }
        fast_cpu::conv2d(&self.conv, nearest_resize(x, size))
    }
}

/// PyTorch `F.interpolate(mode="nearest", size=...)`: output index `i` reads input
/// `min(floor(i * (in / out)), in - 1)`, the scale in f32 as PyTorch computes it.
pub fn nearest_resize(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let indices = |input: usize, output: usize| {
        let scale = input as f32 / output as f32;
        let idx: Vec<i64> = (0..output)
            .map(|i| ((i as f32 * scale).floor() as usize).min(input - 1) as i64)
            .collect();
        Tensor::<1, Int>::from_data(TensorData::new(idx, [output]), &device)
    };
    x.select(2, indices(h, size[0])).select(3, indices(w, size[1])) // [B, C, size0, size1]
}
