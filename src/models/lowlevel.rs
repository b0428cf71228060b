//! Low-level model: fMRI voxels -> SD-VAE latent (the paper's `Voxel2StableDiffusionModel`).
//!
//! ```text
//! x [B, V]
//! lin0  = Linear(V -> h, no bias) -> LayerNorm -> SiLU -> Dropout(0.5)
//! mlp   = blocks x [Linear(h -> h, no bias) -> LayerNorm -> SiLU -> Dropout(0.3)], x = block(x) + x
//! lin1  = Linear(h -> C*s*s, no bias) -> reshape [B, C, s, s]
//! norm  = GroupNorm(1, C)
//! upsampler = diffusers Decoder(in C, out 4, one UpDecoderBlock2D per block_out_channels entry)
//! -> [B, 4, s * 2^(n-1), s * 2^(n-1)]
//! ```
//! Parameter names are the PyTorch module's (`lin0.0.weight`, `lin0.1.weight`, `mlp.3.0.weight`,
//! `lin1.weight`, `norm.weight`, `upsampler.*`): `lin0` and each `mlp` entry are burn tuples
//! `(Linear, LayerNorm)` so their indices are the `nn.Sequential` indices (SiLU and Dropout have
//! no parameters). [`LowLevelModel::load`] reads a PyTorch state dict saved as safetensors
//! (Linear weights transposed, norm `weight`/`bias` -> `gamma`/`beta` by burn-store's
//! PyTorch adapter) and [`LowLevelModel::save`] writes the same layout, so checkpoints load in
//! PyTorch too.
//!
//! [`LowLevelModel::forward`] is the eval-mode model; [`LowLevelModel::forward_train`] applies the
//! dropouts with masks drawn on the host from a seeded generator ([`crate::rng`]), as the
//! initial weights are ([`LowLevelConfig::init`]): one seed gives the same run on every device.

use std::path::{Path, PathBuf};

use burn::module::{Initializer, Param};
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use rand_chacha::ChaCha8Rng;

use crate::models::fast_cpu;
use crate::models::vae::{DIFFUSERS_REMAP, DIFFUSERS_SAVE_REMAP, Decoder, DecoderConfig};
use crate::models::weights::{self, WeightsError, WeightsSpec};
use crate::rng::{TorchInit, dropout_mask, host_tensor, init_rng, uniform};

/// How [`LowLevelModel::load`] reads a state dict (one safetensors file, diffusers key fix-ups
/// for the upsampler's attention, every tensor required and used).
const LOWLEVEL_SPEC: WeightsSpec<'static> = WeightsSpec {
    model: "low-level model (Voxel2StableDiffusionModel)",
    files: &["model.safetensors"],
    remap: DIFFUSERS_REMAP,
    allow_unused: false,
    get_from: "a checkpoint written by `brainscope train`, or `save_file(model.state_dict())` of the paper's PyTorch model",
};

/// Errors of building, saving and loading the low-level model.
#[derive(Debug, thiserror::Error)]
pub enum LowLevelError {
    /// The configuration cannot produce the requested latent shape.
    #[error("low-level model config: {0}")]
    Config(String),
    /// Writing the weights failed.
    #[error("cannot save low-level model weights to {path}: {msg}")]
    Save {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// The weights file does not exist.
    #[error(
        "low-level model weights {0} do not exist; expected a safetensors state dict written by `brainscope train`"
    )]
    Missing(PathBuf),
    /// Reading the weights failed or they do not fit the config (the source names the file).
    #[error(
        "the weights do not fit this low-level model (was the checkpoint made with another [model] config?)"
    )]
    Weights(#[from] WeightsError),
}

/// The widths and dropouts of [`LowLevelModel`] an experiment chooses: the `[model]` section of
/// `experiment.toml` (nested in [`crate::experiments::config::ExperimentConfig`] as burn's guide
/// nests a model config in a training config). Defaults are the paper's. Everything else the
/// model needs (input voxels, latent shape) comes from the data, in [`LowLevelConfig`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LowLevelWidths {
    /// MLP width h.
    pub hidden: usize,
    /// Number of residual MLP blocks.
    pub blocks: usize,
    /// Dropout after the input layer.
    pub dropout_in: f64,
    /// Dropout in every residual block.
    pub dropout_block: f64,
    /// Channels C of the `[B, C, s, s]` map fed to the upsampler.
    pub proj_channels: usize,
    /// The upsampler's `block_out_channels` (diffusers order: first = highest resolution; each a
    /// multiple of the upsampler's 32 GroupNorm groups).
    pub upsampler_channels: Vec<usize>,
}

