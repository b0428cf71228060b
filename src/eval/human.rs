//! Human evaluation: the blind two-alternative forced-choice (2-AFC) test.
//!
//! A trial shows one reconstruction and two candidate targets — the sample's own and a
//! distractor (another target of the same experiment's sample set) — in a seeded random
//! left/right order; the rater picks the one the subject saw. Trials of several experiments
//! are interleaved and the experiment id is never shown.
//!
//! - [`SampleSource`] says where the images come from: [`ProbeSamples`] (the dataset's probe
//!   set, the same images in every experiment) when every rated experiment has them
//!   ([`source_for`]), else [`ValidationSamples`] (each run's own validation samples);
//! - [`plan_trials`] draws the trials (seeded: the same seed gives the same session);
//! - [`Session`] runs a session: every answer is appended to the experiment's
//!   `human-2afc.jsonl` ([`HumanRating`], format in [`crate::experiments::state`]) and flushed,
//!   so a killed session loses nothing, and the same session started again skips the trials
//!   already answered;
//! - [`summarize`] gives the accuracy per experiment with a 95% Wilson interval
//!   ([`wilson_interval`]), for all raters or one.

use crate::data::split::{seeded_rng, uniform_below};
use crate::experiments::state::{
    EvalSplit, HumanLine, HumanRating, HumanUndo, ReconKind, RunPaths, files, recon,
};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Trials of a session by default (`brainscope rate --n`, and `a` in the console).
pub const DEFAULT_TRIALS: usize = 40;

/// Two-sided 95% normal quantile, `Φ⁻¹(0.975)`.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Seeds tried, from 0, when none is given: the first whose session this rater has not
/// finished.
const AUTO_SEEDS: u64 = 1000;

/// What can go wrong while preparing, running or summarising a session.
#[derive(Debug, thiserror::Error)]
pub enum HumanError {
    /// The experiment has no `recon/epoch-NNN/` folder yet.
    #[error(
        "experiment {id}: no reconstructions in {dir} yet; they are written after each training epoch (brainscope train {id})"
    )]
    NoReconstructions {
        /// Experiment id.
        id: String,
        /// Its `recon/` folder.
        dir: PathBuf,
    },
    /// `--kind highlevel` before the high-level images exist.
    #[error(
        "experiment {id}: no high-level reconstructions (sample-XX-highlevel.png) in {dir}; make them with `brainscope recon {id}`, or rate the low-level ones (--kind lowlevel)"
    )]
    NoHighLevel {
        /// Experiment id.
        id: String,
        /// Its `recon/` folder.
        dir: PathBuf,
    },
    /// Fewer than two samples: no distractor can be drawn.
    #[error(
        "experiment {id}: only {found} reconstruction sample(s) in {dir}; a 2-AFC trial needs two (raise recon_samples in [train] of its experiment.toml)"
    )]
    TooFewSamples {
        /// Experiment id.
        id: String,
        /// The epoch folder read.
        dir: PathBuf,
        /// Samples found there.
        found: usize,
    },
    /// [`ProbeSamples`] asked for a run whose reconstructions are not of the probe set.
    #[error(
        "experiment {id}: the reconstructions in {dir} are not of the dataset's probe set (a run that predates it, or [data] probe = 0); rate its validation samples, or retrain it with `brainscope train {id} --restart`"
    )]
    NotProbe {
        /// Experiment id.
        id: String,
        /// Its `recon/` folder.
        dir: PathBuf,
    },
    /// `samples.json` of an epoch folder is not what the trainer writes.
    #[error(
        "{path} is not a reconstruction index (`{{\"samples\": [{{\"sample\", \"row\", \"image\"}}]}}`); delete it or re-run the epoch"
    )]
    SamplesIndex {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// No experiment could be rated; each reason is listed.
    #[error("nothing to rate: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    NothingToRate(Vec<HumanError>),
    /// `--n 0`.
    #[error("a session needs at least one trial (--n 1 or more)")]
    ZeroTrials,
    /// Reading a folder or a ratings file failed.
    #[error("cannot read {path}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Appending an answer failed (nothing was recorded for that trial).
    #[error("cannot append the answer to {path}")]
    Write {
        /// The ratings file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One rateable sample of one experiment: a reconstruction and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The `XX` of `sample-XX-*.png`.
    pub index: usize,
    /// What the image is, for aligning experiments: the dataset image from `samples.json`
    /// (`image`, else `row`), or `<id>#<index>` when the run has no index (then it is never
    /// aligned with another experiment's sample).
    pub key: String,
    /// The stimulus image.
    pub target: PathBuf,
    /// The reconstruction of the requested kind.
    pub recon: PathBuf,
}

/// The samples one experiment offers for rating.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSet {
    /// Experiment id.
    pub id: String,
    /// 0-based epoch the images come from.
    pub epoch: usize,
    /// Samples, ascending by index.
    pub samples: Vec<Sample>,
}

