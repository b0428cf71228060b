//! The experiment registry: every `experiments/<id>/` folder with its configuration, displayed
//! run state (from status.json and pid liveness) and metrics aggregate.
//!
//! [`scan`] reads everything once; [`Registry::refresh`] keeps a metrics tail per experiment so
//! repeated refreshes (the console) only read what was appended.

use super::config::{CONFIG_FILE, ConfigError, ExperimentConfig};
use super::metrics::{MetricsSummary, MetricsTail};
use super::process;
use super::state::{RunPaths, RunState, RunStatus, read_status};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Listing the experiments folder failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The experiments folder itself is missing or unreadable.
    #[error(
        "cannot read experiments folder {path}: {source} (pass --dir or create it with one <id>/experiment.toml per experiment)"
    )]
    Dir { path: PathBuf, source: std::io::Error },
    /// No experiment folder with that id.
    #[error("no experiment '{id}' in {dir} (expected {dir}/{id}/experiment.toml)")]
    NotFound { id: String, dir: PathBuf },
    /// The experiment exists but its configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// One experiment as the table and `brainscope status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentSummary {
    /// Model id.
    pub id: u32,
    /// `experiments/<id>/`.
    pub dir: PathBuf,
    /// Parsed experiment.toml.
    pub config: ExperimentConfig,
    /// Displayed state (a dead trainer pid shows as crashed).
    pub state: RunState,
    /// Why the state is what it is (crash message, "pid 123 died without an exit record", ...).
    pub message: String,
    /// status.json as recorded by the trainer, if it ever ran.
    pub status: Option<RunStatus>,
    /// Epochs completed.
    pub epoch: usize,
    /// Total epochs (from status.json when the run recorded it, else the config).
    pub epochs: usize,
    /// Steps completed.
    pub step: u64,
    /// Total steps (0 when unknown).
    pub total_steps: u64,
    /// Latest train loss.
    pub last_loss: Option<f64>,
    /// Latest learning rate.
    pub last_lr: Option<f64>,
    /// Best validation L1.
    pub best_val_l1: Option<f64>,
    /// Epoch (0-based) of the best validation L1.
    pub best_epoch: Option<usize>,
    /// Estimated seconds to the end of the run (running experiments only).
    pub eta_secs: Option<f64>,
    /// The Slurm job of the latest submission (`None`: never submitted; runs locally).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::cluster::SlurmView>,
}

/// A folder under experiments/ that is not a valid experiment (shown, not fatal).
#[derive(Debug, Clone, Serialize)]
pub struct InvalidExperiment {
    /// The folder.
    pub dir: PathBuf,
    /// Why it was skipped.
    pub error: String,
}

/// Result of one scan: valid experiments sorted by id, and the folders skipped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scan {
    /// Valid experiments, ascending id.
    pub experiments: Vec<ExperimentSummary>,
    /// Folders with a missing or invalid experiment.toml.
    pub invalid: Vec<InvalidExperiment>,
}

/// Read every experiment under `experiments_dir` once.
pub fn scan(experiments_dir: &Path) -> Result<Scan, RegistryError> {
    Registry::new(experiments_dir).refresh()
}

/// The state to display for a recorded status: `running` only while the recorded pid is alive
/// and is the same process (start time matches); otherwise the trainer died without writing its
/// exit record -> `crashed`.
pub fn effective_state(status: Option<&RunStatus>) -> (RunState, String) {
    let Some(s) = status else { return (RunState::Idle, String::new()) };
    if s.state != RunState::Running {
        return (s.state, s.message.clone());
    }
    let alive = s.pid.is_some_and(|pid| process::pid_matches(pid, s.pid_start));
    if alive {
        (RunState::Running, s.message.clone())
    } else if !s.host.is_empty() && s.host != process::hostname() {
        // Cannot check a pid on another machine (shared filesystem): trust the record.
        (RunState::Running, format!("running on {}", s.host))
    } else {
        let pid = s.pid.map_or("?".into(), |p| p.to_string());
        (RunState::Crashed, format!("trainer pid {pid} died without an exit record"))
    }
}

