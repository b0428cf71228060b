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
    /// Index of one epoch's reconstructions: `recon/epoch-NNN/samples.json`.
    /// `{"epoch", "split": "probe"|"val", "samples": [{"sample","row","image"}]}`; none: val.
    pub const RECON_INDEX: &str = "samples.json";
}

/// The kinds of image in `recon/epoch-NNN/`: `sample-XX-<kind>.png` ([`recon_file_name`]).
pub mod recon {
    /// The real stimulus image, resized to the decoder's output size.
    pub const TARGET: &str = "target";
    /// The low-level model's predicted latent decoded by the VAE.
    pub const LOWLEVEL: &str = "lowlevel";
    /// Reserved for the high-level (Stable Diffusion) reconstruction.
    pub const HIGHLEVEL: &str = "highlevel";
    /// Every kind, in display order.
    pub const KINDS: [&str; 3] = [TARGET, LOWLEVEL, HIGHLEVEL];
}

/// `sample-XX-<kind>.png`: the file of one reconstruction sample inside `recon/epoch-NNN/`.
pub fn recon_file_name(sample: usize, kind: &str) -> String {
    format!("sample-{sample:02}-{kind}.png")
}

/// What an experiment is doing, as the console and `status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Never trained.
    Idle,
    /// Submitted to a cluster scheduler (Slurm) and waiting for the job's trainer to start.
    Queued,
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
            RunState::Queued => "queued",
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
    /// The device the trainer computes on, as it resolved it (`cpu`, `wgpu:0 (<adapter>)`,
    /// `cuda:0`); absent in a status written before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// A recorded device ([`RunStatus::device`]) without its adapter name
/// (`wgpu (llvmpipe ...)` -> `wgpu`), for narrow columns.
pub fn short_device(label: &str) -> &str {
    label.split_once(" (").map_or(label, |(kind, _)| kind)
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
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write `status.json` atomically (temp file in the same folder, fsync, rename), so a reader
/// never sees a half-written status.
pub fn write_status(path: &Path, status: &RunStatus) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(status).map_err(std::io::Error::other)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Replace `path` with `bytes` atomically: write `<path>.tmp-<pid>` beside it, fsync, rename
/// over the target, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> RunStatus {
        RunStatus {
            state: RunState::Running,
            pid: Some(42),
            pid_start: Some(7),
            host: "h".into(),
            started_ms: Some(1),
            ended_ms: None,
            exit_code: None,
            epoch: 3,
            epochs: 10,
            step: 30,
            total_steps: 100,
            message: String::new(),
            device: Some("cpu".into()),
        }
    }

    #[test]
    fn status_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(files::STATUS);
        write_status(&path, &status()).unwrap();
        write_status(&path, &status()).unwrap();
        assert_eq!(read_status(&path).unwrap(), Some(status()));
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(files::STATUS)]);
    }

    #[test]
    fn a_status_without_a_device_reads_as_none_and_is_written_back_so() {
        let mut json = serde_json::to_value(status()).unwrap();
        assert_eq!(json["device"], "cpu");
        json.as_object_mut().unwrap().remove("device");
        let old: RunStatus = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(old.device, None);
        assert_eq!(serde_json::to_value(&old).unwrap(), json, "no device key added on rewrite");
        assert_eq!(short_device("wgpu (llvmpipe (LLVM 19.1.7, 256 bits))"), "wgpu");
        assert_eq!(short_device("cuda:1"), "cuda:1");
    }

    #[test]
    fn metric_lines_round_trip_and_corrupt_lines_are_none() {
        let rec = MetricRecord {
            t: 5,
            epoch: 0,
            step: 1,
            split: Split::Train,
            loss: Some(0.5),
            l1: None,
            lr: Some(1e-4),
        };
        let line = rec.to_line();
        assert!(line.contains("\"split\":\"train\"") && !line.contains("l1"));
        assert_eq!(MetricRecord::parse_line(&line), Some(rec));
        assert_eq!(MetricRecord::parse_line(&line[..line.len() - 3]), None);
        assert_eq!(MetricRecord::parse_line("  "), None);
    }
}

