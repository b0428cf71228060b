//! Training: optimizer and schedule (exactly as PyTorch), the training loop, checkpoints, metrics.

pub mod adamw;
pub mod checkpoint;
pub mod metrics;
pub mod onecycle;
pub mod trainer;
