//! diffusers `UNet2DConditionModel` (SD 1.x / 2.x): time projection + embedding, `conv_in`, down
//! blocks (skip states), mid block, up blocks (consuming the skips), `conv_norm_out` -> SiLU ->
//! `conv_out`.

use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::blocks::{
    BlockCommon, CrossAttnSpec, DownBlock, DownBlockConfig, MidBlockCrossAttn,
    MidBlockCrossAttnConfig, UpBlock, UpBlockConfig,
};
use super::config::{BlockPlan, UNet2DConditionModelConfig};
use crate::models::diffusers::embeddings::{
    TimestepEmbedding, TimestepEmbeddingConfig, timestep_embedding,
};
use crate::models::diffusers::resnet::{conv3x3, group_norm_eps};
use crate::models::fast_cpu;

/// The parameter-free sinusoidal time projection (diffusers `Timesteps`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeProj {
    /// Output width (`block_out_channels[0]`).
    pub dim: usize,
    /// `cos | sin` order.
    pub flip_sin_to_cos: bool,
    /// `downscale_freq_shift`.
    pub freq_shift: f32,
}

/// The UNet. Keys equal diffusers' state dict after [`super::remap`].
#[derive(Module, Debug)]
pub struct UNet2DConditionModel {
    /// 3x3 conv from the latent to `block_out_channels[0]`.
    pub conv_in: Conv2d,
    /// `linear_1` -> SiLU -> `linear_2` on the sinusoidal projection.
    pub time_embedding: TimestepEmbedding,
    /// Down blocks.
    pub down_blocks: Vec<DownBlock>,
    /// `UNetMidBlock2DCrossAttn` (absent when `mid_block_type` is null).
    pub mid_block: Option<MidBlockCrossAttn>,
    /// Up blocks (widest first).
    pub up_blocks: Vec<UpBlock>,
    /// Final GroupNorm.
    pub conv_norm_out: GroupNorm,
    /// 3x3 conv to the output channels.
    pub conv_out: Conv2d,
    /// Time projection settings.
    #[module(skip)]
    pub time_proj: TimeProj,
}

impl UNet2DConditionModelConfig {
    /// Build the model with random weights from a config and its [`BlockPlan`] (from
    /// [`UNet2DConditionModelConfig::validate`]).
    pub fn init(&self, plan: &BlockPlan, device: &Device) -> UNet2DConditionModel {
        let chans = &self.block_out_channels;
        let n = chans.len();
        let temb = self.time_embed_dim();
        let common =
            BlockCommon::new(temb, self.groups(), self.norm_eps, self.use_linear_projection)
                .with_output_scale_factor(self.resnet_out_scale_factor);
        let spec = |i: usize| {
            CrossAttnSpec::new(
                plan.heads[i],
                plan.cross_attention_dim[i],
                plan.transformer_layers[i],
            )
        };
        let down_blocks = (0..n)
            .map(|i| {
                let cin = if i == 0 { chans[0] } else { chans[i - 1] };
                let cross = (self.down_block_types[i] == "CrossAttnDownBlock2D").then(|| spec(i));
                DownBlockConfig::new(
                    cin,
                    chans[i],
                    plan.layers[i],
                    i + 1 < n,
                    self.downsample_padding,
                )
                .with_cross_attn(cross)
                .init(&common, device)
            })
            .collect();
        let mid_block = self.mid_block_type.as_ref().map(|_| {
            MidBlockCrossAttnConfig::new(chans[n - 1], spec(n - 1))
                .with_output_scale_factor(self.mid_block_scale_factor)
                .init(&common, device)
        });
        // Up blocks walk the blocks reversed: block i mirrors down block r = n - 1 - i.
        let up_blocks = (0..n)
            .map(|i| {
                let r = n - 1 - i;
                let prev = chans[(r + 1).min(n - 1)];
                let skip_in = chans[r.saturating_sub(1)];
                let cross = (self.up_block_types[i] == "CrossAttnUpBlock2D").then(|| spec(r));
                UpBlockConfig::new(skip_in, prev, chans[r], plan.layers[r] + 1, i + 1 < n)
                    .with_cross_attn(cross)
                    .init(&common, device)
            })
            .collect();
        UNet2DConditionModel {
            conv_in: conv3x3(self.in_channels, chans[0], device),
            time_embedding: TimestepEmbeddingConfig::new(chans[0], temb).init(device),
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm_eps(self.groups(), chans[0], self.norm_eps, device),
            conv_out: conv3x3(chans[0], self.out_channels, device),
            time_proj: TimeProj {
                dim: chans[0],
                flip_sin_to_cos: self.flip_sin_to_cos,
                freq_shift: self.freq_shift,
            },
        }
    }
}

impl UNet2DConditionModel {
    /// Predicted noise for one timestep shared by the whole batch (diffusers' scalar
    /// `timestep`, the pipelines' case): `sample` `[B, 4, h, w]` (any h, w), `timestep` in
    /// scheduler units (0..1000), `encoder_hidden_states` `[B, 77, cross_attention_dim]`
    /// `-> [B, 4, h, w]`.
    pub fn forward(
        &self,
        sample: Tensor<4>,
        timestep: f32,
        encoder_hidden_states: Tensor<3>,
    ) -> Tensor<4> {
        self.forward_timesteps(sample, &[timestep], encoder_hidden_states)
    }

    /// As [`UNet2DConditionModel::forward`] with one timestep per batch entry (`timesteps.len()`
    /// is `B`, or 1 to share it).
    ///
    /// # Panics
    /// If `timesteps` has neither 1 nor `B` entries.
    pub fn forward_timesteps(
        &self,
        sample: Tensor<4>,
        timesteps: &[f32],
        encoder_hidden_states: Tensor<3>,
    ) -> Tensor<4> {
        let b = sample.dims()[0];
        assert!(
            timesteps.len() == 1 || timesteps.len() == b,
            "{} timesteps for a batch of {b}",
            timesteps.len()
        );
        let device = sample.device();
        let tp = self.time_proj;
        let t_emb =
            timestep_embedding(timesteps, tp.dim, tp.flip_sin_to_cos, tp.freq_shift, &device); // [B|1, c0]
        let temb = self.time_embedding.forward(t_emb); // [B|1, temb]
        let context = &encoder_hidden_states;

        let mut x = fast_cpu::conv2d(&self.conv_in, sample); // [B, c0, h, w]
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            x = block.forward(x, &temb, context, &mut skips);
        }
        if let Some(mid) = &self.mid_block {
            x = mid.forward(x, &temb, context); // [B, c_last, h/f, w/f]
        }
        for block in &self.up_blocks {
            let n = block.resnets.len();
            // The upsampler targets the size of the skip state the next block starts with.
            let upsample_size = (!block.upsamplers.is_empty()).then(|| {
                let next = &skips[skips.len() - n - 1];
                let [_, _, sh, sw] = next.dims();
                [sh, sw]
            });
            x = block.forward(x, &temb, context, &mut skips, upsample_size);
        }
        let x = fast_cpu::group_norm(&self.conv_norm_out, x, true); // [B, c0, h, w]
        fast_cpu::conv2d(&self.conv_out, x) // [B, out, h, w]
    }
}
