//! What the console knows about each experiment, computed from the contract files only
//! (`experiment.toml`, `status.json`, `metrics.jsonl`, `train.log`, `recon/`), refreshed
//! incrementally.
//!
//! Epoch numbers shown to the user are 1-based counts ("epoch 3" = the third epoch, whose
//! metrics records carry `"epoch": 2` and whose images live in `recon/epoch-002/`).

use crate::experiments::config::{CONFIG_FILE, ExperimentConfig};
use crate::experiments::metrics::{MetricsTail, TailUpdate};
use crate::experiments::state::{
    MetricRecord, RunPaths, RunState, RunStatus, Split, files, read_status,
};
use crate::tui::chart::{Ema, MinMaxPyramid};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Clock and process checks, injectable so tests render deterministic views.
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
        Self {
            now_ms: crate::experiments::process::now_ms,
            pid_alive: crate::experiments::process::pid_matches,
        }
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

/// One training step's record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainPoint {
    /// Global step.
    pub step: u64,
    /// 0-based epoch.
    pub epoch: usize,
    /// ms since the Unix epoch.
    pub t: u64,
    /// Training loss.
    pub loss: f64,
    /// Learning rate, when recorded.
    pub lr: Option<f64>,
}

/// One validation record (per epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValPoint {
    /// 0-based epoch.
    pub epoch: usize,
    /// Global step at the end of the epoch.
    pub step: u64,
    /// Validation L1.
    pub l1: f64,
}

/// Kinds of reconstruction image, in display order.
pub const RECON_KINDS: [&str; 3] = ["target", "lowlevel", "highlevel"];

/// Lines of `train.log` kept for the detail view.
const LOG_LINES: usize = 200;
/// Bytes read from the end of `train.log`.
const LOG_TAIL_BYTES: u64 = 16 * 1024;

/// One experiment as the console shows it.
#[derive(Debug)]
pub struct Experiment {
    /// Folder name (the model id).
    pub id: String,
    /// `experiments/<id>/`.
    pub dir: PathBuf,
    /// Parsed `experiment.toml`, or why it could not be read.
    pub config: Result<ExperimentConfig, String>,
    /// Last `status.json`, when the experiment ever ran.
    pub status: Option<RunStatus>,
    /// Why `status.json` could not be read, if so.
    pub status_error: Option<String>,
    /// Display state (a dead trainer pid turns `running` into `crashed`).
    pub state: RunState,
    /// Why the state is what it is (crash reason, ...), possibly empty.
    pub state_note: String,
    /// Training records, in file order.
    pub train: Vec<TrainPoint>,
    /// Validation records, in file order.
    pub val: Vec<ValPoint>,
    /// Smoothed training loss, same length as `train`.
    pub smoothed: Vec<f64>,
    /// Skipped corrupt metrics lines.
    pub corrupt_lines: usize,
    /// Last lines of `train.log`.
    pub log_tail: Vec<String>,
    /// 0-based epochs that have a `recon/epoch-NNN/` folder, ascending.
    pub recon_epochs: Vec<usize>,
    /// Blind 2-AFC results from `human-2afc.jsonl` (every rater).
    pub human: crate::eval::human::HumanResults,
    /// Bumped whenever anything above changes (chart caches key on it).
    pub generation: u64,
    /// Min/max pyramids over (loss, smoothed loss, learning rate; NaN where absent), for
    /// downsampling live charts in O(width).
    pub pyramids: [MinMaxPyramid; 3],
    lr_values: Vec<f64>,
    loss_values: Vec<f64>,
    best: Option<ValPoint>,
    ema: Ema,
    tailer: MetricsTail,
    config_stamp: Option<Stamp>,
    log_stamp: Option<Stamp>,
    status_stamp: Option<Stamp>,
    human_stamp: Option<Stamp>,
}

/// Length and modification time of a file, to skip re-reading unchanged ones.
type Stamp = (u64, Option<SystemTime>);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

impl Experiment {
    /// An experiment folder; nothing is read until [`refresh`](Self::refresh).
    pub fn new(dir: PathBuf, smoothing: f64) -> Self {
        let id = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let tailer = MetricsTail::new(RunPaths::new(&dir).metrics());
        Self {
            id,
            config: Err("not read yet".into()),
            status: None,
            status_error: None,
            state: RunState::Idle,
            state_note: String::new(),
            train: Vec::new(),
            val: Vec::new(),
            smoothed: Vec::new(),
            corrupt_lines: 0,
            log_tail: Vec::new(),
            recon_epochs: Vec::new(),
            generation: 0,
            pyramids: Default::default(),
            lr_values: Vec::new(),
            loss_values: Vec::new(),
            best: None,
            ema: Ema::new(smoothing),
            tailer,
            config_stamp: None,
            log_stamp: None,
            status_stamp: None,
            human: Default::default(),
            human_stamp: None,
            dir,
        }
    }

