//! diffusers `Attention` as used in the VAE mid block: spatial self-attention over all pixels with
//! a GroupNorm in front, `to_q`/`to_k`/`to_v`/`to_out.0` Linear layers and a residual connection.

use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::resnet::group_norm;
use crate::models::fast_cpu;

/// Configuration of an [`Attention`] block.
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Channels (query dimension).
    pub channels: usize,
    /// Number of heads (`channels / attention_head_dim`; 1 in every `AutoencoderKL`).
    #[config(default = 1)]
    pub heads: usize,
    /// GroupNorm groups.
    pub groups: usize,
}

/// Spatial self-attention. Keys: `group_norm`, `to_q`, `to_k`, `to_v`, `to_out` (diffusers
/// `to_out.0`; the loader remaps it, and also the pre-0.14 names `query`/`key`/`value`/`proj_attn`).
#[derive(Module, Debug)]
pub struct Attention {
    /// GroupNorm applied to the input.
    pub group_norm: GroupNorm,
    /// Query projection.
    pub to_q: Linear,
    /// Key projection.
    pub to_k: Linear,
    /// Value projection.
    pub to_v: Linear,
    /// Output projection (`to_out.0` in diffusers).
    pub to_out: Linear,
    /// Number of heads.
    pub heads: usize,
}

impl AttentionConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> Attention {
        assert!(
            self.channels.is_multiple_of(self.heads),
            "attention channels {} not divisible by heads {}",
            self.channels,
            self.heads
        );
        let lin = || LinearConfig::new(self.channels, self.channels).init(device);
        Attention {
            group_norm: group_norm(self.groups, self.channels, device),
            to_q: lin(),
            to_k: lin(),
            to_v: lin(),
            to_out: lin(),
            heads: self.heads,
        }
    }
}

impl Attention {
    /// `[B, C, H, W] -> [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let (heads, dh) = (self.heads, c / self.heads);
        let seq = h * w;
        let t = fast_cpu::group_norm(&self.group_norm, x.clone(), false); // [B, C, H, W]
        let t = t.reshape([b, c, seq]).swap_dims(1, 2); // [B, HW, C]
        let split = |y: Tensor<3>| y.reshape([b, seq, heads, dh]).swap_dims(1, 2); // [B, heads, HW, dh]
        let q = split(self.to_q.forward(t.clone()));
        let k = split(self.to_k.forward(t.clone()));
        let v = split(self.to_v.forward(t));
        let scale = 1.0 / (dh as f64).sqrt();
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale); // [B, heads, HW, HW]
        let attn = softmax(scores, 3);
        let out = attn.matmul(v); // [B, heads, HW, dh]
        let out = out.swap_dims(1, 2).reshape([b, seq, c]); // [B, HW, C]
        let out = self.to_out.forward(out); // [B, HW, C]
        let out = out.swap_dims(1, 2).reshape([b, c, h, w]); // [B, C, H, W]
        out + x
    }
}
