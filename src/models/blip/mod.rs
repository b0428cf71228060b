//! BLIP captioning in burn, matching transformers' `BlipForConditionalGeneration`
//! (Salesforce/blip-image-captioning-base and -large): [`vision`] (the ViT), [`text`] (the BERT
//! decoder with cross-attention and its KV cache), [`generate`] (greedy and beam search as
//! `generate`), [`tokenizer`] (BERT uncased WordPiece, `tokenizers` crate), [`preprocess`]
//! (`BlipImageProcessor`, or the paper's raw pixels), [`config`].
//!
//! [`load_blip`] reads `config.json` + `model.safetensors` through [`crate::models::weights`];
//! module paths are the checkpoint keys with `LayerNorm` -> `layer_norm` and `self` -> `self_attn`.

pub mod config;
pub mod generate;
pub mod preprocess;
pub mod text;
pub mod tokenizer;
pub mod vision;

pub use config::{BlipConfig, BlipTextConfig, BlipVisionConfig};
pub use generate::{EarlyStopping, GenerateError, GenerateOptions, SpecialIds};
pub use preprocess::Preprocess;
pub use tokenizer::{BlipTokenizer, BlipTokenizerError};

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::models::clip::preprocess::PreprocessError;
use crate::models::weights::{self, WeightsError, WeightsSpec};
use text::BlipTextLmHeadModel;
use vision::BlipVisionModel;

/// Where to get real BLIP weights (quoted in every loading error).
pub const BLIP_SOURCES: &str = "Salesforce/blip-image-captioning-large on huggingface.co (config.json, model.safetensors, preprocessor_config.json, tokenizer.json or vocab.txt) into weights/blip-image-captioning-large";

/// Key remapping of the checkpoint (`LayerNorm` and `self` are not Rust field names).
const REMAP: &[(&str, &str)] = &[(r"\.LayerNorm\.", ".layer_norm."), (r"\.self\.", ".self_attn.")];

/// File tensors the model has no place for and that are expected: the LM decoder weight/bias
/// some checkpoints store beside what they are tied to (the word embeddings,
/// `cls.predictions.bias`), and the `position_ids` buffer of older transformers.
const TIED_OR_BUFFERS: &[&str] = &[
    "text_decoder.cls.predictions.decoder.weight",
    "text_decoder.cls.predictions.decoder.bias",
    "text_decoder.bert.embeddings.position_ids",
];

/// The hub layout of a BLIP captioning folder.
pub fn blip_spec() -> WeightsSpec<'static> {
    WeightsSpec {
        model: "BLIP (transformers BlipForConditionalGeneration)",
        files: &["model.safetensors"],
        remap: REMAP,
        allow_unused: false,
        get_from: BLIP_SOURCES,
    }
}

/// Errors of loading and running BLIP.
#[derive(Debug, thiserror::Error)]
pub enum BlipError {
    /// The folder, config or weights (the loader's message names the file and the fix).
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The folder holds PyTorch's pickle only.
    #[error(
        "{dir} holds pytorch_model.bin but no model.safetensors; convert it once (shared tensors cloned, or safetensors refuses): python3 -c \"import torch; from safetensors.torch import save_file; sd = torch.load('{bin}', map_location='cpu'); save_file({{k: v.clone().contiguous() for k, v in sd.items()}}, '{st}')\""
    )]
    BinOnly {
        /// The folder.
        dir: PathBuf,
        /// The `.bin` file.
        bin: String,
        /// The safetensors file to write.
        st: String,
    },
    /// The tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] BlipTokenizerError),
    /// Image preprocessing.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// The decoding settings.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

/// transformers `BlipForConditionalGeneration`. Field names are the checkpoint's.
#[derive(Module, Debug)]
pub struct BlipForConditionalGeneration {
    /// The ViT.
    pub vision_model: BlipVisionModel,
    /// The BERT decoder + LM head.
    pub text_decoder: BlipTextLmHeadModel,
}

impl BlipConfig {
    /// Build with random weights (the config must be validated).
    pub fn init(&self, device: &Device) -> BlipForConditionalGeneration {
        BlipForConditionalGeneration {
            vision_model: self.vision_config.init(device),
            text_decoder: self.text_config.init(device),
        }
    }
}