    /// Paths of the run-state files.
    pub fn paths(&self) -> RunPaths {
        RunPaths::new(&self.dir)
    }

    /// Re-read what changed on disk; returns whether anything visible changed.
    pub fn refresh(&mut self, probe: &Probe) -> bool {
        let mut changed = false;
        let paths = self.paths();
        let cfg_path = self.dir.join(CONFIG_FILE);
        let s = stamp(&cfg_path);
        if s != self.config_stamp || self.config_stamp.is_none() {
            self.config_stamp = s;
            let new = ExperimentConfig::load(&self.dir).map_err(|e| e.to_string());
            if new != self.config {
                self.config = new;
                changed = true;
            }
        }
        let s = stamp(&paths.status());
        if s != self.status_stamp {
            self.status_stamp = s;
            match read_status(&paths.status()) {
                Ok(st) => {
                    changed |= st != self.status || self.status_error.is_some();
                    self.status = st;
                    self.status_error = None;
                }
                Err(e) => {
                    // A torn write would show up here; keep the last good status.
                    self.status_error = Some(e.to_string());
                }
            }
        }
        let (state, note) = self.effective_state(probe);
        if state != self.state || note != self.state_note {
            self.state = state;
            self.state_note = note;
            changed = true;
        }
        match self.tailer.poll() {
            Ok(update) => changed |= self.apply(update),
            Err(e) => self.status_error = Some(format!("{}: {e}", self.tailer.path().display())),
        }
        let s = stamp(&paths.log());
        if s != self.log_stamp {
            self.log_stamp = s;
            self.log_tail = read_log_tail(&paths.log());
            changed = true;
        }
        let epochs = list_recon_epochs(&self.dir.join(files::RECON));
        if epochs != self.recon_epochs {
            self.recon_epochs = epochs;
            changed = true;
        }
        let s = stamp(&paths.human_ratings());
        if s != self.human_stamp {
            self.human_stamp = s;
            let human = crate::eval::human::HumanResults::load(&self.id, &self.dir);
            changed |= human != self.human;
            self.human = human;
        }
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// Apply a tail update (also used by benchmarks to feed records without files).
    pub fn apply(&mut self, update: TailUpdate) -> bool {
        if update.is_empty() {
            return false;
        }
        if update.reset {
            self.train.clear();
            self.val.clear();
            self.smoothed.clear();
            self.loss_values.clear();
            self.lr_values.clear();
            self.pyramids.iter_mut().for_each(MinMaxPyramid::clear);
            self.best = None;
            self.corrupt_lines = 0;
            self.ema.reset();
        }
        self.corrupt_lines += update.skipped;
        for r in &update.records {
            self.push(r);
        }
        self.generation += 1;
        true
    }

    fn push(&mut self, r: &MetricRecord) {
        match r.split {
            Split::Train => {
                if let Some(loss) = r.loss {
                    self.train.push(TrainPoint {
                        step: r.step,
                        epoch: r.epoch,
                        t: r.t,
                        loss,
                        lr: r.lr,
                    });
                    self.smoothed.push(self.ema.push(loss));
                    self.loss_values.push(loss);
                    self.lr_values.push(r.lr.unwrap_or(f64::NAN));
                    self.pyramids[0].push(&self.loss_values);
                    self.pyramids[1].push(&self.smoothed);
                    self.pyramids[2].push(&self.lr_values);
                }
            }
            Split::Val => {
                if let Some(l1) = r.l1 {
                    let p = ValPoint { epoch: r.epoch, step: r.step, l1 };
                    if self.best.is_none_or(|b| l1 < b.l1) {
                        self.best = Some(p);
                    }
                    self.val.push(p);
                }
            }
        }
    }

    /// Change the EMA weight (0 = none, 0.99 = heavy) and recompute the smoothed series.
    pub fn set_smoothing(&mut self, weight: f64) {
        if (self.ema.weight() - weight).abs() < 1e-12 {
            return;
        }
        self.ema = Ema::new(weight);
        self.smoothed = self.train.iter().map(|p| self.ema.push(p.loss)).collect();
        self.pyramids[1].rebuild(&self.smoothed);
        self.generation += 1;
    }

    fn effective_state(&self, probe: &Probe) -> (RunState, String) {
        let Some(s) = &self.status else { return (RunState::Idle, String::new()) };
        if s.state != RunState::Running {
            return (s.state, s.message.clone());
        }
        let local = s.host.is_empty() || s.host == crate::experiments::process::hostname();
        if !local {
            return (RunState::Running, format!("on {}", s.host));
        }
        if s.pid.is_some_and(|pid| (probe.pid_alive)(pid, s.pid_start)) {
            (RunState::Running, s.message.clone())
        } else {
            let pid = s.pid.map_or("?".into(), |p| p.to_string());
            (RunState::Crashed, format!("trainer pid {pid} died without an exit record"))
        }
    }

    /// Best validation record (lowest L1).
    pub fn best_val(&self) -> Option<ValPoint> {
        self.best
    }

    /// Last training loss.
    pub fn last_loss(&self) -> Option<f64> {
        self.train.last().map(|p| p.loss)
    }

    /// Total epochs: from the status while a run exists, else from the config.
    pub fn total_epochs(&self) -> usize {
        match (&self.status, &self.config) {
            (Some(s), _) if s.epochs > 0 => s.epochs,
            (_, Ok(c)) => c.train.epochs,
            _ => 0,
        }
    }

    /// Completed epochs.
    pub fn epochs_done(&self) -> usize {
        let from_val = self.val.last().map_or(0, |v| v.epoch + 1);
        self.status.as_ref().map_or(from_val, |s| s.epoch.max(from_val))
    }

    /// Fraction of the run done, 0..=1.
    pub fn progress(&self) -> f64 {
        if let Some(s) = &self.status
            && s.total_steps > 0
        {
            return (s.step as f64 / s.total_steps as f64).clamp(0.0, 1.0);
        }
        let total = self.total_epochs();
        if total == 0 { 0.0 } else { (self.epochs_done() as f64 / total as f64).clamp(0.0, 1.0) }
    }

    /// Steps per epoch, from the status or the records.
    pub fn steps_per_epoch(&self) -> Option<f64> {
        if let Some(s) = &self.status
            && s.total_steps > 0
            && s.epochs > 0
        {
            return Some(s.total_steps as f64 / s.epochs as f64);
        }
        // Records are in epoch order: the last record of epoch 0 by binary search.
        let n0 = self.train.partition_point(|p| p.epoch == 0);
        let last0 = self.train.get(n0.checked_sub(1)?)?;
        if n0 == self.train.len() {
            return None; // epoch 0 still running: its length is unknown
        }
        Some(last0.step as f64)
    }

    /// Estimated seconds left while running: step rate over this run's records.
    pub fn eta_secs(&self, probe: &Probe) -> Option<u64> {
        if self.state != RunState::Running {
            return None;
        }
        let s = self.status.as_ref()?;
        let started = s.started_ms.unwrap_or(0);
        let last = self.train.last()?;
        // Records are in time order: first record of this run by binary search.
        let first = self.train.get(self.train.partition_point(|p| p.t < started))?;
        if last.step <= first.step || last.t <= first.t {
            return None;
        }
        let ms_per_step = (last.t - first.t) as f64 / (last.step - first.step) as f64;
        let remaining = s.total_steps.saturating_sub(s.step.max(last.step));
        let since_last = (probe.now_ms)().saturating_sub(last.t) as f64;
        Some(((remaining as f64 * ms_per_step - since_last).max(0.0) / 1000.0).round() as u64)
    }

    /// ROI set from the config ("?" if unreadable).
    pub fn roi_set(&self) -> String {
        self.config.as_ref().map_or("?".into(), |c| c.data.roi_set.clone())
    }

    /// Reconstruction images of one 0-based epoch: sample index -> (kind, path) in display order.
    pub fn recon_samples(&self, epoch: usize) -> BTreeMap<usize, Vec<(String, PathBuf)>> {
        let mut out: BTreeMap<usize, Vec<(String, PathBuf)>> = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(self.paths().recon_epoch(epoch)) else { return out };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((sample, kind)) = parse_recon_name(&name) {
                out.entry(sample).or_default().push((kind, e.path()));
            }
        }
        for v in out.values_mut() {
            v.sort_by_key(|(k, _)| {
                RECON_KINDS.iter().position(|x| x == k).unwrap_or(RECON_KINDS.len())
            });
        }
        out
    }
}

