//! transformers `BlipTextLMHeadModel` (the `text_decoder` of the checkpoint): BERT embeddings
//! (word + absolute positions, LayerNorm), post-norm layers of causal self-attention,
//! cross-attention to the image embeddings and an MLP, then the LM head (`transform`: dense, GELU,
//! LayerNorm; decoder tied to the word embeddings, plus `cls.predictions.bias`).
//!
//! Decoding keeps a [`KvCache`]: each layer's self-attention keys/values grow by the new tokens of
//! every step, and the cross-attention keys/values are computed once per image, so one step costs
//! one token's work whatever the length.
//!
//! Module paths equal the checkpoint keys with `LayerNorm` -> `layer_norm` and `self` ->
//! `self_attn` (see [`super::blip_spec`]).

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::config::BlipTextConfig;
use crate::models::clip::attention::{merge_heads, scaled_dot_product, split_heads};
use crate::models::clip::encoder::Activation;

/// transformers `BlipTextEmbeddings`.
#[derive(Module, Debug)]
pub struct BlipTextEmbeddings {
    /// Token embeddings `[vocab, hidden]` (also the LM head's decoder weight).
    pub word_embeddings: Embedding,
    /// Absolute positions `[max_positions, hidden]`.
    pub position_embeddings: Embedding,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
}

/// transformers `BlipTextSelfAttention` (`query`, `key`, `value`), self or cross.
#[derive(Module, Debug)]
pub struct BlipTextSelfAttention {
    /// hidden -> hidden.
    pub query: Linear,
    /// hidden (or the image width for cross-attention) -> hidden.
    pub key: Linear,
    /// hidden (or the image width for cross-attention) -> hidden.
    pub value: Linear,
    /// Number of heads.
    #[module(skip)]
    pub num_heads: usize,
}

/// transformers `BlipTextSelfOutput` / `BlipTextOutput`: `LayerNorm(dense(x) + residual)`.
#[derive(Module, Debug)]
pub struct BlipTextOutput {
    /// The projection.
    pub dense: Linear,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
}

impl BlipTextOutput {
    /// `[b, s, in] , [b, s, hidden] -> [b, s, hidden]`.
    pub fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        self.layer_norm.forward(self.dense.forward(x) + residual)
    }
}

/// transformers `BlipTextAttention`: attention (`self`) + `output`.
#[derive(Module, Debug)]
pub struct BlipTextAttention {
    /// The attention (`self` in the checkpoint).
    pub self_attn: BlipTextSelfAttention,
    /// Projection + residual + LayerNorm.
    pub output: BlipTextOutput,
}

/// transformers `BlipTextIntermediate`: `act(dense(x))`.
#[derive(Module, Debug)]
pub struct BlipTextIntermediate {
    /// hidden -> intermediate.
    pub dense: Linear,
    /// The activation.
    #[module(skip)]
    pub act: Activation,
}

/// transformers `BlipTextLayer` of a decoder.
#[derive(Module, Debug)]
pub struct BlipTextLayer {
    /// Causal self-attention.
    pub attention: BlipTextAttention,
    /// Cross-attention to the image embeddings.
    pub crossattention: BlipTextAttention,
    /// MLP in.
    pub intermediate: BlipTextIntermediate,
    /// MLP out + residual + LayerNorm.
    pub output: BlipTextOutput,
}

/// transformers `BlipTextEncoder`.
#[derive(Module, Debug)]
pub struct BlipTextEncoder {
    /// `layer.N`.
    pub layer: Vec<BlipTextLayer>,
}

/// transformers `BlipTextModel` without pooler (`bert`).
#[derive(Module, Debug)]
pub struct BlipTextModel {
    /// Embeddings.
    pub embeddings: BlipTextEmbeddings,
    /// The layers.
    pub encoder: BlipTextEncoder,
}

/// transformers `BlipTextPredictionHeadTransform`.
#[derive(Module, Debug)]
pub struct BlipTextHeadTransform {
    /// hidden -> hidden.
    pub dense: Linear,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// The activation between them.
    #[module(skip)]
    pub act: Activation,
}

/// transformers `BlipTextLMPredictionHead`: the decoder weight is tied to the word embeddings (the
/// checkpoint stores it there); its bias is `bias`.
#[derive(Module, Debug)]
pub struct BlipTextPredictions {
    /// dense + GELU + LayerNorm.
    pub transform: BlipTextHeadTransform,
    /// Output bias `[vocab]`.
    pub bias: Param<Tensor<1>>,
}

