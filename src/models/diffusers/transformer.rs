//! diffusers `Transformer2DModel` (the UNet's spatial transformer, continuous input) and its
//! `BasicTransformerBlock` (LayerNorm -> self-attention, LayerNorm -> cross-attention,
//! LayerNorm -> GEGLU feed-forward, each with a residual).
//!
//! Keys as diffusers': `norm`, `proj_in`, `transformer_blocks.N.{norm1,attn1,norm2,attn2,norm3,ff}`,
//! `proj_out`, except `to_out.0` -> `to_out`, `ff.net.0.proj` -> `ff.proj`, `ff.net.2` -> `ff.out`
//! and the projections' variant (`proj_in.Conv` / `proj_in.Linear`); see
//! [`crate::models::unet::remap`].

use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::attention::{CrossAttention, CrossAttentionConfig};
use super::resnet::{NORM_EPS, conv1x1, group_norm_eps};
use crate::models::fast_cpu;

/// LayerNorm epsilon of `BasicTransformerBlock` (`norm_eps=1e-5`).
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// Configuration of a [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Model width.
    pub dim: usize,
    /// Hidden width multiplier (`mult=4`).
    #[config(default = 4)]
    pub mult: usize,
}

/// diffusers `FeedForward` with `activation_fn="geglu"`: `proj` (`net.0.proj`, to twice the
/// hidden width), `hidden * gelu(gate)` (fused on the CPU: [`fast_cpu::attention::geglu`]),
/// `out` (`net.2`).
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `dim -> 2 * hidden` (hidden states, then gates).
    pub proj: Linear,
    /// `hidden -> dim`.
    pub out: Linear,
}

impl FeedForwardConfig {
    /// Build with random weights.
    pub fn init(&self, device: &Device) -> FeedForward {
        let hidden = self.dim * self.mult;
        FeedForward {
            proj: LinearConfig::new(self.dim, 2 * hidden).init(device),
            out: LinearConfig::new(hidden, self.dim).init(device),
        }
    }
}

impl FeedForward {
    /// `[B, N, dim] -> [B, N, dim]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.proj.forward(x); // [B, N, 2 * hidden]
        self.out.forward(fast_cpu::attention::geglu(h)) // [B, N, dim]
    }
}

/// Configuration of a [`BasicTransformerBlock`].
#[derive(Config, Debug)]
pub struct BasicTransformerBlockConfig {
    /// Model width (`heads * head_dim`).
    pub dim: usize,
    /// Number of heads.
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Width of the encoder hidden states (`cross_attention_dim`).
    pub cross_attention_dim: usize,
}

/// diffusers `BasicTransformerBlock` (`norm_type="layer_norm"`, no `only_cross_attention`, no
/// `double_self_attention`). Keys: `norm1`, `attn1`, `norm2`, `attn2`, `norm3`, `ff`.
#[derive(Module, Debug)]
pub struct BasicTransformerBlock {
    /// LayerNorm before self-attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attn1: CrossAttention,
    /// LayerNorm before cross-attention.
    pub norm2: LayerNorm,
    /// Cross-attention on the encoder hidden states.
    pub attn2: CrossAttention,
    /// LayerNorm before the feed-forward.
    pub norm3: LayerNorm,
    /// GEGLU feed-forward.
    pub ff: FeedForward,
}

impl BasicTransformerBlockConfig {
    /// Build with random weights.
    pub fn init(&self, device: &Device) -> BasicTransformerBlock {
        let ln = || LayerNormConfig::new(self.dim).with_epsilon(LAYER_NORM_EPS).init(device);
        let attn = |context: Option<usize>| {
            CrossAttentionConfig::new(self.dim, self.heads, self.head_dim)
                .with_context_dim(context)
                .init(device)
        };
        BasicTransformerBlock {
            norm1: ln(),
            attn1: attn(None),
            norm2: ln(),
            attn2: attn(Some(self.cross_attention_dim)),
            norm3: ln(),
            ff: FeedForwardConfig::new(self.dim).init(device),
        }
    }
}

impl BasicTransformerBlock {
    /// `x` `[B, N, dim]`, `context` `[B, M, cross_attention_dim]` `-> [B, N, dim]`.
    pub fn forward(&self, x: Tensor<3>, context: Tensor<3>) -> Tensor<3> {
        let x = self.attn1.forward(self.norm1.forward(x.clone()), None) + x;
        let x = self.attn2.forward(self.norm2.forward(x.clone()), Some(context)) + x;
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }
}

