//! Experiments by model id: `experiments/<id>/experiment.toml` plus the run state that training
//! writes beside it (status.json, metrics.jsonl, train.log, checkpoints/, recon/, lock).
//!
//! - [`config`]: the experiment file; [`state`]: status.json and metrics record formats.
//! - [`registry`]: list experiments with their displayed state ([`registry::scan`]).
//! - [`metrics`]: tolerant and incremental metrics.jsonl reading.
//! - [`run`]: the trainer's side (lock, status writes, stop signals).
//! - [`launch`] / [`control`]: detached start and graceful stop from the CLI and console.
//! - [`create`]: new experiments from an existing one (`brainscope new`, `brainscope sweep`).

pub mod config;
pub mod control;
pub mod create;
pub mod launch;
pub mod lock;
pub mod metrics;
pub mod process;
pub mod registry;
pub mod run;
pub mod state;