/// transformers `BlipTextOnlyMLMHead`.
#[derive(Module, Debug)]
pub struct BlipTextCls {
    /// The prediction head.
    pub predictions: BlipTextPredictions,
}

/// transformers `BlipTextLMHeadModel`.
#[derive(Module, Debug)]
pub struct BlipTextLmHeadModel {
    /// The BERT decoder.
    pub bert: BlipTextModel,
    /// The LM head.
    pub cls: BlipTextCls,
}

/// Per-layer keys/values of a decoding run: self-attention ones grow each step, cross-attention
/// ones are computed once from the image embeddings. Rows are sequences (`images * beams`).
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Self-attention `(keys, values)` per layer, each `[rows, heads, past, dim]`.
    pub self_kv: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// Cross-attention `(keys, values)` per layer, each `[rows, heads, image_tokens, dim]`.
    pub cross_kv: Vec<(Tensor<4>, Tensor<4>)>,
}

impl KvCache {
    /// Tokens already in the self-attention cache.
    pub fn past_len(&self) -> usize {
        self.self_kv.first().and_then(|kv| kv.as_ref()).map_or(0, |(k, _)| k.dims()[2])
    }

    /// Rows `rows` (in that order) of every cache, e.g. `[0, 0, 0, 1, 1, 1]` to give each image's
    /// beams their copy of its cross-attention keys/values.
    pub fn select_rows(&mut self, rows: &[usize]) {
        let Some(idx) = self.row_index(rows) else { return };
        for (k, v) in self.self_kv.iter_mut().flatten().chain(self.cross_kv.iter_mut()) {
            *k = k.clone().select(0, idx.clone());
            *v = v.clone().select(0, idx.clone());
        }
    }

    /// Beam search's reordering by beam index: row `i` of the self-attention caches becomes row
    /// `rows[i]`. The cross-attention caches are left as they are: a beam only ever continues a
    /// beam of the same image, whose cross keys/values are the same.
    pub fn reorder_beams(&mut self, rows: &[usize]) {
        let Some(idx) = self.row_index(rows) else { return };
        for (k, v) in self.self_kv.iter_mut().flatten() {
            *k = k.clone().select(0, idx.clone());
            *v = v.clone().select(0, idx.clone());
        }
    }

    fn row_index(&self, rows: &[usize]) -> Option<Tensor<1, Int>> {
        let (k, _) = self.cross_kv.first()?;
        let data: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        Some(Tensor::from_data(TensorData::new(data, [rows.len()]), &k.device()))
    }
}

impl BlipTextConfig {
    /// Build the decoder with random weights (the config must be validated).
    pub fn init(&self, device: &Device) -> BlipTextLmHeadModel {
        let h = self.hidden_size;
        let act = Activation::from_name(&self.hidden_act)
            .unwrap_or_else(|| panic!("unsupported hidden_act '{}'", self.hidden_act));
        let norm = || LayerNormConfig::new(h).with_epsilon(self.layer_norm_eps).init(device);
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
        let attention = |kv_in: usize| BlipTextAttention {
            self_attn: BlipTextSelfAttention {
                query: lin(h, h),
                key: lin(kv_in, h),
                value: lin(kv_in, h),
                num_heads: self.num_attention_heads,
            },
            output: BlipTextOutput { dense: lin(h, h), layer_norm: norm() },
        };
        let layer = (0..self.num_hidden_layers)
            .map(|_| BlipTextLayer {
                attention: attention(h),
                crossattention: attention(self.encoder_hidden_size),
                intermediate: BlipTextIntermediate { dense: lin(h, self.intermediate_size), act },
                output: BlipTextOutput {
                    dense: lin(self.intermediate_size, h),
                    layer_norm: norm(),
                },
            })
            .collect();
        BlipTextLmHeadModel {
            bert: BlipTextModel {
                embeddings: BlipTextEmbeddings {
                    word_embeddings: EmbeddingConfig::new(self.vocab_size, h).init(device),
                    position_embeddings: EmbeddingConfig::new(self.max_position_embeddings, h)
                        .init(device),
                    layer_norm: norm(),
                },
                encoder: BlipTextEncoder { layer },
            },
            cls: BlipTextCls {
                predictions: BlipTextPredictions {
                    transform: BlipTextHeadTransform { dense: lin(h, h), layer_norm: norm(), act },
                    bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
                },
            },
        }
    }
}

