//! The `config.json` of a transformers BLIP captioning folder (`BlipConfig` with `text_config` and
//! `vision_config`, e.g. Salesforce/blip-image-captioning-large). Unknown fields are ignored;
//! missing ones take transformers' defaults.

use serde::{Deserialize, Serialize};

use crate::models::clip::encoder::Activation;

/// transformers `BlipVisionConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlipVisionConfig {
    /// Width of the ViT.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Input side in pixels (square; 384 for the captioning checkpoints).
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// MLP activation (`gelu`: exact erf GELU).
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

impl Default for BlipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 384,
            patch_size: 16,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

impl BlipVisionConfig {
    /// Patches plus the class token.
    pub fn num_positions(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }
}

/// transformers `BlipTextConfig` (the BERT decoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlipTextConfig {
    /// Vocabulary size (30524: BERT uncased + `[DEC]` + `[ENC]`).
    pub vocab_size: usize,
    /// Width of the decoder.
    pub hidden_size: usize,
    /// Width of the image embeddings the cross-attention reads (the vision `hidden_size`).
    pub encoder_hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Positions (longest sequence, prompt included).
    pub max_position_embeddings: usize,
    /// Activation of the MLP and of the LM head transform (`gelu`).
    pub hidden_act: String,
    /// LayerNorm epsilon (1e-12).
    pub layer_norm_eps: f64,
    /// The decoder's begin token `[DEC]` (replaces `[CLS]`).
    pub bos_token_id: u32,
    /// Padding id.
    pub pad_token_id: u32,
    /// `[SEP]`: generation stops on it.
    pub sep_token_id: u32,
}

impl Default for BlipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30524,
            hidden_size: 768,
            encoder_hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 512,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            bos_token_id: 30522,
            pad_token_id: 0,
            sep_token_id: 102,
        }
    }
}

/// transformers `BlipConfig` as `BlipForConditionalGeneration` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct BlipConfig {
    /// The text decoder.
    pub text_config: BlipTextConfig,
    /// The vision encoder.
    pub vision_config: BlipVisionConfig,
}

impl BlipConfig {
    /// Check what this port supports. `Err` holds the reason.
    pub fn validate(&self) -> Result<(), String> {
        let (v, t) = (&self.vision_config, &self.text_config);
        for (name, width, heads) in [
            ("vision_config", v.hidden_size, v.num_attention_heads),
            ("text_config", t.hidden_size, t.num_attention_heads),
        ] {
            if heads == 0 || !width.is_multiple_of(heads) {
                return Err(format!(
                    "{name}.hidden_size {width} is not divisible by {heads} heads"
                ));
            }
        }
        for (name, act) in [("vision_config", &v.hidden_act), ("text_config", &t.hidden_act)] {
            if Activation::from_name(act).is_none() {
                return Err(format!("{name}.hidden_act '{act}' is not supported"));
            }
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if t.encoder_hidden_size != v.hidden_size {
            return Err(format!(
                "text_config.encoder_hidden_size {} differs from vision_config.hidden_size {}",
                t.encoder_hidden_size, v.hidden_size
            ));
        }
        for (name, id) in
            [("bos", t.bos_token_id), ("sep", t.sep_token_id), ("pad", t.pad_token_id)]
        {
            if id as usize >= t.vocab_size {
                return Err(format!(
                    "text_config.{name}_token_id {id} >= vocab_size {}",
                    t.vocab_size
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c: BlipConfig = serde_json::from_str(
            r#"{"text_config": {"encoder_hidden_size": 1024},
            "vision_config": {"hidden_size": 1024, "num_attention_heads": 16}}"#,
        )
        .unwrap();
        assert_eq!(c.vision_config.num_positions(), 577);
        assert_eq!(c.text_config.bos_token_id, 30522);
        assert!(c.validate().is_ok());
        let mut bad = c.clone();
        bad.text_config.encoder_hidden_size = 768;
        assert!(bad.validate().unwrap_err().contains("encoder_hidden_size"));
        let mut bad = c;
        bad.vision_config.hidden_act = "relu".into();
        assert!(bad.validate().unwrap_err().contains("relu"));
    }
}