/// Find one experiment folder by id (`experiments_dir/<id>`) and load its config.
pub fn find(
    experiments_dir: &Path,
    id: &str,
) -> Result<(PathBuf, ExperimentConfig), RegistryError> {
    let dir = experiments_dir.join(id);
    if !dir.join(CONFIG_FILE).is_file() {
        return Err(RegistryError::NotFound {
            id: id.to_string(),
            dir: experiments_dir.to_path_buf(),
        });
    }
    let config = ExperimentConfig::load(&dir)?;
    Ok((dir, config))
}

#[derive(Debug)]
struct Entry {
    tail: MetricsTail,
    metrics: MetricsSummary,
}

/// Incremental registry: keeps one metrics tail per experiment between refreshes.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    entries: BTreeMap<PathBuf, Entry>,
}

impl Registry {
    /// A registry over `experiments_dir` (nothing read yet).
    pub fn new(experiments_dir: impl Into<PathBuf>) -> Self {
        Self { dir: experiments_dir.into(), entries: BTreeMap::new() }
    }

    /// The experiments folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-list the folder, re-read configs and status files, and read appended metrics.
    pub fn refresh(&mut self) -> Result<Scan, RegistryError> {
        let read = std::fs::read_dir(&self.dir)
            .map_err(|source| RegistryError::Dir { path: self.dir.clone(), source })?;
        let mut scan = Scan::default();
        let mut seen = Vec::new();
        for entry in read.flatten() {
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !dir.is_dir() || name.starts_with('.') {
                continue;
            }
            if !dir.join(CONFIG_FILE).is_file() {
                scan.invalid.push(InvalidExperiment { dir, error: format!("no {CONFIG_FILE}") });
                continue;
            }
            let config = match ExperimentConfig::load(&dir) {
                Ok(c) => c,
                Err(e) => {
                    scan.invalid.push(InvalidExperiment { dir, error: e.to_string() });
                    continue;
                }
            };
            seen.push(dir.clone());
            let entry = self.entries.entry(dir.clone()).or_insert_with(|| Entry {
                tail: MetricsTail::new(RunPaths::new(&dir).metrics()),
                metrics: MetricsSummary::default(),
            });
            // A metrics file that cannot be read right now keeps the previous aggregate.
            if let Ok(update) = entry.tail.poll() {
                entry.metrics.apply(&update);
            }
            scan.experiments.push(summarize(dir, config, &entry.metrics));
        }
        self.entries.retain(|dir, _| seen.contains(dir));
        crate::cluster::reconcile_scan(&mut scan.experiments);
        scan.experiments.sort_by_key(|e| e.id);
        scan.invalid.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(scan)
    }
}

/// Build one summary from its parts.
fn summarize(
    dir: PathBuf,
    config: ExperimentConfig,
    metrics: &MetricsSummary,
) -> ExperimentSummary {
    let (status, mut message) = match read_status(&RunPaths::new(&dir).status()) {
        Ok(s) => (s, String::new()),
        Err(e) => (None, format!("unreadable status: {e}")),
    };
    let (state, state_message) = effective_state(status.as_ref());
    if message.is_empty() {
        message = state_message;
    }
    let (epoch, epochs, step, total_steps) = match &status {
        Some(s) => (s.epoch, s.epochs, s.step.max(metrics.last_step), s.total_steps),
        None => (0, config.train.epochs, 0, 0),
    };
    let eta_secs = match (state, metrics.steps_per_sec()) {
        (RunState::Running, Some(rate)) if total_steps > step => {
            Some((total_steps - step) as f64 / rate)
        }
        _ => None,
    };
    ExperimentSummary {
        id: config.id,
        dir,
        config,
        state,
        message,
        status,
        epoch,
        epochs,
        step,
        total_steps,
        last_loss: metrics.last_loss,
        last_lr: metrics.last_lr,
        best_val_l1: metrics.best_val.map(|(_, l1)| l1),
        best_epoch: metrics.best_val.map(|(e, _)| e),
        eta_secs,
        slurm: None,
    }
}
