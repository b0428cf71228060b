//! The UNet's blocks (diffusers `unet_2d_blocks`): [`DownBlock`] = `CrossAttnDownBlock2D` /
//! `DownBlock2D`, [`MidBlockCrossAttn`] = `UNetMidBlock2DCrossAttn`, [`UpBlock`] =
//! `CrossAttnUpBlock2D` / `UpBlock2D` (a plain block is the same module without `attentions`).

use burn::prelude::*;

use crate::models::diffusers::resnet::{ResnetBlock2d, ResnetBlock2dConfig};
use crate::models::diffusers::sampling::{Downsample2d, Upsample2d};
use crate::models::diffusers::transformer::{Transformer2dModel, Transformer2dModelConfig};

/// What the blocks of one UNet share (from its config).
#[derive(Config, Debug)]
pub struct BlockCommon {
    /// Time embedding width.
    pub temb_channels: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// Resnet GroupNorm epsilon (`norm_eps`).
    pub eps: f64,
    /// Linear transformer projections.
    pub use_linear_projection: bool,
    /// Resnet output scale (`resnet_out_scale_factor`).
    #[config(default = 1.0)]
    pub output_scale_factor: f64,
}

/// The transformer part of a cross-attention block.
#[derive(Config, Debug)]
pub struct CrossAttnSpec {
    /// Heads (`attention_head_dim` of SD 1.x/2.x configs); head width = channels / heads.
    pub heads: usize,
    /// Encoder hidden state width.
    pub cross_attention_dim: usize,
    /// Transformer blocks per `Transformer2DModel`.
    pub transformer_layers: usize,
}

impl BlockCommon {
    fn resnet(&self, i: usize, o: usize, device: &Device) -> ResnetBlock2d {
        ResnetBlock2dConfig::new(i, o, self.groups)
            .with_temb_channels(Some(self.temb_channels))
            .with_eps(self.eps)
            .with_output_scale_factor(self.output_scale_factor)
            .init(device)
    }

    fn transformer(
        &self,
        channels: usize,
        spec: &CrossAttnSpec,
        device: &Device,
    ) -> Transformer2dModel {
        Transformer2dModelConfig::new(
            channels,
            spec.heads,
            channels / spec.heads,
            spec.cross_attention_dim,
            self.groups,
        )
        .with_num_layers(spec.transformer_layers)
        .with_use_linear_projection(self.use_linear_projection)
        .init(device)
    }

    /// A down or up block's `attentions`: `n` transformers of `channels` for a cross-attention
    /// block (`spec`), none for a plain one.
    fn transformers(
        &self,
        n: usize,
        channels: usize,
        spec: Option<&CrossAttnSpec>,
        device: &Device,
    ) -> Vec<Transformer2dModel> {
        spec.map_or_else(Vec::new, |spec| {
            (0..n).map(|_| self.transformer(channels, spec, device)).collect()
        })
    }
}

/// One step of a down or up block: resnet `j`, then transformer `j` when the block has
/// `attentions`. `[B, in, H, W] -> [B, out, H, W]`.
fn resnet_step(
    resnets: &[ResnetBlock2d],
    attentions: &[Transformer2dModel],
    j: usize,
    x: Tensor<4>,
    temb: &Tensor<2>,
    context: &Tensor<3>,
) -> Tensor<4> {
    let x = resnets[j].forward(x, Some(temb.clone()));
    match attentions.get(j) {
        Some(attn) => attn.forward(x, context.clone()),
        None => x,
    }
}

/// Configuration of a [`DownBlock`].
#[derive(Config, Debug)]
pub struct DownBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Resnets (`layers_per_block`).
    pub num_layers: usize,
    /// `Some` for `CrossAttnDownBlock2D`, `None` (the default) for `DownBlock2D`.
    pub cross_attn: Option<CrossAttnSpec>,
    /// Whether a downsampler follows (all blocks but the last).
    pub add_downsample: bool,
    /// `downsample_padding`.
    pub downsample_padding: usize,
}

/// `CrossAttnDownBlock2D` / `DownBlock2D`. Keys: `resnets.N`, `attentions.N`, `downsamplers.0`.
#[derive(Module, Debug)]
pub struct DownBlock {
    /// The resnets.
    pub resnets: Vec<ResnetBlock2d>,
    /// One transformer after each resnet (cross-attention blocks), else empty.
    pub attentions: Vec<Transformer2dModel>,
    /// Zero or one downsampler.
    pub downsamplers: Vec<Downsample2d>,
}

impl DownBlockConfig {
    /// Build with random weights.
    pub fn init(&self, common: &BlockCommon, device: &Device) -> DownBlock {
        let (i, o) = (self.in_channels, self.out_channels);
        DownBlock {
            resnets: (0..self.num_layers)
                .map(|j| common.resnet(if j == 0 { i } else { o }, o, device))
                .collect(),
            attentions: common.transformers(self.num_layers, o, self.cross_attn.as_ref(), device),
            downsamplers: if self.add_downsample {
                vec![Downsample2d::new(o, self.downsample_padding, device)]
            } else {
                Vec::new()
            },
        }
    }
}

