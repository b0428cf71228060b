//! Evaluation: automatic reconstruction metrics and human (2-AFC) ratings.

pub mod human;
pub mod metrics;