/// One caption: the ids as `generate` returns them (`[DEC]` first) and their decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caption {
    /// `batch_decode(ids, skip_special_tokens=True)`.
    pub text: String,
    /// The generated ids, prompt included.
    pub ids: Vec<u32>,
}

/// A loaded BLIP folder: model, config and tokenizer.
#[derive(Debug)]
pub struct Blip {
    /// The model.
    pub model: BlipForConditionalGeneration,
    /// Its config.
    pub config: BlipConfig,
    /// The tokenizer of the folder.
    pub tokenizer: BlipTokenizer,
    /// The folder.
    pub dir: PathBuf,
}

/// Read and validate `dir/config.json`.
pub fn read_blip_config(dir: &Path) -> Result<BlipConfig, WeightsError> {
    let config: BlipConfig = weights::read_config(dir, &blip_spec())?;
    config
        .validate()
        .map_err(|reason| WeightsError::Unsupported { path: dir.join("config.json"), reason })?;
    Ok(config)
}

/// Load the weights of `dir` into `model` (every tensor checked; only the tied/buffer keys of
/// [`TIED_OR_BUFFERS`] may be left over).
fn load_weights(model: &mut BlipForConditionalGeneration, dir: &Path) -> Result<(), BlipError> {
    let spec = blip_spec();
    let st = dir.join("model.safetensors");
    let bin = dir.join("pytorch_model.bin");
    if dir.is_dir() && !st.is_file() && bin.is_file() {
        return Err(BlipError::BinOnly {
            dir: dir.into(),
            bin: bin.display().to_string(),
            st: st.display().to_string(),
        });
    }
    match weights::load_module(model, dir, &spec) {
        Ok(_) => Ok(()),
        Err(WeightsError::Mismatch { missing, mismatched, unused, .. })
            if missing.is_empty()
                && mismatched.is_empty()
                && unused.iter().all(|u| TIED_OR_BUFFERS.contains(&u.as_str())) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Load a BLIP captioning folder (`config.json`, `model.safetensors`, tokenizer files) onto
/// `device`.
pub fn load_blip(dir: &Path, device: &Device) -> Result<Blip, BlipError> {
    let config = read_blip_config(dir)?;
    let mut model = config.init(device);
    load_weights(&mut model, dir)?;
    let tokenizer = BlipTokenizer::from_dir(dir)?;
    tokenizer.check_id("[DEC]", config.text_config.bos_token_id)?;
    tokenizer.check_id("[SEP]", config.text_config.sep_token_id)?;
    Ok(Blip { model, config, tokenizer, dir: dir.into() })
}

impl Blip {
    /// The image embeddings `[n, 1 + patches, hidden]` of pixel values `[n, 3, S, S]`.
    pub fn image_embeds(&self, pixel_values: Tensor<4>) -> Tensor<3> {
        self.model.vision_model.forward(pixel_values)
    }

    /// The prompt `generate` starts from: `[DEC]`, then the prefix's tokens (transformers
    /// tokenises `[CLS] prefix [SEP]`, replaces `[CLS]` by `[DEC]` and drops the `[SEP]`).
    pub fn prompt(&self, prefix: Option<&str>) -> Result<Vec<u32>, BlipError> {
        let bos = self.config.text_config.bos_token_id;
        let Some(prefix) = prefix else { return Ok(vec![bos]) };
        let mut ids = self.tokenizer.encode(prefix)?;
        ids.pop();
        ids[0] = bos;
        Ok(ids)
    }

    /// The decoding's special ids (from the config).
    pub fn special_ids(&self) -> SpecialIds {
        let t = &self.config.text_config;
        SpecialIds { bos: t.bos_token_id, sep: t.sep_token_id }
    }

    /// Caption pixel values `[n, 3, S, S]`, one caption per image.
    pub fn caption(
        &self,
        pixel_values: Tensor<4>,
        prefix: Option<&str>,
        opts: &GenerateOptions,
    ) -> Result<Vec<Caption>, BlipError> {
        let prompt = self.prompt(prefix)?;
        let positions = self.config.text_config.max_position_embeddings;
        generate::check_options(opts, prompt.len(), positions)?;
        let embeds = self.image_embeds(pixel_values);
        let ids = generate::generate(
            &self.model.text_decoder,
            embeds,
            &prompt,
            opts,
            self.special_ids(),
        )?;
        ids.into_iter().map(|ids| Ok(Caption { text: self.tokenizer.decode(&ids)?, ids })).collect()
    }
}
