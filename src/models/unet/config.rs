//! The `config.json` of a diffusers `UNet2DConditionModel` hub folder (`unet/`), checked for what
//! this port supports (SD 1.x and 2.x layouts).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A config value that diffusers accepts as one number for every block or as one per block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    /// The same for every block.
    All(usize),
    /// One per down block (in down-block order).
    Each(Vec<usize>),
}

impl PerBlock {
    /// Expand to `n` blocks; `Err` names the length mismatch.
    pub fn expand(&self, n: usize, field: &str) -> Result<Vec<usize>, String> {
        match self {
            Self::All(v) => Ok(vec![*v; n]),
            Self::Each(v) if v.len() == n => Ok(v.clone()),
            Self::Each(v) => {
                Err(format!("{field} has {} entries but there are {n} down blocks", v.len()))
            }
        }
    }
}

/// Down block types this port builds.
pub const DOWN_BLOCKS: &[&str] = &["CrossAttnDownBlock2D", "DownBlock2D"];
/// Up block types this port builds.
pub const UP_BLOCKS: &[&str] = &["CrossAttnUpBlock2D", "UpBlock2D"];
/// The mid block type this port builds (or `null`: no mid block).
pub const MID_BLOCK: &str = "UNetMidBlock2DCrossAttn";

/// The fields of diffusers' `UNet2DConditionModel` config that this port reads. Missing fields
/// take diffusers' defaults; the other fields are kept in `other` and checked by
/// [`UNet2DConditionModelConfig::validate`] to hold their default (a feature this port lacks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNet2DConditionModelConfig {
    /// diffusers class name; must be `UNet2DConditionModel` when present.
    #[serde(rename = "_class_name", default = "default_class")]
    pub class_name: String,
    /// Latent size the model was trained on (64 for SD 1.x).
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Input latent channels.
    #[serde(default = "four")]
    pub in_channels: usize,
    /// Output channels.
    #[serde(default = "four")]
    pub out_channels: usize,
    /// `cos | sin` instead of `sin | cos` in the time projection.
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    /// `downscale_freq_shift` of the time projection.
    #[serde(default)]
    pub freq_shift: f32,
    /// Down block types (`CrossAttnDownBlock2D` or `DownBlock2D`).
    #[serde(default = "default_down")]
    pub down_block_types: Vec<String>,
    /// Mid block type (`UNetMidBlock2DCrossAttn` or null).
    #[serde(default = "default_mid")]
    pub mid_block_type: Option<String>,
    /// Up block types (`CrossAttnUpBlock2D` or `UpBlock2D`).
    #[serde(default = "default_up")]
    pub up_block_types: Vec<String>,
    /// Channels of each down block.
    #[serde(default = "default_channels")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per down block (up blocks have one more).
    #[serde(default = "two")]
    pub layers_per_block: PerBlock,
    /// Padding of the downsampling convs.
    #[serde(default = "one")]
    pub downsample_padding: usize,
    /// Output scale of the mid block's resnets.
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f64,
    /// Activation; only `silu`.
    #[serde(default = "default_act")]
    pub act_fn: String,
    /// GroupNorm groups.
    #[serde(default = "default_groups")]
    pub norm_num_groups: Option<usize>,
    /// GroupNorm epsilon of the resnets and of `conv_norm_out`.
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// Width of the encoder hidden states (768 for SD 1.x, 1024 for SD 2.x).
    #[serde(default = "default_cross")]
    pub cross_attention_dim: PerBlock,
    /// Transformer blocks per `Transformer2DModel`.
    #[serde(default = "one_per_block")]
    pub transformer_layers_per_block: PerBlock,
    /// Number of heads per block: diffusers names it `attention_head_dim` for SD 1.x/2.x
    /// configs (a long-standing naming bug it keeps for compatibility).
    #[serde(default = "default_heads")]
    pub attention_head_dim: PerBlock,
    /// Must be null (diffusers itself refuses it for this model, for the same naming reason).
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    /// Linear instead of 1x1-conv projections in the transformers (SD 2.x).
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Attention in f32 under f16 (SD 2.1); this port computes in the model's dtype.
    #[serde(default)]
    pub upcast_attention: bool,
    /// Output scale of the other resnets.
    #[serde(default = "one_f")]
    pub resnet_out_scale_factor: f64,
    /// Width of the time embedding (default `4 * block_out_channels[0]`).
    #[serde(default)]
    pub time_embedding_dim: Option<usize>,
    /// Every other field of the file.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn default_class() -> String {
    "UNet2DConditionModel".into()
}
fn four() -> usize {
    4
}
fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn two() -> PerBlock {
    PerBlock::All(2)
}
fn one_per_block() -> PerBlock {
    PerBlock::All(1)
}
fn default_down() -> Vec<String> {
    let mut v = vec!["CrossAttnDownBlock2D".to_string(); 3];
    v.push("DownBlock2D".into());
    v
}
fn default_up() -> Vec<String> {
    let mut v = vec!["UpBlock2D".to_string()];
    v.extend(vec!["CrossAttnUpBlock2D".to_string(); 3]);
    v
}
fn default_mid() -> Option<String> {
    Some(MID_BLOCK.into())
}
fn default_channels() -> Vec<usize> {
    vec![320, 640, 1280, 1280]
}
fn default_act() -> String {
    "silu".into()
}
fn default_groups() -> Option<usize> {
    Some(32)
}
fn default_eps() -> f64 {
    1e-5
}
fn default_cross() -> PerBlock {
    PerBlock::All(1280)
}
fn default_heads() -> PerBlock {
    PerBlock::All(8)
}

