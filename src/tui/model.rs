//! What the console knows about each experiment, computed from the contract files only
//! (`experiment.toml`, `status.json`, `metrics.jsonl`, `train.log`, `recon/`), refreshed
//! incrementally.
//!
//! The run state, progress, latest metrics and ETA are the registry's ([`RunReader`]), the
//! same figures `brainscope status` prints. A full training [`History`] is held only for the
//! experiments being drawn (loaded when the detail view needs it, dropped after). A console
//! over long runs opens with [`Project::open_lazy`]: each metrics file is read only at its end
//! for the table, and a worker thread reads the earlier records for the best val L1.
//!
//! Epoch numbers shown to the user are 1-based counts ("epoch 3" = the third epoch, whose
//! metrics records carry `"epoch": 2` and whose images live in `recon/epoch-002/`).

use crate::experiments::config::{CONFIG_FILE, ExperimentConfig};
use crate::experiments::metrics::{MetricsSummary, TailUpdate, read_prefix};
use crate::experiments::registry::{PrefixRequest, RunReader, RunSummary, Stamp, stamp};
use crate::experiments::state::{
    EvalSplit, RunPaths, RunState, RunStatus, SlurmJobRecord, VoteRecord, files, read_slurm_job,
    read_votes,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

pub use crate::experiments::registry::Probe;
pub use crate::tui::history::{History, Series, ValPoint};

/// Kinds of reconstruction image, in display order.
pub const RECON_KINDS: [&str; 3] = crate::experiments::state::recon::KINDS;

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
    /// State, progress, latest metrics and ETA, as `brainscope status` shows them.
    pub run: RunSummary,
    /// The training history, while the experiment is drawn (see [`Project::keep_histories`]).
    pub history: Option<History>,
    /// Last lines of `train.log`.
    pub log_tail: Vec<String>,
    /// 0-based epochs that have a `recon/epoch-NNN/` folder, ascending.
    pub recon_epochs: Vec<usize>,
    /// Blind 2-AFC results from `human-2afc.jsonl` (every rater).
    pub human: crate::eval::human::HumanResults,
    /// The Slurm job of the latest submission (`slurm-job.json`), if any.
    pub slurm_job: Option<SlurmJobRecord>,
    /// Bumped whenever anything above changes (chart caches key on it).
    pub generation: u64,
    /// Why the earlier metrics records could not be read, if so.
    pub load_error: Option<String>,
    reader: RunReader,
    smoothing: f64,
    config_stamp: Option<Stamp>,
    log_stamp: Option<Stamp>,
    human_stamp: Option<Stamp>,
    slurm_stamp: Option<Stamp>,
}

impl Experiment {
    /// An experiment folder whose files are read whole; nothing is read until
    /// [`refresh`](Self::refresh).
    pub fn new(dir: PathBuf, smoothing: f64) -> Self {
        let reader = RunReader::new(&dir);
        Self::with_reader(dir, smoothing, reader)
    }

    /// An experiment folder whose metrics are read only at their end (see
    /// [`RunReader::open_at_end`]); the request is for the records before.
    pub fn at_end(dir: PathBuf, smoothing: f64) -> (Self, Option<PrefixRequest>) {
        let (reader, request) = RunReader::open_at_end(&dir);
        (Self::with_reader(dir, smoothing, reader), request)
    }