/// Where the rated (and compared) images come from.
///
/// [`ProbeSamples`]: the dataset's probe set (`data::probe`), the same held-out images for
/// every experiment, so sample `XX` is one image across experiments. [`ValidationSamples`]:
/// each experiment's own fixed samples, whatever split its run wrote (validation samples
/// before the probe set existed); those differ between experiments of different seeds (trials
/// never mix experiments, so that is sound for 2-AFC, but a compare view can only align what
/// `samples.json` says is the same image). [`source_for`] picks one.
pub trait SampleSource {
    /// The samples of experiment `id` (folder `dir`) with a `kind` reconstruction, from
    /// `epoch` or, when `None`, the latest epoch that has that kind.
    fn samples(
        &self,
        id: &str,
        dir: &Path,
        kind: ReconKind,
        epoch: Option<usize>,
    ) -> Result<SampleSet, HumanError>;

    /// What the samples are, for people: `probe set` / `validation samples`.
    fn label(&self) -> &'static str;
}

/// The reconstructions the trainer writes every epoch: `recon/epoch-NNN/sample-XX-<kind>.png`
/// with `sample-XX-target.png` and (newer runs) `samples.json`, of whichever split the run
/// reconstructs (its validation rows before the probe set; the fallback source).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationSamples;

/// The per-epoch reconstructions of the dataset's probe set: only epoch folders whose
/// `samples.json` says `"split": "probe"`. Sample `XX` is probe row `XX` in every experiment,
/// so the sets of several experiments align by sample index, and each trial's distractor is
/// another probe image.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeSamples;

/// The source a session over `experiments` (id, folder) uses: [`ProbeSamples`] when the latest
/// reconstructions of every one are of the probe set, else [`ValidationSamples`].
pub fn source_for(experiments: &[(String, PathBuf)]) -> &'static dyn SampleSource {
    let all_probe = !experiments.is_empty()
        && experiments.iter().all(|(_, dir)| latest_split(dir) == Some(EvalSplit::Probe));
    if all_probe { &ProbeSamples } else { &ValidationSamples }
}

/// The split of the latest `recon/epoch-NNN/` of the run in `dir` (`samples.json` without
/// `"split"`, or no `samples.json`: a run before the probe set, `val`); `None` without
/// reconstructions or with an unreadable index.
pub fn latest_split(dir: &Path) -> Option<EvalSplit> {
    let epoch = *recon_epochs(dir).last()?;
    read_index(&RunPaths::new(dir).recon_epoch(epoch)).ok().map(|i| i.split)
}

/// The file-name stem (`sample-XX-<stem>.png`) of a kind ([`recon`] names).
pub fn recon_stem(kind: ReconKind) -> &'static str {
    match kind {
        ReconKind::Lowlevel => recon::LOWLEVEL,
        ReconKind::Highlevel => recon::HIGHLEVEL,
    }
}

/// `sample-03-lowlevel.png` -> (3, "lowlevel").
fn parse_name(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("sample-")?.strip_suffix(".png")?;
    let (num, kind) = rest.split_once('-')?;
    Some((num.parse().ok()?, kind))
}

/// 0-based epochs with a `recon/epoch-NNN/` folder, ascending.
pub fn recon_epochs(dir: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(dir.join(files::RECON)) else { return Vec::new() };
    let mut v: Vec<usize> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("epoch-")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Files of one epoch folder: sample -> stem -> path.
fn epoch_files(folder: &Path) -> Result<BTreeMap<usize, HashMap<String, PathBuf>>, HumanError> {
    let entries = std::fs::read_dir(folder)
        .map_err(|source| HumanError::Read { path: folder.to_path_buf(), source })?;
    let mut out: BTreeMap<usize, HashMap<String, PathBuf>> = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((sample, stem)) = parse_name(&name) {
            out.entry(sample).or_default().insert(stem.to_string(), e.path());
        }
    }
    Ok(out)
}

fn pick(files: &HashMap<String, PathBuf>, kind: ReconKind) -> Option<&PathBuf> {
    files.get(recon_stem(kind))
}

/// What `samples.json` says about one epoch folder.
struct SamplesIndex {
    /// `"split"`; `val` when absent (runs before the probe set) or when there is no index.
    split: EvalSplit,
    /// Sample index -> dataset image (its path, else its row).
    keys: HashMap<usize, String>,
}

