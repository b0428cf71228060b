//! Seeded host random draws for training: the same seed gives the same numbers on every device.
//!
//! burn draws `Tensor::random`, its `Initializer`s and `Dropout` masks on the device, with each
//! backend's own generator, so a CPU run and a wgpu run of one seed used to start from other
//! weights. Every draw of a training run is instead made here, on the host, from ChaCha8 keyed
//! by the experiment seed ([`crate::data::split::seeded_rng`]), one stream per purpose so that
//! the draws of one purpose never shift those of another:
//!
//! | stream | purpose |
//! |---|---|
//! | 0 | train/val split (`data::split`) |
//! | 1 | per-epoch shuffle (`train::plan::shuffle_rng`, saved in checkpoints) |
//! | [`INIT_STREAM`] | weight initialisation ([`init_rng`], [`TorchInit`]) |
//! | [`DROPOUT_STREAM`] | dropout masks, a fixed window of the stream per optimizer step ([`dropout_rng`]) |
//!
//! The values are then uploaded to the device ([`host_tensor`]).

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::distr::{Bernoulli, Distribution, Uniform};
use rand_chacha::ChaCha8Rng;

use crate::data::split::seeded_rng;

/// ChaCha8 stream of the weight initialisation.
pub const INIT_STREAM: u64 = 2;
/// ChaCha8 stream of the dropout masks.
pub const DROPOUT_STREAM: u64 = 3;
/// log2 of the words of the dropout stream each optimizer step owns (2^40 32-bit words: far more
/// than one step draws, so two steps never share a draw).
const DROPOUT_WINDOW_BITS: u32 = 40;

/// The weight-initialisation generator of `seed`.
pub fn init_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = seeded_rng(seed);
    rng.set_stream(INIT_STREAM);
    rng
}

/// The dropout generator of optimizer step `step` of a run seeded `seed`: the dropout stream
/// positioned at the step's own window, so a resumed run draws the masks an uninterrupted one
/// drew without saving any state.
pub fn dropout_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = seeded_rng(seed);
    rng.set_stream(DROPOUT_STREAM);
    rng.set_word_pos(u128::from(step) << DROPOUT_WINDOW_BITS);
    rng
}

/// `n` values uniform in `[-bound, bound)`.
pub fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f64) -> Vec<f32> {
    let bound = bound as f32;
    if bound <= 0.0 {
        return vec![0.0; n];
    }
    let dist = Uniform::new(-bound, bound).expect("a positive finite bound");
    dist.sample_iter(rng).take(n).collect()
}

/// A dropout mask of `n` elements as PyTorch's `F.dropout` makes it: each element kept with
/// probability `1 - p` and then scaled by `1 / (1 - p)`, else 0 (all 0 when `p >= 1`).
pub fn dropout_mask(rng: &mut ChaCha8Rng, n: usize, p: f64) -> Vec<f32> {
    if p >= 1.0 {
        return vec![0.0; n];
    }
    let keep = Bernoulli::new(1.0 - p.max(0.0)).expect("a probability in [0, 1]");
    let scale = (1.0 / (1.0 - p)) as f32;
    keep.sample_iter(rng).take(n).map(|k| if k { scale } else { 0.0 }).collect()
}

/// Host values of shape `shape` uploaded to `device` (an autodiff device gives a constant: no
/// gradient flows into it).
pub fn host_tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A module mapper that (re)draws the weights and biases of every `Conv2d` and `Linear` on the
/// host with PyTorch's default initialisation for them (burn's default too):
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, `fan_in` = input channels x kernel area (conv) or input
/// features (linear), the bias with its layer's `fan_in`. Norm parameters keep their constants
/// (gamma 1, beta 0; nothing is drawn for them). Parameters are visited in module order and a
/// lazy parameter is replaced without being initialised on the device first.
pub struct TorchInit<'a> {
    rng: &'a mut ChaCha8Rng,
    /// `(field, owner)` of every module entered: the owner is the struct the field belongs to
    /// (`Struct:Conv2d` for a convolution's `weight`).
    path: Vec<(String, String)>,
    /// The `fan_in` of the layer whose weight was mapped last (for its bias).
    fan_in: Option<usize>,
}

impl<'a> TorchInit<'a> {
    /// A mapper drawing from `rng`.
    pub fn new(rng: &'a mut ChaCha8Rng) -> Self {
        Self { rng, path: Vec::new(), fan_in: None }
    }
}

