//! The `config.json` of a transformers CLIP hub folder: a full `CLIPConfig` (`text_config` +
//! `vision_config`, e.g. openai/clip-vit-large-patch14), or a folder holding one tower only, whose
//! `config.json` is a bare `CLIPTextConfig` (SD 1.x `text_encoder/`) or `CLIPVisionConfig`
//! (an `image_encoder/`). Unknown fields are ignored; missing ones take transformers' defaults.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// transformers `CLIPTextConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    /// Token vocabulary size (49408 for OpenAI's BPE).
    pub vocab_size: usize,
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Output width of `text_projection` (tower-only folders; a full `CLIPConfig` uses its own).
    pub projection_dim: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Positions (77: the tokenizer's maximum length).
    pub max_position_embeddings: usize,
    /// `quick_gelu`, `gelu`, `gelu_new` or `gelu_pytorch_tanh`.
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// The end-of-text id. `2` marks configs from before transformers PR #24773, which pool at
    /// the argmax of the ids (the eos token has the largest id in OpenAI's vocabulary).
    #[serde(deserialize_with = "int_or_first")]
    pub eos_token_id: i64,
    /// The begin-of-text id.
    pub bos_token_id: i64,
    /// The padding id of the config (unused by the model; the tokenizer pads).
    pub pad_token_id: i64,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
            bos_token_id: 49406,
            pad_token_id: 1,
        }
    }
}

/// transformers `CLIPVisionConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Output width of `visual_projection` (tower-only folders).
    pub projection_dim: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Input channels.
    pub num_channels: usize,
    /// Input side in pixels (square).
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// `quick_gelu`, `gelu`, `gelu_new` or `gelu_pytorch_tanh`.
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// The vision tower of openai/clip-vit-large-patch14 (ViT-L/14 at 224 px, projection 768).
    pub fn vit_large_patch14() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4096,
            projection_dim: 768,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            patch_size: 14,
            ..Self::default()
        }
    }

    /// Patches per side.
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Sequence length: one class token + the patches.
    pub fn num_positions(&self) -> usize {
        self.patches_per_side().pow(2) + 1
    }
}

/// Which parts a CLIP folder holds, and their configs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// The text tower, if the folder has one.
    pub text: Option<ClipTextConfig>,
    /// The vision tower, if the folder has one.
    pub vision: Option<ClipVisionConfig>,
    /// Projection width of a full `CLIPModel` (both projections); `None` for tower-only folders,
    /// whose projection (if any) uses the tower config's `projection_dim`.
    pub projection_dim: Option<usize>,
}

/// How `config.json` names its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipConfigKind {
    /// `CLIPConfig` (`model_type: "clip"`, or `text_config`/`vision_config` present).
    Full,
    /// `CLIPTextConfig` (`model_type: "clip_text_model"`).
    TextOnly,
    /// `CLIPVisionConfig` (`model_type: "clip_vision_model"`).
    VisionOnly,
}

fn int_or_first<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Number(n) => {
            n.as_i64().ok_or_else(|| D::Error::custom("eos_token_id: not an integer"))
        }
        Value::Array(items) => items
            .first()
            .and_then(Value::as_i64)
            .ok_or_else(|| D::Error::custom("eos_token_id: empty or non-integer list")),
        other => Err(D::Error::custom(format!("eos_token_id: expected an integer, got {other}"))),
    }
}

/// Merge the legacy `<name>_dict` sub-config (older transformers wrote both; the `_dict` one wins,
/// as in `CLIPConfig.__init__`) over `<name>`.
fn sub_config(root: &serde_json::Map<String, Value>, name: &str) -> Option<Value> {
    let base = root.get(name).filter(|v| v.is_object()).cloned();
    let legacy = root.get(&format!("{name}_dict")).filter(|v| v.is_object()).cloned();
    match (base, legacy) {
        (Some(Value::Object(mut b)), Some(Value::Object(l))) => {
            b.extend(l);
            Some(Value::Object(b))
        }
        (b, l) => l.or(b),
    }
}

