//! Stable Diffusion's denoiser, diffusers `UNet2DConditionModel`, in burn (SD 1.x layouts, and
//! SD 2.x's linear projections and per-block head counts), loaded from a hub `unet/` folder by
//! [`load_unet`].
//!
//! # Calling it
//! [`UNet2DConditionModel::forward`]`(latents [B, 4, h, w], timestep: f32, encoder_hidden_states
//! [B, 77, d]) -> noise [B, 4, h, w]`: the timestep is **one `f32` shared by the batch** (what the
//! img2img pipeline passes, e.g. `[uncond, text]` at the same `t`); per-sample timesteps go
//! through [`UNet2DConditionModel::forward_timesteps`]. Any `h`, `w` work: when they are not
//! multiples of `2^(blocks - 1)` the up blocks upsample to their skip connections' sizes, as
//! diffusers' `upsample_size`.
//!
//! # Parameter names
//! diffusers' state-dict keys, except `to_out.0` -> `to_out`, `ff.net.0.proj` -> `ff.proj`,
//! `ff.net.2` -> `ff.out`, and the transformer projections' kind (`proj_in.Conv.*` for
//! `use_linear_projection: false`, `proj_in.Linear.*` otherwise): [`remap`] is the whole table.
//!
//! Built from [`crate::models::diffusers`] (resnets with the time embedding, transformers,
//! samplers) which the VAE shares.

pub mod blocks;
pub mod config;
pub mod model;

pub use config::UNet2DConditionModelConfig;
pub use model::UNet2DConditionModel;

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::models::weights::{self, WeightsError, WeightsSpec};

/// diffusers key -> module path for SD 1.x (1x1-conv transformer projections).
const REMAP_CONV: &[(&str, &str)] = &[
    (r"\.to_out\.0\.", ".to_out."),
    (r"\.ff\.net\.0\.proj\.", ".ff.proj."),
    (r"\.ff\.net\.2\.", ".ff.out."),
    (r"\.proj_(in|out)\.", ".proj_$1.Conv."),
];

/// diffusers key -> module path for `use_linear_projection: true` (SD 2.x).
const REMAP_LINEAR: &[(&str, &str)] = &[
    (r"\.to_out\.0\.", ".to_out."),
    (r"\.ff\.net\.0\.proj\.", ".ff.proj."),
    (r"\.ff\.net\.2\.", ".ff.out."),
    (r"\.proj_(in|out)\.", ".proj_$1.Linear."),
];

/// The loading key table for a config (depends on `use_linear_projection`).
pub fn remap(config: &UNet2DConditionModelConfig) -> &'static [(&'static str, &'static str)] {
    if config.use_linear_projection { REMAP_LINEAR } else { REMAP_CONV }
}

/// Where to get real UNet weights (quoted in every loading error).
pub const UNET_SOURCES: &str = "runwayml/stable-diffusion-v1-5 (or CompVis/stable-diffusion-v1-4) `unet/` on huggingface.co (see weights/README.md)";

/// The hub layout of a `UNet2DConditionModel` folder.
pub fn unet_spec(config: &UNet2DConditionModelConfig) -> WeightsSpec<'static> {
    WeightsSpec {
        model: "SD UNet (UNet2DConditionModel)",
        files: &["diffusion_pytorch_model.safetensors", "model.safetensors"],
        remap: remap(config),
        allow_unused: false,
        get_from: UNET_SOURCES,
    }
}

/// A loaded UNet with its config.
#[derive(Debug)]
pub struct Unet {
    /// The model.
    pub model: UNet2DConditionModel,
    /// Its `config.json`.
    pub config: UNet2DConditionModelConfig,
    /// The folder it came from.
    pub dir: PathBuf,
}

/// Read and validate `dir/config.json` of a `UNet2DConditionModel` hub folder.
pub fn read_unet_config(dir: &Path) -> Result<UNet2DConditionModelConfig, WeightsError> {
    let spec = unet_spec(&UNet2DConditionModelConfig::stable_diffusion_v1());
    let config: UNet2DConditionModelConfig = weights::read_config(dir, &spec)?;
    config
        .validate()
        .map_err(|reason| WeightsError::Unsupported { path: dir.join("config.json"), reason })?;
    Ok(config)
}

/// Load a diffusers `UNet2DConditionModel` hub folder (`config.json` +
/// `diffusion_pytorch_model.safetensors`) onto `device`, checking every tensor.
pub fn load_unet(dir: &Path, device: &Device) -> Result<Unet, WeightsError> {
    let config = read_unet_config(dir)?;
    let plan = config
        .validate()
        .map_err(|reason| WeightsError::Unsupported { path: dir.join("config.json"), reason })?;
    let spec = unet_spec(&config);
    // Fail on a missing weights file before allocating the model.
    weights::weights_file(dir, &spec)?;
    let mut model = config.init(&plan, device);
    weights::load_module(&mut model, dir, &spec)?;
    Ok(Unet { model, config, dir: dir.into() })
}
