//! Run state files written by a trainer and read by the console and `status`:
//! `status.json` ([`RunStatus`]) and `metrics.jsonl` (one [`MetricRecord`] per line).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File names inside an experiment folder.
pub mod files {
    /// Current run status (rewritten atomically).
    pub const STATUS: &str = "status.json";
    /// Append-only metrics, one JSON object per line.
    pub const METRICS: &str = "metrics.jsonl";
    /// Trainer stdout/stderr.
    pub const LOG: &str = "train.log";
    /// Checkpoints folder (`last.*`, `best.*`).
    pub const CHECKPOINTS: &str = "checkpoints";
    /// Reconstructions: `recon/epoch-NNN/*.png`.
    pub const RECON: &str = "recon";
    /// Held (flock) while a trainer runs.
    pub const LOCK: &str = "lock";
}

/// What an experiment is doing, as the console and `status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Never trained.
    Idle,
    /// A trainer holds the lock and its pid is alive.
    Running,
    /// Finished all epochs (exit code 0).
    Done,
    /// Stopped by the user (`x` / `brainscope stop`).
    Stopped,
    /// Non-zero exit, or the pid died without an exit record.
    Crashed,
}

impl RunState {
    /// Lower-case name (`running`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Running => "running",
            RunState::Done => "done",
            RunState::Stopped => "stopped",
            RunState::Crashed => "crashed",
        }
    }
}

/// Contents of `status.json`, written by the trainer (atomically: temp file + rename).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// State as last recorded by the trainer (a dead pid turns `running` into `crashed`).
    pub state: RunState,
    /// Trainer process id.
    pub pid: Option<u32>,
    /// Start time of that pid (clock ticks since boot, /proc/PID/stat field 22) so a recycled
    /// pid is not mistaken for the trainer.
    pub pid_start: Option<u64>,
    /// Host name the trainer runs on.
    pub host: String,
    /// Start of this run, ms since the Unix epoch.
    pub started_ms: Option<u64>,
    /// End of this run, ms since the Unix epoch.
    pub ended_ms: Option<u64>,
    /// Exit code, once the trainer has exited.
    pub exit_code: Option<i32>,
    /// Epochs completed so far.
    pub epoch: usize,
    /// Total epochs of the run.
    pub epochs: usize,
    /// Steps completed so far.
    pub step: u64,
    /// Total steps of the run.
    pub total_steps: u64,
    /// Human-readable reason for the last state change (error message on crash).
    #[serde(default)]
    pub message: String,
}

/// One line of `metrics.jsonl`: `{"t": ms, "epoch", "step", "split": "train"|"val", "loss"|"l1", "lr"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// Wall-clock time, ms since the Unix epoch.
    pub t: u64,
    /// Epoch (0-based) the record belongs to.
    pub epoch: usize,
    /// Global optimizer step after which it was recorded.
    pub step: u64,
    /// `train` (per step) or `val` (per epoch).
    pub split: Split,
    /// Training L1 loss of the step (train records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Validation L1 over the whole val split (val records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1: Option<f64>,
    /// Learning rate at that step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
}

/// Which split a metric record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Per training step.
    Train,
    /// Per epoch, over the whole validation split.
    Val,
}

impl MetricRecord {
    /// Parse one line; `None` for a blank, partial or corrupt line (callers count and skip).
    pub fn parse_line(line: &str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        serde_json::from_str(line).ok()
    }

    /// Serialise as one line (no trailing newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("metric records always serialise")
    }
}

/// Paths of one experiment's run-state files.
#[derive(Debug, Clone)]
pub struct RunPaths {
    /// `experiments/<id>/`.
    pub dir: PathBuf,
}

impl RunPaths {
    /// Paths inside `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// `status.json`.
    pub fn status(&self) -> PathBuf {
        self.dir.join(files::STATUS)
    }
    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join(files::METRICS)
    }
    /// `train.log`.
    pub fn log(&self) -> PathBuf {
        self.dir.join(files::LOG)
    }
    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join(files::CHECKPOINTS)
    }
    /// `recon/epoch-NNN/` for a 0-based epoch.
    pub fn recon_epoch(&self, epoch: usize) -> PathBuf {
        self.dir.join(files::RECON).join(format!("epoch-{epoch:03}"))
    }
    /// `lock`.
    pub fn lock(&self) -> PathBuf {
        self.dir.join(files::LOCK)
    }
}

/// Read `status.json` if present; `Ok(None)` when the experiment never ran.
pub fn read_status(path: &Path) -> std::io::Result<Option<RunStatus>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