    fn with_reader(dir: PathBuf, smoothing: f64, reader: RunReader) -> Self {
        let id = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        Self {
            id,
            config: Err("not read yet".into()),
            run: reader.summary(0, &Probe::system()),
            history: None,
            log_tail: Vec::new(),
            recon_epochs: Vec::new(),
            generation: 0,
            load_error: None,
            reader,
            smoothing,
            config_stamp: None,
            log_stamp: None,
            human: Default::default(),
            human_stamp: None,
            slurm_job: None,
            slurm_stamp: None,
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
        let (update, status_changed) = self.reader.poll();
        changed |= status_changed;
        changed |= self.feed_history(&update);
        let paths = self.paths();
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
        let s = stamp(&self.dir.join(crate::experiments::state::SLURM_JOB_FILE));
        if s != self.slurm_stamp {
            self.slurm_stamp = s;
            let job = read_slurm_job(&self.dir).ok().flatten();
            changed |= job != self.slurm_job;
            self.slurm_job = job;
        }
        changed |= self.resummarize(probe);
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// Where the run lives: `local`, or `slurm:JOBID` once submitted to Slurm.
    pub fn location(&self) -> String {
        match &self.slurm_job {
            Some(j) => format!("slurm:{}", j.job_id),
            None => "local".into(),
        }
    }

    /// The reconstructions of one folder (`recon/final-<split>/` or `recon/epoch-NNN/`).
    pub fn recon_set(&self, folder: ReconFolder) -> ReconSet {
        let path = match folder {
            ReconFolder::Final(split) => self.paths().recon_final(split),
            ReconFolder::Epoch(e) => self.paths().recon_epoch(e),
        };
        ReconSet::read(folder, path)
    }

    /// What the gallery and the compare view show of this experiment: the final probe-set
    /// reconstructions (`brainscope eval`) when they exist and no epoch is chosen, else the
    /// chosen epoch where it exists, else the latest epoch.
    pub fn shown_recon(&self, chosen: Option<usize>) -> Option<ReconSet> {
        if chosen.is_none() {
            let fin = self.recon_set(ReconFolder::Final(EvalSplit::Probe));
            if !fin.samples.is_empty() {
                return Some(fin);
            }
        }
        let epoch = match chosen {
            Some(c) if self.recon_epochs.contains(&c) => c,
            _ => *self.recon_epochs.last()?,
        };
        Some(self.recon_set(ReconFolder::Epoch(epoch)))
    }

    /// Recompute the summary (the clock moves the ETA); whether it changed.
    fn resummarize(&mut self, probe: &Probe) -> bool {
        let epochs = self.config.as_ref().map_or(0, |c| c.train.epochs);
        let mut run = self.reader.summary(epochs, probe);
        // A Slurm run (slurm-job.json): queued/running/crashed as the scheduler says, and a
        // `[slurm:JOB]` marker of where the run lives (the scheduler is asked off this thread).
        (run.state, run.message) =
            crate::cluster::console_state(&self.dir, run.status.as_ref(), (run.state, run.message));
        let changed = run != self.run;
        self.run = run;
        changed
    }

    fn feed_history(&mut self, update: &TailUpdate) -> bool {
        if update.is_empty() {
            return false;
        }
        if let Some(h) = &mut self.history {
            if update.reset {
                h.clear();
            }
            update.records.iter().for_each(|r| h.push(r));
        }
        true
    }

    /// Apply records without reading files (benchmarks feed histories from memory).
    pub fn apply(&mut self, update: TailUpdate, probe: &Probe) -> bool {
        if update.is_empty() {
            return false;
        }
        self.reader.apply(&update);
        self.feed_history(&update);
        self.resummarize(probe);
        self.generation += 1;
        true
    }

    /// Take the summary of the records before the tail's start (from the loader thread).
    fn set_prefix(&mut self, era: u64, prefix: MetricsSummary, probe: &Probe) -> bool {
        if !self.reader.set_prefix(era, prefix) {
            return false;
        }
        self.resummarize(probe);
        self.generation += 1;
        true
    }

    /// Whether the earlier metrics records are still being read (best val L1 and counts then
    /// cover only the last records).
    pub fn loading(&self) -> bool {
        self.reader.prefix_pending()
    }

    /// Read the whole training history up to where the tail has read (later records arrive
    /// with the next refresh), unless it is held already. Returns whether it was read.
    pub fn load_history(&mut self) -> bool {
        if self.history.is_some() {
            return false;
        }
        let tail = self.reader.tail();
        // Room for every record up front (a train line is over 50 bytes): no growth by
        // doubling, whose abandoned blocks would stay resident. Untouched spare capacity is not.
        let mut history = History::with_capacity(self.smoothing, (tail.consumed() / 50) as usize);
        match read_prefix(tail.path(), tail.consumed(), tail.identity(), |r| history.push(r)) {
            Ok(Some(_)) => {
                history.shrink_to_fit();
                self.history = Some(history);
                self.generation += 1;
                true
            }
            // Replaced since the last poll: the next refresh starts over with the new file.
            Ok(None) => false,
            Err(e) => {
                self.load_error = Some(format!("{}: {e}", tail.path().display()));
                false
            }
        }
    }

    /// Forget the training history (not drawn any more).
    pub fn drop_history(&mut self) {
        if self.history.take().is_some() {
            self.generation += 1;
        }
    }

    /// Change the EMA weight (0 = none, 0.99 = heavy) and recompute the smoothed series.
    pub fn set_smoothing(&mut self, weight: f64) {
        self.smoothing = weight;
        if let Some(h) = &mut self.history
            && h.set_smoothing(weight)
        {
            self.generation += 1;
        }
    }

    /// Displayed state.
    pub fn state(&self) -> RunState {
        self.run.state
    }

    /// status.json as last read.
    pub fn status(&self) -> Option<&RunStatus> {
        self.run.status.as_ref()
    }

    /// Why status.json or metrics.jsonl could not be read, if so.
    pub fn read_error(&self) -> Option<String> {
        self.reader.error().map(str::to_string).or_else(|| self.load_error.clone())
    }

    /// Corrupt metrics lines skipped.
    pub fn corrupt_lines(&self) -> usize {
        self.reader.metrics().skipped
    }

    /// Train and val records read (`None` while the earlier records are being read).
    pub fn record_counts(&self) -> Option<(usize, usize)> {
        let m = self.reader.metrics();
        (!self.loading()).then_some((m.train_records, m.val_records))
    }

    /// Best validation L1 and its 0-based epoch.
    pub fn best_val(&self) -> Option<(usize, f64)> {
        Some((self.run.best_epoch?, self.run.best_val_l1?))
    }

    /// Last training loss.
    pub fn last_loss(&self) -> Option<f64> {
        self.run.last_loss
    }

    /// Total epochs: from the status while a run exists, else from the config.
    pub fn total_epochs(&self) -> usize {
        self.run.epochs
    }

    /// Completed epochs.
    pub fn epochs_done(&self) -> usize {
        self.run.epoch
    }

    /// Fraction of the run done, 0..=1.
    pub fn progress(&self) -> f64 {
        if self.run.total_steps > 0 {
            return (self.run.step as f64 / self.run.total_steps as f64).clamp(0.0, 1.0);
        }
        let total = self.total_epochs();
        if total == 0 { 0.0 } else { (self.epochs_done() as f64 / total as f64).clamp(0.0, 1.0) }
    }

    /// Steps per epoch, from the status or the history's records.
    pub fn steps_per_epoch(&self) -> Option<f64> {
        if let Some(s) = self.status()
            && s.total_steps > 0
            && s.epochs > 0
        {
            return Some(s.total_steps as f64 / s.epochs as f64);
        }
        self.history.as_ref()?.steps_per_epoch()
    }

    /// Estimated seconds left while running.
    pub fn eta_secs(&self) -> Option<u64> {
        self.run.eta_secs.map(|s| s.round() as u64)
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

/// Which reconstruction folder a [`ReconSet`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconFolder {
    /// `recon/final-<split>/`, written by `brainscope eval` (and `recon`).
    Final(EvalSplit),
    /// `recon/epoch-NNN/` (0-based), written by the trainer after each epoch.
    Epoch(usize),
}

/// One sample of a reconstruction folder: its images and, from `samples.json`, which dataset
/// image it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReconSample {
    /// Dataset row, when `samples.json` says.
    pub row: Option<u64>,
    /// Dataset image path, when `samples.json` says.
    pub image: Option<String>,
    /// `(kind, path)` in [`RECON_KINDS`] order (unknown kinds last).
    pub files: Vec<(String, PathBuf)>,
}

impl ReconSample {
    /// The image of `kind`, if present.
    pub fn file(&self, kind: &str) -> Option<&PathBuf> {
        self.files.iter().find(|(k, _)| k == kind).map(|(_, p)| p)
    }

    /// The low-level reconstruction (`sample-XX-lowlevel.png`).
    pub fn lowlevel(&self) -> Option<&PathBuf> {
        self.file(crate::experiments::state::recon::LOWLEVEL)
    }
}

/// The images of one reconstruction folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconSet {
    /// Which folder.
    pub folder: ReconFolder,
    /// Its path.
    pub path: PathBuf,
    /// `"split"` of its `samples.json` (`probe` / `val`); `None`: no index or a pre-probe run.
    pub split: Option<String>,
    /// Sample index (`XX` of `sample-XX-*.png`) -> sample.
    pub samples: BTreeMap<usize, ReconSample>,
}

impl ReconSet {
    /// Read `path` (missing or unreadable: no samples).
    pub fn read(folder: ReconFolder, path: PathBuf) -> Self {
        let mut samples: BTreeMap<usize, ReconSample> = BTreeMap::new();
        for e in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((sample, kind)) = parse_recon_name(&name) {
                samples.entry(sample).or_default().files.push((kind, e.path()));
            }
        }
        for v in samples.values_mut() {
            v.files.sort_by_key(|(k, _)| {
                RECON_KINDS.iter().position(|x| x == k).unwrap_or(RECON_KINDS.len())
            });
        }
        let index: Option<serde_json::Value> = std::fs::read(path.join(files::RECON_INDEX))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut split = index
            .as_ref()
            .and_then(|v| v.get("split"))
            .and_then(|s| s.as_str())
            .map(str::to_string);
        if let ReconFolder::Final(s) = folder {
            split.get_or_insert_with(|| s.name().to_string());
        }
        let entries = index.as_ref().and_then(|v| v.get("samples")).and_then(|v| v.as_array());
        for entry in entries.into_iter().flatten() {
            let Some(i) = entry.get("sample").and_then(|v| v.as_u64()) else { continue };
            if let Some(s) = samples.get_mut(&(i as usize)) {
                s.row = entry.get("row").and_then(|v| v.as_u64());
                s.image = entry.get("image").and_then(|v| v.as_str()).map(str::to_string);
            }
        }
        Self { folder, path, split, samples }
    }