impl ModuleMapper for TorchInit<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if !matches!(container_type, "Struct:Conv2d" | "Struct:Linear") {
            self.fan_in = None;
        }
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((field, owner)) = self.path.last() else { return param };
        if !matches!(owner.as_str(), "Struct:Conv2d" | "Struct:Linear") {
            return param;
        }
        let dims: [usize; D] = param.lazy_shape().dims();
        let fan_in = match (field.as_str(), D) {
            // Conv2d [out, in / groups, kh, kw]
            ("weight", 4) => dims[1] * dims[2] * dims[3],
            // Linear [d_in, d_out] (burn's layout, PyTorch's transposed)
            ("weight", 2) => dims[0],
            ("bias", 1) => self
                .fan_in
                .unwrap_or_else(|| panic!("TorchInit: a {owner} bias came before its weight")),
            _ => return param,
        };
        if field == "weight" {
            self.fan_in = Some(fan_in);
        }
        let device = param.lazy_device();
        let n = dims.iter().product();
        let values = uniform(self.rng, n, 1.0 / (fan_in as f64).sqrt());
        Param::from_tensor(host_tensor(values, dims, &device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::RngCore;

    #[test]
    fn streams_are_distinct_and_seeded() {
        let a = init_rng(5).next_u64();
        assert_eq!(a, init_rng(5).next_u64());
        assert_ne!(a, init_rng(6).next_u64());
        assert_ne!(a, dropout_rng(5, 0).next_u64());
        assert_ne!(dropout_rng(5, 0).next_u64(), dropout_rng(5, 1).next_u64());
        assert_eq!(dropout_rng(5, 7).next_u64(), dropout_rng(5, 7).next_u64());
    }

    #[test]
    fn dropout_masks_keep_and_scale_as_torch() {
        let mask = dropout_mask(&mut dropout_rng(1, 0), 20_000, 0.3);
        let scale = (1.0 / 0.7f64) as f32;
        assert!(mask.iter().all(|&m| m == 0.0 || m == scale));
        let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.7).abs() < 0.02, "kept {kept}");
        assert!(dropout_mask(&mut dropout_rng(1, 0), 10, 0.0).iter().all(|&m| m == 1.0));
        assert!(dropout_mask(&mut dropout_rng(1, 0), 10, 1.0).iter().all(|&m| m == 0.0));
    }

    #[test]
    fn uniform_stays_in_its_bounds() {
        let v = uniform(&mut init_rng(0), 10_000, 0.25);
        assert!(v.iter().all(|x| (-0.25..0.25).contains(x)));
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn torch_init_draws_conv_and_linear_with_their_fan_in_and_keeps_norms() {
        use burn::module::Module;
        use burn::nn::conv::Conv2dConfig;
        use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig};
        #[derive(Module, Debug)]
        struct Net {
            conv: burn::nn::conv::Conv2d,
            norm: GroupNorm,
            lin: Linear,
        }
        let device = Device::flex();
        let net = Net {
            conv: Conv2dConfig::new([3, 8], [3, 3]).init(&device),
            norm: GroupNormConfig::new(2, 8).init(&device),
            lin: LinearConfig::new(16, 5).init(&device),
        };
        let draw = |seed| net.clone().map(&mut TorchInit::new(&mut init_rng(seed)));
        let (a, b, c) = (draw(1), draw(1), draw(2));
        let vals = |t: Tensor<4>| t.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(vals(a.conv.weight.val()), vals(b.conv.weight.val()));
        assert_ne!(vals(a.conv.weight.val()), vals(c.conv.weight.val()));
        let conv_bound = 1.0 / 27f32.sqrt();
        let w = vals(a.conv.weight.val());
        assert!(w.iter().all(|x| x.abs() <= conv_bound));
        assert!(w.iter().any(|x| x.abs() > 0.8 * conv_bound), "drawn up to the bound");
        let bias = a.conv.bias.as_ref().unwrap().val().into_data().try_into_vec::<f32>().unwrap();
        assert!(bias.iter().all(|x| x.abs() <= conv_bound) && bias.iter().any(|&x| x != 0.0));
        let lin = a.lin.weight.val().into_data().try_into_vec::<f32>().unwrap();
        assert!(lin.iter().all(|x| x.abs() <= 0.25) && lin.iter().any(|x| x.abs() > 0.2));
        let gamma = a.norm.gamma.as_ref().unwrap().val().into_data().try_into_vec::<f32>().unwrap();
        assert!(gamma.iter().all(|&g| g == 1.0), "norms keep gamma 1");
    }
}