impl Default for LowLevelWidths {
    /// The paper's: 2048 wide, 4 residual blocks, dropouts 0.5 / 0.3, a `[64, 16, 16]` map into a
    /// `[64, 128, 256]` upsampler.
    fn default() -> Self {
        Self {
            hidden: 2048,
            blocks: 4,
            dropout_in: 0.5,
            dropout_block: 0.3,
            proj_channels: 64,
            upsampler_channels: vec![64, 128, 256],
        }
    }
}

/// Groups of the upsampler's GroupNorms (diffusers `norm_num_groups`): every upsampler width
/// must be a multiple of it.
pub const UPSAMPLER_GROUPS: usize = 32;

/// Configuration of [`LowLevelModel`]: the experiment's [`LowLevelWidths`] plus what the data
/// fixes. Defaults are the paper's (except `input_voxels`).
#[derive(Config, Debug)]
pub struct LowLevelConfig {
    /// Number of input voxels V (paper: 39548 for subj01's ROI set).
    pub input_voxels: usize,
    /// Widths and dropouts (experiment.toml `[model]`).
    #[config(default = "LowLevelWidths::default()")]
    pub widths: LowLevelWidths,
    /// Side s of the `[B, C, s, s]` map fed to the upsampler.
    #[config(default = 16)]
    pub proj_size: usize,
    /// The upsampler's resnets per up block minus one (diffusers `layers_per_block`).
    #[config(default = 1)]
    pub layers_per_block: usize,
    /// Latent channels produced (SD VAE: 4).
    #[config(default = 4)]
    pub out_channels: usize,
    /// Groups of the upsampler's GroupNorms (diffusers `norm_num_groups`).
    #[config(default = "UPSAMPLER_GROUPS")]
    pub norm_groups: usize,
}

impl LowLevelConfig {
    /// The paper's model for `input_voxels` voxels: `[4, 64, 64]` latents (512 px images).
    pub fn paper(input_voxels: usize) -> Self {
        Self::new(input_voxels)
    }

    /// The paper's structure sized for a VAE latent of shape `[channels, side, side]`: the
    /// upsampler keeps the paper's three up blocks (x4), so `proj_size = side / 4`
    /// (the demo's `[4, 16, 16]` latents of 64 px images give `proj_size` 4).
    pub fn for_latent(input_voxels: usize, latent: [usize; 3]) -> Result<Self, LowLevelError> {
        Self::sized(input_voxels, LowLevelWidths::default(), latent)
    }

    /// `widths` sized for a VAE latent of shape `[channels, side, side]`: each upsampler entry
    /// after the first doubles the side, so `proj_size = side / 2^(entries - 1)`.
    pub fn sized(
        input_voxels: usize,
        widths: LowLevelWidths,
        latent: [usize; 3],
    ) -> Result<Self, LowLevelError> {
        let [c, h, w] = latent;
        let ups = widths.upsampler_channels.len();
        if ups == 0 {
            return Err(LowLevelError::Config(
                "[model] upsampler_channels is empty; give at least one width (the paper's: [64, 128, 256])"
                    .into(),
            ));
        }
        let up = 1usize << (ups - 1);
        if h != w || h % up != 0 || h == 0 {
            return Err(LowLevelError::Config(format!(
                "latent {latent:?} must be square with a side divisible by {up} (the upsampler's \
                 x{up} from [model] upsampler_channels {:?}: each entry after the first doubles the \
                 side); use fewer upsampler entries or another image size",
                widths.upsampler_channels
            )));
        }
        Ok(Self::new(input_voxels).with_widths(widths).with_out_channels(c).with_proj_size(h / up))
    }