    /// The BLIP caption that prompted sample `index`'s high-level image
    /// (`sample-XX-caption.txt`), read when asked: only the shown sample's.
    pub fn caption(&self, index: usize) -> Option<String> {
        let file = self.path.join(crate::experiments::state::caption_file_name(index));
        let text = std::fs::read_to_string(file).ok()?;
        Some(text.trim().to_string()).filter(|c| !c.is_empty())
    }

    /// Whether these are probe-set images (the same rows in every experiment).
    pub fn on_probe(&self) -> bool {
        self.split.as_deref() == Some(EvalSplit::Probe.name())
    }

    /// What a sample shows, for aligning experiments: the dataset image, else its row, else
    /// `<id>#<index>` (never aligned with another experiment).
    pub fn key(&self, id: &str, index: usize) -> String {
        let s = self.samples.get(&index);
        match (s.and_then(|s| s.image.clone()), s.and_then(|s| s.row)) {
            (Some(image), _) => image,
            (None, Some(row)) => format!("row {row}"),
            (None, None) => format!("{id}#{index}"),
        }
    }

    /// The sample showing `key`.
    pub fn find(&self, id: &str, key: &str) -> Option<(usize, &ReconSample)> {
        self.samples.iter().find(|(i, _)| self.key(id, **i) == key).map(|(i, s)| (*i, s))
    }

