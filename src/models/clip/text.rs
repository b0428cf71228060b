//! transformers `CLIPTextTransformer`: token + position embeddings, the encoder under a causal
//! mask, `final_layer_norm`, and pooling at the end-of-text token.
//! Keys: `embeddings.{token_embedding,position_embedding}.weight`, `encoder.layers.N.*`,
//! `final_layer_norm`.
//!
//! Pooling is exactly transformers': configs with `eos_token_id == 2` (written before
//! transformers PR #24773, e.g. openai/clip-vit-large-patch14) pool at the argmax of the ids (the
//! eos token has the largest id in OpenAI's vocabulary); others at the **first** position holding
//! `eos_token_id` (padding is eos too, so "first" matters).

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::attention::key_padding_mask;
use super::config::ClipTextConfig;
use super::encoder::{ClipEncoder, ClipEncoderConfig};

/// transformers `CLIPTextEmbeddings`.
#[derive(Module, Debug)]
pub struct ClipTextEmbeddings {
    /// `[vocab, hidden]`.
    pub token_embedding: Embedding,
    /// `[max_positions, hidden]`.
    pub position_embedding: Embedding,
}

/// transformers `CLIPTextTransformer` (the `text_model` of a CLIP checkpoint; the SD 1.x text
/// encoder).
#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    /// Tokens + positions.
    pub embeddings: ClipTextEmbeddings,
    /// The transformer (causal).
    pub encoder: ClipEncoder,
    /// LayerNorm after the last layer.
    pub final_layer_norm: LayerNorm,
    /// The config's `eos_token_id` (decides the pooling rule).
    #[module(skip)]
    pub eos_token_id: i64,
    /// Attention heads (for padding masks).
    #[module(skip)]
    pub num_heads: usize,
}

/// Output of [`ClipTextTransformer::forward`].
#[derive(Debug, Clone)]
pub struct ClipTextOutput {
    /// `[b, seq, hidden]` after `final_layer_norm` (what SD conditions on).
    pub last_hidden_state: Tensor<3>,
    /// `[b, hidden]`: the hidden state at the pooling position of each row.
    pub pooler_output: Tensor<2>,
}

impl ClipTextConfig {
    /// Build the text tower with random weights.
    pub fn init(&self, device: &Device) -> ClipTextTransformer {
        let hidden = self.hidden_size;
        ClipTextTransformer {
            embeddings: ClipTextEmbeddings {
                token_embedding: EmbeddingConfig::new(self.vocab_size, hidden).init(device),
                position_embedding: EmbeddingConfig::new(self.max_position_embeddings, hidden)
                    .init(device),
            },
            encoder: ClipEncoderConfig::new(
                hidden,
                self.intermediate_size,
                self.num_attention_heads,
                self.num_hidden_layers,
                self.hidden_act.clone(),
            )
            .with_layer_norm_eps(self.layer_norm_eps)
            .init(device),
            final_layer_norm: LayerNormConfig::new(hidden)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            eos_token_id: self.eos_token_id,
            num_heads: self.num_attention_heads,
        }
    }
}

/// The pooling position of each row of `ids` (`[b][seq]`), as transformers picks it: argmax of
/// the ids when `eos_token_id == 2`, else the first position holding `eos_token_id` (0 when none,
/// as `argmax` of an all-false row).
pub fn pooling_positions(ids: &[Vec<i64>], eos_token_id: i64) -> Vec<usize> {
    ids.iter()
        .map(|row| {
            if eos_token_id == 2 {
                // First maximum, as torch.argmax.
                let mut best = 0;
                for (i, &id) in row.iter().enumerate() {
                    if id > row[best] {
                        best = i;
                    }
                }
                best
            } else {
                row.iter().position(|&id| id == eos_token_id).unwrap_or(0)
            }
        })
        .collect()
}

impl ClipTextTransformer {
    /// Token ids `[b, seq]` (seq <= max_position_embeddings) and an optional transformers
    /// `attention_mask` `[b, seq]` (1 = token, 0 = padding) -> hidden states and pooled output.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
    ) -> ClipTextOutput {
        let [b, seq] = input_ids.dims();
        let device = input_ids.device();
        let max_pos = self.embeddings.position_embedding.weight.dims()[0];
        assert!(seq <= max_pos, "{seq} tokens exceed the text model's {max_pos} positions");
        let ids: Vec<i64> = input_ids
            .clone()
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("token ids as i64");
        let rows: Vec<Vec<i64>> = ids.chunks(seq.max(1)).map(<[i64]>::to_vec).collect();

        let tokens = self.embeddings.token_embedding.forward(input_ids); // [b, seq, hidden]
        let pos = self.embeddings.position_embedding.weight.val().narrow(0, 0, seq); // [seq, hidden]
        let x = tokens + pos.unsqueeze_dim::<3>(0); // [b, seq, hidden]
        let mask = attention_mask.map(|m| key_padding_mask(m, self.num_heads, seq)); // [b, heads, seq, seq]
        let x = self.encoder.forward(x, mask, true);
        let last_hidden_state = self.final_layer_norm.forward(x); // [b, seq, hidden]

        let hidden = last_hidden_state.dims()[2];
        let positions = pooling_positions(&rows, self.eos_token_id);
        let index: Vec<i64> =
            positions.iter().flat_map(|&p| std::iter::repeat_n(p as i64, hidden)).collect();
        let index = Tensor::<3, Int>::from_data(TensorData::new(index, [b, 1, hidden]), &device);
        let pooler_output = last_hidden_state.clone().gather(1, index).reshape([b, hidden]); // [b, hidden]
        ClipTextOutput { last_hidden_state, pooler_output }
    }
}

#[cfg(test)]
mod tests {
    use super::pooling_positions;

    #[test]
    fn pooling_follows_transformers_rules() {
        let ids = vec![vec![49406, 320, 1125, 49407, 49407, 49407], vec![49406, 49407, 0, 0, 0, 0]];
        // New configs: first eos.
        assert_eq!(pooling_positions(&ids, 49407), vec![3, 1]);
        // Old configs (eos_token_id 2): argmax of the ids, first maximum.
        assert_eq!(pooling_positions(&ids, 2), vec![3, 1]);
        // The two rules differ when a larger id than eos is present (added tokens).
        let ids = vec![vec![49406, 49408, 49407, 49407]];
        assert_eq!(pooling_positions(&ids, 2), vec![1]);
        assert_eq!(pooling_positions(&ids, 49407), vec![2]);
        // No eos at all: position 0, as argmax of an all-false row.
        assert_eq!(pooling_positions(&[vec![5, 6]], 49407), vec![0]);
    }
}
