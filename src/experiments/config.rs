//! `experiment.toml`: what an experiment is (data, ROI set, seed, batch, schedule, model widths).
//!
//! Relative paths inside the file are resolved against the *project directory*: the parent of
//! the `experiments/` folder that holds the experiment.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of an experiment's configuration inside `experiments/<id>/`.
pub const CONFIG_FILE: &str = "experiment.toml";

/// One experiment's configuration, as stored in `experiments/<id>/experiment.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Model id (92, 94, 97, 100, ...): also the folder name.
    pub id: u32,
    /// Free text shown in the console.
    #[serde(default)]
    pub description: String,
    /// Which data and which voxels.
    pub data: DataSection,
    /// Optimisation settings.
    pub train: TrainSection,
    /// Model widths; defaults are the paper's.
    #[serde(default)]
    pub model: ModelSection,
}

/// `[data]`: dataset root, subject, ROI set, masking mode, latent cache and VAE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Algonauts root (holds `subj01/`), relative to the project directory or absolute.
    pub root: PathBuf,
    /// Subject folder name.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// `set1`, `set2`, `set3`, `none`, or a comma-separated list of ROI names.
    #[serde(default = "default_roi_set")]
    pub roi_set: String,
    /// `zero` (the paper's: keep width, zero voxels outside the set) or `select`.
    #[serde(default = "default_mask_mode")]
    pub mask_mode: String,
    /// VAE weights folder (hub layout), relative to the project directory or absolute.
    pub vae: PathBuf,
}

/// `[train]`: seed, batch, epochs and the OneCycle/AdamW hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Controls init, split and shuffling.
    pub seed: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// Number of epochs.
    pub epochs: usize,
    /// OneCycle peak learning rate.
    #[serde(default = "default_max_lr")]
    pub max_lr: f64,
    /// AdamW weight decay (not applied to biases and norm parameters).
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Fraction of the data used for validation (seeded split).
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// `cpu`, `wgpu` or `cuda[:N]`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Fixed validation samples decoded to PNG every epoch.
    #[serde(default = "default_recon_samples")]
    pub recon_samples: usize,
}

/// `[model]`: low-level model widths (defaults: the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Hidden width of the MLP.
    pub hidden: usize,
    /// Number of residual blocks.
    pub blocks: usize,
    /// Dropout after the input layer.
    pub dropout_in: f64,
    /// Dropout inside each residual block.
    pub dropout_block: f64,
    /// Channels of the `[C, s, s]` map the MLP projects to (the upsampler's input).
    pub proj_channels: usize,
    /// The upsampler's `block_out_channels` (diffusers order; each a multiple of 32, the
    /// upsampler's GroupNorm groups).
    pub upsampler_channels: Vec<usize>,
}

impl Default for ModelSection {
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

fn default_subject() -> String {
    "subj01".into()
}
fn default_roi_set() -> String {
    "none".into()
}
fn default_mask_mode() -> String {
    "zero".into()
}
fn default_max_lr() -> f64 {
    5e-4
}
fn default_weight_decay() -> f64 {
    1e-2
}
fn default_val_fraction() -> f64 {
    0.3
}
fn default_device() -> String {
    "cpu".into()
}
fn default_recon_samples() -> usize {
    4
}

/// Reading or validating an `experiment.toml` failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The TOML is malformed or has unknown/missing fields.
    #[error("{path} is not a valid experiment.toml: {message}")]
    Parse { path: PathBuf, message: String },
    /// The folder name and the `id` field disagree.
    #[error("{path}: id = {id} but the folder is named '{folder}'; make them agree")]
    IdMismatch { path: PathBuf, id: u32, folder: String },
}

impl ExperimentConfig {
    /// Read and validate `dir/experiment.toml`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::Io { path: path.clone(), source })?;
        let config: Self = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
        let folder = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        if folder != config.id.to_string() {
            return Err(ConfigError::IdMismatch { path, id: config.id, folder });
        }
        Ok(config)
    }

    /// Resolve a path from the file against the project directory (parent of `experiments/`).
    pub fn resolve(project_dir: &Path, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { project_dir.join(path) }
    }
}