    /// Shape of one output latent: `[out_channels, s * 2^(n-1), s * 2^(n-1)]`.
    pub fn output_shape(&self) -> [usize; 3] {
        let side = self.proj_size << self.widths.upsampler_channels.len().saturating_sub(1);
        [self.out_channels, side, side]
    }

    /// Number of trainable parameters, computed from the config without building the model
    /// (the paper's size: 138,188,228 at V = 39548).
    pub fn num_params(&self) -> usize {
        let (v, h, c) = (self.input_voxels, self.widths.hidden, self.widths.proj_channels);
        let mlp = v * h
            + 2 * h
            + self.widths.blocks * (h * h + 2 * h)
            + h * c * self.proj_size * self.proj_size
            + 2 * c;
        mlp + self.upsampler_params()
    }

    /// Parameters of the diffusers `Decoder` upsampler (conv_in, mid block with one attention,
    /// up blocks of `layers_per_block + 1` resnets, conv_norm_out, conv_out).
    fn upsampler_params(&self) -> usize {
        let conv = |i: usize, o: usize, k: usize| i * o * k * k + o;
        let resnet = |i: usize, o: usize| {
            2 * i + conv(i, o, 3) + 2 * o + conv(o, o, 3) + if i != o { conv(i, o, 1) } else { 0 }
        };
        let b = &self.widths.upsampler_channels;
        let top = *b.last().expect("upsampler_channels is not empty");
        let mut n = conv(self.widths.proj_channels, top, 3);
        n += 2 * resnet(top, top) + 2 * top + 4 * (top * top + top);
        let mut prev = top;
        for (i, &out) in b.iter().rev().enumerate() {
            n += resnet(prev, out) + self.layers_per_block * resnet(out, out);
            if i + 1 < b.len() {
                n += conv(out, out, 3);
            }
            prev = out;
        }
        n + 2 * b[0] + conv(b[0], self.out_channels, 3)
    }

    /// Build the model with weights drawn on the host from `seed` ([`crate::rng::init_rng`]),
    /// so the same seed gives the same weights on every device: the MLP's linears Xavier-uniform,
    /// the upsampler's convolutions and linears PyTorch's default ([`TorchInit`]), norms at
    /// gamma 1, beta 0 as in PyTorch.
    pub fn init(&self, device: &Device, seed: u64) -> LowLevelModel {
        let mut rng = init_rng(seed);
        let w = &self.widths;
        let (h, c, s) = (w.hidden, w.proj_channels, self.proj_size);
        let norm = || LayerNormConfig::new(h).init(device);
        let lin0 = (xavier_linear(self.input_voxels, h, &mut rng, device), norm());
        let mlp = (0..w.blocks).map(|_| (xavier_linear(h, h, &mut rng, device), norm())).collect();
        let lin1 = xavier_linear(h, c * s * s, &mut rng, device);
        let upsampler = DecoderConfig::new(
            c,
            self.out_channels,
            w.upsampler_channels.clone(),
            self.layers_per_block,
        )
        .with_norm_num_groups(self.norm_groups)
        .init(device)
        .map(&mut TorchInit::new(&mut rng));
        LowLevelModel {
            lin0,
            mlp,
            lin1,
            norm: GroupNormConfig::new(1, c).init(device),
            upsampler,
            dropout_in: w.dropout_in,
            dropout_block: w.dropout_block,
            proj_channels: c,
            proj_size: s,
        }
    }
}

/// A bias-free Linear with Xavier-uniform weights drawn on the host:
/// `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
fn xavier_linear(d_in: usize, d_out: usize, rng: &mut ChaCha8Rng, device: &Device) -> Linear {
    let mut lin = LinearConfig::new(d_in, d_out)
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device);
    let a = (6.0 / (d_in + d_out) as f64).sqrt();
    // [d_in, d_out]: burn's layout (PyTorch's transposed)
    lin.weight =
        Param::from_tensor(host_tensor(uniform(rng, d_in * d_out, a), [d_in, d_out], device));
    lin
}