/// Read `samples.json` of an epoch folder (absent: `val`, no keys).
fn read_index(folder: &Path) -> Result<SamplesIndex, HumanError> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        split: Option<EvalSplit>,
        samples: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        sample: usize,
        #[serde(default)]
        row: Option<u64>,
        #[serde(default)]
        image: Option<String>,
    }
    let path = folder.join(files::RECON_INDEX);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SamplesIndex { split: EvalSplit::Val, keys: HashMap::new() });
        }
        Err(source) => return Err(HumanError::Read { path, source }),
    };
    let index: Index =
        serde_json::from_str(&text).map_err(|source| HumanError::SamplesIndex { path, source })?;
    let keys = index
        .samples
        .into_iter()
        .filter_map(|e| {
            let key = e.image.or(e.row.map(|r| format!("row {r}")))?;
            Some((e.sample, key))
        })
        .collect();
    Ok(SamplesIndex { split: index.split.unwrap_or(EvalSplit::Val), keys })
}

/// The samples of the latest (or the given) epoch folder with a `kind` image, among the
/// folders whose index says `split` (any split when `None`).
fn epoch_samples(
    id: &str,
    dir: &Path,
    kind: ReconKind,
    epoch: Option<usize>,
    split: Option<EvalSplit>,
) -> Result<SampleSet, HumanError> {
    let recon_dir = dir.join(files::RECON);
    let epochs = recon_epochs(dir);
    if epochs.is_empty() {
        return Err(HumanError::NoReconstructions { id: id.into(), dir: recon_dir });
    }
    let paths = RunPaths::new(dir);
    let candidates: Vec<usize> = match epoch {
        Some(e) => vec![e],
        None => epochs.iter().rev().copied().collect(),
    };
    let mut other_split = false;
    // The latest epoch with at least one image of the kind.
    for &epoch in &candidates {
        let folder = paths.recon_epoch(epoch);
        let files = epoch_files(&folder)?;
        if !files.values().any(|f| pick(f, kind).is_some()) {
            continue;
        }
        let index = read_index(&folder)?;
        if split.is_some_and(|s| s != index.split) {
            other_split = true;
            continue;
        }
        let samples = files
            .iter()
            .filter_map(|(&i, f)| {
                Some(Sample {
                    index: i,
                    key: index.keys.get(&i).cloned().unwrap_or_else(|| format!("{id}#{i}")),
                    target: f.get(recon::TARGET)?.clone(),
                    recon: pick(f, kind)?.clone(),
                })
            })
            .collect();
        return Ok(SampleSet { id: id.into(), epoch, samples });
    }
    Err(match kind {
        _ if other_split => HumanError::NotProbe { id: id.into(), dir: recon_dir },
        ReconKind::Highlevel => HumanError::NoHighLevel { id: id.into(), dir: recon_dir },
        ReconKind::Lowlevel => HumanError::NoReconstructions { id: id.into(), dir: recon_dir },
    })
}

impl SampleSource for ValidationSamples {
    fn samples(
        &self,
        id: &str,
        dir: &Path,
        kind: ReconKind,
        epoch: Option<usize>,
    ) -> Result<SampleSet, HumanError> {
        epoch_samples(id, dir, kind, epoch, None)
    }

    fn label(&self) -> &'static str {
        "validation samples"
    }
}

impl SampleSource for ProbeSamples {
    fn samples(
        &self,
        id: &str,
        dir: &Path,
        kind: ReconKind,
        epoch: Option<usize>,
    ) -> Result<SampleSet, HumanError> {
        epoch_samples(id, dir, kind, epoch, Some(EvalSplit::Probe))
    }

    fn label(&self) -> &'static str {
        "probe set"
    }
}

/// Left or right candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first (left) candidate: key `1`, `h`, ←.
    Left,
    /// The second (right) candidate: key `2`, `l`, →.
    Right,
}

/// One 2-AFC trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// 0-based position in the session.
    pub index: usize,
    /// Experiment (never shown while rating).
    pub id: String,
    /// 0-based epoch of the images.
    pub epoch: usize,
    /// Sample whose reconstruction is shown.
    pub sample: usize,
    /// Sample whose target is the distractor.
    pub distractor: usize,
    /// Whether the true target is on the left.
    pub target_left: bool,
    /// The reconstruction.
    pub recon: PathBuf,
    /// Left candidate.
    pub left: PathBuf,
    /// Right candidate.
    pub right: PathBuf,
}

