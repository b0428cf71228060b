//! Multi-head attention on burn's fused kernel (`burn::tensor::module::attention`), shared by the
//! CLIP towers and reusable by other transformers ports (BLIP): helpers that split and merge heads
//! and build padding masks, and [`ClipAttention`] with transformers' parameter names
//! (`q_proj`, `k_proj`, `v_proj`, `out_proj`).
//!
//! burn's `nn::MultiHeadAttention` is not used: its parameter names (`query`/`key`/`value`/
//! `output`) and mask convention differ from transformers'.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

/// `[b, seq, heads * dim] -> [b, heads, seq, dim]`.
pub fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, s, width] = x.dims();
    x.reshape([b, s, heads, width / heads]).swap_dims(1, 2)
}

/// `[b, heads, seq, dim] -> [b, seq, heads * dim]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, s, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, s, h * d])
}

/// Scaled dot-product attention, `softmax(q k^T / sqrt(dim) + masks) v`, on burn's fused kernel.
///
/// `q`: `[b, heads, seq_q, dim]`, `k`/`v`: `[b, heads, seq_k, dim]`; `mask` `[b, heads, seq_q,
/// seq_k]` with `true` = not attended (see [`key_padding_mask`]); `causal` lets query `i` attend
/// to keys `<= i` only. Returns `[b, heads, seq_q, dim]`.
pub fn scaled_dot_product(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    causal: bool,
) -> Tensor<4> {
    let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: causal };
    attention(q, k, v, mask, None, options)
}

/// A transformers `attention_mask` `[b, seq_k]` (1 = token, 0 = padding) as the boolean mask of
/// [`scaled_dot_product`]: `[b, heads, seq_q, seq_k]`, `true` where the key is padding.
pub fn key_padding_mask(
    attention_mask: Tensor<2, Int>,
    heads: usize,
    seq_q: usize,
) -> Tensor<4, Bool> {
    let [b, seq_k] = attention_mask.dims();
    attention_mask.equal_elem(0).reshape([b, 1, 1, seq_k]).expand([b, heads, seq_q, seq_k])
}

/// Configuration of [`ClipAttention`].
#[derive(Config, Debug)]
pub struct ClipAttentionConfig {
    /// Model width (`heads * head_dim`).
    pub hidden_size: usize,
    /// Number of heads.
    pub num_heads: usize,
}

/// transformers `CLIPAttention`: self-attention with biased q/k/v/out projections and scale
/// `head_dim^-0.5`.
#[derive(Module, Debug)]
pub struct ClipAttention {
    /// Query projection.
    pub q_proj: Linear,
    /// Key projection.
    pub k_proj: Linear,
    /// Value projection.
    pub v_proj: Linear,
    /// Output projection.
    pub out_proj: Linear,
    /// Number of heads.
    #[module(skip)]
    pub num_heads: usize,
}

impl ClipAttentionConfig {
    /// Build the block with random weights.
    pub fn init(&self, device: &Device) -> ClipAttention {
        assert!(
            self.num_heads > 0 && self.hidden_size.is_multiple_of(self.num_heads),
            "attention width {} not divisible by {} heads",
            self.hidden_size,
            self.num_heads
        );
        let lin = || LinearConfig::new(self.hidden_size, self.hidden_size).init(device);
        ClipAttention {
            q_proj: lin(),
            k_proj: lin(),
            v_proj: lin(),
            out_proj: lin(),
            num_heads: self.num_heads,
        }
    }
}

impl ClipAttention {
    /// `[b, seq, hidden] -> [b, seq, hidden]`; `mask` as in [`scaled_dot_product`].
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4, Bool>>, causal: bool) -> Tensor<3> {
        let h = self.num_heads;
        let q = split_heads(self.q_proj.forward(x.clone()), h); // [b, heads, seq, dim]
        let k = split_heads(self.k_proj.forward(x.clone()), h); // [b, heads, seq, dim]
        let v = split_heads(self.v_proj.forward(x), h); // [b, heads, seq, dim]
        let out = scaled_dot_product(q, k, v, mask, causal); // [b, heads, seq, dim]
        self.out_proj.forward(merge_heads(out)) // [b, seq, hidden]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Distribution, TensorData};

    /// The fused kernel against the textbook formula, with a causal and a padding mask.
    #[test]
    fn fused_attention_matches_the_formula() {
        let device = crate::backend::default_device();
        let (b, h, s, d) = (2, 3, 5, 4);
        let q = Tensor::<4>::random([b, h, s, d], Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::<4>::random([b, h, s, d], Distribution::Normal(0.0, 1.0), &device);
        let v = Tensor::<4>::random([b, h, s, d], Distribution::Normal(0.0, 1.0), &device);
        // Second sequence: last two keys are padding.
        let am = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 1, 1, 1, 1, 1, 1, 1, 0, 0], [b, s]),
            &device,
        );
        let mask = key_padding_mask(am, h, s);
        let got = scaled_dot_product(q.clone(), k.clone(), v.clone(), Some(mask), true);

        let mut bias = vec![0f32; b * h * s * s];
        for (i, x) in bias.iter_mut().enumerate() {
            let (bi, qi, ki) = (i / (h * s * s), (i / s) % s, i % s);
            if (bi == 1 && ki >= 3) || ki > qi {
                *x = -1e9; // padding key, or a future position
            }
        }
        let bias = Tensor::<4>::from_data(TensorData::new(bias, [b, h, s, s]), &device);
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (d as f64).sqrt()) + bias;
        let want = softmax(scores, 3).matmul(v);
        let diff = (got - want).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "fused attention differs by {diff}");
    }
}
