//! Diffusion pipelines over the ported models: Stable Diffusion 1.x img2img
//! ([`img2img`], diffusers' `StableDiffusionImg2ImgPipeline`) from a hub pipeline folder
//! ([`sd::SdPipeline`]).

pub mod img2img;
pub mod sd;

pub use img2img::{Img2ImgOptions, LatentMode, NoisePredictor, Randomness, img2img};
pub use sd::{PipelineError, SdPipeline};
