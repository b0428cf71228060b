//! transformers `CLIPVisionTransformer`: patch embedding (conv without bias), class token,
//! learned position embeddings, `pre_layrnorm` (transformers' spelling), the encoder, and
//! `post_layernorm` on the class token (the pooled output).
//! Keys: `embeddings.{class_embedding,patch_embedding.weight,position_embedding.weight}`,
//! `pre_layrnorm`, `encoder.layers.N.*`, `post_layernorm`.

use burn::module::{Initializer, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use super::config::ClipVisionConfig;
use super::encoder::{ClipEncoder, ClipEncoderConfig};

/// transformers `CLIPVisionEmbeddings`.
#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings {
    /// The class token `[hidden]`.
    pub class_embedding: Param<Tensor<1>>,
    /// `Conv2d(channels -> hidden, kernel = stride = patch, no bias)`; its weight
    /// `[hidden, channels, patch, patch]` is applied as one GEMM over the patches.
    pub patch_embedding: Conv2d,
    /// Learned positions `[1 + patches, hidden]`.
    pub position_embedding: Embedding,
    /// Patch side in pixels.
    #[module(skip)]
    pub patch_size: usize,
    /// Input side in pixels.
    #[module(skip)]
    pub image_size: usize,
}

impl ClipVisionEmbeddings {
    /// Pixel values `[b, channels, S, S]` (S = `image_size`) -> `[b, 1 + (S/patch)^2, hidden]`.
    pub fn forward(&self, pixel_values: Tensor<4>) -> Tensor<3> {
        let [b, c, h, w] = pixel_values.dims();
        assert!(
            h == self.image_size && w == self.image_size,
            "input image size ({h}x{w}) does not match the CLIP config's image_size {}",
            self.image_size
        );
        let p = self.patch_size;
        let (gh, gw) = (h / p, w / p);
        // A stride-`p` conv with kernel `p` is one GEMM over non-overlapping patches: burn's
        // generic strided conv is much slower on the CPU than reshaping into patches.
        let x = pixel_values.slice([0..b, 0..c, 0..gh * p, 0..gw * p]); // [b, c, gh*p, gw*p]
        let x = x.reshape([b, c, gh, p, gw, p]).permute([0, 2, 4, 1, 3, 5]); // [b, gh, gw, c, p, p]
        let x = x.reshape([b * gh * gw, c * p * p]); // [b*patches, c*p*p]
        let weight = self.patch_embedding.weight.val(); // [hidden, c, p, p]
        let hidden = weight.dims()[0];
        let weight = weight.reshape([hidden, c * p * p]).transpose(); // [c*p*p, hidden]
        let patches = x.matmul(weight).reshape([b, gh * gw, hidden]); // [b, patches, hidden]
        let cls = self.class_embedding.val().reshape([1, 1, hidden]).expand([b, 1, hidden]);
        let x = Tensor::cat(vec![cls, patches], 1); // [b, 1 + patches, hidden]
        let pos = self.position_embedding.weight.val().unsqueeze_dim::<3>(0); // [1, 1 + patches, hidden]
        x + pos
    }
}

/// transformers `CLIPVisionTransformer` (the `vision_model` of a CLIP checkpoint).
#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    /// Patches + class token + positions.
    pub embeddings: ClipVisionEmbeddings,
    /// LayerNorm before the encoder (`pre_layrnorm`, transformers' spelling).
    pub pre_layrnorm: LayerNorm,
    /// The transformer.
    pub encoder: ClipEncoder,
    /// LayerNorm on the class token.
    pub post_layernorm: LayerNorm,
}

/// Output of [`ClipVisionTransformer::forward`].
#[derive(Debug, Clone)]
pub struct ClipVisionOutput {
    /// `[b, 1 + patches, hidden]` after the last layer (no post-layernorm, as transformers).
    pub last_hidden_state: Tensor<3>,
    /// `[b, hidden]`: `post_layernorm` of the class token.
    pub pooler_output: Tensor<2>,
}

impl ClipVisionConfig {
    /// Build the vision tower with random weights.
    pub fn init(&self, device: &Device) -> ClipVisionTransformer {
        let hidden = self.hidden_size;
        let norm = || LayerNormConfig::new(hidden).with_epsilon(self.layer_norm_eps).init(device);
        let p = self.patch_size;
        ClipVisionTransformer {
            embeddings: ClipVisionEmbeddings {
                class_embedding: Initializer::Normal { mean: 0.0, std: 0.02 }
                    .init([hidden], device),
                patch_embedding: Conv2dConfig::new([self.num_channels, hidden], [p, p])
                    .with_stride([p, p])
                    .with_bias(false)
                    .init(device),
                position_embedding: EmbeddingConfig::new(self.num_positions(), hidden).init(device),
                patch_size: p,
                image_size: self.image_size,
            },
            pre_layrnorm: norm(),
            encoder: ClipEncoderConfig::new(
                hidden,
                self.intermediate_size,
                self.num_attention_heads,
                self.num_hidden_layers,
                self.hidden_act.clone(),
            )
            .with_layer_norm_eps(self.layer_norm_eps)
            .init(device),
            post_layernorm: norm(),
        }
    }
}

impl ClipVisionTransformer {
    /// Pixel values `[b, channels, S, S]` (as [`super::preprocess::ClipImageProcessor`] makes
    /// them) -> hidden states and the pooled class token.
    pub fn forward(&self, pixel_values: Tensor<4>) -> ClipVisionOutput {
        let x = self.embeddings.forward(pixel_values); // [b, seq, hidden]
        let x = self.pre_layrnorm.forward(x);
        let last_hidden_state = self.encoder.forward(x, None, false); // [b, seq, hidden]
        let [b, _, hidden] = last_hidden_state.dims();
        let cls = last_hidden_state.clone().narrow(1, 0, 1).reshape([b, hidden]); // [b, hidden]
        ClipVisionOutput { last_hidden_state, pooler_output: self.post_layernorm.forward(cls) }
    }
}
