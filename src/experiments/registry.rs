//! The experiment registry: every `experiments/<id>/` folder with its configuration, displayed
//! run state (from status.json and pid liveness) and metrics aggregate. The one reader of run
//! state: `brainscope status` and the console both show what [`RunReader::summary`] computes.
//!
//! [`scan`] reads everything once; [`Registry::refresh`] keeps a [`RunReader`] per experiment so
//! repeated refreshes only read what was appended. The console builds on [`RunReader`] too,
//! starting it with [`RunReader::open_at_end`] so a long history does not delay the table.

use super::config::{CONFIG_FILE, ConfigError, ExperimentConfig};
use super::metrics::{MetricsSummary, MetricsTail, TailUpdate};
use super::process;
use super::state::{EvalRecord, EvalSplit, RunPaths, RunState, RunStatus, read_eval, read_status};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Listing the experiments folder failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The experiments folder itself is missing or unreadable.
    #[error(
        "cannot read experiments folder {path} (pass --dir or create it with one <id>/experiment.toml per experiment)"
    )]
    Dir { path: PathBuf, source: std::io::Error },
    /// No experiment folder with that id.
    #[error("no experiment '{id}' in {dir} (expected {dir}/{id}/experiment.toml)")]
    NotFound { id: String, dir: PathBuf },
    /// The experiment exists but its configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Clock and process checks, injectable so tests see deterministic states and ETAs.
#[derive(Clone, Copy)]
pub struct Probe {
    /// Milliseconds since the Unix epoch.
    pub now_ms: fn() -> u64,
    /// Whether `pid` is alive and (when given) started at that `/proc/PID/stat` start time.
    pub pid_alive: fn(u32, Option<u64>) -> bool,
}