impl BlipTextLmHeadModel {
    /// The cache for a run over `image_embeds` `[rows, tokens, width]` (one row per sequence):
    /// cross-attention keys/values of every layer, empty self-attention caches.
    pub fn new_cache(&self, image_embeds: Tensor<3>) -> KvCache {
        let cross_kv = self
            .bert
            .encoder
            .layer
            .iter()
            .map(|l| {
                let a = &l.crossattention.self_attn;
                let k = split_heads(a.key.forward(image_embeds.clone()), a.num_heads);
                let v = split_heads(a.value.forward(image_embeds.clone()), a.num_heads);
                (k, v) // [rows, heads, tokens, dim]
            })
            .collect();
        KvCache { self_kv: vec![None; self.bert.encoder.layer.len()], cross_kv }
    }

    /// Run the new tokens `input_ids` `[rows, s]` (positions continue after the cache) and return
    /// the last hidden states `[rows, s, hidden]`, appending their keys/values to `cache`.
    pub fn forward_hidden(&self, input_ids: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        let [rows, s] = input_ids.dims();
        let past = cache.past_len();
        let device = input_ids.device();
        let emb = &self.bert.embeddings;
        let positions = Tensor::<1, Int>::arange(past as i64..(past + s) as i64, &device)
            .reshape([1, s])
            .expand([rows, s]);
        let x = emb.word_embeddings.forward(input_ids) + emb.position_embeddings.forward(positions);
        let mut x = emb.layer_norm.forward(x); // [rows, s, hidden]
        for (i, layer) in self.bert.encoder.layer.iter().enumerate() {
            // Causal self-attention over the cache + the new tokens.
            let a = &layer.attention.self_attn;
            let q = split_heads(a.query.forward(x.clone()), a.num_heads); // [rows, heads, s, dim]
            let k = split_heads(a.key.forward(x.clone()), a.num_heads);
            let v = split_heads(a.value.forward(x.clone()), a.num_heads);
            let (k, v) = match cache.self_kv[i].take() {
                Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
                None => (k, v),
            }; // [rows, heads, past + s, dim]
            cache.self_kv[i] = Some((k.clone(), v.clone()));
            let ctx = if past == 0 || s == 1 {
                scaled_dot_product(q, k, v, None, past == 0 && s > 1)
            } else {
                // New tokens after a cache: query j sees keys <= past + j.
                let mask: Vec<bool> =
                    (0..s).flat_map(|j| (0..past + s).map(move |c| c > past + j)).collect();
                let heads = a.num_heads;
                let mask = Tensor::<4, Bool>::from_data(
                    TensorData::new(mask, [1, 1, s, past + s]),
                    &device,
                )
                .expand([rows, heads, s, past + s]);
                scaled_dot_product(q, k, v, Some(mask), false)
            };
            let h = layer.attention.output.forward(merge_heads(ctx), x); // [rows, s, hidden]
            // Cross-attention to the image tokens (cached keys/values).
            let c = &layer.crossattention.self_attn;
            let q = split_heads(c.query.forward(h.clone()), c.num_heads);
            let (ck, cv) = cache.cross_kv[i].clone();
            let ctx = scaled_dot_product(q, ck, cv, None, false);
            let h = layer.crossattention.output.forward(merge_heads(ctx), h);
            // MLP.
            let m = layer.intermediate.act.forward(layer.intermediate.dense.forward(h.clone()));
            x = layer.output.forward(m, h);
        }
        x
    }

    /// The LM head: hidden `[rows, s, hidden]` -> logits `[rows, s, vocab]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let p = &self.cls.predictions;
        let t = &p.transform;
        let h = t.layer_norm.forward(t.act.forward(t.dense.forward(hidden))); // [rows, s, hidden]
        let [rows, s, width] = h.dims();
        let w = self.bert.embeddings.word_embeddings.weight.val(); // [vocab, hidden]
        let vocab = w.dims()[0];
        let out =
            h.reshape([rows * s, width]).matmul(w.transpose()) + p.bias.val().unsqueeze_dim(0);
        out.reshape([rows, s, vocab])
    }

    /// Teacher-forced logits of `input_ids` `[b, s]` over `image_embeds` `[b, tokens, width]`
    /// (transformers' forward with `encoder_hidden_states`): `[b, s, vocab]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, image_embeds: Tensor<3>) -> Tensor<3> {
        let mut cache = self.new_cache(image_embeds);
        let hidden = self.forward_hidden(input_ids, &mut cache);
        self.logits(hidden)
    }
}
