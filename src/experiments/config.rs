//! `experiment.toml`: what an experiment is (data, ROI set, seed, batch, schedule, model widths).
//!
//! Relative paths inside the file are resolved against the *project directory*: the parent of
//! the `experiments/` folder that holds the experiment.

use crate::data::roi::{MaskMode, RoiSet};
use crate::models::lowlevel::{LowLevelWidths, UPSAMPLER_GROUPS};
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
    /// `[model]`: the low-level model's widths; defaults are the paper's (the input width and
    /// latent shape come from the data).
    #[serde(default)]
    pub model: LowLevelWidths,
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
    /// Size of the dataset-level probe set held out of the train/val split (`data::probe`;
    /// the same rows for every experiment on the dataset); `0` = none.
    #[serde(default = "default_probe")]
    pub probe: usize,
}

fn default_probe() -> usize {
    crate::data::probe::DEFAULT_PROBE_SIZE
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
    #[error("cannot read {path}")]
    Io {
        /// The experiment.toml.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown/missing fields.
    #[error("{path} is not a valid experiment.toml: {message}")]
    Parse {
        /// The experiment.toml.
        path: PathBuf,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// The folder name and the `id` field disagree.
    #[error("{path}: id = {id} but the folder is named '{folder}'; make them agree")]
    IdMismatch {
        /// The experiment.toml.
        path: PathBuf,
        /// `id` in the file.
        id: u32,
        /// The folder's name.
        folder: String,
    },
    /// A field has a value the trainer cannot use.
    #[error("[{section}] {key} = {value} in {path}: {rule}")]
    Invalid {
        /// The experiment.toml.
        path: PathBuf,
        /// TOML section (`train`, `data`, `model`).
        section: &'static str,
        /// Key inside the section.
        key: &'static str,
        /// The value as written (TOML syntax).
        value: String,
        /// What the value must be, and how to fix it.
        rule: String,
    },
}

impl ExperimentConfig {
    /// Read and validate `dir/experiment.toml` (every field is checked; see [`Self::validate`]).
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
        config.validate(&path)?;
        Ok(config)
    }

    /// Check every field that can be checked without the dataset (`path` names the file in the
    /// error). ROI names of a custom list are checked against the atlas when the data is opened.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |section, key, value: String, rule: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            section,
            key,
            value,
            rule: rule.to_string(),
        };
        let d = &self.data;
        if d.subject.trim().is_empty() {
            return Err(bad(
                "data",
                "subject",
                "\"\"".into(),
                "must name the subject folder (e.g. \"subj01\")",
            ));
        }
        if RoiSet::parse(&d.roi_set).is_err() {
            return Err(bad(
                "data",
                "roi_set",
                format!("{:?}", d.roi_set),
                "must be set1, set2, set3, none or a comma-separated list of ROI names",
            ));
        }
        if d.mask_mode.parse::<MaskMode>().is_err() {
            return Err(bad(
                "data",
                "mask_mode",
                format!("{:?}", d.mask_mode),
                "must be \"zero\" (the paper's: keep the width, zero voxels outside the set) or \"select\"",
            ));
        }
        let t = &self.train;
        if t.batch_size < 1 {
            return Err(bad("train", "batch_size", t.batch_size.to_string(), "must be >= 1"));
        }
        if t.epochs < 1 {
            return Err(bad("train", "epochs", t.epochs.to_string(), "must be >= 1"));
        }
        if !(t.max_lr.is_finite() && t.max_lr > 0.0) {
            return Err(bad(
                "train",
                "max_lr",
                t.max_lr.to_string(),
                "must be a number > 0 (the paper's: 5e-4)",
            ));
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(bad(
                "train",
                "weight_decay",
                t.weight_decay.to_string(),
                "must be a number >= 0 (the paper's: 1e-2)",
            ));
        }
        if !(t.val_fraction > 0.0 && t.val_fraction < 1.0) {
            return Err(bad(
                "train",
                "val_fraction",
                t.val_fraction.to_string(),
                "must be between 0 and 1, both excluded (the paper's: 0.3)",
            ));
        }
        // Syntax only: whether this build has the backend is checked when training starts,
        // with a rebuild hint.
        if crate::backend::parse_device_name(&t.device).is_err() {
            let rule = format!("must be one of {}", crate::backend::DEVICE_RULE);
            return Err(bad("train", "device", format!("{:?}", t.device), rule.as_str()));
        }
        let m = &self.model;
        for (key, value) in
            [("hidden", m.hidden), ("blocks", m.blocks), ("proj_channels", m.proj_channels)]
        {
            if value < 1 {
                return Err(bad("model", key, value.to_string(), "must be >= 1"));
            }
        }
        for (key, p) in [("dropout_in", m.dropout_in), ("dropout_block", m.dropout_block)] {
            if !(0.0..1.0).contains(&p) {
                return Err(bad("model", key, p.to_string(), "must be a probability in [0, 1)"));
            }
        }
        let ups = &m.upsampler_channels;
        if ups.is_empty() || ups.iter().any(|&c| c == 0 || c % UPSAMPLER_GROUPS != 0) {
            return Err(bad(
                "model",
                "upsampler_channels",
                format!("{ups:?}"),
                format!(
                    "must be a non-empty list of widths, each a positive multiple of {UPSAMPLER_GROUPS} \
                     (the upsampler's GroupNorm groups), e.g. [64, 128, 256]"
                )
                .as_str(),
            ));
        }
        Ok(())
    }

    /// Resolve a path from the file against the project directory (parent of `experiments/`).
    pub fn resolve(project_dir: &Path, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { project_dir.join(path) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "id = 5\n[data]\nroot = \"d\"\nvae = \"v\"\n[train]\nseed = 1\nbatch_size = 2\nepochs = 3\n";

    fn load_with(edit: &str) -> Result<ExperimentConfig, ConfigError> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("5");
        std::fs::create_dir_all(&dir).unwrap();
        let text = if edit.is_empty() { VALID.to_string() } else { edit.to_string() };
        std::fs::write(dir.join(CONFIG_FILE), text).unwrap();
        ExperimentConfig::load(&dir)
    }

    /// The valid file with `key = value` set in `section`.
    fn with(section: &str, key: &str, value: &str) -> String {
        let mut table: toml::Table = toml::from_str(VALID).unwrap();
        let value: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
        let section = table.entry(section).or_insert(toml::Value::Table(Default::default()));
        section.as_table_mut().unwrap().insert(key.into(), value["v"].clone());
        toml::to_string(&table).unwrap()
    }

    #[test]
    fn a_valid_file_loads_with_the_paper_defaults() {
        let c = load_with("").unwrap();
        assert_eq!(c.model, LowLevelWidths::default());
        assert_eq!((c.train.max_lr, c.train.val_fraction), (5e-4, 0.3));
    }

    #[test]
    fn every_bad_field_is_named_with_its_section_and_file() {
        let cases = [
            ("train", "batch_size", "0"),
            ("train", "epochs", "0"),
            ("train", "max_lr", "0.0"),
            ("train", "max_lr", "-1.0"),
            ("train", "max_lr", "nan"),
            ("train", "weight_decay", "-0.1"),
            ("train", "val_fraction", "0.0"),
            ("train", "val_fraction", "1.0"),
            ("train", "device", "\"gpu\""),
            ("train", "device", "\"cuda:x\""),
            ("train", "device", "\"cpu:1\""),
            ("data", "roi_set", "\" , \""),
            ("data", "mask_mode", "\"drop\""),
            ("data", "subject", "\"\""),
            ("model", "hidden", "0"),
            ("model", "blocks", "0"),
            ("model", "proj_channels", "0"),
            ("model", "dropout_in", "1.0"),
            ("model", "dropout_block", "-0.1"),
            ("model", "upsampler_channels", "[]"),
            ("model", "upsampler_channels", "[32, 48]"),
        ];
        for (section, key, value) in cases {
            let text = with(section, key, value);
            let err = load_with(&text).expect_err(&text);
            let msg = err.to_string();
            assert!(
                matches!(&err, ConfigError::Invalid { section: s, key: k, .. } if *s == section && *k == key),
                "{section}.{key} = {value}: {msg}"
            );
            assert!(msg.starts_with(&format!("[{section}] {key} = ")), "{msg}");
            assert!(msg.contains("experiment.toml: must"), "{msg}");
        }
        for (section, key, value) in [
            ("train", "device", "\"cuda:1\""),
            ("train", "device", "\"wgpu\""),
            ("train", "device", "\"wgpu:1\""),
            ("data", "roi_set", "\"V1v, hV4\""),
            ("train", "weight_decay", "0.0"),
            ("model", "dropout_in", "0.0"),
        ] {
            load_with(&with(section, key, value)).unwrap();
        }
    }
}
