//! burn models that load the published weights (diffusers / transformers safetensors layout).

pub mod blip;
pub mod clip;
pub mod fast_cpu;
pub mod lowlevel;
pub mod vae;
pub mod weights;
