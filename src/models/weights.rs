//! Loading hub folders (config.json + safetensors) into burn modules, with checked key remapping.
//!
//! One loader for every model (VAE, CLIP, BLIP, UNet): [`read_config`] parses `config.json` into a
//! serde struct, [`load_module`] reads the first existing weights file of a [`WeightsSpec`] through
//! burn-store's `SafetensorsStore` with a regex key-remapping table and `PyTorchToBurnAdapter`
//! (Linear transposes, norm `weight`/`bias` -> `gamma`/`beta`), then checks that every tensor of
//! the module was loaded with the right shape. [`save_module`] writes the reverse (diffusers
//! layout). PyTorch `.bin` files are not read: this build's burn-store has no `pytorch` feature;
//! convert them with `safetensors.torch.save_file`.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use serde::de::DeserializeOwned;

/// What a model's hub folder must contain and where to get it.
#[derive(Debug, Clone, Copy)]
pub struct WeightsSpec<'a> {
    /// Human name of the model, e.g. "SD VAE (AutoencoderKL)".
    pub model: &'a str,
    /// Accepted weights files, first found wins (e.g. `diffusion_pytorch_model.safetensors`).
    pub files: &'a [&'a str],
    /// Regex remapping from file keys to module paths, applied in order.
    pub remap: &'a [(&'a str, &'a str)],
    /// Whether tensors in the file that the module lacks are tolerated (e.g. loading only the
    /// vision tower of a full CLIPModel).
    pub allow_unused: bool,
    /// Where real weights come from, e.g. "stabilityai/sd-vae-ft-mse".
    pub get_from: &'a str,
}

/// Errors of loading or saving a hub folder. Each names the folder or file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The folder does not exist.
    #[error(
        "{model}: weights folder {dir} does not exist; expected config.json + {expected} there. Get them from {get_from}"
    )]
    MissingFolder {
        /// Model name.
        model: String,
        /// The folder.
        dir: PathBuf,
        /// Expected weights files.
        expected: String,
        /// Where to get them.
        get_from: String,
    },
    /// A required file is missing from the folder.
    #[error(
        "{model}: {dir} has no {expected}; download the hub folder from {get_from} (safetensors; `.bin` is not read, convert it with safetensors.torch.save_file)"
    )]
    MissingFile {
        /// Model name.
        model: String,
        /// The folder.
        dir: PathBuf,
        /// Expected file names.
        expected: String,
        /// Where to get them.
        get_from: String,
    },
    /// config.json cannot be read or parsed.
    #[error("{path}: cannot parse config: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// config.json parses but describes a model this code does not support.
    #[error("{path}: unsupported config: {reason}")]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The safetensors file cannot be read.
    #[error("{path}: cannot read weights: {message}")]
    Read {
        /// The weights file.
        path: PathBuf,
        /// Reader message.
        message: String,
    },
    /// The file's tensors do not match the model (missing, wrong shape, or unexpected).
    #[error(
        "{path}: weights do not match the {model} config: {summary}. The file must belong to the config.json beside it; get matching weights from {get_from}"
    )]
    Mismatch {
        /// The weights file.
        path: PathBuf,
        /// Model name.
        model: String,
        /// Missing / mismatched / unused keys (first few of each).
        summary: String,
        /// Missing module paths (all).
        missing: Vec<String>,
        /// Shape or dtype mismatches (all).
        mismatched: Vec<String>,
        /// File keys the module has no place for (all).
        unused: Vec<String>,
        /// Where to get them.
        get_from: String,
    },
    /// Writing weights failed.
    #[error("{path}: cannot write weights: {message}")]
    Write {
        /// The target file.
        path: PathBuf,
        /// Writer message.
        message: String,
    },
}

/// Check the folder exists and return `dir/config.json`'s path.
fn config_path(dir: &Path, spec: &WeightsSpec) -> Result<PathBuf, WeightsError> {
    if !dir.is_dir() {
        return Err(WeightsError::MissingFolder {
            model: spec.model.into(),
            dir: dir.into(),
            expected: spec.files.join(" or "),
            get_from: spec.get_from.into(),
        });
    }
    let path = dir.join("config.json");
    if !path.is_file() {
        return Err(WeightsError::MissingFile {
            model: spec.model.into(),
            dir: dir.into(),
            expected: "config.json".into(),
            get_from: spec.get_from.into(),
        });
    }
    Ok(path)
}