/// Fields of the file that must keep diffusers' default here: (name, accepted values).
const MUST_BE_DEFAULT: &[(&str, &[&str])] = &[
    ("center_input_sample", &["false"]),
    ("only_cross_attention", &["false"]),
    ("dual_cross_attention", &["false"]),
    ("class_embed_type", &["null"]),
    ("addition_embed_type", &["null"]),
    ("num_class_embeds", &["null"]),
    ("encoder_hid_dim", &["null"]),
    ("encoder_hid_dim_type", &["null"]),
    ("resnet_time_scale_shift", &["\"default\""]),
    ("resnet_skip_time_act", &["false"]),
    ("time_embedding_type", &["\"positional\""]),
    ("time_embedding_act_fn", &["null"]),
    ("timestep_post_act", &["null"]),
    ("time_cond_proj_dim", &["null"]),
    ("conv_in_kernel", &["3"]),
    ("conv_out_kernel", &["3"]),
    ("projection_class_embeddings_input_dim", &["null"]),
    ("attention_type", &["\"default\""]),
    ("class_embeddings_concat", &["false"]),
    ("mid_block_only_cross_attention", &["null", "false"]),
    ("cross_attention_norm", &["null"]),
    ("reverse_transformer_layers_per_block", &["null"]),
];

/// The per-block quantities of a validated config, in down-block order.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockPlan {
    /// Resnets per down block.
    pub layers: Vec<usize>,
    /// Heads per block.
    pub heads: Vec<usize>,
    /// Cross-attention width per block.
    pub cross_attention_dim: Vec<usize>,
    /// Transformer blocks per block.
    pub transformer_layers: Vec<usize>,
}