impl Trial {
    /// Samples whose targets are shown left and right.
    pub fn order(&self) -> [usize; 2] {
        if self.target_left {
            [self.sample, self.distractor]
        } else {
            [self.distractor, self.sample]
        }
    }

    /// Whether choosing `side` is right.
    pub fn is_correct(&self, side: Side) -> bool {
        (side == Side::Left) == self.target_left
    }
}

/// Fisher–Yates with [`uniform_below`] (the algorithm `data::split` documents), not `rand`'s
/// `shuffle`: a continued session regenerates its trials, so they must not change with a
/// `rand` upgrade.
fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Draw the trials of a session: `n` trials shared as evenly as possible between the sets
/// (those with fewer than two samples get none; the caller reports them), then interleaved
/// by a seeded shuffle.
///
/// Per set, samples are used in rounds (each round a fresh seeded order of all samples), so
/// every sample is shown about equally often; each sample's distractor is drawn among the
/// other samples with a different image, cycling through all of them before repeating one.
/// Everything comes from one ChaCha8 stream keyed by `seed` ([`seeded_rng`]): the same sets
/// and seed give the same trials.
pub fn plan_trials(sets: &[SampleSet], n: usize, seed: u64) -> Vec<Trial> {
    let mut rng = seeded_rng(seed);
    let eligible: Vec<&SampleSet> = sets.iter().filter(|s| s.samples.len() >= 2).collect();
    let mut trials = Vec::with_capacity(n);
    let e = eligible.len();
    for (k, set) in eligible.iter().enumerate() {
        let count = n / e + usize::from(k < n % e);
        let s = &set.samples;
        // Distractor candidates per sample position: other samples showing another image.
        let others = |i: usize| -> Vec<usize> {
            (0..s.len()).filter(|&j| j != i && s[j].key != s[i].key).collect()
        };
        let mut unused: Vec<Vec<usize>> = (0..s.len()).map(others).collect();
        let mut made = 0;
        while made < count {
            let mut order: Vec<usize> = (0..s.len()).collect();
            shuffle(&mut order, &mut rng);
            let before = made;
            for i in order {
                if made == count {
                    break;
                }
                if unused[i].is_empty() {
                    unused[i] = others(i);
                    if unused[i].is_empty() {
                        continue; // every other sample shows the same image
                    }
                }
                let pos = uniform_below(&mut rng, unused[i].len() as u64) as usize;
                let j = unused[i].swap_remove(pos);
                let target_left = uniform_below(&mut rng, 2) == 0;
                let (t, d) = (&s[i].target, &s[j].target);
                let (left, right) = if target_left { (t, d) } else { (d, t) };
                trials.push(Trial {
                    index: 0,
                    id: set.id.clone(),
                    epoch: set.epoch,
                    sample: s[i].index,
                    distractor: s[j].index,
                    target_left,
                    recon: s[i].recon.clone(),
                    left: left.clone(),
                    right: right.clone(),
                });
                made += 1;
            }
            if made == before {
                break; // all samples show one image: no distractor exists
            }
        }
    }
    shuffle(&mut trials, &mut rng);
    for (i, t) in trials.iter_mut().enumerate() {
        t.index = i;
    }
    trials
}

/// The rater's name when none is given: `$USER`, else `$LOGNAME`, else `anonymous`.
pub fn default_rater() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "anonymous".into())
}

/// The answers recorded in one ratings file, withdrawn ones removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ratings {
    /// Answers in file order.
    pub answers: Vec<HumanRating>,
    /// Corrupt lines skipped (a partial last line, from a kill mid-write, is not counted).
    pub corrupt: usize,
}

/// Read `human-2afc.jsonl` (absent = no answers) and apply its undo lines.
pub fn read_ratings(path: &Path) -> Result<Ratings, HumanError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ratings::default()),
        Err(source) => return Err(HumanError::Read { path: path.to_path_buf(), source }),
    };
    let mut out = Ratings::default();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (k, line) in lines.iter().enumerate() {
        match HumanLine::parse_line(line) {
            Some(HumanLine::Answer(a)) => out.answers.push(a),
            Some(HumanLine::Undo(u)) => {
                if let Some(pos) = out.answers.iter().rposition(|a| {
                    a.session == u.session && a.rater == u.rater && a.trial == u.trial
                }) {
                    out.answers.remove(pos);
                }
            }
            None if line.trim().is_empty() => {}
            None if k + 1 == lines.len() && !complete => {} // cut by a kill mid-write
            None => out.corrupt += 1,
        }
    }
    Ok(out)
}