    /// `final probe` / `epoch 3`.
    pub fn label(&self) -> String {
        match self.folder {
            ReconFolder::Final(s) => format!("final {}", s.name()),
            ReconFolder::Epoch(e) => format!("ep {}", e + 1),
        }
    }
}

/// Shown in an experiment's column instead of images that would not match the others'.
pub const PREDATES_PROBE: &str = "run predates the probe set — retrain to compare";

/// Columns of experiments aligned by what their samples show.
#[derive(Debug, Clone, PartialEq)]
pub struct Aligned {
    /// Every shown image key with the number of experiments that have it, in first-seen order.
    pub keys: Vec<(String, usize)>,
    /// Whether some experiment shows probe-set images: then runs not on the probe set are left
    /// out with [`PREDATES_PROBE`] instead of showing mismatched images.
    pub probe: bool,
}

impl Aligned {
    /// Align `sets` (experiment id, its shown reconstructions).
    pub fn new(sets: &[(String, Option<ReconSet>)]) -> Self {
        let probe = sets.iter().any(|(_, s)| s.as_ref().is_some_and(ReconSet::on_probe));
        let mut keys: Vec<(String, usize)> = Vec::new();
        for (id, set) in sets {
            let Some(set) = set.as_ref().filter(|s| !probe || s.on_probe()) else { continue };
            for &i in set.samples.keys() {
                let k = set.key(id, i);
                match keys.iter_mut().find(|(x, _)| *x == k) {
                    Some((_, n)) => *n += 1,
                    None => keys.push((k, 1)),
                }
            }
        }
        Self { keys, probe }
    }