/// `sample-03-lowlevel.png` -> (3, "lowlevel").
pub fn parse_recon_name(name: &str) -> Option<(usize, String)> {
    let rest = name.strip_prefix("sample-")?.strip_suffix(".png")?;
    let (num, kind) = rest.split_once('-')?;
    Some((num.parse().ok()?, kind.to_string()))
}

fn list_recon_epochs(recon: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(recon) else { return Vec::new() };
    let mut v: Vec<usize> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("epoch-")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

fn read_log_tail(path: &Path) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // first line is cut
    }
    let skip = lines.len().saturating_sub(LOG_LINES);
    // Progress bars write \r-separated frames: show the last frame of each line.
    lines[skip..].iter().map(|l| l.rsplit('\r').next().unwrap_or("").to_string()).collect()
}

/// Winners of the vote per sample, read from `<experiments>/votes.json` when present.
///
/// Accepted shapes: `{"winners": {"0": "92", ...}}`, `{"0": 92, ...}`, or
/// `[{"sample": 0, "winner": 92}, ...]` (ids as strings or numbers).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Votes {
    /// Sample index -> winning experiment id.
    pub winners: HashMap<usize, String>,
}

impl Votes {
    /// Read `path`; `None` when absent or unreadable.
    pub fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        let id = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Object(o) => {
                o.get("id").or(o.get("winner")).map(|x| x.to_string().trim_matches('"').to_string())
            }
            _ => None,
        };
        let mut winners = HashMap::new();
        match &value {
            serde_json::Value::Array(items) => {
                for it in items {
                    let sample = it.get("sample").and_then(|s| s.as_u64());
                    let w = it.get("winner").and_then(id);
                    if let (Some(s), Some(w)) = (sample, w) {
                        winners.insert(s as usize, w);
                    }
                }
            }
            serde_json::Value::Object(map) => {
                let map = map.get("winners").and_then(|w| w.as_object()).unwrap_or(map);
                for (k, v) in map {
                    if let (Ok(s), Some(w)) = (k.parse::<usize>(), id(v)) {
                        winners.insert(s, w);
                    }
                }
            }
            _ => return None,
        }
        Some(Self { winners })
    }
}