/// Append one line and flush it to the file (`O_APPEND`: one `write` per line, so two raters
/// appending at once do not interleave).
fn append(path: &Path, line: &HumanLine) -> Result<(), HumanError> {
    let err = |source| HumanError::Write { path: path.to_path_buf(), source };
    let mut text = line.to_line();
    text.push('\n');
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.flush().map_err(err)?;
    f.sync_data().map_err(err)
}

/// Accuracy of one experiment: `{"id", "trials", "correct", "accuracy", "ci_low", "ci_high",
/// "raters"}` (`accuracy` and the interval are `null` without trials).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExperimentSummary {
    /// Experiment id.
    pub id: String,
    /// Answered trials.
    pub trials: usize,
    /// Correct answers.
    pub correct: usize,
    /// `correct / trials`.
    pub accuracy: Option<f64>,
    /// Lower end of the 95% Wilson interval.
    pub ci_low: Option<f64>,
    /// Upper end of the 95% Wilson interval.
    pub ci_high: Option<f64>,
    /// Raters counted, sorted.
    pub raters: Vec<String>,
}

impl ExperimentSummary {
    /// For a table cell (10 characters at most): `75% 52-89`, `-` without trials.
    pub fn cell(&self) -> String {
        match (self.accuracy, self.ci_low, self.ci_high) {
            (Some(a), Some(lo), Some(hi)) => {
                let pct = |x: f64| (x * 100.0).round() as u32;
                let s = format!("{}% {}-{}", pct(a), pct(lo), pct(hi));
                if s.len() > 10 { s.replace('%', "") } else { s }
            }
            _ => "-".into(),
        }
    }

    /// One line: `75% correct (15/20), 95% CI 53-89%, raters: ana, ben`.
    pub fn line(&self) -> String {
        match (self.accuracy, self.ci_low, self.ci_high) {
            (Some(a), Some(lo), Some(hi)) => format!(
                "{:.0}% correct ({}/{}), 95% CI {:.0}-{:.0}%, rater{}: {}",
                a * 100.0,
                self.correct,
                self.trials,
                lo * 100.0,
                hi * 100.0,
                if self.raters.len() == 1 { "" } else { "s" },
                self.raters.join(", ")
            ),
            _ => "not rated yet".into(),
        }
    }
}

/// The Wilson score interval for `correct` successes in `trials` at normal quantile `z`
/// (Wilson 1927; statsmodels' `proportion_confint(method="wilson")`, scipy's
/// `binomtest(...).proportion_ci(method="wilson")`); `None` without trials.
///
/// `(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`, `p = correct / trials`.
pub fn wilson(correct: usize, trials: usize, z: f64) -> Option<(f64, f64)> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = correct as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

/// The 95% Wilson interval.
pub fn wilson_interval(correct: usize, trials: usize) -> Option<(f64, f64)> {
    wilson(correct, trials, Z95)
}

/// Accuracy of experiment `id` over `answers` of `kind`, of every rater or only `rater`.
pub fn summarize(
    id: &str,
    answers: &[HumanRating],
    kind: ReconKind,
    rater: Option<&str>,
) -> ExperimentSummary {
    let counted: Vec<&HumanRating> =
        answers.iter().filter(|a| a.kind == kind && rater.is_none_or(|r| a.rater == r)).collect();
    let trials = counted.len();
    let correct = counted.iter().filter(|a| a.correct).count();
    let raters: BTreeSet<&str> = counted.iter().map(|a| a.rater.as_str()).collect();
    let ci = wilson_interval(correct, trials);
    ExperimentSummary {
        id: id.into(),
        trials,
        correct,
        accuracy: (trials > 0).then(|| correct as f64 / trials as f64),
        ci_low: ci.map(|c| c.0),
        ci_high: ci.map(|c| c.1),
        raters: raters.into_iter().map(String::from).collect(),
    }
}

/// What the console shows per experiment: both kinds over every rater.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HumanResults {
    /// Low-level reconstructions.
    pub lowlevel: ExperimentSummary,
    /// High-level reconstructions.
    pub highlevel: ExperimentSummary,
    /// Corrupt lines skipped.
    pub corrupt: usize,
    /// Why the file could not be read, if so.
    pub error: Option<String>,
}

impl HumanResults {
    /// Read experiment `id`'s ratings file.
    pub fn load(id: &str, dir: &Path) -> Self {
        match read_ratings(&RunPaths::new(dir).human_ratings()) {
            Ok(r) => Self {
                lowlevel: summarize(id, &r.answers, ReconKind::Lowlevel, None),
                highlevel: summarize(id, &r.answers, ReconKind::Highlevel, None),
                corrupt: r.corrupt,
                error: None,
            },
            Err(e) => Self { error: Some(e.to_string()), ..Self::default() },
        }
    }
}