/// `proj_in` / `proj_out` of a [`Transformer2dModel`]: a 1x1 conv on the feature map
/// (`use_linear_projection: false`, SD 1.x) or a Linear on the tokens (SD 2.x).
#[derive(Module, Debug)]
pub enum Projection {
    /// 1x1 convolution.
    Conv(Conv2d),
    /// Linear layer.
    Linear(Linear),
}

impl Projection {
    fn new(linear: bool, i: usize, o: usize, device: &Device) -> Self {
        if linear {
            Self::Linear(LinearConfig::new(i, o).init(device))
        } else {
            Self::Conv(conv1x1(i, o, device))
        }
    }
}

/// Configuration of a [`Transformer2dModel`].
#[derive(Config, Debug)]
pub struct Transformer2dModelConfig {
    /// Channels of the feature map.
    pub in_channels: usize,
    /// Number of heads.
    pub heads: usize,
    /// Width of one head (`in_channels / heads` in the UNet blocks).
    pub head_dim: usize,
    /// Number of transformer blocks (`transformer_layers_per_block`).
    #[config(default = 1)]
    pub num_layers: usize,
    /// Width of the encoder hidden states.
    pub cross_attention_dim: usize,
    /// GroupNorm groups (`norm_num_groups`).
    pub groups: usize,
    /// Linear instead of 1x1-conv projections.
    #[config(default = false)]
    pub use_linear_projection: bool,
}

/// diffusers `Transformer2DModel` for continuous inputs: GroupNorm (eps 1e-6) -> `proj_in` ->
/// transformer blocks on the `H*W` tokens -> `proj_out` -> + input. On the CPU the 1x1-conv
/// projections are GEMMs between the two layouts ([`fast_cpu::attention::map_to_tokens`]).
#[derive(Module, Debug)]
pub struct Transformer2dModel {
    /// Input GroupNorm.
    pub norm: GroupNorm,
    /// Channels -> inner width.
    pub proj_in: Projection,
    /// The blocks.
    pub transformer_blocks: Vec<BasicTransformerBlock>,
    /// Inner width -> channels.
    pub proj_out: Projection,
}

impl Transformer2dModelConfig {
    /// Build with random weights.
    pub fn init(&self, device: &Device) -> Transformer2dModel {
        let inner = self.heads * self.head_dim;
        let lin = self.use_linear_projection;
        Transformer2dModel {
            norm: group_norm_eps(self.groups, self.in_channels, NORM_EPS, device),
            proj_in: Projection::new(lin, self.in_channels, inner, device),
            transformer_blocks: (0..self.num_layers)
                .map(|_| {
                    BasicTransformerBlockConfig::new(
                        inner,
                        self.heads,
                        self.head_dim,
                        self.cross_attention_dim,
                    )
                    .init(device)
                })
                .collect(),
            proj_out: Projection::new(lin, inner, self.in_channels, device),
        }
    }
}

impl Transformer2dModel {
    /// `x` `[B, C, H, W]`, `context` `[B, M, cross_attention_dim]` `-> [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>, context: Tensor<3>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let hn = fast_cpu::group_norm(&self.norm, x.clone(), false); // [B, C, H, W]
        let to_tokens = |t: Tensor<4>| {
            let ch = t.dims()[1];
            t.reshape([b, ch, h * w]).swap_dims(1, 2) // [B, HW, ch]
        };
        let mut tokens = match &self.proj_in {
            Projection::Conv(conv) => match fast_cpu::attention::map_to_tokens(conv, &hn) {
                Some(tokens) => tokens,
                None => to_tokens(fast_cpu::conv2d(conv, hn)),
            },
            Projection::Linear(lin) => lin.forward(to_tokens(hn)),
        }; // [B, HW, inner]
        for block in &self.transformer_blocks {
            tokens = block.forward(tokens, context.clone());
        }
        let inner = tokens.dims()[2];
        let to_map = |t: Tensor<3>, ch: usize| t.swap_dims(1, 2).reshape([b, ch, h, w]);
        match &self.proj_out {
            Projection::Conv(conv) => match fast_cpu::attention::tokens_to_map(conv, &tokens, &x) {
                Some(out) => out, // the residual summed in
                None => fast_cpu::conv2d(conv, to_map(tokens, inner)) + x,
            },
            Projection::Linear(lin) => to_map(lin.forward(tokens), c) + x,
        } // [B, C, H, W]
    }
}
