//! brainscope: fMRI-to-image reconstruction experiments in the terminal.
//!
//! See `ARCHITECTURE.md` for the map of modules to responsibilities.

pub mod allocator;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod data;
pub mod demo;
pub mod dtype;
pub mod errors;
pub mod eval;
pub mod experiments;
pub(crate) mod huge_pages;
pub mod imageio;
pub mod latents;
pub mod models;
pub mod pipelines;
pub mod rng;
pub mod schedulers;
pub mod train;
pub mod tui;