/// How to start a session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Trials in the session, shared between the experiments.
    pub n: usize,
    /// Which reconstructions.
    pub kind: ReconKind,
    /// `Some`: exactly this session (continued if begun). `None`: the first seed from 0 whose
    /// session this rater has not finished.
    pub seed: Option<u64>,
    /// Who answers.
    pub rater: String,
}

/// An experiment left out of a session, and why.
#[derive(Debug)]
pub struct Skipped {
    /// Experiment id.
    pub id: String,
    /// Why.
    pub reason: HumanError,
}

/// A running 2-AFC session: the trials, which are answered, the ratings files.
#[derive(Debug)]
pub struct Session {
    /// Session id, recorded with every answer.
    pub name: String,
    /// Seed of the trials.
    pub seed: u64,
    /// Which reconstructions.
    pub kind: ReconKind,
    /// Who answers.
    pub rater: String,
    /// Every trial of the session, in order.
    pub trials: Vec<Trial>,
    /// Experiments left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// Answers given before this run (a continued session).
    pub resumed: usize,
    answers: Vec<Option<HumanRating>>,
    queue: VecDeque<usize>,
    history: Vec<usize>,
    files: HashMap<String, PathBuf>,
    shown: Instant,
    ended: bool,
}

/// `<kind>-seed<S>-n<N>-<ids joined by +>`.
fn session_name(kind: ReconKind, seed: u64, n: usize, ids: &[&str]) -> String {
    format!("{}-seed{seed}-n{n}-{}", kind.name(), ids.join("+"))
}

impl Session {
    /// Prepare a session over `experiments` (id, folder): read each one's samples from
    /// `source` and its ratings file, draw the trials and drop those this rater already
    /// answered in this session. Experiments that cannot be rated are listed in
    /// [`skipped`](Self::skipped); an error when none can.
    pub fn start(
        experiments: &[(String, PathBuf)],
        opts: &SessionOptions,
        source: &dyn SampleSource,
    ) -> Result<Self, HumanError> {
        if opts.n == 0 {
            return Err(HumanError::ZeroTrials);
        }
        let mut exps: Vec<(String, PathBuf)> = experiments.to_vec();
        exps.sort_by(|a, b| a.0.cmp(&b.0));
        exps.dedup_by(|a, b| a.0 == b.0);
        let ids: Vec<&str> = exps.iter().map(|e| e.0.as_str()).collect();
        let mut recorded: HashMap<String, Vec<HumanRating>> = HashMap::new();
        for (id, dir) in &exps {
            let r = read_ratings(&RunPaths::new(dir).human_ratings())?;
            recorded.insert(
                id.clone(),
                r.answers.into_iter().filter(|a| a.rater == opts.rater).collect(),
            );
        }
        let seeds: Box<dyn Iterator<Item = u64>> = match opts.seed {
            Some(s) => Box::new(std::iter::once(s)),
            None => Box::new(0..AUTO_SEEDS),
        };
        // Sample sets by (experiment, pinned epoch), read once.
        let mut loaded: HashMap<(String, Option<usize>), SampleSet> = HashMap::new();
        let mut last = None;
        for seed in seeds {
            let name = session_name(opts.kind, seed, opts.n, &ids);
            let mut sets = Vec::new();
            let mut skipped = Vec::new();
            for (id, dir) in &exps {
                // A continued session keeps the epoch its first answers came from.
                let pinned = recorded[id].iter().rev().find(|a| a.session == name).map(|a| a.epoch);
                let key = (id.clone(), pinned);
                let set = match loaded.get(&key) {
                    Some(set) => Ok(set.clone()),
                    _ => source.samples(id, dir, opts.kind, pinned),
                };
                match set {
                    Ok(set) if set.samples.len() < 2 => {
                        let dir = RunPaths::new(dir).recon_epoch(set.epoch);
                        let found = set.samples.len();
                        skipped.push(Skipped {
                            id: id.clone(),
                            reason: HumanError::TooFewSamples { id: id.clone(), dir, found },
                        });
                    }
                    Ok(set) => {
                        loaded.insert(key, set.clone());
                        sets.push(set);
                    }
                    Err(e) => skipped.push(Skipped { id: id.clone(), reason: e }),
                }
            }
            if sets.is_empty() {
                return Err(HumanError::NothingToRate(
                    skipped.into_iter().map(|s| s.reason).collect(),
                ));
            }
            let trials = plan_trials(&sets, opts.n, seed);
            let answers: Vec<Option<HumanRating>> = trials
                .iter()
                .map(|t| {
                    recorded[&t.id]
                        .iter()
                        .rev()
                        .find(|a| {
                            a.session == name
                                && a.trial == t.index
                                && a.sample == t.sample
                                && a.distractor == t.distractor
                        })
                        .cloned()
                })
                .collect();
            let files = exps
                .iter()
                .map(|(id, dir)| (id.clone(), RunPaths::new(dir).human_ratings()))
                .collect();
            let queue: VecDeque<usize> =
                (0..trials.len()).filter(|&i| answers[i].is_none()).collect();
            let session = Session {
                name,
                seed,
                kind: opts.kind,
                rater: opts.rater.clone(),
                resumed: trials.len() - queue.len(),
                trials,
                skipped,
                answers,
                queue,
                history: Vec::new(),
                files,
                shown: Instant::now(),
                ended: false,
            };
            if !session.queue.is_empty() || opts.seed.is_some() {
                return Ok(session);
            }
            last = Some(session);
        }
        Ok(last.expect("at least one seed was tried"))
    }

