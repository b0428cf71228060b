//! Diffusion pipelines over the ported models: Stable Diffusion 1.x img2img
//! ([`img2img`], diffusers' `StableDiffusionImg2ImgPipeline`) from a hub pipeline folder
//! ([`sd::SdPipeline`]), and the paper's guided reconstruction ([`guided`]: BLIP caption ->
//! img2img per sample of an experiment, `brainscope recon`).

pub mod guided;
pub mod img2img;
pub mod sd;

pub use img2img::{Img2ImgOptions, LatentMode, NoisePredictor, Randomness, img2img};
pub use sd::{PipelineError, SdPipeline};
