//! [`TrainError`]: why a training run could not start or failed, one typed variant per cause.

use crate::data::DataError;
use crate::demo::DemoError;
use crate::experiments::config::ConfigError;
use crate::experiments::run::RunError;
use crate::imageio::ImageIoError;
use crate::latents::LatentError;
use crate::models::lowlevel::LowLevelError;
use crate::models::weights::WeightsError;
use crate::train::adamw::AdamWError;
use crate::train::checkpoint::CheckpointError;
use crate::train::onecycle::OneCycleError;
use crate::train::plan::PlanChange;
use std::path::PathBuf;

/// Training could not start or failed. Messages name the file or key and the fix; the
/// underlying error is the `source` (print with [`crate::errors::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// experiment.toml is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Lock or status file.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The run already finished.
    #[error(
        "experiment {dir} already finished all its epochs; pass --restart to train it again from scratch"
    )]
    AlreadyDone {
        /// The experiment folder.
        dir: PathBuf,
    },
    /// Device not available.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// A checkpoint problem that no fallback could fix.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A run-state file could not be written or read.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done (`read`, `append to`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The stop-signal handlers could not be installed.
    #[error("cannot install the SIGTERM/SIGINT/SIGHUP handlers that stop a run gracefully")]
    Signals(#[source] std::io::Error),
    /// `--restart` could not delete an old run file: nothing was trained.
    #[error(
        "--restart cannot delete {path}, so the old run's files would mix into the new one; nothing was trained: fix the cause, then rerun with --restart"
    )]
    Restart {
        /// The file or folder that could not be deleted.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Generating the demo dataset failed.
    #[error("cannot prepare the demo dataset")]
    Demo(#[from] DemoError),
    /// The dataset is unusable.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The experiment's ROI set does not fit the dataset's atlas.
    #[error("[data] roi_set = {roi_set:?} in {config} does not fit the dataset")]
    Roi {
        /// The experiment.toml.
        config: PathBuf,
        /// The ROI set as written.
        roi_set: String,
        /// What the atlas says.
        source: DataError,
    },
    /// Too few samples for the configured split.
    #[error(
        "{root}: {n} samples, {probe} held out as the probe set, the rest split into {train} train / {val} val; both need at least one: lower [data] probe or change [train] val_fraction in {config}"
    )]
    EmptySplit {
        /// Data root.
        root: PathBuf,
        /// Samples.
        n: usize,
        /// Probe rows held out first (`[data] probe`, clamped to the samples).
        probe: usize,
        /// Training rows.
        train: usize,
        /// Validation rows.
        val: usize,
        /// The experiment.toml.
        config: PathBuf,
    },
    /// The latent cache could not be built or read.
    #[error(transparent)]
    Latents(#[from] LatentError),
    /// The VAE (for reconstructions) could not be loaded.
    #[error(transparent)]
    Vae(#[from] WeightsError),
    /// The low-level model cannot be built for the data, or its weights do not load.
    #[error(transparent)]
    Model(#[from] LowLevelError),
    /// The optimizer state does not load or save.
    #[error(transparent)]
    Optimizer(#[from] AdamWError),
    /// The learning-rate schedule is invalid.
    #[error(transparent)]
    Schedule(#[from] OneCycleError),
    /// A reconstruction image could not be read or written.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// A stimulus image could not be written as a reconstruction target.
    #[error("cannot write {path}")]
    Png {
        /// The PNG.
        path: PathBuf,
        /// Encoder error.
        source: image::ImageError,
    },
    /// Values could not be read back from the device.
    #[error("cannot read the {what} back from the device: {message}")]
    Tensor {
        /// Which values.
        what: &'static str,
        /// burn's description.
        message: String,
    },
    /// The checkpoint's shuffle RNG state is damaged.
    #[error(transparent)]
    RngState(#[from] crate::train::plan::RngStateError),
    /// experiment.toml now gives another run plan than the checkpoint was made with.
    #[error(
        "cannot resume from {checkpoint}: {config} now gives another run plan than the checkpoint was made with:\n{}\nfix: restore those values in {config}, or pass --restart to discard this run and start over",
        changes.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n")
    )]
    PlanChanged {
        /// The checkpoint folder.
        checkpoint: PathBuf,
        /// The experiment.toml.
        config: PathBuf,
        /// Each changed key.
        changes: Vec<PlanChange>,
    },
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at step {step} (epoch {epoch}): loss {loss}; fix: lower [train] max_lr (now {max_lr}) in {config}, then retrain with --restart"
    )]
    Diverged {
        /// The loss value.
        loss: f64,
        /// Step at which it happened (1-based: steps completed).
        step: u64,
        /// Epoch (0-based).
        epoch: usize,
        /// The peak learning rate of the run.
        max_lr: f64,
        /// The experiment.toml.
        config: PathBuf,
    },
}
