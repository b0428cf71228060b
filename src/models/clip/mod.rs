//! CLIP in burn, matching transformers: [`ClipModel`] covers `CLIPModel`,
//! `CLIPVisionModel(WithProjection)` and `CLIPTextModel(WithProjection)` (the SD 1.x
//! `text_encoder/`), whose state dicts share one key layout: `text_model.*`, `vision_model.*`,
//! `text_projection.weight`, `visual_projection.weight` (both without bias). Module paths equal
//! the keys, so loading needs no remapping; [`load_clip`] reads `config.json` +
//! `model.safetensors` through [`crate::models::weights`].
//!
//! Parts: [`config`] (the three config kinds), [`attention`] (fused multi-head attention, reusable
//! by other ports), [`encoder`] (the shared layer stack), [`vision`], [`text`], [`tokenizer`]
//! (`tokenizers` crate), [`preprocess`] (`CLIPImageProcessor`).

pub mod attention;
pub mod config;
pub mod encoder;
pub mod preprocess;
pub mod text;
pub mod tokenizer;
pub mod vision;

pub use config::{ClipConfig, ClipConfigKind, ClipTextConfig, ClipVisionConfig};
pub use preprocess::{ClipImageProcessor, PreprocessError};
pub use text::{ClipTextOutput, ClipTextTransformer};
pub use tokenizer::{ClipTokenizer, ClipTokens, TokenizerError};
pub use vision::{ClipVisionOutput, ClipVisionTransformer};

use std::path::{Path, PathBuf};

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::models::weights::{self, WeightsError, WeightsSpec};

/// Where to get real CLIP weights (quoted in every loading error).
pub const CLIP_SOURCES: &str = "openai/clip-vit-large-patch14 on huggingface.co (config.json, model.safetensors, preprocessor_config.json, tokenizer.json) into weights/clip-vit-large-patch14, or the `text_encoder/` + `tokenizer/` folders of runwayml/stable-diffusion-v1-5 for the text tower";

/// The hub layout of a CLIP folder. Unused file tensors are allowed: a full checkpoint also holds
/// `logit_scale`, the `position_ids` buffers of older transformers, and the tower not asked for;
/// every tensor of the loaded parts must be present with the right shape.
pub fn clip_spec() -> WeightsSpec<'static> {
    WeightsSpec {
        model: "CLIP (transformers CLIPModel)",
        files: &["model.safetensors"],
        remap: &[],
        allow_unused: true,
        get_from: CLIP_SOURCES,
    }
}

/// Key remapping for a tower-only folder saved by transformers 5 (`CLIPTextModel` /
/// `CLIPVisionModel.save_pretrained`), whose keys lack the `text_model.` / `vision_model.`
/// prefix of the hub's `CLIPModel` and SD `text_encoder/` files. The projections keep their names.
const TEXT_UNPREFIXED: &[(&str, &str)] =
    &[(r"^(embeddings|encoder|final_layer_norm)\.", "text_model.$1.")];
const VISION_UNPREFIXED: &[(&str, &str)] =
    &[(r"^(embeddings|encoder|pre_layrnorm|post_layernorm)\.", "vision_model.$1.")];

/// The remapping `load_clip` needs for a file whose tensors are `names`: none for the hub's
/// prefixed layout, the prefix added for an unprefixed tower-only file.
fn tower_remap(config: &ClipConfig, names: &[String]) -> &'static [(&'static str, &'static str)] {
    let prefixed =
        names.iter().any(|n| n.starts_with("text_model.") || n.starts_with("vision_model."));
    match (&config.text, &config.vision) {
        _ if prefixed => &[],
        (Some(_), None) => TEXT_UNPREFIXED,
        (None, Some(_)) => VISION_UNPREFIXED,
        _ => &[],
    }
}

/// Errors of loading and running CLIP.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The folder, config or weights (the loader's message names the file and the fix).
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// Text was asked of a folder without a text tower.
    #[error(
        "{dir} holds a CLIP vision model only (config.json is a CLIPVisionConfig); text embeddings need a CLIPModel or CLIPTextModel folder such as openai/clip-vit-large-patch14"
    )]
    NoTextTower {
        /// The folder.
        dir: PathBuf,
    },
    /// Images were asked of a folder without a vision tower.
    #[error(
        "{dir} holds a CLIP text model only (config.json is a CLIPTextConfig, e.g. SD's text_encoder/); image embeddings need a CLIPModel or CLIPVisionModelWithProjection folder such as openai/clip-vit-large-patch14"
    )]
    NoVisionTower {
        /// The folder.
        dir: PathBuf,
    },
    /// Projected features were asked of a tower saved without its projection.
    #[error(
        "{dir}: the {tower} tower has no {key} (a CLIP{tower_title}Model without projection); projected embeddings need a CLIPModel or CLIP{tower_title}ModelWithProjection folder"
    )]
    NoProjection {
        /// The folder.
        dir: PathBuf,
        /// `text` or `vision`.
        tower: &'static str,
        /// `Text` or `Vision`.
        tower_title: &'static str,
        /// The missing key.
        key: &'static str,
    },
    /// The tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Image preprocessing.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
}

