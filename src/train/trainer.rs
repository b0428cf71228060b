//! The training loop of the low-level model, wrapped in the run record.
//!
//! [`run`] takes the experiment's lock, records `running` in status.json, trains (resuming from
//! `checkpoints/last` when the previous run did not finish), and records how it ended. SIGTERM,
//! SIGINT and SIGHUP stop it after the current step with a checkpoint (state `stopped`).

use crate::experiments::config::{ConfigError, ExperimentConfig};
use crate::experiments::run::{install_stop_flag, ActiveRun, RunError, RunOutcome};
use crate::experiments::state::{read_status, RunPaths, RunState};
use crate::train::checkpoint::CheckpointError;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// What to train and how.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// `experiments/<id>/`; its parent's parent is the project directory.
    pub experiment_dir: PathBuf,
    /// Device override (`cpu`, `wgpu`, `cuda[:N]`); `None` uses the experiment's.
    pub device: Option<String>,
    /// Epochs override.
    pub epochs: Option<usize>,
    /// Discard the run state and start from scratch.
    pub restart: bool,
    /// Show a progress bar (foreground on a terminal); otherwise plain log lines.
    pub progress: bool,
}

/// Training could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// experiment.toml is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Lock or status file.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The run already finished.
    #[error("experiment {dir} already finished all its epochs; pass --restart to train it again from scratch")]
    AlreadyDone { dir: PathBuf },
    /// Device not available.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// A checkpoint problem that no fallback could fix.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A run-state file could not be written or read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Anything from the data, latent cache, model or VAE layers.
    #[error("{0}")]
    Other(String),
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunOutcome::Done => write!(f, "done"),
            RunOutcome::Stopped => write!(f, "stopped (resume with `brainscope train`)"),
            RunOutcome::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

/// Refuse to start a run that already finished, unless restarting.
pub fn check_startable(experiment_dir: &Path, restart: bool) -> Result<(), TrainError> {
    let path = RunPaths::new(experiment_dir).status();
    let status = read_status(&path).map_err(|source| TrainError::Io { path, source })?;
    if !restart && status.is_some_and(|s| s.state == RunState::Done) {
        return Err(TrainError::AlreadyDone { dir: experiment_dir.to_path_buf() });
    }
    Ok(())
}

/// Project directory of an experiment folder: the parent of `experiments/`.
pub fn project_dir(experiment_dir: &Path) -> PathBuf {
    experiment_dir.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Train the experiment in this process, under its lock, recording the outcome in status.json.
/// Returns how the run ended; an `Err` only when it could not start (lock held, bad config,
/// already done). Failures after the start are recorded as `crashed` and returned as
/// [`RunOutcome::Failed`].
pub fn run(request: &TrainRequest) -> Result<RunOutcome, TrainError> {
    let config = ExperimentConfig::load(&request.experiment_dir)?;
    let device_name = request.device.clone().unwrap_or_else(|| config.train.device.clone());
    crate::backend::device(&device_name)?;
    check_startable(&request.experiment_dir, request.restart)?;
    let epochs = request.epochs.unwrap_or(config.train.epochs);
    let mut active = ActiveRun::start(&request.experiment_dir, epochs)?;
    let stop = install_stop_flag().map_err(|source| TrainError::Io { path: PathBuf::from("signal handlers"), source })?;
    let outcome = match train_locked(request, &config, &device_name, epochs, &mut active, &stop) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            RunOutcome::Failed(e.to_string())
        }
    };
    active.finish(&outcome)?;
    Ok(outcome)
}

/// The training itself, with the lock held.
fn train_locked(
    _request: &TrainRequest,
    _config: &ExperimentConfig,
    _device: &str,
    _epochs: usize,
    _active: &mut ActiveRun,
    _stop: &AtomicBool,
) -> Result<RunOutcome, TrainError> {
    Err(TrainError::Other("the low-level model is not merged into this build yet".into()))
}
