//! Stable Diffusion VAE (diffusers `AutoencoderKL`) in burn: [`Encoder`], [`Decoder`] (reusable
//! standalone), the [`DiagonalGaussian`] posterior, and [`load_vae`] for diffusers hub folders.
//!
//! The resnet, attention and block modules are shared with the UNet in
//! [`crate::models::diffusers`] (re-exported here under their old paths).
//!
//! Parameter paths equal diffusers' state-dict keys except `attentions.N.to_out.0` (here
//! `to_out`), so [`DIFFUSERS_REMAP`] is the whole key mapping.

pub mod autoencoder;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod posterior;
pub mod train;

pub use crate::models::diffusers::{attention, resnet, vae_blocks as blocks};
pub use autoencoder::AutoencoderKL;
pub use config::AutoencoderKLConfig;
pub use decoder::{Decoder, DecoderConfig};
pub use encoder::{Encoder, EncoderConfig};
pub use posterior::DiagonalGaussian;

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::models::weights::{self, WeightsError, WeightsSpec};

/// diffusers key -> module path, applied when loading (current and pre-0.14 attention names).
pub const DIFFUSERS_REMAP: &[(&str, &str)] = &[
    (r"\.to_out\.0\.", ".to_out."),
    (r"\.attentions\.(\d+)\.query\.", ".attentions.$1.to_q."),
    (r"\.attentions\.(\d+)\.key\.", ".attentions.$1.to_k."),
    (r"\.attentions\.(\d+)\.value\.", ".attentions.$1.to_v."),
    (r"\.attentions\.(\d+)\.proj_attn\.", ".attentions.$1.to_out."),
];

/// Module path -> diffusers key, applied when saving.
pub const DIFFUSERS_SAVE_REMAP: &[(&str, &str)] = &[(r"\.to_out\.", ".to_out.0.")];

/// Where to get real SD VAE weights (quoted in every loading error).
pub const VAE_SOURCES: &str = "stabilityai/sd-vae-ft-mse (whole repo), runwayml/stable-diffusion-v1-5 `vae/`, or CompVis/stable-diffusion-v1-4 `vae/` on huggingface.co (see weights/README.md)";

/// The hub layout of an `AutoencoderKL` folder.
pub fn vae_spec() -> WeightsSpec<'static> {
    WeightsSpec {
        model: "SD VAE (AutoencoderKL)",
        files: &["diffusion_pytorch_model.safetensors", "model.safetensors"],
        remap: DIFFUSERS_REMAP,
        allow_unused: false,
        get_from: VAE_SOURCES,
    }
}

/// A loaded VAE with its config.
#[derive(Debug)]
pub struct Vae {
    /// The model.
    pub model: AutoencoderKL,
    /// Its `config.json`.
    pub config: AutoencoderKLConfig,
    /// The folder it came from.
    pub dir: PathBuf,
}

/// Read and validate `dir/config.json` of an `AutoencoderKL` hub folder.
pub fn read_vae_config(dir: &Path) -> Result<AutoencoderKLConfig, WeightsError> {
    let spec = vae_spec();
    let config: AutoencoderKLConfig = weights::read_config(dir, &spec)?;
    config
        .validate()
        .map_err(|reason| WeightsError::Unsupported { path: dir.join("config.json"), reason })?;
    Ok(config)
}

/// Load a diffusers `AutoencoderKL` hub folder (`config.json` +
/// `diffusion_pytorch_model.safetensors`) onto `device`, checking every tensor.
pub fn load_vae(dir: &Path, device: &Device) -> Result<Vae, WeightsError> {
    let config = read_vae_config(dir)?;
    // Fail on a missing weights file before allocating the model.
    weights::weights_file(dir, &vae_spec())?;
    let mut model = config.init(device);
    weights::load_module(&mut model, dir, &vae_spec())?;
    Ok(Vae { model, config, dir: dir.into() })
}

/// Save a VAE as a diffusers hub folder (`config.json` + `diffusion_pytorch_model.safetensors`)
/// that both [`load_vae`] and `diffusers.AutoencoderKL.from_pretrained` read.
pub fn save_vae(
    model: &AutoencoderKL,
    config: &AutoencoderKLConfig,
    dir: &Path,
) -> Result<(), WeightsError> {
    let write_err = |path: PathBuf, e: &dyn std::fmt::Display| WeightsError::Write {
        path,
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir.into(), &e))?;
    let json =
        serde_json::to_string_pretty(config).map_err(|e| write_err(dir.join("config.json"), &e))?;
    std::fs::write(dir.join("config.json"), json + "\n")
        .map_err(|e| write_err(dir.join("config.json"), &e))?;
    weights::save_module(
        model,
        &dir.join("diffusion_pytorch_model.safetensors"),
        DIFFUSERS_SAVE_REMAP,
    )
}
