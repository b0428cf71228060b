//! Training: optimizer and schedule (exactly as PyTorch), the training run (split into resume,
//! epoch loop and end-of-epoch work), checkpoints, metrics.

pub mod adamw;
pub mod checkpoint;
mod dataset;
mod epoch;
mod epoch_end;
pub mod error;
mod learner;
pub mod metrics;
pub mod onecycle;
pub mod plan;
mod resume;
pub mod trainer;