/// The paper's `Voxel2StableDiffusionModel`. Built by [`LowLevelConfig::init`] or
/// [`LowLevelModel::load`].
#[derive(Module, Debug)]
pub struct LowLevelModel {
    /// Input layer: Linear(V -> h) and its LayerNorm (PyTorch `lin0.0`, `lin0.1`).
    pub lin0: (Linear, LayerNorm),
    /// Residual blocks: Linear(h -> h) and LayerNorm each (PyTorch `mlp.i.0`, `mlp.i.1`).
    pub mlp: Vec<(Linear, LayerNorm)>,
    /// Projection to the `C * s * s` map.
    pub lin1: Linear,
    /// GroupNorm(1, C) on the map.
    pub norm: GroupNorm,
    /// diffusers `Decoder` from the `[B, C, s, s]` map to the latent.
    pub upsampler: Decoder,
    /// Dropout probability after the input layer (training only).
    pub dropout_in: f64,
    /// Dropout probability in the residual blocks (training only).
    pub dropout_block: f64,
    proj_channels: usize,
    proj_size: usize,
}

impl LowLevelModel {
    /// The MLP and projection up to the upsampler's input, in eval mode (no dropout).
    ///
    /// `x`: `[batch, V]` -> `[batch, C, s, s]` (after the GroupNorm).
    pub fn forward_features(&self, x: Tensor<2>) -> Tensor<4> {
        self.features(x, None)
    }

    /// The whole model in eval mode (no dropout): `x` `[batch, V]` -> latents
    /// `[batch, out_channels, s*2^(n-1), s*2^(n-1)]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<4> {
        self.upsampler.forward(self.features(x, None))
    }

    /// The whole model in training mode: the dropouts apply masks drawn from `masks` on the host
    /// (PyTorch's `F.dropout`: keep with probability `1 - p`, scale by `1 / (1 - p)`), in layer
    /// order. Same shapes as [`Self::forward`].
    pub fn forward_train(&self, x: Tensor<2>, masks: &mut ChaCha8Rng) -> Tensor<4> {
        self.upsampler.forward(self.features(x, Some(masks)))
    }

    /// The MLP with the dropouts applied when `masks` is given.
    fn features(&self, x: Tensor<2>, mut masks: Option<&mut ChaCha8Rng>) -> Tensor<4> {
        let mut drop = |x: Tensor<2>, p: f64| match masks.as_deref_mut() {
            Some(rng) if p > 0.0 => {
                let dims = x.dims(); // [B, h]
                let mask = host_tensor(dropout_mask(rng, dims[0] * dims[1], p), dims, &x.device());
                x * mask
            }
            _ => x,
        };
        let (lin, ln) = &self.lin0;
        let mut x = drop(silu(ln.forward(fast_cpu::linear(lin, x))), self.dropout_in); // [B, h]
        for (lin, ln) in &self.mlp {
            x = drop(silu(ln.forward(fast_cpu::linear(lin, x.clone()))), self.dropout_block) + x; // [B, h]
        }
        let [batch, _] = x.dims();
        let x = fast_cpu::linear(&self.lin1, x); // [B, C*s*s]
        let x = x.reshape([batch, self.proj_channels, self.proj_size, self.proj_size]); // [B, C, s, s]
        self.norm.forward(x)
    }

    /// Save the weights as a PyTorch-layout safetensors state dict (diffusers keys for the
    /// upsampler; atomic: temp file + rename).
    pub fn save(&self, path: &Path) -> Result<(), LowLevelError> {
        let tmp = path.with_extension("safetensors.tmp");
        weights::save_module(self, &tmp, DIFFUSERS_SAVE_REMAP)?;
        std::fs::rename(&tmp, path)
            .map_err(|e| LowLevelError::Save { path: path.to_path_buf(), msg: e.to_string() })
    }

    /// Build the model for `config` and load a PyTorch-layout safetensors state dict into it
    /// (one written by [`LowLevelModel::save`] or PyTorch's `save_file(model.state_dict())`).
    /// Every parameter must be present with the right shape, and no extra tensor may remain.
    pub fn load(
        config: &LowLevelConfig,
        path: &Path,
        device: &Device,
    ) -> Result<Self, LowLevelError> {
        if !path.is_file() {
            return Err(LowLevelError::Missing(path.to_path_buf()));
        }
        let mut model = config.init(device, 0);
        weights::load_module_file(&mut model, path, &LOWLEVEL_SPEC)?;
        Ok(model)
    }
}
