//! transformers `BlipVisionModel`: patch embedding (a biased conv, applied as one GEMM over the
//! patches), class token and position embedding parameters, pre-norm encoder layers with a fused
//! `qkv` projection (q | k | v), and `post_layernorm` applied to every token: the whole
//! `last_hidden_state` is what the text decoder cross-attends to.
//! Keys: `embeddings.{class_embedding,patch_embedding.{weight,bias},position_embedding}`,
//! `encoder.layers.N.{layer_norm1,self_attn.{qkv,projection},layer_norm2,mlp.{fc1,fc2}}`,
//! `post_layernorm`.

use burn::module::{Initializer, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::config::BlipVisionConfig;
use crate::models::clip::attention::{merge_heads, scaled_dot_product, split_heads};
use crate::models::clip::encoder::{Activation, ClipMlp};

/// transformers `BlipVisionEmbeddings`.
#[derive(Module, Debug)]
pub struct BlipVisionEmbeddings {
    /// The class token `[1, 1, hidden]`.
    pub class_embedding: Param<Tensor<3>>,
    /// `Conv2d(3 -> hidden, kernel = stride = patch)` with bias.
    pub patch_embedding: Conv2d,
    /// Learned positions `[1, 1 + patches, hidden]`.
    pub position_embedding: Param<Tensor<3>>,
    /// Patch side in pixels.
    #[module(skip)]
    pub patch_size: usize,
    /// Input side in pixels.
    #[module(skip)]
    pub image_size: usize,
}

impl BlipVisionEmbeddings {
    /// Pixel values `[b, 3, S, S]` -> `[b, 1 + (S/patch)^2, hidden]`.
    pub fn forward(&self, pixel_values: Tensor<4>) -> Tensor<3> {
        let [b, c, h, w] = pixel_values.dims();
        assert!(
            h == self.image_size && w == self.image_size,
            "input image size ({h}x{w}) does not match the BLIP config's image_size {}",
            self.image_size
        );
        let p = self.patch_size;
        let (gh, gw) = (h / p, w / p);
        // A stride-`p` conv with kernel `p` is one GEMM over non-overlapping patches (as CLIP's).
        let x = pixel_values.reshape([b, c, gh, p, gw, p]).permute([0, 2, 4, 1, 3, 5]); // [b, gh, gw, c, p, p]
        let x = x.reshape([b * gh * gw, c * p * p]); // [b*patches, c*p*p]
        let weight = self.patch_embedding.weight.val(); // [hidden, c, p, p]
        let hidden = weight.dims()[0];
        let weight = weight.reshape([hidden, c * p * p]).transpose(); // [c*p*p, hidden]
        let mut patches = x.matmul(weight); // [b*patches, hidden]
        if let Some(bias) = &self.patch_embedding.bias {
            patches = patches + bias.val().unsqueeze_dim::<2>(0);
        }
        let patches = patches.reshape([b, gh * gw, hidden]); // [b, patches, hidden]
        let cls = self.class_embedding.val().expand([b, 1, hidden]); // [b, 1, hidden]
        Tensor::cat(vec![cls, patches], 1) + self.position_embedding.val() // [b, 1 + patches, hidden]
    }
}

/// transformers `BlipAttention`: fused `qkv` (q | k | v along the output), scale `head_dim^-0.5`,
/// output `projection`.
#[derive(Module, Debug)]
pub struct BlipAttention {
    /// hidden -> 3 * hidden.
    pub qkv: Linear,
    /// hidden -> hidden.
    pub projection: Linear,
    /// Number of heads.
    #[module(skip)]
    pub num_heads: usize,
}

impl BlipAttention {
    /// `[b, seq, hidden] -> [b, seq, hidden]` (no mask: every patch sees every patch).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, hidden] = x.dims();
        let qkv = self.qkv.forward(x); // [b, seq, 3 * hidden]
        let part = |i: usize| {
            split_heads(
                qkv.clone().slice([0..b, 0..s, i * hidden..(i + 1) * hidden]),
                self.num_heads,
            )
        };
        let out = scaled_dot_product(part(0), part(1), part(2), None, false); // [b, heads, seq, dim]
        self.projection.forward(merge_heads(out))
    }
}

/// transformers `BlipEncoderLayer` (pre-norm; the MLP is CLIP's `fc1`/`fc2`).
#[derive(Module, Debug)]
pub struct BlipEncoderLayer {
    /// Norm before attention.
    pub layer_norm1: LayerNorm,
    /// Self-attention.
    pub self_attn: BlipAttention,
    /// Norm before the MLP.
    pub layer_norm2: LayerNorm,
    /// The MLP.
    pub mlp: ClipMlp,
}

impl BlipEncoderLayer {
    /// `[b, seq, hidden] -> [b, seq, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x));
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

/// transformers `BlipEncoder`.
#[derive(Module, Debug)]
pub struct BlipEncoder {
    /// `layers.N`.
    pub layers: Vec<BlipEncoderLayer>,
}

/// transformers `BlipVisionModel` (the `vision_model` of the checkpoint).
#[derive(Module, Debug)]
pub struct BlipVisionModel {
    /// Patches + class token + positions.
    pub embeddings: BlipVisionEmbeddings,
    /// The ViT layers.
    pub encoder: BlipEncoder,
    /// LayerNorm on every output token.
    pub post_layernorm: LayerNorm,
}

impl BlipVisionConfig {
    /// Build the vision model with random weights (the config must be validated).
    pub fn init(&self, device: &Device) -> BlipVisionModel {
        let hidden = self.hidden_size;
        let act = Activation::from_name(&self.hidden_act)
            .unwrap_or_else(|| panic!("unsupported hidden_act '{}'", self.hidden_act));
        let norm = || LayerNormConfig::new(hidden).with_epsilon(self.layer_norm_eps).init(device);
        let p = self.patch_size;
        let normal = Initializer::Normal { mean: 0.0, std: 0.02 };
        let layers = (0..self.num_hidden_layers)
            .map(|_| BlipEncoderLayer {
                layer_norm1: norm(),
                self_attn: BlipAttention {
                    qkv: LinearConfig::new(hidden, 3 * hidden).init(device),
                    projection: LinearConfig::new(hidden, hidden).init(device),
                    num_heads: self.num_attention_heads,
                },
                layer_norm2: norm(),
                mlp: ClipMlp {
                    fc1: LinearConfig::new(hidden, self.intermediate_size).init(device),
                    fc2: LinearConfig::new(self.intermediate_size, hidden).init(device),
                    act,
                },
            })
            .collect();
        BlipVisionModel {
            embeddings: BlipVisionEmbeddings {
                class_embedding: normal.init([1, 1, hidden], device),
                patch_embedding: Conv2dConfig::new([3, hidden], [p, p])
                    .with_stride([p, p])
                    .init(device),
                position_embedding: normal.init([1, self.num_positions(), hidden], device),
                patch_size: p,
                image_size: self.image_size,
            },
            encoder: BlipEncoder { layers },
            post_layernorm: norm(),
        }
    }
}

impl BlipVisionModel {
    /// Pixel values `[b, 3, S, S]` -> image embeddings `[b, 1 + patches, hidden]`
    /// (`last_hidden_state`, post-layernormed).
    pub fn forward(&self, pixel_values: Tensor<4>) -> Tensor<3> {
        let mut x = self.embeddings.forward(pixel_values); // [b, seq, hidden]
        for layer in &self.encoder.layers {
            x = layer.forward(x);
        }
        self.post_layernorm.forward(x)
    }
}