/// Which towers to build and load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipParts {
    /// Every tower the folder has.
    All,
    /// The text tower (and its projection when present); error if there is none.
    Text,
    /// The vision tower (and its projection when present); error if there is none.
    Vision,
}

/// CLIP with the towers a folder holds. Field names are the transformers keys.
#[derive(Module, Debug)]
pub struct ClipModel {
    /// `text_model`: the text transformer.
    pub text_model: Option<ClipTextTransformer>,
    /// `vision_model`: the vision transformer.
    pub vision_model: Option<ClipVisionTransformer>,
    /// `text_projection` (no bias): pooled text -> joint space.
    pub text_projection: Option<Linear>,
    /// `visual_projection` (no bias): pooled image -> joint space.
    pub visual_projection: Option<Linear>,
}

/// What a [`ClipModel`] is built with.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipBuild {
    /// Text tower config, if built.
    pub text: Option<ClipTextConfig>,
    /// Vision tower config, if built.
    pub vision: Option<ClipVisionConfig>,
    /// Width of the text projection, if built.
    pub text_projection: Option<usize>,
    /// Width of the visual projection, if built.
    pub visual_projection: Option<usize>,
}

impl ClipBuild {
    /// Build with random weights.
    pub fn init(&self, device: &Device) -> ClipModel {
        let proj = |d_in: usize, d_out: usize| {
            LinearConfig::new(d_in, d_out).with_bias(false).init(device)
        };
        ClipModel {
            text_model: self.text.as_ref().map(|c| c.init(device)),
            vision_model: self.vision.as_ref().map(|c| c.init(device)),
            text_projection: self
                .text
                .as_ref()
                .zip(self.text_projection)
                .map(|(c, d)| proj(c.hidden_size, d)),
            visual_projection: self
                .vision
                .as_ref()
                .zip(self.visual_projection)
                .map(|(c, d)| proj(c.hidden_size, d)),
        }
    }
}

/// A loaded CLIP folder.
#[derive(Debug)]
pub struct Clip {
    /// The model (the parts asked for).
    pub model: ClipModel,
    /// The folder's config (all towers it describes).
    pub config: ClipConfig,
    /// The folder.
    pub dir: PathBuf,
}

/// Read and validate `dir/config.json` of a CLIP folder (any of the three kinds).
pub fn read_clip_config(dir: &Path) -> Result<ClipConfig, WeightsError> {
    let spec = clip_spec();
    let value: serde_json::Value = weights::read_config(dir, &spec)?;
    ClipConfig::from_json(&value)
        .map_err(|reason| WeightsError::Unsupported { path: dir.join("config.json"), reason })
}

/// The tensor names of a safetensors file (its header only, through the `safetensors` crate).
fn tensor_names(path: &Path) -> Result<Vec<String>, WeightsError> {
    let read = |message: String| WeightsError::Read { path: path.into(), message };
    let file = std::fs::File::open(path).map_err(|e| read(e.to_string()))?;
    // SAFETY: the map is read-only and dropped before returning; a concurrent truncation of
    // the file would at worst make the header read fail.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| read(e.to_string()))?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&map[..]).map_err(|e| read(e.to_string()))?;
    Ok(meta.tensors().keys().cloned().collect())
}