    /// The trial to answer now; `None` once the session is over.
    pub fn current(&self) -> Option<&Trial> {
        if self.ended { None } else { self.queue.front().map(|&i| &self.trials[i]) }
    }

    /// Whether the session is over (every trial answered, or ended with `q`).
    pub fn is_over(&self) -> bool {
        self.current().is_none()
    }

    /// Answered trials (this run and earlier runs of the same session).
    pub fn answered(&self) -> usize {
        self.answers.iter().filter(|a| a.is_some()).count()
    }

    /// Trials of the session.
    pub fn total(&self) -> usize {
        self.trials.len()
    }

    /// Answer the current trial: recorded (appended and flushed) before it counts.
    pub fn answer(&mut self, side: Side) -> Result<(), HumanError> {
        let Some(&i) = self.queue.front().filter(|_| !self.ended) else { return Ok(()) };
        let t = &self.trials[i];
        let rating = HumanRating {
            t: crate::experiments::process::now_ms(),
            session: self.name.clone(),
            rater: self.rater.clone(),
            kind: self.kind,
            seed: self.seed,
            trial: t.index,
            epoch: t.epoch,
            sample: t.sample,
            distractor: t.distractor,
            order: t.order(),
            choice: if side == Side::Left { 1 } else { 2 },
            correct: t.is_correct(side),
            response_ms: self.shown.elapsed().as_millis() as u64,
        };
        append(&self.files[&t.id], &HumanLine::Answer(rating.clone()))?;
        self.answers[i] = Some(rating);
        self.queue.pop_front();
        self.history.push(i);
        self.shown = Instant::now();
        Ok(())
    }

    /// Put the current trial at the end of the queue (asked again after the others).
    pub fn skip(&mut self) {
        if !self.ended && self.queue.len() > 1 {
            self.queue.rotate_left(1);
            self.shown = Instant::now();
        }
    }

    /// Withdraw the last answer of this run (an undo line is appended) and ask it again;
    /// `false` when there is nothing to undo.
    pub fn undo(&mut self) -> Result<bool, HumanError> {
        let Some(&i) = self.history.last() else { return Ok(false) };
        let t = &self.trials[i];
        let undo = HumanUndo {
            t: crate::experiments::process::now_ms(),
            session: self.name.clone(),
            rater: self.rater.clone(),
            trial: t.index,
            undo: true,
        };
        append(&self.files[&t.id], &HumanLine::Undo(undo))?;
        self.history.pop();
        self.answers[i] = None;
        self.queue.push_front(i);
        self.ended = false;
        self.shown = Instant::now();
        Ok(true)
    }