impl DownBlock {
    /// `x` `[B, in, H, W]`, `temb` `[B|1, temb]`, `context` `[B, M, cross]` -> `[B, out, H', W']`;
    /// pushes every intermediate state (after each resnet/transformer, after the downsampler)
    /// onto `skips` for the up blocks.
    pub fn forward(
        &self,
        mut x: Tensor<4>,
        temb: &Tensor<2>,
        context: &Tensor<3>,
        skips: &mut Vec<Tensor<4>>,
    ) -> Tensor<4> {
        for j in 0..self.resnets.len() {
            x = resnet_step(&self.resnets, &self.attentions, j, x, temb, context);
            skips.push(x.clone());
        }
        for down in &self.downsamplers {
            x = down.forward(x);
            skips.push(x.clone());
        }
        x
    }
}

/// Configuration of a [`MidBlockCrossAttn`].
#[derive(Config, Debug)]
pub struct MidBlockCrossAttnConfig {
    /// Channels (the last `block_out_channels`).
    pub channels: usize,
    /// Transformer part.
    pub cross_attn: CrossAttnSpec,
    /// Resnet output scale (`mid_block_scale_factor`).
    #[config(default = 1.0)]
    pub output_scale_factor: f64,
}

/// `UNetMidBlock2DCrossAttn` (`num_layers=1`): resnet -> transformer -> resnet. Keys:
/// `resnets.{0,1}`, `attentions.0`.
#[derive(Module, Debug)]
pub struct MidBlockCrossAttn {
    /// The resnets (one more than transformers).
    pub resnets: Vec<ResnetBlock2d>,
    /// The transformers.
    pub attentions: Vec<Transformer2dModel>,
}

impl MidBlockCrossAttnConfig {
    /// Build with random weights.
    pub fn init(&self, common: &BlockCommon, device: &Device) -> MidBlockCrossAttn {
        let c = self.channels;
        let common = common.clone().with_output_scale_factor(self.output_scale_factor);
        MidBlockCrossAttn {
            resnets: (0..2).map(|_| common.resnet(c, c, device)).collect(),
            attentions: vec![common.transformer(c, &self.cross_attn, device)],
        }
    }
}

impl MidBlockCrossAttn {
    /// `[B, C, H, W] -> [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>, temb: &Tensor<2>, context: &Tensor<3>) -> Tensor<4> {
        let mut x = self.resnets[0].forward(x, Some(temb.clone()));
        for (attn, res) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = attn.forward(x, context.clone());
            x = res.forward(x, Some(temb.clone()));
        }
        x
    }
}

/// Configuration of an [`UpBlock`].
#[derive(Config, Debug)]
pub struct UpBlockConfig {
    /// Channels of the skip connection of the block's last resnet (`in_channels`).
    pub in_channels: usize,
    /// Channels coming from the block below (`prev_output_channel`).
    pub prev_output_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Resnets (`layers_per_block + 1`).
    pub num_layers: usize,
    /// `Some` for `CrossAttnUpBlock2D`, `None` (the default) for `UpBlock2D`.
    pub cross_attn: Option<CrossAttnSpec>,
    /// Whether an upsampler follows (all blocks but the last).
    pub add_upsample: bool,
}

/// `CrossAttnUpBlock2D` / `UpBlock2D`. Keys: `resnets.N`, `attentions.N`, `upsamplers.0`.
#[derive(Module, Debug)]
pub struct UpBlock {
    /// The resnets (each on the concatenation with one skip state).
    pub resnets: Vec<ResnetBlock2d>,
    /// One transformer after each resnet (cross-attention blocks), else empty.
    pub attentions: Vec<Transformer2dModel>,
    /// Zero or one upsampler.
    pub upsamplers: Vec<Upsample2d>,
}

impl UpBlockConfig {
    /// Build with random weights.
    pub fn init(&self, common: &BlockCommon, device: &Device) -> UpBlock {
        let n = self.num_layers;
        let o = self.out_channels;
        UpBlock {
            resnets: (0..n)
                .map(|j| {
                    let skip = if j == n - 1 { self.in_channels } else { o };
                    let cin = if j == 0 { self.prev_output_channels } else { o };
                    common.resnet(cin + skip, o, device)
                })
                .collect(),
            attentions: common.transformers(n, o, self.cross_attn.as_ref(), device),
            upsamplers: if self.add_upsample {
                vec![Upsample2d::new(o, device)]
            } else {
                Vec::new()
            },
        }
    }
}

impl UpBlock {
    /// `x` `[B, prev, H, W]` -> `[B, out, H', W']`, popping one skip state per resnet from the
    /// end of `skips`; the upsampler resizes to `upsample_size` (the next skip's size).
    ///
    /// # Panics
    /// If `skips` holds fewer states than the block has resnets (a programming error).
    pub fn forward(
        &self,
        mut x: Tensor<4>,
        temb: &Tensor<2>,
        context: &Tensor<3>,
        skips: &mut Vec<Tensor<4>>,
        upsample_size: Option<[usize; 2]>,
    ) -> Tensor<4> {
        for j in 0..self.resnets.len() {
            let skip = skips.pop().expect("one skip state per up-block resnet");
            let input = Tensor::cat(vec![x, skip], 1); // [B, prev|out + skip, H, W]
            x = resnet_step(&self.resnets, &self.attentions, j, input, temb, context); // [B, out, H, W]
        }
        for up in &self.upsamplers {
            x = match upsample_size {
                Some(size) => up.forward_to(x, size),
                None => up.forward(x),
            };
        }
        x
    }
}
