//! The transformer encoder both CLIP towers share (transformers `CLIPEncoder`): pre-norm layers of
//! `layer_norm1`, `self_attn`, `layer_norm2`, `mlp` {`fc1`, `fc2`} with residual connections.
//! Keys: `layers.N.{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,mlp.fc2}`.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, gelu_approximate, sigmoid};

use super::attention::{ClipAttention, ClipAttentionConfig};

/// The MLP activation (transformers `ACT2FN[hidden_act]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (OpenAI's CLIP).
    QuickGelu,
    /// Exact erf GELU (`gelu`).
    Gelu,
    /// tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    /// From the config's `hidden_act` name (`None` when unsupported; the config validates it).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Self::QuickGelu),
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            _ => None,
        }
    }

    /// Apply element-wise.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::QuickGelu => x.clone() * sigmoid(x.mul_scalar(1.702)),
            Self::Gelu => gelu(x),
            Self::GeluTanh => gelu_approximate(x),
        }
    }
}

/// Configuration of [`ClipEncoder`] (shared by both towers).
#[derive(Config, Debug)]
pub struct ClipEncoderConfig {
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// `hidden_act` of the config.
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

/// transformers `CLIPMLP`: `fc2(act(fc1(x)))`.
#[derive(Module, Debug)]
pub struct ClipMlp {
    /// hidden -> intermediate.
    pub fc1: Linear,
    /// intermediate -> hidden.
    pub fc2: Linear,
    /// The activation between them.
    #[module(skip)]
    pub act: Activation,
}

impl ClipMlp {
    /// `[b, seq, hidden] -> [b, seq, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.act.forward(self.fc1.forward(x)); // [b, seq, intermediate]
        self.fc2.forward(h)
    }
}

/// transformers `CLIPEncoderLayer`.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    /// Norm before attention.
    pub layer_norm1: LayerNorm,
    /// Self-attention.
    pub self_attn: ClipAttention,
    /// Norm before the MLP.
    pub layer_norm2: LayerNorm,
    /// The MLP.
    pub mlp: ClipMlp,
}

impl ClipEncoderLayer {
    /// `[b, seq, hidden] -> [b, seq, hidden]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4, Bool>>, causal: bool) -> Tensor<3> {
        let h = self.self_attn.forward(self.layer_norm1.forward(x.clone()), mask, causal);
        let x = x + h; // [b, seq, hidden]
        let h = self.mlp.forward(self.layer_norm2.forward(x.clone()));
        x + h
    }
}

/// transformers `CLIPEncoder`: the stack of layers.
#[derive(Module, Debug)]
pub struct ClipEncoder {
    /// The layers (`layers.N`).
    pub layers: Vec<ClipEncoderLayer>,
}

impl ClipEncoderConfig {
    /// Build the encoder with random weights (`hidden_act` must be supported: see
    /// [`Activation::from_name`]).
    pub fn init(&self, device: &Device) -> ClipEncoder {
        let act = Activation::from_name(&self.hidden_act)
            .unwrap_or_else(|| panic!("unsupported hidden_act '{}'", self.hidden_act));
        let norm = || {
            LayerNormConfig::new(self.hidden_size).with_epsilon(self.layer_norm_eps).init(device)
        };
        let layers = (0..self.num_hidden_layers)
            .map(|_| ClipEncoderLayer {
                layer_norm1: norm(),
                self_attn: ClipAttentionConfig::new(self.hidden_size, self.num_attention_heads)
                    .init(device),
                layer_norm2: norm(),
                mlp: ClipMlp {
                    fc1: LinearConfig::new(self.hidden_size, self.intermediate_size).init(device),
                    fc2: LinearConfig::new(self.intermediate_size, self.hidden_size).init(device),
                    act,
                },
            })
            .collect();
        ClipEncoder { layers }
    }
}

impl ClipEncoder {
    /// `[b, seq, hidden] -> [b, seq, hidden]` through every layer.
    pub fn forward(
        &self,
        mut x: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        causal: bool,
    ) -> Tensor<3> {
        for layer in &self.layers {
            x = layer.forward(x, mask.clone(), causal);
        }
        x
    }
}