impl ClipConfig {
    /// Parse a `config.json` value of any of the three kinds. `Err` holds the reason.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let root = value.as_object().ok_or("config.json is not a JSON object")?;
        let model_type = root.get("model_type").and_then(Value::as_str).unwrap_or("");
        let kind = match model_type {
            "clip" => ClipConfigKind::Full,
            "clip_text_model" => ClipConfigKind::TextOnly,
            "clip_vision_model" => ClipConfigKind::VisionOnly,
            _ if root.contains_key("text_config") || root.contains_key("vision_config") => {
                ClipConfigKind::Full
            }
            _ if root.contains_key("patch_size") => ClipConfigKind::VisionOnly,
            _ if root.contains_key("vocab_size") => ClipConfigKind::TextOnly,
            other => {
                return Err(format!(
                    "model_type '{other}' is not a CLIP config (expected clip, clip_text_model or clip_vision_model)"
                ));
            }
        };
        let parse_text = |v: Value| {
            serde_json::from_value::<ClipTextConfig>(v).map_err(|e| format!("text config: {e}"))
        };
        let parse_vision = |v: Value| {
            serde_json::from_value::<ClipVisionConfig>(v).map_err(|e| format!("vision config: {e}"))
        };
        let config = match kind {
            ClipConfigKind::Full => {
                let empty = || Value::Object(Default::default());
                let projection_dim =
                    root.get("projection_dim").and_then(Value::as_u64).unwrap_or(512) as usize;
                ClipConfig {
                    text: Some(parse_text(sub_config(root, "text_config").unwrap_or_else(empty))?),
                    vision: Some(parse_vision(
                        sub_config(root, "vision_config").unwrap_or_else(empty),
                    )?),
                    projection_dim: Some(projection_dim),
                }
            }
            ClipConfigKind::TextOnly => ClipConfig {
                text: Some(parse_text(value.clone())?),
                vision: None,
                projection_dim: None,
            },
            ClipConfigKind::VisionOnly => ClipConfig {
                text: None,
                vision: Some(parse_vision(value.clone())?),
                projection_dim: None,
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// The kind of folder this config describes.
    pub fn kind(&self) -> ClipConfigKind {
        match (&self.text, &self.vision) {
            (Some(_), Some(_)) => ClipConfigKind::Full,
            (Some(_), None) => ClipConfigKind::TextOnly,
            _ => ClipConfigKind::VisionOnly,
        }
    }

    /// Check that this port supports the config; `Err` holds the reason.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = &self.text {
            check_act(&t.hidden_act, "text_config")?;
            check_heads(t.hidden_size, t.num_attention_heads, "text_config")?;
            if t.num_hidden_layers == 0 || t.max_position_embeddings == 0 || t.vocab_size == 0 {
                return Err("text_config: num_hidden_layers, max_position_embeddings and vocab_size must be positive".into());
            }
        }
        if let Some(v) = &self.vision {
            check_act(&v.hidden_act, "vision_config")?;
            check_heads(v.hidden_size, v.num_attention_heads, "vision_config")?;
            if v.patch_size == 0 || v.image_size < v.patch_size {
                return Err(format!(
                    "vision_config: image_size {} and patch_size {} give no patches",
                    v.image_size, v.patch_size
                ));
            }
            if v.num_hidden_layers == 0 {
                return Err("vision_config: num_hidden_layers must be positive".into());
            }
        }
        Ok(())
    }
}

/// Names of the activations this port implements (transformers `ACT2FN` keys).
pub const ACTIVATIONS: [&str; 4] = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh"];

fn check_act(act: &str, which: &str) -> Result<(), String> {
    if ACTIVATIONS.contains(&act) {
        Ok(())
    } else {
        Err(format!(
            "{which}: unsupported hidden_act '{act}' (supported: {})",
            ACTIVATIONS.join(", ")
        ))
    }
}

fn check_heads(hidden: usize, heads: usize, which: &str) -> Result<(), String> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        Err(format!(
            "{which}: hidden_size {hidden} is not divisible by num_attention_heads {heads}"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_config_with_legacy_dicts_prefers_the_dict() {
        let v = json!({
            "model_type": "clip", "projection_dim": 768,
            "text_config": {"hidden_size": 768, "eos_token_id": 2},
            "text_config_dict": {"hidden_size": 768, "num_attention_heads": 12, "eos_token_id": 2},
            "vision_config": {"hidden_size": 1024, "patch_size": 14, "num_attention_heads": 16}
        });
        let c = ClipConfig::from_json(&v).unwrap();
        assert_eq!(c.kind(), ClipConfigKind::Full);
        assert_eq!(c.projection_dim, Some(768));
        let t = c.text.unwrap();
        assert_eq!((t.hidden_size, t.num_attention_heads, t.eos_token_id), (768, 12, 2));
        assert_eq!(c.vision.unwrap().num_positions(), 257);
    }

    #[test]
    fn tower_only_configs_and_defaults() {
        let text = json!({"model_type": "clip_text_model", "hidden_size": 768,
            "num_attention_heads": 12, "eos_token_id": [49407]});
        let c = ClipConfig::from_json(&text).unwrap();
        assert_eq!(c.kind(), ClipConfigKind::TextOnly);
        assert_eq!(c.text.as_ref().unwrap().eos_token_id, 49407);
        assert_eq!(c.text.unwrap().max_position_embeddings, 77);
        let vision = json!({"model_type": "clip_vision_model", "projection_dim": 64});
        let c = ClipConfig::from_json(&vision).unwrap();
        assert_eq!(c.kind(), ClipConfigKind::VisionOnly);
        assert_eq!(c.vision.unwrap().projection_dim, 64);
    }

    #[test]
    fn unsupported_configs_say_why() {
        let err = ClipConfig::from_json(&json!({"model_type": "bert"})).unwrap_err();
        assert!(err.contains("bert"), "{err}");
        let err =
            ClipConfig::from_json(&json!({"model_type": "clip_text_model", "hidden_act": "relu"}))
                .unwrap_err();
        assert!(err.contains("relu"), "{err}");
        let err = ClipConfig::from_json(
            &json!({"model_type": "clip_vision_model", "hidden_size": 10, "num_attention_heads": 3}),
        )
        .unwrap_err();
        assert!(err.contains("divisible"), "{err}");
    }
}