// ------------------------------------------------------------------------------------------
// Slurm job record (issue 11, `brainscope submit`): which Slurm job trains this experiment.
// Written by `submit` when sbatch accepts the job, read by the registry to reconcile the
// displayed state with squeue/sacct and by `stop` to scancel. The trainer never writes it.
// ------------------------------------------------------------------------------------------

/// File name of the Slurm job record inside `experiments/<id>/`.
pub const SLURM_JOB_FILE: &str = "slurm-job.json";

/// Contents of `slurm-job.json`: the latest Slurm job submitted for the experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmJobRecord {
    /// The job id as Slurm commands take it: `1234`, or `1234_5` for task 5 of array job 1234.
    pub job_id: String,
    /// The array job id (`1234`) when the job is one task of an array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_job_id: Option<String>,
    /// The array task index (`SLURM_ARRAY_TASK_ID`) when the job is one task of an array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_task: Option<u32>,
    /// Partition asked for (`None`: the cluster's default).
    #[serde(default)]
    pub partition: Option<String>,
    /// Submission time, ms since the Unix epoch: a status.json started before it belongs to an
    /// earlier run.
    pub submitted_ms: u64,
    /// Host `sbatch` ran on.
    #[serde(default)]
    pub submit_host: String,
    /// The batch script.
    pub script: PathBuf,
    /// Set by `brainscope stop` when it cancelled the job (so a job cancelled while queued shows
    /// as stopped rather than crashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_ms: Option<u64>,
}

/// Read `dir/slurm-job.json`; `Ok(None)` when the experiment was never submitted to Slurm.
pub fn read_slurm_job(dir: &Path) -> std::io::Result<Option<SlurmJobRecord>> {
    let path = dir.join(SLURM_JOB_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write `dir/slurm-job.json` atomically.
pub fn write_slurm_job(dir: &Path, record: &SlurmJobRecord) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
    text.push('\n');
    write_atomic(&dir.join(SLURM_JOB_FILE), text.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Human evaluation (blind 2-AFC): the ratings file, written by `brainscope rate` and the
// console's rating view (`eval::human`), read by the console's table and detail views.
// ---------------------------------------------------------------------------------------------

/// `experiments/<id>/human-2afc.jsonl`: one [`HumanLine`] per line, appended and flushed after
/// every answer (a killed session loses nothing), never rewritten.
pub const HUMAN_RATINGS: &str = "human-2afc.jsonl";

impl RunPaths {
    /// `human-2afc.jsonl`.
    pub fn human_ratings(&self) -> PathBuf {
        self.dir.join(HUMAN_RATINGS)
    }
}

/// Which reconstruction a 2-AFC trial shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReconKind {
    /// The low-level model's decoded latent (`sample-XX-lowlevel.png`).
    Lowlevel,
    /// The guided (img2img) reconstruction (`sample-XX-highlevel.png`, from `brainscope recon`).
    Highlevel,
}

impl ReconKind {
    /// `lowlevel` / `highlevel`.
    pub fn name(self) -> &'static str {
        match self {
            ReconKind::Lowlevel => "lowlevel",
            ReconKind::Highlevel => "highlevel",
        }
    }
}

/// One answered 2-AFC trial: "which of these two images did the subject see?".
///
/// `{"t", "session", "rater", "kind", "seed", "trial", "epoch", "sample", "distractor",
/// "order", "choice", "correct", "response_ms"}`. Sample indices are the `XX` of
/// `recon/epoch-NNN/sample-XX-*.png`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanRating {
    /// When the answer was given, ms since the Unix epoch.
    pub t: u64,
    /// Session id (`<kind>-seed<S>-n<N>-<ids joined by +>`): the same command continues it.
    pub session: String,
    /// Who answered (`--rater`, else `$USER`).
    pub rater: String,
    /// Which reconstruction was shown.
    pub kind: ReconKind,
    /// Seed of the session's trial order, distractors and left/right order.
    pub seed: u64,
    /// 0-based trial number within the session.
    pub trial: usize,
    /// 0-based epoch of the `recon/epoch-NNN/` folder the images came from.
    pub epoch: usize,
    /// Sample whose reconstruction was shown (its target is the right answer).
    pub sample: usize,
    /// Sample whose target was shown as the other candidate.
    pub distractor: usize,
    /// Samples whose targets were shown left and right.
    pub order: [usize; 2],
    /// The position chosen: 1 = left, 2 = right.
    pub choice: u8,
    /// Whether the chosen target is the sample's own.
    pub correct: bool,
    /// Time from showing the trial to the answer, ms.
    pub response_ms: u64,
}