    /// Whether `set` is left out of the comparison (a run not on the probe set among probe
    /// runs).
    pub fn excluded(&self, set: &ReconSet) -> bool {
        self.probe && !set.on_probe()
    }
}

/// The vote winner of sample `index` of `set`, when the vote was on that image: `set` is the
/// voted folder (`recon/final-<split>/`, sample for sample), or a folder of the same split
/// whose `samples.json` says the sample is the row voted on.
pub fn vote_winner<'a>(
    votes: Option<&'a VoteRecord>,
    set: &ReconSet,
    index: usize,
) -> Option<&'a str> {
    let votes = votes?;
    let row = set.samples.get(&index).and_then(|s| s.row);
    let hit = |v: &&crate::experiments::state::SampleVote| match set.folder {
        ReconFolder::Final(split) if split == votes.split => v.sample == index,
        _ => set.split.as_deref() == Some(votes.split.name()) && row == Some(v.row as u64),
    };
    votes.votes.iter().find(hit).map(|v| v.winner.as_str())
}

/// Reads the earlier records of metrics files on a worker thread.
#[derive(Debug)]
struct PrefixLoader {
    tx: Sender<(PathBuf, PrefixRequest)>,
    rx: Receiver<(PathBuf, u64, Result<Option<MetricsSummary>, String>)>,
    /// Requests not sent yet: the worker starts only once the table is up (its first
    /// [`Project::collect_loaded`]), so it does not compete with the first frame for the CPU.
    queued: Vec<(PathBuf, PrefixRequest)>,
    pending: usize,
}

