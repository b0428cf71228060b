//! Benchmarks behind `brainscope bench`: one module per benchmark, each printing medians and,
//! where a PyTorch reference script exists in `bench/`, the ratio against it.

pub mod blip;
pub mod clip;
pub mod console;
pub mod data;
pub mod gemm;
pub mod img2img;
pub mod train;
pub mod unet;
pub mod vae;