/// The rater took back (`u`) their last answer to `trial` of `session`: that answer no longer
/// counts. `{"t", "session", "rater", "trial", "undo": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanUndo {
    /// When, ms since the Unix epoch.
    pub t: u64,
    /// Session of the withdrawn answer.
    pub session: String,
    /// Rater of the withdrawn answer.
    pub rater: String,
    /// Trial of the withdrawn answer.
    pub trial: usize,
    /// Always `true` (marks the line as an undo).
    pub undo: bool,
}

/// One line of `human-2afc.jsonl`: an answer or the withdrawal of one (the file stays
/// append-only, so two raters can share it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HumanLine {
    /// An answered trial.
    Answer(HumanRating),
    /// A withdrawn answer.
    Undo(HumanUndo),
}

impl HumanLine {
    /// Parse one line; `None` for a blank, partial or corrupt line (callers count and skip).
    pub fn parse_line(line: &str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        match serde_json::from_str(line).ok()? {
            HumanLine::Undo(u) if !u.undo => None,
            l => Some(l),
        }
    }

    /// Serialise as one line (no trailing newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("rating records always serialise")
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation, final reconstructions and votes: written by `brainscope eval`, `recon` and `vote`
// (`eval::*`, `pipelines::*`), read by the console's table, detail, gallery and compare views.
// ---------------------------------------------------------------------------------------------

/// Which rows an evaluation, a final reconstruction or a vote covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EvalSplit {
    /// The dataset's probe set (`data::probe`): the same rows for every experiment; the default
    /// for anything compared across experiments.
    Probe,
    /// The experiment's own validation split.
    Val,
    /// The experiment's own training split.
    Train,
}

impl EvalSplit {
    /// `probe` / `val` / `train`.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Probe => "probe",
            EvalSplit::Val => "val",
            EvalSplit::Train => "train",
        }
    }
}

/// `eval/`: one [`EvalRecord`] per split, `eval/<split>.json` (rewritten atomically).
pub const EVAL_DIR: &str = "eval";

/// `<experiments>/votes.json`: the last [`VoteRecord`] (rewritten atomically by `vote`).
pub const VOTES_FILE: &str = "votes.json";

/// `sample-XX-caption.txt` beside the high-level image: the BLIP caption ("blurry " removed)
/// that prompted it (kind name for [`recon_file_name`]-style names, with a `.txt` extension).
pub const CAPTION_KIND: &str = "caption";

/// `sample-XX-caption.txt`: the caption file of one sample in `recon/final-<split>/`.
pub fn caption_file_name(sample: usize) -> String {
    format!("sample-{sample:02}-{CAPTION_KIND}.txt")
}

/// `recon/final-<split>/highlevel.json`: the settings `brainscope recon` made the high-level
/// images with ([`HighLevelSettings`]); a resumed `recon` refuses other settings.
pub const HIGHLEVEL_SETTINGS: &str = "highlevel.json";

/// What the high-level images of one final folder were made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HighLevelSettings {
    /// SD pipeline folder.
    pub sd: String,
    /// BLIP folder.
    pub blip: String,
    /// BLIP preprocessing (`hf` or `seed`).
    pub blip_preprocess: String,
    /// img2img strength.
    pub strength: f64,
    /// Classifier-free guidance scale.
    pub guidance: f64,
    /// Scheduler steps before the strength cut.
    pub steps: usize,
    /// `pndm` or `ddim`.
    pub scheduler: String,
    /// `sample` or `argmax`.
    pub latent_mode: String,
    /// Base seed (sample `i` uses `seed + row`).
    pub seed: u64,
    /// Checkpoint step of the low-level images the captions and images came from.
    pub step: u64,
    /// Float precision of the models (`f32` or `f16`); files from before it was recorded are f32.
    #[serde(default = "f32_name")]
    pub dtype: String,
}

fn f32_name() -> String {
    "f32".into()
}

