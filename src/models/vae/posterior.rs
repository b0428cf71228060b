//! diffusers `DiagonalGaussianDistribution`: the encoder's `[mean, logvar]` moments, with
//! `logvar` clamped to [-30, 20].

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A diagonal Gaussian over latents, built from the encoder's moments.
#[derive(Debug, Clone)]
pub struct DiagonalGaussian {
    /// Mean, `[B, C, h, w]`.
    pub mean: Tensor<4>,
    /// Log-variance clamped to [-30, 20], `[B, C, h, w]`.
    pub logvar: Tensor<4>,
}

impl DiagonalGaussian {
    /// Split moments `[B, 2C, h, w]` into mean and (clamped) log-variance.
    pub fn from_moments(moments: Tensor<4>) -> Self {
        let [b, c2, h, w] = moments.dims();
        let c = c2 / 2;
        let mean = moments.clone().slice([0..b, 0..c, 0..h, 0..w]);
        let logvar = moments.slice([0..b, c..c2, 0..h, 0..w]).clamp(-30.0, 20.0);
        Self { mean, logvar }
    }

    /// The distribution's mode (= its mean).
    pub fn mode(&self) -> Tensor<4> {
        self.mean.clone()
    }

    /// Standard deviation `exp(0.5 * logvar)`.
    pub fn std(&self) -> Tensor<4> {
        self.logvar.clone().mul_scalar(0.5).exp()
    }

    /// A sample `mean + std * eps`, with `eps` drawn from a seeded ChaCha8 generator (the same
    /// seed gives the same sample on every backend).
    pub fn sample(&self, seed: u64) -> Tensor<4> {
        let eps = seeded_normal(self.mean.dims(), seed, &self.mean.device());
        self.mean.clone() + self.std() * eps
    }

    /// KL divergence to the standard normal, summed over `[C, h, w]`: `[B]`.
    pub fn kl(&self) -> Tensor<1> {
        let var = self.logvar.clone().exp();
        let kl = self.mean.clone().powi_scalar(2) + var - self.logvar.clone().add_scalar(1.0);
        kl.flatten::<2>(1, 3).sum_dim(1).squeeze_dim::<1>(1).mul_scalar(0.5)
    }
}

/// Standard-normal noise of the given shape from a seeded ChaCha8 generator.
pub fn seeded_normal(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}
