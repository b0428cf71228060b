//! A diffusers Stable Diffusion hub folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/`,
//! `tokenizer/`, `scheduler/`): layout check naming the missing part, and loading of every part
//! but the UNet (the caller brings a [`super::NoisePredictor`]).

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::models::clip::{self, Clip, ClipError, ClipParts, ClipTokenizer};
use crate::models::vae::{self, Vae};
use crate::models::weights::WeightsError;
use crate::schedulers::{SchedulerConfig, SchedulerError};

/// Where to get a real SD 1.x pipeline folder (quoted in layout errors).
pub const SD_SOURCES: &str = "runwayml/stable-diffusion-v1-5 (or CompVis/stable-diffusion-v1-4) on huggingface.co, see weights/README.md";

/// The parts of a pipeline folder: (sub-path, what it is). Checked in this order.
pub const SD_PARTS: &[(&str, &str)] = &[
    ("model_index.json", "the pipeline index"),
    ("unet/config.json", "the UNet (UNet2DConditionModel)"),
    ("vae/config.json", "the VAE (AutoencoderKL)"),
    ("text_encoder/config.json", "the CLIP text encoder (CLIPTextModel)"),
    ("tokenizer", "the CLIP tokenizer (vocab.json + merges.txt or tokenizer.json)"),
    ("scheduler/scheduler_config.json", "the scheduler config"),
];

/// Pipeline folder and image errors.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A part of the hub layout is missing.
    #[error(
        "{dir} is not a complete Stable Diffusion pipeline folder: {part} ({what}) is missing; download the `{folder}` part of {SD_SOURCES} into it"
    )]
    MissingPart {
        /// The pipeline folder.
        dir: PathBuf,
        /// The missing path, relative to `dir`.
        part: &'static str,
        /// What it holds.
        what: &'static str,
        /// The hub folder (or file) to download.
        folder: String,
    },
    /// `model_index.json` is not JSON.
    #[error("{path} is not a diffusers model_index.json ({message})")]
    Index {
        /// The file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
    /// The VAE folder failed to load.
    #[error("cannot load the VAE")]
    Vae(#[source] WeightsError),
    /// The text encoder or tokenizer failed to load.
    #[error("cannot load the text encoder")]
    TextEncoder(#[source] ClipError),
    /// The scheduler config failed.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The input image cannot be read.
    #[error(transparent)]
    Image(#[from] crate::imageio::ImageIoError),
    /// The image is smaller than one latent pixel.
    #[error(
        "{path}: image {width}x{height} is too small for the VAE, which needs at least {min}x{min} pixels (one latent pixel); use a larger image"
    )]
    ImageTooSmall {
        /// The image.
        path: PathBuf,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The VAE's downscaling factor.
        min: u32,
    },
    /// An injected noise file has the wrong shape.
    #[error(
        "{path}: {what} has shape {found:?}; expected {expected:?} (float32 npy, [1, latent channels, height / {factor}, width / {factor}])"
    )]
    NoiseShape {
        /// The npy file.
        path: PathBuf,
        /// Which noise.
        what: &'static str,
        /// Its shape.
        found: Vec<usize>,
        /// The latent shape.
        expected: [usize; 4],
        /// The VAE's downscaling factor.
        factor: usize,
    },
    /// An injected noise file cannot be read.
    #[error("cannot read the {what} file")]
    NoiseFile {
        /// Which noise.
        what: &'static str,
        /// The reader error.
        source: crate::data::DataError,
    },
}

/// The loaded non-UNet parts of an SD pipeline folder.
#[derive(Debug)]
pub struct SdPipeline {
    /// The folder.
    pub dir: PathBuf,
    /// The CLIP text encoder (`text_encoder/`, text tower only).
    pub text_encoder: Clip,
    /// Its tokenizer (`tokenizer/`), padding to the text encoder's positions (77).
    pub tokenizer: ClipTokenizer,
    /// The VAE (`vae/`).
    pub vae: Vae,
    /// `scheduler/scheduler_config.json`.
    pub scheduler_config: SchedulerConfig,
}

/// Check that `dir` holds every part of the hub layout ([`SD_PARTS`]); the error names the first
/// missing one and the hub folder to download.
pub fn check_layout(dir: &Path) -> Result<(), PipelineError> {
    for &(part, what) in SD_PARTS {
        let path = dir.join(part);
        let present = if part == "tokenizer" { path.is_dir() } else { path.is_file() };
        if !present {
            let folder = match part.split_once('/') {
                Some((folder, _)) => format!("{folder}/"),
                None if part == "tokenizer" => "tokenizer/".into(),
                None => part.into(),
            };
            return Err(PipelineError::MissingPart { dir: dir.into(), part, what, folder });
        }
    }
    let index = dir.join("model_index.json");
    let text = std::fs::read_to_string(&index)
        .map_err(|e| PipelineError::Index { path: index.clone(), message: e.to_string() })?;
    serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| PipelineError::Index { path: index, message: e.to_string() })?;
    Ok(())
}

impl SdPipeline {
    /// Check the layout and load the text encoder, tokenizer, VAE and scheduler config of `dir`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, PipelineError> {
        check_layout(dir)?;
        let scheduler_config =
            SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?;
        let vae = vae::load_vae(&dir.join("vae"), device).map_err(PipelineError::Vae)?;
        let text_encoder = clip::load_clip(&dir.join("text_encoder"), ClipParts::Text, device)
            .map_err(PipelineError::TextEncoder)?;
        let tokenizer = text_encoder.tokenizer().map_err(PipelineError::TextEncoder)?;
        Ok(Self { dir: dir.into(), text_encoder, tokenizer, vae, scheduler_config })
    }

    /// The VAE's downscaling factor, `2 ^ (len(block_out_channels) - 1)` (8 for SD).
    pub fn vae_scale_factor(&self) -> usize {
        1 << self.vae.config.block_out_channels.len().saturating_sub(1)
    }

    /// The latent shape `[1, latent_channels, H / f, W / f]` for a preprocessed image `H x W`.
    pub fn latent_shape(&self, height: usize, width: usize) -> [usize; 4] {
        let f = self.vae_scale_factor();
        [1, self.vae.config.latent_channels, height / f, width / f]
    }

    /// diffusers `encode_prompt` without attention mask: `last_hidden_state` of the prompts,
    /// each tokenised to the tokenizer's length and padded with its pad token (eos in SD 1.x):
    /// `[n, 77, hidden]`.
    pub fn encode_prompts(
        &self,
        prompts: &[String],
        device: &Device,
    ) -> Result<Tensor<3>, PipelineError> {
        let (ids, _mask, _) = self
            .tokenizer
            .encode_batch(prompts, device)
            .map_err(|e| PipelineError::TextEncoder(e.into()))?; // [n, 77]
        let text = self.text_encoder.text_model().map_err(PipelineError::TextEncoder)?;
        Ok(text.forward(ids, None).last_hidden_state) // [n, 77, hidden]
    }
}