/// All experiments under one `experiments/` folder.
#[derive(Debug)]
pub struct Project {
    /// The experiments folder.
    pub dir: PathBuf,
    /// Experiments, ordered by id (numeric ids numerically).
    pub experiments: Vec<Experiment>,
    /// Vote winners, when `votes.json` exists.
    pub votes: Option<Votes>,
    smoothing: f64,
    probe: Probe,
}

/// Default TensorBoard smoothing weight.
pub const DEFAULT_SMOOTHING: f64 = 0.6;

impl Project {
    /// Scan `dir` and read every experiment.
    pub fn open(dir: impl Into<PathBuf>, probe: Probe) -> Self {
        let mut p = Self {
            dir: dir.into(),
            experiments: Vec::new(),
            votes: None,
            smoothing: DEFAULT_SMOOTHING,
            probe,
        };
        p.refresh();
        p
    }

    /// The clock and process probe in use.
    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    /// Pick up new or removed experiment folders and re-read changed files; returns whether
    /// anything changed.
    pub fn refresh(&mut self) -> bool {
        let mut changed = self.rescan();
        let probe = self.probe;
        for e in &mut self.experiments {
            changed |= e.refresh(&probe);
        }
        let votes = Votes::load(&self.dir.join("votes.json"));
        if votes != self.votes {
            self.votes = votes;
            changed = true;
        }
        changed
    }

    /// Re-read only the experiment whose folder contains `path` (from a file watcher).
    pub fn refresh_path(&mut self, path: &Path) -> bool {
        let probe = self.probe;
        match self.experiments.iter_mut().find(|e| path.starts_with(&e.dir)) {
            Some(e) => e.refresh(&probe),
            None => self.refresh(),
        }
    }

    fn rescan(&mut self) -> bool {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            let had = !self.experiments.is_empty();
            self.experiments.clear();
            return had;
        };
        let mut dirs: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join(CONFIG_FILE).is_file()).collect();
        dirs.sort_by(|a, b| id_order(&file_name(a), &file_name(b)));
        let same = dirs.len() == self.experiments.len()
            && dirs.iter().zip(&self.experiments).all(|(d, e)| *d == e.dir);
        if same {
            return false;
        }
        let mut old: HashMap<PathBuf, Experiment> =
            self.experiments.drain(..).map(|e| (e.dir.clone(), e)).collect();
        self.experiments = dirs
            .into_iter()
            .map(|d| old.remove(&d).unwrap_or_else(|| Experiment::new(d, self.smoothing)))
            .collect();
        true
    }

    /// Smoothing weight used for every experiment.
    pub fn smoothing(&self) -> f64 {
        self.smoothing
    }

    /// Change the smoothing weight for every experiment (clamped to 0..=0.999).
    pub fn set_smoothing(&mut self, weight: f64) {
        self.smoothing = weight.clamp(0.0, 0.999);
        for e in &mut self.experiments {
            e.set_smoothing(self.smoothing);
        }
    }

    /// Experiment by id.
    pub fn get(&self, id: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.id == id)
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Numeric ids in numeric order, before any non-numeric ids (alphabetical).
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}