impl Probe {
    /// The real clock and `/proc`.
    pub fn system() -> Self {
        Self { now_ms: process::now_ms, pid_alive: process::pid_matches }
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

/// What a run is doing and how far it got: the state, progress, latest metrics and ETA that the
/// console's table and `brainscope status` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Displayed state (a dead trainer pid shows as crashed).
    pub state: RunState,
    /// Why the state is what it is (crash message, "trainer pid 123 died without an exit
    /// record", ...).
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
    /// The device the trainer recorded it computes on (status.json `device`; `null` before the
    /// run started, or for a run recorded before the field existed).
    pub device: Option<String>,
    /// The Slurm job of the latest submission (`None`: never submitted; runs locally).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::cluster::SlurmView>,
    /// The latest `brainscope eval` record: `eval/probe.json`, else `eval/val.json` (`null`:
    /// never evaluated). Its `split` says which.
    pub eval: Option<EvalRecord>,
    /// Why the eval record could not be read, if so (`null` when fine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_error: Option<String>,
}

/// The splits whose eval record the summary shows, preferred first: the probe set (the same
/// rows for every experiment), else the experiment's own validation split.
pub const EVAL_SPLITS: [EvalSplit; 2] = [EvalSplit::Probe, EvalSplit::Val];

/// The eval record shown for an experiment: the first of [`EVAL_SPLITS`] that exists. An
/// unreadable record is an error naming the file (a torn or foreign file), not a silent `-`.
pub fn read_shown_eval(paths: &RunPaths) -> Result<Option<EvalRecord>, String> {
    for split in EVAL_SPLITS {
        match read_eval(paths, split) {
            Ok(Some(r)) => return Ok(Some(r)),
            Ok(None) => {}
            Err(e) => return Err(format!("{}: {e}", paths.eval(split).display())),
        }
    }
    Ok(None)
}

/// One experiment as `brainscope status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentSummary {
    /// Model id.
    pub id: u32,
    /// `experiments/<id>/`.
    pub dir: PathBuf,
    /// Parsed experiment.toml.
    pub config: ExperimentConfig,
    /// State, progress and metrics.
    #[serde(flatten)]
    pub run: RunSummary,
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
/// exit record -> `crashed`. A trainer on another host (shared filesystem) cannot be checked:
/// its record is trusted.
pub fn effective_state(status: Option<&RunStatus>, probe: &Probe) -> (RunState, String) {
    let Some(s) = status else { return (RunState::Idle, String::new()) };
    if s.state != RunState::Running {
        return (s.state, s.message.clone());
    }
    if !s.host.is_empty() && s.host != process::hostname() {
        return (RunState::Running, format!("running on {}", s.host));
    }
    if s.pid.is_some_and(|pid| (probe.pid_alive)(pid, s.pid_start)) {
        (RunState::Running, s.message.clone())
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

/// Length and modification time of a file, to skip re-reading unchanged ones.
pub type Stamp = (u64, Option<SystemTime>);

/// The stamp of `path`, `None` when it does not exist.
pub fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

/// Bytes read from the end of metrics.jsonl by [`RunReader::open_at_end`]: enough for the rate
/// window of the ETA (64 train records of about 100 bytes) and the last records.
pub const TAIL_WINDOW: u64 = 8 * 1024;

/// One experiment's run files, read incrementally: status.json (re-read when it changes, the
/// last good one kept over a torn read) and metrics.jsonl (tailed), folded into a
/// [`RunSummary`].
#[derive(Debug)]
pub struct RunReader {
    paths: RunPaths,
    tail: MetricsTail,
    /// The records before the tail's start, once read (`None` while they are being read
    /// elsewhere, see [`open_at_end`](Self::open_at_end)).
    prefix: Option<MetricsSummary>,
    /// The last records before the tail's start, standing in for `prefix` until it arrives.
    window: MetricsSummary,
    /// The records the tail read after its start.
    after: MetricsSummary,
    /// `prefix` then `after`: what the summary shows.
    merged: MetricsSummary,
    /// Bumped when the tail starts over (file replaced), so a late prefix is not merged.
    era: u64,
    status: Option<RunStatus>,
    status_error: Option<String>,
    status_stamp: Option<Stamp>,
    metrics_error: Option<String>,
    eval: Result<Option<EvalRecord>, String>,
    eval_stamps: Option<[Option<Stamp>; 2]>,
}

/// What a [`RunReader`] opened at the end of its metrics still needs: the records of the first
/// `end` bytes of `path`, summarised (read with [`read_prefix`](super::metrics::read_prefix),
/// typically off the UI thread) and handed to [`RunReader::set_prefix`].
#[derive(Debug, Clone)]
pub struct PrefixRequest {
    /// metrics.jsonl.
    pub path: PathBuf,
    /// Bytes of complete lines before the tail's start.
    pub end: u64,
    /// The file those bytes belong to.
    pub identity: Option<(u64, u64)>,
    /// The reader's era when asked (see [`RunReader::set_prefix`]).
    pub era: u64,
}

impl PrefixRequest {
    /// Read and summarise the prefix; `None` when the file was replaced meanwhile.
    pub fn read(&self) -> std::io::Result<Option<MetricsSummary>> {
        let mut summary = MetricsSummary::default();
        let skipped =
            super::metrics::read_prefix(&self.path, self.end, self.identity, |r| summary.push(r))?;
        Ok(skipped.map(|skipped| {
            summary.skipped = skipped;
            summary
        }))
    }
}

impl RunReader {
    /// A reader of the experiment in `dir` that reads whole files (nothing read until
    /// [`poll`](Self::poll)).
    pub fn new(dir: &Path) -> Self {
        let paths = RunPaths::new(dir);
        let tail = MetricsTail::new(paths.metrics());
        Self::with_tail(paths, tail, Some(MetricsSummary::default()), MetricsSummary::default())
    }

    /// A reader that starts at the end of metrics.jsonl after reading only its last
    /// [`TAIL_WINDOW`] bytes (last loss, learning rate, ETA window), and the request for the
    /// records before (best val L1, record counts). Until [`set_prefix`](Self::set_prefix)
    /// hands those in, [`prefix_pending`](Self::prefix_pending) is true.
    pub fn open_at_end(dir: &Path) -> (Self, Option<PrefixRequest>) {
        let paths = RunPaths::new(dir);
        match MetricsTail::open_at_end(paths.metrics(), TAIL_WINDOW) {
            Ok((tail, records)) if tail.consumed() > 0 => {
                let mut window = MetricsSummary::default();
                records.iter().for_each(|r| window.push(r));
                let request = PrefixRequest {
                    path: paths.metrics(),
                    end: tail.consumed(),
                    identity: tail.identity(),
                    era: 0,
                };
                (Self::with_tail(paths, tail, None, window), Some(request))
            }
            // Empty, missing or unreadable: read it whole on the first poll.
            _ => (Self::new(dir), None),
        }
    }

    fn with_tail(
        paths: RunPaths,
        tail: MetricsTail,
        prefix: Option<MetricsSummary>,
        window: MetricsSummary,
    ) -> Self {
        let merged = prefix.as_ref().unwrap_or(&window).clone();
        Self {
            paths,
            tail,
            prefix,
            window,
            after: MetricsSummary::default(),
            merged,
            era: 0,
            status: None,
            status_error: None,
            status_stamp: None,
            metrics_error: None,
            eval: Ok(None),
            eval_stamps: None,
        }
    }

    /// Whether the records before the tail's start are still being read elsewhere (best val L1
    /// and record counts then cover only the last records).
    pub fn prefix_pending(&self) -> bool {
        self.prefix.is_none()
    }

    /// Hand in the summary of a [`PrefixRequest`]; ignored when the tail has started over
    /// since (the file was replaced). Returns whether it was taken.
    pub fn set_prefix(&mut self, era: u64, prefix: MetricsSummary) -> bool {
        if era != self.era || self.prefix.is_some() {
            return false;
        }
        self.prefix = Some(prefix);
        self.window = MetricsSummary::default();
        self.remerge();
        true
    }

    fn remerge(&mut self) {
        self.merged = self.prefix.as_ref().unwrap_or(&self.window).then(&self.after);
    }

    /// The metrics tail (its position, for reading the history up to it).
    pub fn tail(&self) -> &MetricsTail {
        &self.tail
    }

    /// The metrics aggregate the summary is built from.
    pub fn metrics(&self) -> &MetricsSummary {
        &self.merged
    }

    /// status.json as last read successfully.
    pub fn status(&self) -> Option<&RunStatus> {
        self.status.as_ref()
    }

    /// Why status.json or metrics.jsonl could not be read at the last poll, if so.
    pub fn error(&self) -> Option<&str> {
        self.status_error.as_deref().or(self.metrics_error.as_deref())
    }

    /// Re-read status.json and the eval record when they changed and read what was appended to
    /// metrics.jsonl. Returns the metrics update (the console feeds its history with it) and
    /// whether the status or the eval record changed.
    pub fn poll(&mut self) -> (TailUpdate, bool) {
        let mut status_changed = false;
        let path = self.paths.status();
        let s = stamp(&path);
        if s != self.status_stamp || self.status_error.is_some() {
            self.status_stamp = s;
            match read_status(&path) {
                Ok(st) => {
                    status_changed = st != self.status || self.status_error.is_some();
                    self.status = st;
                    self.status_error = None;
                }
                Err(e) => {
                    // A torn write would show up here; keep the last good status.
                    status_changed = self.status_error.is_none();
                    self.status_error = Some(e.to_string());
                }
            }
        }
        let stamps = EVAL_SPLITS.map(|split| stamp(&self.paths.eval(split)));
        if self.eval_stamps != Some(stamps) {
            self.eval_stamps = Some(stamps);
            let eval = read_shown_eval(&self.paths);
            status_changed |= eval != self.eval;
            self.eval = eval;
        }
        let update = match self.tail.poll() {
            Ok(update) => {
                self.metrics_error = None;
                update
            }
            Err(e) => {
                // Cannot read it right now: keep the previous aggregate.
                self.metrics_error = Some(format!("{}: {e}", self.tail.path().display()));
                TailUpdate::default()
            }
        };
        if update.reset {
            self.era += 1;
            self.prefix = Some(MetricsSummary::default());
            self.window = MetricsSummary::default();
            self.after = MetricsSummary::default();
        }
        if !update.is_empty() {
            self.after.apply(&TailUpdate { reset: false, ..update.clone() });
            self.remerge();
        }
        (update, status_changed)
    }

    /// Fold records in without reading files (benchmarks feeding a history from memory).
    pub fn apply(&mut self, update: &TailUpdate) {
        if update.reset {
            self.era += 1;
            self.prefix = Some(MetricsSummary::default());
            self.window = MetricsSummary::default();
            self.after = MetricsSummary::default();
        }
        self.after.apply(&TailUpdate { reset: false, ..update.clone() });
        self.remerge();
    }

    /// The run as displayed now. `config_epochs` is the configured epoch count, shown before
    /// the run records its own.
    pub fn summary(&self, config_epochs: usize, probe: &Probe) -> RunSummary {
        let metrics = &self.merged;
        let status = self.status.clone();
        let (state, state_message) = effective_state(status.as_ref(), probe);
        let message = match &self.status_error {
            Some(e) if status.is_none() => format!("unreadable status: {e}"),
            _ => state_message,
        };
        let epochs_from_val = metrics.last_val.map_or(0, |(e, _)| e + 1);
        let (epoch, epochs, step, total_steps) = match &status {
            Some(s) => (
                s.epoch.max(epochs_from_val),
                if s.epochs > 0 { s.epochs } else { config_epochs },
                s.step.max(metrics.last_step),
                s.total_steps,
            ),
            None => (epochs_from_val, config_epochs, metrics.last_step, 0),
        };
        let eta_secs = match (&status, state) {
            (Some(s), RunState::Running) if total_steps > step => {
                metrics.rate_since(s.started_ms.unwrap_or(0)).map(|(rate, last_t)| {
                    // Counts down between records: the time since the last one is spent.
                    let since_last = (probe.now_ms)().saturating_sub(last_t) as f64 / 1000.0;
                    ((total_steps - step) as f64 / rate - since_last).max(0.0)
                })
            }
            _ => None,
        };
        let device = status.as_ref().and_then(|s| s.device.clone());
        RunSummary {
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
            device,
            slurm: None,
            eval: self.eval.clone().ok().flatten(),
            eval_error: self.eval.clone().err(),
        }
    }
}

/// Incremental registry: keeps one [`RunReader`] per experiment between refreshes.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    probe: Probe,
    entries: BTreeMap<PathBuf, RunReader>,
}

impl Registry {
    /// A registry over `experiments_dir` (nothing read yet).
    pub fn new(experiments_dir: impl Into<PathBuf>) -> Self {
        Self { dir: experiments_dir.into(), probe: Probe::system(), entries: BTreeMap::new() }
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
                    scan.invalid.push(InvalidExperiment { dir, error: crate::errors::chain(&e) });
                    continue;
                }
            };
            seen.push(dir.clone());
            let reader = self.entries.entry(dir.clone()).or_insert_with(|| RunReader::new(&dir));
            reader.poll();
            let run = reader.summary(config.train.epochs, &self.probe);
            scan.experiments.push(ExperimentSummary { id: config.id, dir, config, run });
        }
        self.entries.retain(|dir, _| seen.contains(dir));
        crate::cluster::reconcile_scan(&mut scan.experiments);
        scan.experiments.sort_by_key(|e| e.id);
        scan.invalid.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(scan)
    }
}
