//! Evaluation: automatic reconstruction metrics, `eval` (one experiment's checkpoint on a
//! split), `vote` (the best reconstruction per sample across experiments) and human (2-AFC)
//! ratings.

pub mod clip_features;
pub mod evaluate;
pub mod human;
pub mod metrics;
pub mod progress;
pub mod vote;
