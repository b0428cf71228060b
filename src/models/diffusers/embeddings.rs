//! The UNet's time conditioning: diffusers `Timesteps` (sinusoidal projection,
//! [`timestep_embedding`]) and `TimestepEmbedding` (`linear_1` -> SiLU -> `linear_2`).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::silu;

/// diffusers `get_timestep_embedding` (`scale=1`, `max_period=10000`): `[len(timesteps), dim]`,
/// `sin | cos` of `t * exp(-ln(10000) * i / (dim/2 - freq_shift))` (or `cos | sin` with
/// `flip_sin_to_cos`), zero-padded to an odd `dim`.
///
/// Computed on the host in f32 step by step as PyTorch does (diffusers casts the timesteps to
/// f32 even for an f64 model), so the embedding matches to the last bits.
pub fn timestep_embedding(
    timesteps: &[f32],
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f32,
    device: &Device,
) -> Tensor<2> {
    let half = dim / 2;
    let ln_max = -(10000f64.ln()) as f32;
    let freqs: Vec<f32> =
        (0..half).map(|i| ((ln_max * i as f32) / (half as f32 - freq_shift)).exp()).collect();
    let mut data = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let args: Vec<f32> = freqs.iter().map(|f| t * f).collect();
        let sin = args.iter().map(|a| a.sin());
        let cos = args.iter().map(|a| a.cos());
        if flip_sin_to_cos {
            data.extend(cos.chain(sin));
        } else {
            data.extend(sin.chain(cos));
        }
        data.extend(std::iter::repeat_n(0.0, dim - 2 * half));
    }
    Tensor::from_data(TensorData::new(data, [timesteps.len(), dim]), device) // [n, dim]
}

/// Configuration of a [`TimestepEmbedding`].
#[derive(Config, Debug)]
pub struct TimestepEmbeddingConfig {
    /// Input width (the sinusoidal projection's, `block_out_channels[0]`).
    pub in_channels: usize,
    /// Output width (`time_embed_dim`, `4 * block_out_channels[0]`).
    pub time_embed_dim: usize,
}

/// diffusers `TimestepEmbedding` with `act_fn="silu"`. Keys: `linear_1`, `linear_2`.
#[derive(Module, Debug)]
pub struct TimestepEmbedding {
    /// First projection.
    pub linear_1: Linear,
    /// Second projection.
    pub linear_2: Linear,
}

impl TimestepEmbeddingConfig {
    /// Build with random weights.
    pub fn init(&self, device: &Device) -> TimestepEmbedding {
        TimestepEmbedding {
            linear_1: LinearConfig::new(self.in_channels, self.time_embed_dim).init(device),
            linear_2: LinearConfig::new(self.time_embed_dim, self.time_embed_dim).init(device),
        }
    }
}

impl TimestepEmbedding {
    /// `[B, in] -> [B, time_embed_dim]`.
    pub fn forward(&self, t: Tensor<2>) -> Tensor<2> {
        self.linear_2.forward(silu(self.linear_1.forward(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed values: dim 5 (odd, padded), shift 1, flip.
    #[test]
    fn sinusoids_follow_diffusers_layout() {
        let device = crate::backend::default_device();
        let e = timestep_embedding(&[0.0, 2.0], 5, true, 1.0, &device);
        let v: Vec<f32> = e.into_data().try_to_vec().unwrap();
        // half = 2, freqs = [1, exp(-ln(1e4) / 1)] = [1, 1e-4].
        let want = [
            1.0,
            1.0,
            0.0,
            0.0,
            0.0, //
            2f32.cos(),
            2e-4f32.cos(),
            2f32.sin(),
            2e-4f32.sin(),
            0.0,
        ];
        for (g, w) in v.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{v:?} vs {want:?}");
        }
    }
}