impl RunPaths {
    /// `eval/<split>.json`.
    pub fn eval(&self, split: EvalSplit) -> PathBuf {
        self.dir.join(EVAL_DIR).join(format!("{}.json", split.name()))
    }
    /// `recon/final-<split>/`: reconstructions of every row of `split` from the last checkpoint
    /// (`samples.json` index as the per-epoch folders, plus `sample-XX-{target,lowlevel,
    /// highlevel}.png` and `sample-XX-caption.txt`). `eval` writes the low-level images,
    /// `recon` adds the high-level ones; sample `XX` of the probe split is probe row `XX`.
    pub fn recon_final(&self, split: EvalSplit) -> PathBuf {
        self.dir.join(files::RECON).join(format!("final-{}", split.name()))
    }
}

/// `eval/<split>.json`: the numbers of one `brainscope eval` run. CLIP numbers are `None`
/// (JSON `null`), never zero, when no CLIP model was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Which rows.
    pub split: EvalSplit,
    /// Samples evaluated (after `--limit`).
    pub samples: usize,
    /// 0-based epoch of the checkpoint evaluated.
    pub epoch: usize,
    /// Optimizer step of the checkpoint evaluated.
    pub step: u64,
    /// Checkpoint file used, relative to the experiment folder.
    pub checkpoint: String,
    /// VAE folder used to decode (as given / resolved).
    pub vae: String,
    /// CLIP folder used, when any.
    pub clip: Option<String>,
    /// Mean absolute error between predicted and target latents.
    pub latent_l1: f64,
    /// MindEye PixCorr (mean Pearson r over images), after the resize below.
    pub pixcorr: f64,
    /// MindEye SSIM (scikit-image >= 0.20 settings), after the resize below.
    pub ssim: f64,
    /// Resize applied before PixCorr/SSIM: `Some(425)` (MindEye's default) or `None`.
    pub resize: Option<u32>,
    /// 2-way identification on raw pixels.
    pub two_way_pixels: f64,
    /// 2-way identification on CLIP image embeddings.
    pub two_way_clip: Option<f64>,
    /// CLIP cosine between the reconstruction and the real stimulus image (the paper's
    /// Table III).
    pub clip_sim_target: Option<f64>,
    /// CLIP cosine between the reconstruction and the VAE-decoded target latent (what the seed
    /// code actually compared).
    pub clip_sim_vae_target: Option<f64>,
    /// Wall-clock time of the evaluation, ms since the Unix epoch.
    pub t: u64,
}

/// Read `eval/<split>.json`; `Ok(None)` when the experiment was never evaluated on `split`.
pub fn read_eval(paths: &RunPaths, split: EvalSplit) -> std::io::Result<Option<EvalRecord>> {
    match std::fs::read(paths.eval(split)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// How `vote` picks a winner per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VoteRule {
    /// The seed code's rule: cos(CLIP(low-level), CLIP(high-level)) of each experiment's own
    /// pair; the highest wins. Needs high-level images (`brainscope recon`).
    Paper,
    /// The experiment whose low-level CLIP embedding is closest to the mean of the others'.
    Consensus,
}

/// `<experiments>/votes.json`: the winner per sample of one `brainscope vote` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoteRecord {
    /// Rule used.
    pub rule: VoteRule,
    /// Which rows (sample `i` = row `rows[i]` of the split; probe rows are shared).
    pub split: EvalSplit,
    /// Experiments that took part, ascending by id.
    pub experiments: Vec<String>,
    /// CLIP folder used.
    pub clip: String,
    /// One entry per sample that at least one experiment had.
    pub votes: Vec<SampleVote>,
    /// Wall-clock time of the vote, ms since the Unix epoch.
    pub t: u64,
}

/// The vote on one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleVote {
    /// Sample index (`XX` of `sample-XX-*.png` in `recon/final-<split>/`).
    pub sample: usize,
    /// Dataset row of the sample.
    pub row: usize,
    /// Winning experiment id (ties go to the lowest id).
    pub winner: String,
    /// Each voting experiment's score (rule-specific cosine), by id.
    pub scores: std::collections::BTreeMap<String, f64>,
    /// Experiments skipped for this sample because they lack its images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Read `<experiments>/votes.json`; `Ok(None)` when no vote was run.
pub fn read_votes(experiments_dir: &Path) -> std::io::Result<Option<VoteRecord>> {
    match std::fs::read(experiments_dir.join(VOTES_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
