//! diffusers `Attention` in its two uses: [`Attention`], the VAE mid block's spatial
//! self-attention over all pixels (GroupNorm in front, biased projections, residual), and
//! [`CrossAttention`], the attention of a `BasicTransformerBlock` (`attn1` self-attention,
//! `attn2` cross-attention on the text states; unbiased `to_q`/`to_k`/`to_v`, biased `to_out.0`).
//! Both have `to_out.0` as `to_out` (the loaders remap it), and both run the attention itself
//! through [`fast_cpu::attention::multi_head`] (chunked over query rows on the CPU backend, never
//! the whole score matrix; burn's fused kernel elsewhere).

use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::prelude::*;

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
        let seq = h * w;
        let t = fast_cpu::group_norm(&self.group_norm, x.clone(), false); // [B, C, H, W]
        let t = t.reshape([b, c, seq]).swap_dims(1, 2); // [B, HW, C]
        let q = self.to_q.forward(t.clone()); // [B, HW, C]
        let k = self.to_k.forward(t.clone()); // [B, HW, C]
        let v = self.to_v.forward(t); // [B, HW, C]
        let out = fast_cpu::attention::multi_head(q, k, v, self.heads); // [B, HW, C]
        let out = self.to_out.forward(out); // [B, HW, C]
        let out = out.swap_dims(1, 2).reshape([b, c, h, w]); // [B, C, H, W]
        out + x
    }
}

/// Configuration of a [`CrossAttention`].
#[derive(Config, Debug)]
pub struct CrossAttentionConfig {
    /// Width of the queries and of the output (`query_dim`).
    pub query_dim: usize,
    /// Width of the keys/values' source (`cross_attention_dim`); `None` = self-attention.
    #[config(default = "None")]
    pub context_dim: Option<usize>,
    /// Number of heads.
    pub heads: usize,
    /// Width of one head (`dim_head`); the inner width is `heads * head_dim`.
    pub head_dim: usize,
}

/// diffusers `Attention` of a transformer block. Keys: `to_q`, `to_k`, `to_v` (no bias,
/// `attention_bias: false`), `to_out` (`to_out.0` in diffusers). Scale `head_dim^-0.5`.
#[derive(Module, Debug)]
pub struct CrossAttention {
    /// Query projection, `query_dim -> inner`.
    pub to_q: Linear,
    /// Key projection, `context_dim -> inner`.
    pub to_k: Linear,
    /// Value projection, `context_dim -> inner`.
    pub to_v: Linear,
    /// Output projection, `inner -> query_dim` (`to_out.0`).
    pub to_out: Linear,
    /// Number of heads.
    #[module(skip)]
    pub heads: usize,
}

impl CrossAttentionConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> CrossAttention {
        let inner = self.heads * self.head_dim;
        let kv = self.context_dim.unwrap_or(self.query_dim);
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).with_bias(false).init(device);
        CrossAttention {
            to_q: lin(self.query_dim, inner),
            to_k: lin(kv, inner),
            to_v: lin(kv, inner),
            to_out: LinearConfig::new(inner, self.query_dim).init(device),
            heads: self.heads,
        }
    }
}

impl CrossAttention {
    /// `x` `[B, N, query_dim]`, `context` `[B, M, context_dim]` (`None` = attend to `x`)
    /// `-> [B, N, query_dim]`.
    pub fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        let context = context.unwrap_or_else(|| x.clone());
        let q = self.to_q.forward(x); // [B, N, heads * dh]
        let k = self.to_k.forward(context.clone()); // [B, M, heads * dh]
        let v = self.to_v.forward(context); // [B, M, heads * dh]
        let out = fast_cpu::attention::multi_head(q, k, v, self.heads); // [B, N, heads * dh]
        self.to_out.forward(out) // [B, N, query_dim]
    }
}