/// Parse `dir/config.json` into `T`.
pub fn read_config<T: DeserializeOwned>(dir: &Path, spec: &WeightsSpec) -> Result<T, WeightsError> {
    let path = config_path(dir, spec)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| WeightsError::Config { path: path.clone(), message: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| WeightsError::Config { path, message: e.to_string() })
}

/// The first weights file of `spec.files` present in `dir`.
pub fn weights_file(dir: &Path, spec: &WeightsSpec) -> Result<PathBuf, WeightsError> {
    config_path(dir, spec)?;
    spec.files.iter().map(|f| dir.join(f)).find(|p| p.is_file()).ok_or_else(|| {
        WeightsError::MissingFile {
            model: spec.model.into(),
            dir: dir.into(),
            expected: spec.files.join(" or "),
            get_from: spec.get_from.into(),
        }
    })
}

fn remapper(pairs: &[(&str, &str)]) -> KeyRemapper {
    // The patterns are compile-time constants of this crate; a bad one is a programming error.
    KeyRemapper::from_patterns(pairs.to_vec()).expect("invalid key remapping regex")
}

fn first_few(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(6).map(String::as_str).collect();
    let more = items.len().saturating_sub(shown.len());
    if more > 0 { format!("{} (+{more} more)", shown.join(", ")) } else { shown.join(", ") }
}

/// Load the weights of `dir` (first file of `spec.files`) into `module`, checking that every
/// module tensor was found with the right shape (and, unless `spec.allow_unused`, that every file
/// tensor was used). Returns the weights file read.
pub fn load_module<M: Module + ModuleSnapshot>(
    module: &mut M,
    dir: &Path,
    spec: &WeightsSpec,
) -> Result<PathBuf, WeightsError> {
    let path = weights_file(dir, spec)?;
    load_module_file(module, &path, spec)?;
    Ok(path)
}

/// Like [`load_module`] for one explicit safetensors file.
pub fn load_module_file<M: Module + ModuleSnapshot>(
    module: &mut M,
    path: &Path,
    spec: &WeightsSpec,
) -> Result<(), WeightsError> {
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(remapper(spec.remap))
        .allow_partial(true)
        .validate(false);
    let result = store
        .apply_to(module)
        .map_err(|e| WeightsError::Read { path: path.into(), message: e.to_string() })?;
    let missing: Vec<String> = result.missing.iter().map(|(p, _)| p.clone()).collect();
    let mismatched: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    let unused: Vec<String> = if spec.allow_unused { Vec::new() } else { result.unused.clone() };
    if missing.is_empty() && mismatched.is_empty() && unused.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing tensor(s): {}", missing.len(), first_few(&missing)));
    }
    if !mismatched.is_empty() {
        parts.push(format!("{} mismatched: {}", mismatched.len(), first_few(&mismatched)));
    }
    if !unused.is_empty() {
        parts.push(format!(
            "{} unexpected tensor(s) in the file: {}",
            unused.len(),
            first_few(&unused)
        ));
    }
    Err(WeightsError::Mismatch {
        path: path.into(),
        model: spec.model.into(),
        summary: parts.join("; "),
        missing,
        mismatched,
        unused,
        get_from: spec.get_from.into(),
    })
}

/// Save `module` as a PyTorch-layout safetensors file (Linear weights transposed back, norm
/// `gamma`/`beta` -> `weight`/`bias`), renaming module paths with `remap` (the reverse of the
/// loading table). Overwrites `path`.
pub fn save_module<M: Module + ModuleSnapshot>(
    module: &M,
    path: &Path,
    remap: &[(&str, &str)],
) -> Result<(), WeightsError> {
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper(remap))
        .overwrite(true);
    store
        .collect_from(module)
        .map_err(|e| WeightsError::Write { path: path.into(), message: e.to_string() })
}