    /// End the session now (`q`); every answer is already saved.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// This session's accuracy per experiment (shown once it is over), in id order.
    pub fn results(&self) -> Vec<ExperimentSummary> {
        let mut by_id: BTreeMap<&str, Vec<HumanRating>> = BTreeMap::new();
        for t in &self.trials {
            by_id.entry(&t.id).or_default();
        }
        for a in self.answers.iter().flatten() {
            let id = &self.trials[a.trial].id;
            by_id.entry(id).or_default().push(a.clone());
        }
        by_id.iter().map(|(id, a)| summarize(id, a, self.kind, None)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: &str, n: usize) -> SampleSet {
        SampleSet {
            id: id.into(),
            epoch: 3,
            samples: (0..n)
                .map(|i| Sample {
                    index: i,
                    key: format!("img{i}"),
                    target: format!("{id}/t{i}.png").into(),
                    recon: format!("{id}/r{i}.png").into(),
                })
                .collect(),
        }
    }

    #[test]
    fn trials_are_seeded_interleaved_and_never_pair_a_sample_with_itself() {
        let sets = [set("92", 4), set("94", 5), set("97", 1)];
        let a = plan_trials(&sets, 40, 7);
        assert_eq!(a, plan_trials(&sets, 40, 7), "same seed, same trials");
        assert_ne!(a, plan_trials(&sets, 40, 8), "another seed, other trials");
        assert_eq!(a.len(), 40);
        assert_eq!(a.iter().filter(|t| t.id == "92").count(), 20, "shared evenly");
        assert!(a.iter().all(|t| t.id != "97"), "a single-sample set gets no trials");
        for t in &a {
            assert_ne!(t.sample, t.distractor, "trial {t:?}");
            let own = format!("{}/t{}.png", t.id, t.sample);
            let other = format!("{}/t{}.png", t.id, t.distractor);
            assert_eq!(t.recon, PathBuf::from(format!("{}/r{}.png", t.id, t.sample)));
            let (l, r) = if t.target_left { (&own, &other) } else { (&other, &own) };
            assert_eq!((&t.left, &t.right), (&PathBuf::from(l), &PathBuf::from(r)));
            assert_eq!(t.order()[usize::from(!t.target_left)], t.sample);
        }
        // Interleaved: not all of one experiment first.
        let first_half: BTreeSet<&str> = a[..10].iter().map(|t| t.id.as_str()).collect();
        assert_eq!(first_half.len(), 2);
        // Both sides used, every sample used about equally, distractors cycle (4 samples x 3
        // others = 12 pairs; 20 trials use every pair at least once).
        let left = a.iter().filter(|t| t.target_left).count();
        assert!((10..=30).contains(&left), "left {left} of 40");
        let pairs: BTreeSet<(usize, usize)> =
            a.iter().filter(|t| t.id == "92").map(|t| (t.sample, t.distractor)).collect();
        assert_eq!(pairs.len(), 12);
        for s in 0..4 {
            assert_eq!(a.iter().filter(|t| t.id == "92" && t.sample == s).count(), 5);
        }
    }

    #[test]
    fn a_distractor_never_shows_the_same_image() {
        let mut s = set("92", 3);
        s.samples[1].key = "img0".into(); // samples 0 and 1 show one image
        let trials = plan_trials(&[s], 30, 1);
        assert_eq!(trials.len(), 30);
        for t in &trials {
            assert!(!matches!((t.sample, t.distractor), (0, 1) | (1, 0)), "{t:?}");
        }
        let mut same = set("92", 2);
        same.samples[1].key = "img0".into();
        assert!(plan_trials(&[same], 10, 1).is_empty(), "no distractor exists");
    }

    #[test]
    fn wilson_matches_scipy() {
        // scipy 1.17 `binomtest(k, n).proportion_ci(method="wilson")` (= statsmodels'
        // proportion_confint(k, n, method="wilson")).
        for (k, n, lo, hi) in [
            (8, 10, 0.4901624715366418, 0.9433178485456248),
            (0, 10, 0.0, 0.27753279986288926),
            (10, 10, 0.7224672001371109, 1.0),
            (15, 20, 0.5312991223812561, 0.8881382985923344),
            (1, 1, 0.20654931437723745, 1.0),
            (31, 40, 0.6249690325768997, 0.8768390867645925),
            (50, 100, 0.4038315303659956, 0.5961684696340044),
        ] {
            let (l, h) = wilson_interval(k, n).unwrap();
            assert!((l - lo).abs() < 1e-12 && (h - hi).abs() < 1e-12, "{k}/{n}: {l} {h}");
        }
        assert_eq!(wilson_interval(0, 0), None);
    }

    #[test]
    fn cells_fit_ten_characters() {
        let s = |c, n| summarize("x", &ratings(c, n), ReconKind::Lowlevel, None);
        assert_eq!(s(15, 20).cell(), "75% 53-89");
        assert_eq!(s(10, 10).cell(), "100 72-100");
        assert_eq!(s(0, 0).cell(), "-");
        assert_eq!(s(15, 20).line(), "75% correct (15/20), 95% CI 53-89%, rater: r");
    }

    fn ratings(correct: usize, n: usize) -> Vec<HumanRating> {
        (0..n)
            .map(|i| HumanRating {
                t: 0,
                session: "s".into(),
                rater: "r".into(),
                kind: ReconKind::Lowlevel,
                seed: 0,
                trial: i,
                epoch: 0,
                sample: 0,
                distractor: 1,
                order: [0, 1],
                choice: 1,
                correct: i < correct,
                response_ms: 1,
            })
            .collect()
    }
}