impl UNet2DConditionModelConfig {
    /// The SD 1.x UNet config (`runwayml/stable-diffusion-v1-5/unet/config.json`).
    pub fn stable_diffusion_v1() -> Self {
        serde_json::from_str(
            r#"{"_class_name": "UNet2DConditionModel", "sample_size": 64,
                "cross_attention_dim": 768, "attention_head_dim": 8}"#,
        )
        .expect("the built-in SD 1.x config parses")
    }

    /// Width of the time embedding.
    pub fn time_embed_dim(&self) -> usize {
        self.time_embedding_dim.unwrap_or(4 * self.block_out_channels[0])
    }

    /// GroupNorm groups (validated to be present).
    pub fn groups(&self) -> usize {
        self.norm_num_groups.unwrap_or(32)
    }

    /// Check that this port supports the config and expand the per-block fields; `Err` holds
    /// the reason (the caller names the file).
    pub fn validate(&self) -> Result<BlockPlan, String> {
        if self.class_name != "UNet2DConditionModel" {
            return Err(format!(
                "_class_name is '{}', expected 'UNet2DConditionModel'",
                self.class_name
            ));
        }
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err("block_out_channels is empty".into());
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(format!(
                "{n} block_out_channels but {} down and {} up block types",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        for (field, types, known) in [
            ("down_block_types", &self.down_block_types, DOWN_BLOCKS),
            ("up_block_types", &self.up_block_types, UP_BLOCKS),
        ] {
            if let Some((i, t)) =
                types.iter().enumerate().find(|(_, t)| !known.contains(&t.as_str()))
            {
                return Err(format!(
                    "unsupported block type '{t}' ({field}[{i}]); this port builds {}",
                    known.join(" and ")
                ));
            }
        }
        if let Some(t) = self.mid_block_type.as_deref().filter(|t| *t != MID_BLOCK) {
            return Err(format!(
                "unsupported block type '{t}' (mid_block_type); this port builds {MID_BLOCK} or null"
            ));
        }
        if self.num_attention_heads.is_some() {
            return Err("num_attention_heads is set; SD 1.x/2.x configs give the head count as attention_head_dim (diffusers refuses it too)".into());
        }
        if self.act_fn != "silu" {
            return Err(format!("unsupported act_fn '{}' (only silu)", self.act_fn));
        }
        let groups = self.norm_num_groups.ok_or("norm_num_groups null is not supported")?;
        if groups == 0 {
            return Err("norm_num_groups is 0".into());
        }
        if let Some(c) = self.block_out_channels.iter().find(|c| *c % groups != 0) {
            return Err(format!("block channel {c} not divisible by norm_num_groups {groups}"));
        }
        for (key, accepted) in MUST_BE_DEFAULT {
            if let Some(v) = self.other.get(*key) {
                let s = v.to_string();
                if !accepted.contains(&s.as_str()) {
                    return Err(format!(
                        "{key} = {s} is not supported (this port needs {})",
                        accepted.join(" or ")
                    ));
                }
            }
        }
        let plan = BlockPlan {
            layers: self.layers_per_block.expand(n, "layers_per_block")?,
            heads: self.attention_head_dim.expand(n, "attention_head_dim")?,
            cross_attention_dim: self.cross_attention_dim.expand(n, "cross_attention_dim")?,
            transformer_layers: self
                .transformer_layers_per_block
                .expand(n, "transformer_layers_per_block")?,
        };
        for (i, (&c, &h)) in self.block_out_channels.iter().zip(&plan.heads).enumerate() {
            if h == 0 || c % h != 0 {
                return Err(format!(
                    "block {i}: {c} channels not divisible by attention_head_dim {h} (the head count)"
                ));
            }
        }
        if plan.layers.contains(&0) || plan.transformer_layers.contains(&0) {
            return Err("layers_per_block and transformer_layers_per_block must be positive".into());
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd15_defaults_validate() {
        let c = UNet2DConditionModelConfig::stable_diffusion_v1();
        let plan = c.validate().unwrap();
        assert_eq!(plan.heads, vec![8; 4]);
        assert_eq!(plan.cross_attention_dim, vec![768; 4]);
        assert_eq!(c.time_embed_dim(), 1280);
    }

    #[test]
    fn unsupported_blocks_and_features_are_named() {
        let mut c = UNet2DConditionModelConfig::stable_diffusion_v1();
        c.down_block_types[1] = "AttnDownBlock2D".into();
        let e = c.validate().unwrap_err();
        assert!(e.contains("'AttnDownBlock2D'") && e.contains("down_block_types[1]"), "{e}");
        let mut c = UNet2DConditionModelConfig::stable_diffusion_v1();
        c.other.insert("addition_embed_type".into(), "text_time".into());
        let e = c.validate().unwrap_err();
        assert!(e.contains("addition_embed_type"), "{e}");
    }
}