/// Load a CLIP hub folder (`config.json` + `model.safetensors`) onto `device`: the towers of
/// `parts`, each with its projection (a full `CLIPModel` always has both; a tower-only folder
/// when its file holds `text_projection.weight` / `visual_projection.weight`). Every tensor of the
/// built parts is checked.
pub fn load_clip(dir: &Path, parts: ClipParts, device: &Device) -> Result<Clip, ClipError> {
    let config = read_clip_config(dir)?;
    let file = weights::weights_file(dir, &clip_spec())?;
    match parts {
        ClipParts::Text if config.text.is_none() => {
            return Err(ClipError::NoTextTower { dir: dir.into() });
        }
        ClipParts::Vision if config.vision.is_none() => {
            return Err(ClipError::NoVisionTower { dir: dir.into() });
        }
        _ => {}
    }
    let want_text = parts != ClipParts::Vision;
    let want_vision = parts != ClipParts::Text;
    let names = tensor_names(&file)?;
    let spec = WeightsSpec { remap: tower_remap(&config, &names), ..clip_spec() };
    let projection = |key: &str, tower_dim: usize| match config.projection_dim {
        Some(d) => Some(d),
        None => names.iter().any(|n| n == key).then_some(tower_dim),
    };
    let text = config.text.clone().filter(|_| want_text);
    let vision = config.vision.clone().filter(|_| want_vision);
    let build = ClipBuild {
        text_projection: text
            .as_ref()
            .and_then(|t| projection("text_projection.weight", t.projection_dim)),
        visual_projection: vision
            .as_ref()
            .and_then(|v| projection("visual_projection.weight", v.projection_dim)),
        text,
        vision,
    };
    let mut model = build.init(device);
    weights::load_module_file(&mut model, &file, &spec)?;
    Ok(Clip { model, config, dir: dir.into() })
}

/// Divide each row of `[n, d]` by its L2 norm (transformers' `image_embeds` / `text_embeds`).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt(); // [n, 1]
    x / norm
}

impl Clip {
    /// The text tower, or [`ClipError::NoTextTower`].
    pub fn text_model(&self) -> Result<&ClipTextTransformer, ClipError> {
        self.model
            .text_model
            .as_ref()
            .ok_or_else(|| ClipError::NoTextTower { dir: self.dir.clone() })
    }

    /// The vision tower, or [`ClipError::NoVisionTower`].
    pub fn vision_model(&self) -> Result<&ClipVisionTransformer, ClipError> {
        self.model
            .vision_model
            .as_ref()
            .ok_or_else(|| ClipError::NoVisionTower { dir: self.dir.clone() })
    }

    /// transformers `get_image_features`: `visual_projection(pooled)` of pixel values
    /// `[n, 3, S, S]` -> `[n, projection_dim]` (not normalised).
    pub fn get_image_features(&self, pixel_values: Tensor<4>) -> Result<Tensor<2>, ClipError> {
        let pooled = self.vision_model()?.forward(pixel_values).pooler_output; // [n, hidden]
        let proj =
            self.model.visual_projection.as_ref().ok_or_else(|| ClipError::NoProjection {
                dir: self.dir.clone(),
                tower: "vision",
                tower_title: "Vision",
                key: "visual_projection.weight",
            })?;
        Ok(proj.forward(pooled))
    }

    /// transformers `get_text_features`: `text_projection(pooled)` of token ids `[n, seq]` ->
    /// `[n, projection_dim]` (not normalised).
    pub fn get_text_features(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
    ) -> Result<Tensor<2>, ClipError> {
        let pooled = self.text_model()?.forward(input_ids, attention_mask).pooler_output; // [n, hidden]
        let proj = self.model.text_projection.as_ref().ok_or_else(|| ClipError::NoProjection {
            dir: self.dir.clone(),
            tower: "text",
            tower_title: "Text",
            key: "text_projection.weight",
        })?;
        Ok(proj.forward(pooled))
    }

    /// The tokenizer for this folder ([`tokenizer::find_tokenizer_dir`]), truncating and padding to
    /// the text tower's `max_position_embeddings` (77).
    pub fn tokenizer(&self) -> Result<ClipTokenizer, ClipError> {
        let max_length = self.text_model()?.embeddings.position_embedding.weight.dims()[0];
        let dir = tokenizer::find_tokenizer_dir(&self.dir)?;
        Ok(ClipTokenizer::from_dir(&dir, max_length)?)
    }

    /// The image preprocessing for this folder (its `preprocessor_config.json`, else the
    /// defaults for the vision tower's `image_size`); errors when its crop does not give the
    /// model's input size.
    pub fn image_processor(&self) -> Result<ClipImageProcessor, ClipError> {
        let size = self.vision_model()?.embeddings.image_size as u32;
        let processor = ClipImageProcessor::from_dir(&self.dir, size)?;
        if processor.crop != Some((size, size)) {
            return Err(PreprocessError::Unsupported {
                path: self.dir.join("preprocessor_config.json"),
                reason: format!(
                    "crop_size {:?} does not give the vision model's {size}x{size} input (do_center_crop must be true with crop_size {size})",
                    processor.crop
                ),
            }
            .into());
        }
        Ok(processor)
    }
}