impl PrefixLoader {
    fn start() -> Self {
        let (tx, requests) = mpsc::channel::<(PathBuf, PrefixRequest)>();
        let (done, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("metrics-prefix".into())
            .spawn(move || {
                while let Ok((dir, request)) = requests.recv() {
                    let result = request.read().map_err(|e| e.to_string());
                    if done.send((dir, request.era, result)).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the metrics thread");
        Self { tx, rx, queued: Vec::new(), pending: 0 }
    }

    fn request(&mut self, dir: &Path, request: PrefixRequest) {
        self.queued.push((dir.to_path_buf(), request));
        self.pending += 1;
    }

    fn send_queued(&mut self) {
        for job in self.queued.drain(..) {
            if self.tx.send(job).is_err() {
                self.pending -= 1;
            }
        }
    }
}

/// All experiments under one `experiments/` folder.
#[derive(Debug)]
pub struct Project {
    /// The experiments folder.
    pub dir: PathBuf,
    /// Experiments, ordered by id (numeric ids numerically).
    pub experiments: Vec<Experiment>,
    /// The last `brainscope vote` (`votes.json`), when it exists.
    pub votes: Option<VoteRecord>,
    /// Why `votes.json` could not be read, if so.
    pub votes_error: Option<String>,
    votes_stamp: Option<Stamp>,
    smoothing: f64,
    probe: Probe,
    loader: Option<PrefixLoader>,
}

/// Default TensorBoard smoothing weight.
pub const DEFAULT_SMOOTHING: f64 = 0.6;

impl Project {
    /// Scan `dir` and read every experiment's files whole before returning.
    pub fn open(dir: impl Into<PathBuf>, probe: Probe) -> Self {
        Self::open_with(dir.into(), probe, None)
    }

    /// Scan `dir` reading only the end of each metrics file, so the table is ready however long
    /// the histories; a worker thread reads the earlier records (collected by
    /// [`collect_loaded`](Self::collect_loaded)). The console opens this way.
    pub fn open_lazy(dir: impl Into<PathBuf>, probe: Probe) -> Self {
        Self::open_with(dir.into(), probe, Some(PrefixLoader::start()))
    }

    fn open_with(dir: PathBuf, probe: Probe, loader: Option<PrefixLoader>) -> Self {
        let mut p = Self {
            dir,
            experiments: Vec::new(),
            votes: None,
            votes_error: None,
            votes_stamp: None,
            smoothing: DEFAULT_SMOOTHING,
            probe,
            loader,
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
        let path = self.dir.join(crate::experiments::state::VOTES_FILE);
        let s = stamp(&path);
        if s != self.votes_stamp {
            self.votes_stamp = s;
            let (votes, error) = match read_votes(&self.dir) {
                Ok(v) => (v, None),
                Err(e) => (None, Some(format!("{}: {e}", path.display()))),
            };
            changed |= votes != self.votes || error != self.votes_error;
            (self.votes, self.votes_error) = (votes, error);
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

    /// Take the earlier records read by the worker thread; returns whether anything changed.
    pub fn collect_loaded(&mut self) -> bool {
        let Some(loader) = &mut self.loader else { return false };
        loader.send_queued();
        let mut changed = false;
        while let Ok((dir, era, result)) = loader.rx.try_recv() {
            loader.pending -= 1;
            let Some(e) = self.experiments.iter_mut().find(|e| e.dir == dir) else { continue };
            match result {
                Ok(Some(prefix)) => changed |= e.set_prefix(era, prefix, &self.probe),
                Ok(None) => {} // replaced meanwhile: its tail read the new file whole
                Err(msg) => {
                    e.load_error = Some(format!("{}: {msg}", e.paths().metrics().display()));
                    changed = true;
                }
            }
        }
        changed
    }

    /// Experiments whose earlier records are still being read.
    pub fn loading(&self) -> usize {
        self.loader.as_ref().map_or(0, |l| l.pending)
    }

    /// Hold the training history of exactly the experiments `drawn` (indices), loading the
    /// missing ones and dropping the others; returns whether any was loaded.
    pub fn keep_histories(&mut self, drawn: &[usize]) -> bool {
        let mut loaded = false;
        for (i, e) in self.experiments.iter_mut().enumerate() {
            if drawn.contains(&i) {
                loaded |= e.load_history();
            } else {
                e.drop_history();
            }
        }
        loaded
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
        let mut fresh = Vec::with_capacity(dirs.len());
        for d in dirs {
            let e = match (old.remove(&d), &mut self.loader) {
                (Some(e), _) => e,
                (None, None) => Experiment::new(d, self.smoothing),
                (None, Some(loader)) => {
                    let (e, request) = Experiment::at_end(d, self.smoothing);
                    if let Some(r) = request {
                        loader.request(&e.dir, r);
                    }
                    e
                }
            };
            fresh.push(e);
        }
        self.experiments = fresh;
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
