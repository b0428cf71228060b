//! Experiments by model id: `experiments/<id>/experiment.toml` plus the run state that training
//! writes beside it (status.json, metrics.jsonl, train.log, checkpoints/, recon/, lock).

pub mod config;
pub mod state;
