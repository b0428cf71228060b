//! Console state and what every action does to it. Drawing lives in [`crate::tui::views`],
//! the event loop in [`crate::tui::event`].

use crate::experiments::control::{self, ControlError, StopOutcome};
use crate::experiments::launch::{self, LaunchOptions, StartError};
use crate::experiments::registry::{RegistryError, find};
use crate::experiments::state::RunState;
use crate::tui::background_job::{BackgroundJobs, Finished};
use crate::tui::image::ImageCache;
use crate::tui::keys::{self, Action, Mode, View};
use crate::tui::model::{Experiment, Project, id_order};
use crate::tui::theme::Theme;
use crossterm::event::KeyEvent;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

/// Table columns, in display order (keys 1-9 sort by the Nth column shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// Model id (a trailing `@` marks a Slurm run).
    Id,
    /// Display state.
    State,
    /// Where the run lives: `local` or `slurm:JOBID`.
    Where,
    /// The device the run computes on, as the trainer recorded it (`cpu`, `wgpu:0`, `cuda:1`;
    /// `-` before the run starts).
    Device,
    /// ROI set.
    Roi,
    /// Seed.
    Seed,
    /// Batch size.
    Batch,
    /// Epochs done / total.
    Epoch,
    /// Last training loss.
    Loss,
    /// Best validation L1 and its epoch.
    Best,
    /// Time left.
    Eta,
    /// PixCorr of the eval record (probe set, else val).
    PixCorr,
    /// SSIM of the eval record.
    Ssim,
    /// 2-way identification on pixels of the eval record.
    TwoWay,
    /// CLIP cosine to the target image of the eval record (`-` without CLIP).
    ClipSim,
    /// Blind 2-AFC accuracy of the low-level reconstructions, every rater (95% interval).
    Human,
}

/// Which columns the table keeps when the terminal cannot show them all (`v` switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnSet {
    /// Training progress first: ROI, seed, batch, epoch, loss, best, ETA, human 2AFC.
    #[default]
    Training,
    /// Evaluation first: PixCorr, SSIM, 2-way, CLIP sim, human 2AFC, best, epoch.
    Eval,
}

impl ColumnSet {
    /// Columns in the order they are kept as the width shrinks (the first always).
    pub fn priority(self) -> &'static [Column] {
        use Column::*;
        match self {
            ColumnSet::Training => &[
                Id, State, Epoch, Best, Loss, Eta, Roi, Seed, Batch, Human, Where, Device, PixCorr,
                Ssim, TwoWay, ClipSim,
            ],
            ColumnSet::Eval => &[
                Id, State, PixCorr, Ssim, TwoWay, ClipSim, Human, Best, Epoch, Roi, Where, Device,
                Loss, Eta, Seed, Batch,
            ],
        }
    }

    /// The other set.
    pub fn other(self) -> Self {
        match self {
            ColumnSet::Training => ColumnSet::Eval,
            ColumnSet::Eval => ColumnSet::Training,
        }
    }

    /// `training` / `evaluation`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnSet::Training => "training",
            ColumnSet::Eval => "evaluation",
        }
    }
}

/// Cells between two columns.
pub const COLUMN_SPACING: u16 = 1;

impl Column {
    /// Every column in display order.
    pub const ALL: [Column; 16] = [
        Column::Id,
        Column::State,
        Column::Where,
        Column::Device,
        Column::Roi,
        Column::Seed,
        Column::Batch,
        Column::Epoch,
        Column::Loss,
        Column::Best,
        Column::Eta,
        Column::PixCorr,
        Column::Ssim,
        Column::TwoWay,
        Column::ClipSim,
        Column::Human,
    ];

    /// Header text.
    pub fn title(self) -> &'static str {
        match self {
            Column::Id => "ID",
            Column::State => "STATE",
            Column::Where => "WHERE",
            Column::Device => "DEVICE",
            Column::Roi => "ROI",
            Column::Seed => "SEED",
            Column::Batch => "BATCH",
            Column::Epoch => "EPOCH",
            Column::Loss => "LOSS",
            Column::Best => "BEST L1 @EP",
            Column::Eta => "ETA",
            Column::PixCorr => "PIXCORR",
            Column::Ssim => "SSIM",
            Column::TwoWay => "2-WAY",
            Column::ClipSim => "CLIP",
            Column::Human => "HUMAN 2AFC",
        }
    }

    /// Width in cells.
    pub fn width(self) -> u16 {
        match self {
            Column::Id => 5,
            Column::State => 9,
            Column::Where => 11,
            Column::Device => 7,
            Column::Roi | Column::Seed | Column::Batch => 5,
            Column::Epoch | Column::PixCorr => 7,
            Column::Loss | Column::Eta | Column::Ssim | Column::TwoWay | Column::ClipSim => 6,
            Column::Best => 11,
            Column::Human => 10,
        }
    }

    /// The columns of `set` that fit in `width` cells, in display order: all of them when they
    /// fit, else the set's most important ones.
    pub fn fitting(set: ColumnSet, width: u16) -> Vec<Column> {
        let mut used = 0u16;
        let mut keep = Vec::new();
        for &c in set.priority() {
            let need = c.width() + if keep.is_empty() { 0 } else { COLUMN_SPACING };
            if used + need <= width {
                used += need;
                keep.push(c);
            }
        }
        Column::ALL.iter().copied().filter(|c| keep.contains(c)).collect()
    }
}

/// Starts and stops training by calling the library ([`launch::start`], [`control::stop`]) on a
/// worker thread per request, so the console never waits for them. The trainer itself is a
/// detached `brainscope train ID --foreground` process (new session, log to train.log): it
/// outlives the console and the SSH session.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The brainscope executable (what the detached trainer runs).
    pub exe: PathBuf,
    /// The experiments folder.
    pub experiments_dir: PathBuf,
}

/// How long a stop waits for the trainer to exit on SIGTERM before killing it (as `brainscope
/// stop`'s default).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a start or stop achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlOk {
    /// A trainer started and recorded its start.
    Started {
        /// Its pid.
        pid: u32,
    },
    /// The trainer stopped.
    Stopped(StopOutcome),
    /// Slurm accepted the job (`cluster::submit` with its defaults).
    Submitted {
        /// Slurm job id.
        job_id: String,
    },
}

/// Why a start or stop failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlFailure {
    /// Starting was refused or failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// No such experiment (stop).
    #[error(transparent)]
    Find(#[from] RegistryError),
    /// Stopping was refused or failed.
    #[error(transparent)]
    Stop(#[from] ControlError),
    /// Submitting to Slurm was refused or failed.
    #[error(transparent)]
    Submit(#[from] crate::cluster::SubmitError),
    /// The experiments folder cannot be made absolute (what the compute node is given).
    #[error("cannot resolve the experiments folder")]
    Dir(#[source] std::io::Error),
}

/// Result of a start or stop, sent back to the event loop.
#[derive(Debug)]
pub struct ControlDone {
    /// Experiment id.
    pub id: String,
    /// What happened.
    pub result: Result<ControlOk, ControlFailure>,
}

impl ControlDone {
    /// One line for the status line.
    pub fn message(&self) -> String {
        let id = &self.id;
        match &self.result {
            Ok(ControlOk::Started { pid }) => {
                format!("experiment {id} training in the background (pid {pid})")
            }
            Ok(ControlOk::Stopped(StopOutcome::Graceful(state))) => {
                format!("experiment {id} stopped (state: {})", state.name())
            }
            Ok(ControlOk::Submitted { job_id }) => {
                format!("experiment {id} submitted to Slurm as job {job_id} (queued)")
            }
            Ok(ControlOk::Stopped(StopOutcome::Killed)) => format!(
                "experiment {id} did not exit on SIGTERM: killed; it resumes from its last checkpoint"
            ),
            Err(e) => {
                // The error and its causes on one line (none repeats its source's text).
                let mut text = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    text.push_str(&format!(": {s}"));
                    source = s.source();
                }
                format!("failed: {}", text.replace('\n', " · "))
            }
        }
    }
}

impl Launcher {
    /// Start (or resume) experiment `id` on a worker thread.
    pub fn start(&self, id: &str, tx: Sender<ControlDone>) {
        let (exe, dir, id) = (self.exe.clone(), self.experiments_dir.clone(), id.to_string());
        std::thread::spawn(move || {
            let result = launch::start(&exe, &dir, &id, &LaunchOptions::default())
                .map(|pid| ControlOk::Started { pid })
                .map_err(ControlFailure::from);
            let _ = tx.send(ControlDone { id, result });
        });
    }

    /// Submit experiment `id` to Slurm on a worker thread (`cluster::submit` with the default
    /// resources, this binary on the compute node), as `brainscope submit ID` does.
    pub fn submit(&self, id: &str, tx: Sender<ControlDone>) {
        use crate::cluster::{
            self, SubmitRequest,
            slurm::{JobOptions, Slurm},
        };
        let (exe, dir, id) = (self.exe.clone(), self.experiments_dir.clone(), id.to_string());
        std::thread::spawn(move || {
            let result = (|| {
                let experiments_dir = std::path::absolute(&dir).map_err(ControlFailure::Dir)?;
                let slurm = Slurm::detect().map_err(cluster::SubmitError::from)?;
                let request = SubmitRequest {
                    experiments_dir,
                    ids: vec![id.clone()],
                    exe,
                    array: false,
                    options: JobOptions::default(),
                };
                let done = cluster::submit(&slurm, &request)?;
                let job_id = done.first().map(|s| s.job_id.clone()).unwrap_or_default();
                Ok(ControlOk::Submitted { job_id })
            })();
            let _ = tx.send(ControlDone { id, result });
        });
    }

    /// Stop experiment `id` on a worker thread (SIGTERM, then SIGKILL after a timeout).
    pub fn stop(&self, id: &str, tx: Sender<ControlDone>) {
        let (dir, id) = (self.experiments_dir.clone(), id.to_string());
        std::thread::spawn(move || {
            let result = find(&dir, &id)
                .map_err(ControlFailure::from)
                .and_then(|(dir, _)| Ok(control::stop(&dir, STOP_TIMEOUT)?))
                .map(ControlOk::Stopped);
            let _ = tx.send(ControlDone { id, result });
        });
    }
}

/// Second chart of the detail view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondChart {
    /// Validation L1 per epoch.
    ValL1,
    /// Learning rate per step.
    Lr,
}

/// Cached downsampled chart series of one experiment.
#[derive(Debug, Default)]
pub struct ChartCache {
    /// What the series were computed for.
    pub key: (u64, u16, bool, bool),
    /// Raw loss, smoothed loss, learning rate.
    pub series: [Vec<(f64, f64)>; 3],
    /// Which of `series` were computed for `key` (each chart asks only for its own).
    pub computed: [bool; 3],
}

/// The whole console state.
#[derive(Debug)]
pub struct App {
    /// Experiments and their data.
    pub project: Project,
    /// Current view.
    pub view: View,
    /// View to return to from help.
    pub help_return: View,
    /// Selected row in the visible (filtered, sorted) list.
    pub selected: usize,
    /// Sort column.
    pub sort: Column,
    /// Reverse sort.
    pub sort_desc: bool,
    /// Filter text (matches id, state, ROI set, description).
    pub filter: String,
    /// Typing into the filter.
    pub filtering: bool,
    /// Experiments marked for chart overlay.
    pub marked: BTreeSet<String>,
    /// Experiment id waiting for a stop confirmation.
    pub confirm_stop: Option<String>,
    /// Last message for the status line.
    pub message: Option<String>,
    /// Logarithmic y axes.
    pub log_y: bool,
    /// Train chart x axis in epochs (else steps).
    pub x_epochs: bool,
    /// What the second chart shows.
    pub second: SecondChart,
    /// Reconstruction epoch (0-based); `None` follows the latest.
    pub recon_epoch: Option<usize>,
    /// Reconstruction sample index.
    pub sample: usize,
    /// Encoded images.
    pub images: ImageCache,
    /// Colours (or none).
    pub theme: Theme,
    /// Starts and stops training; `None` disables `s` / `x` (tests).
    pub launcher: Option<Launcher>,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// Leave the event loop.
    pub quit: bool,
    /// Downsampled chart series per (experiment, chart width in buckets): the train and lr
    /// charts differ in width, and one cache each keeps them from recomputing each other's
    /// series every frame.
    pub chart_cache: HashMap<(String, u16), ChartCache>,
    /// The open blind 2-AFC session (the rating view).
    pub rating: Option<crate::eval::human::Session>,
    /// Leaving the rating view quits (`brainscope rate`, which is only that view).
    pub rate_only: bool,
    /// Experiments of the compare view, in table order.
    pub compare: Vec<String>,
    /// Which columns the table keeps when not all fit (`v`).
    pub column_set: ColumnSet,
    /// The table's columns as last drawn (the digit keys sort by them).
    pub columns: Vec<Column>,
    /// `brainscope eval` commands started with `e` (`None` without a launcher).
    pub evals: Option<BackgroundJobs>,
    /// `R`: `brainscope recon` jobs started here (`None` where starting runs is disabled).
    pub recons: Option<BackgroundJobs>,
    /// The open clone form (`n`).
    pub form: Option<crate::tui::form::CloneForm>,
    /// Experiment id waiting for the "local or Slurm?" answer (`s` where `sbatch` exists).
    pub ask_where: Option<String>,
    /// Whether `sbatch` is on PATH (then `s` asks local or Slurm).
    pub slurm_available: bool,
    /// Per-sample PixCorr / SSIM of the shown images, computed off the draw path.
    pub sample_metrics: crate::tui::sample_metrics::SampleMetrics,
    control_tx: Sender<ControlDone>,
    control_rx: Receiver<ControlDone>,
}

impl App {
    /// A console over `project`.
    pub fn new(
        project: Project,
        images: ImageCache,
        theme: Theme,
        launcher: Option<Launcher>,
    ) -> Self {
        let (control_tx, control_rx) = mpsc::channel();
        let evals = launcher
            .as_ref()
            .map(|l| BackgroundJobs::new(l.exe.clone(), l.experiments_dir.clone()));
        let recons = launcher.as_ref().map(|l| {
            BackgroundJobs::for_command(l.exe.clone(), l.experiments_dir.clone(), "recon")
        });
        let slurm_available = launcher.is_some() && crate::cluster::slurm::Slurm::available();
        Self {
            project,
            view: View::Table,
            help_return: View::Table,
            selected: 0,
            sort: Column::Id,
            sort_desc: false,
            filter: String::new(),
            filtering: false,
            marked: BTreeSet::new(),
            confirm_stop: None,
            message: None,
            log_y: false,
            x_epochs: false,
            second: SecondChart::ValL1,
            recon_epoch: None,
            sample: 0,
            images,
            theme,
            launcher,
            dirty: true,
            quit: false,
            chart_cache: HashMap::new(),
            rating: None,
            rate_only: false,
            compare: Vec::new(),
            column_set: ColumnSet::Training,
            columns: Column::fitting(ColumnSet::Training, 78),
            evals,
            recons,
            form: None,
            ask_where: None,
            slurm_available,
            sample_metrics: Default::default(),
            control_tx,
            control_rx,
        }
    }

    /// Input mode.
    pub fn mode(&self) -> Mode {
        if self.form.is_some() {
            Mode::Form
        } else if self.ask_where.is_some() {
            Mode::AskWhere
        } else if self.confirm_stop.is_some() {
            Mode::Confirm
        } else if self.filtering {
            Mode::Filtering
        } else {
            Mode::Normal
        }
    }

    /// Indices into `project.experiments`, filtered and sorted as the table shows them.
    pub fn visible(&self) -> Vec<usize> {
        let needle = self.filter.to_lowercase();
        let mut v: Vec<usize> = (0..self.project.experiments.len())
            .filter(|&i| {
                needle.is_empty() || haystack(&self.project.experiments[i]).contains(&needle)
            })
            .collect();
        let exps = &self.project.experiments;
        v.sort_by(|&a, &b| {
            let (a, b) = (&exps[a], &exps[b]);
            let ord = compare(self.sort, a, b).then_with(|| id_order(&a.id, &b.id));
            if self.sort_desc { ord.reverse() } else { ord }
        });
        v
    }

    /// The selected experiment, if the visible list is not empty.
    pub fn selected_experiment(&self) -> Option<&Experiment> {
        let v = self.visible();
        v.get(self.selected.min(v.len().saturating_sub(1))).map(|&i| &self.project.experiments[i])
    }

    /// Handle a key press.
    pub fn on_key(&mut self, key: KeyEvent) {
        if let Some(action) = keys::map(self.view, self.mode(), key) {
            self.apply(action);
        }
    }

    /// Apply one action.
    pub fn apply(&mut self, action: Action) {
        self.dirty = true;
        let n = self.visible().len();
        match action {
            Action::Quit => self.quit = true,
            Action::Help => {
                if self.view == View::Help {
                    self.view = self.help_return;
                } else {
                    self.help_return = self.view;
                    self.view = View::Help;
                }
            }
            Action::Back => match self.view {
                View::Help => self.view = self.help_return,
                View::Detail | View::Gallery | View::Compare => self.view = View::Table,
                View::Rate => {}
                View::Table => {
                    self.filter.clear();
                    self.message = None;
                }
            },
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = n.saturating_sub(1),
            Action::PageUp => self.selected = self.selected.saturating_sub(10),
            Action::PageDown => self.selected = (self.selected + 10).min(n.saturating_sub(1)),
            Action::Open => {
                if n > 0 {
                    self.view = View::Detail;
                    self.recon_epoch = None;
                }
            }
            Action::Gallery if self.view == View::Gallery => {}
            Action::Gallery => {
                self.view = View::Gallery;
                self.recon_epoch = None;
            }
            Action::Refresh => {
                self.project.refresh();
                self.images.clear();
                self.message = Some("re-read from disk".into());
            }
            Action::Filter => {
                self.filtering = true;
                self.view = View::Table;
            }
            Action::FilterChar(c) => {
                self.filter.push(c);
                self.selected = 0;
            }
            Action::FilterBackspace => {
                self.filter.pop();
                self.selected = 0;
            }
            Action::FilterAccept => self.filtering = false,
            Action::FilterCancel => {
                self.filtering = false;
                self.filter.clear();
            }
            Action::SortBy(i) => {
                if let Some(&c) = self.columns.get(i) {
                    if self.sort == c {
                        self.sort_desc = !self.sort_desc;
                    } else {
                        self.sort = c;
                        self.sort_desc = false;
                    }
                }
            }
            Action::SortNext => {
                let cols = if self.columns.is_empty() { &Column::ALL[..] } else { &self.columns };
                let i = cols.iter().position(|&c| c == self.sort).map_or(0, |i| i + 1);
                self.sort = cols[i % cols.len()];
                self.sort_desc = false;
            }
            Action::Columns => {
                self.column_set = self.column_set.other();
                self.message = Some(format!(
                    "{} columns first (v switches; a wider terminal shows them all)",
                    self.column_set.name()
                ));
            }
            Action::Eval => self.eval_selected(),
            Action::Recon => self.recon_selected(),
            Action::Clone => self.open_clone_form(),
            Action::Form(input) => self.form_input(input),
            Action::StartLocal | Action::StartSlurm => {
                if let Some(id) = self.ask_where.take() {
                    self.start(&id, action == Action::StartSlurm);
                }
            }
            Action::StartCancel => {
                self.ask_where = None;
                self.message = Some("not started".into());
            }
            Action::Mark => {
                if let Some(id) = self.selected_experiment().map(|e| e.id.clone())
                    && !self.marked.remove(&id)
                {
                    self.marked.insert(id);
                }
            }
            Action::Start => self.start_selected(),
            Action::Stop => self.ask_stop_selected(),
            Action::Yes => {
                if let Some(id) = self.confirm_stop.take() {
                    match &self.launcher {
                        Some(l) => {
                            l.stop(&id, self.control_tx.clone());
                            self.message = Some(format!(
                                "stopping {id}… (finishes its step, then checkpoints)"
                            ));
                        }
                        None => {
                            self.message = Some("starting and stopping are disabled here".into())
                        }
                    }
                }
            }
            Action::No => {
                self.confirm_stop = None;
                self.message = Some("not stopped".into());
            }
            Action::SmoothMore => {
                let w = next_smoothing(self.project.smoothing(), true);
                self.project.set_smoothing(w);
            }
            Action::SmoothLess => {
                let w = next_smoothing(self.project.smoothing(), false);
                self.project.set_smoothing(w);
            }
            Action::LogY => self.log_y = !self.log_y,
            Action::XAxis => self.x_epochs = !self.x_epochs,
            Action::SecondChart => {
                self.second = match self.second {
                    SecondChart::ValL1 => SecondChart::Lr,
                    SecondChart::Lr => SecondChart::ValL1,
                }
            }
            Action::EpochPrev | Action::EpochNext | Action::EpochLatest => self.move_epoch(action),
            Action::SamplePrev => self.sample = self.sample.saturating_sub(1),
            Action::SampleNext => self.sample += 1,
            Action::Rate => self.open_rating(),
            Action::RateChoose(_) | Action::RateUndo | Action::RateSkip | Action::RateEnd => {
                self.rate(action)
            }
            Action::Compare => self.open_compare(),
        }
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    fn start_selected(&mut self) {
        let Some(e) = self.selected_experiment() else { return };
        let id = e.id.clone();
        if e.state() == RunState::Running {
            self.message = Some(format!("{id} is already running"));
            return;
        }
        if let Some(job) = &e.slurm_job
            && e.state() == RunState::Queued
        {
            self.message = Some(format!(
                "{id} is queued as Slurm job {}: x cancels it, or wait for it to start",
                job.job_id
            ));
            return;
        }
        if let Err(err) = &e.config {
            self.message = Some(format!("{id}: {err}"));
            return;
        }
        if self.launcher.is_some() && self.slurm_available {
            self.ask_where = Some(id);
            return;
        }
        self.start(&id, false);
    }

    /// Start `id` locally (detached trainer) or on Slurm (`cluster::submit` with defaults).
    fn start(&mut self, id: &str, slurm: bool) {
        let Some(e) = self.project.get(id) else { return };
        let verb = if e.run.step == 0 && e.last_loss().is_none() { "starting" } else { "resuming" };
        match &self.launcher {
            Some(l) if slurm => {
                l.submit(id, self.control_tx.clone());
                self.message = Some(format!("submitting {id} to Slurm…"));
            }
            Some(l) => {
                l.start(id, self.control_tx.clone());
                self.message = Some(format!("{verb} {id}…"));
            }
            None => self.message = Some("starting and stopping are disabled here".into()),
        }
    }

    /// `n`: the clone form of the selected experiment.
    fn open_clone_form(&mut self) {
        let Some(e) = self.selected_experiment() else { return };
        match &e.config {
            Ok(c) => {
                self.form = Some(crate::tui::form::CloneForm::new(&self.project.dir, &e.id, c));
                self.message = None;
            }
            Err(err) => self.message = Some(format!("cannot clone {}: {err}", e.id)),
        }
    }

    /// A key in the clone form: edit, move, save (through `experiments::create`) or cancel.
    fn form_input(&mut self, input: crate::tui::keys::FormInput) {
        use crate::tui::keys::FormInput as F;
        let Some(form) = &mut self.form else { return };
        match input {
            F::Char(c) => form.push(c),
            F::Backspace => form.backspace(),
            F::Next => form.move_focus(true),
            F::Prev => form.move_focus(false),
            F::Cancel => {
                self.form = None;
                self.message = Some("clone cancelled: nothing written".into());
            }
            F::Save => {
                let dir = self.project.dir.clone();
                if let Ok(path) = form.save(&dir) {
                    let id = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    let id = id.unwrap_or_default();
                    let from = form.from.clone();
                    self.form = None;
                    self.project.refresh();
                    self.filter.clear();
                    if let Some(pos) =
                        self.visible().iter().position(|&i| self.project.experiments[i].id == id)
                    {
                        self.selected = pos;
                    }
                    self.message =
                        Some(format!("created experiment {id} from {from}: s trains it"));
                }
            }
        }
    }

    /// `e`: `brainscope eval ID` for the selected experiment, in the background.
    fn eval_selected(&mut self) {
        let Some(id) = self.selected_experiment().map(|e| e.id.clone()) else { return };
        let Some(jobs) = &mut self.evals else {
            self.message = Some("running eval is disabled here".into());
            return;
        };
        self.message = Some(match jobs.start(&id) {
            Ok(()) => format!("evaluating {id} in the background (log: {id}/eval.log)…"),
            Err(e) => e,
        });
    }

    /// `R`: `brainscope recon ID` (BLIP caption + SD img2img of the final low-level images) for
    /// the selected experiment, in the background.
    fn recon_selected(&mut self) {
        let Some(id) = self.selected_experiment().map(|e| e.id.clone()) else { return };
        let Some(jobs) = &mut self.recons else {
            self.message = Some("running recon is disabled here".into());
            return;
        };
        self.message = Some(match jobs.start(&id) {
            Ok(()) => {
                format!("guided reconstruction of {id} in the background (log: {id}/recon.log)…")
            }
            Err(e) => e,
        });
    }

    fn ask_stop_selected(&mut self) {
        let Some(e) = self.selected_experiment() else { return };
        if e.state() != RunState::Running {
            self.message = Some(format!("{} is not running ({})", e.id, e.state().name()));
            return;
        }
        self.confirm_stop = Some(e.id.clone());
    }

    /// Reconstruction epochs available in the current view (selected experiment, or any in
    /// the gallery).
    pub fn available_epochs(&self) -> Vec<usize> {
        match self.view {
            View::Gallery => {
                let mut all: Vec<usize> = self
                    .project
                    .experiments
                    .iter()
                    .flat_map(|e| e.recon_epochs.iter().copied())
                    .collect();
                all.sort_unstable();
                all.dedup();
                all
            }
            _ => self.selected_experiment().map(|e| e.recon_epochs.clone()).unwrap_or_default(),
        }
    }

    /// The reconstruction epoch to show: the chosen one if available, else the latest.
    pub fn shown_epoch(&self) -> Option<usize> {
        let epochs = self.available_epochs();
        match self.recon_epoch {
            Some(e) if epochs.contains(&e) => Some(e),
            _ => epochs.last().copied(),
        }
    }

    fn move_epoch(&mut self, action: Action) {
        let epochs = self.available_epochs();
        if epochs.is_empty() {
            return;
        }
        let cur = self
            .shown_epoch()
            .and_then(|e| epochs.iter().position(|&x| x == e))
            .unwrap_or(epochs.len() - 1);
        self.recon_epoch = match action {
            Action::EpochPrev => Some(epochs[cur.saturating_sub(1)]),
            Action::EpochNext if cur + 1 >= epochs.len() => None,
            Action::EpochNext => Some(epochs[cur + 1]),
            _ => None,
        };
    }

    /// Experiments marked (table order), else the selected one.
    fn marked_or_selected(&self) -> Vec<(String, PathBuf)> {
        let exps = &self.project.experiments;
        let marked: Vec<_> =
            self.visible().into_iter().filter(|&i| self.marked.contains(&exps[i].id)).collect();
        let pick = if marked.is_empty() {
            self.selected_experiment().map(|e| e.id.clone()).into_iter().collect()
        } else {
            marked.iter().map(|&i| exps[i].id.clone()).collect::<Vec<_>>()
        };
        pick.into_iter()
            .filter_map(|id| Some((id.clone(), self.project.get(&id)?.dir.clone())))
            .collect()
    }

    /// `a`: a blind 2-AFC session (the CLI's defaults: 40 trials, low-level, `$USER`, the
    /// first unfinished seed, so `a` again continues an unfinished session).
    fn open_rating(&mut self) {
        use crate::eval::human::{self, Session, SessionOptions, ValidationSamples};
        let exps = self.marked_or_selected();
        if exps.is_empty() {
            return;
        }
        let opts = SessionOptions {
            n: human::DEFAULT_TRIALS,
            kind: crate::experiments::state::ReconKind::Lowlevel,
            seed: None,
            rater: human::default_rater(),
        };
        match Session::start(&exps, &opts, &ValidationSamples) {
            Ok(s) => {
                self.rating = Some(s);
                self.view = View::Rate;
                self.message = None;
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Keys of the rating view.
    fn rate(&mut self, action: Action) {
        let Some(s) = &mut self.rating else { return };
        let result = match action {
            Action::RateChoose(side) if !s.is_over() => s.answer(side).map(|_| ()),
            Action::RateUndo => s.undo().map(|_| ()),
            Action::RateSkip => {
                s.skip();
                Ok(())
            }
            Action::RateEnd if !s.is_over() => {
                s.end();
                Ok(())
            }
            Action::RateEnd => {
                self.rating = None;
                self.view = View::Table;
                self.project.refresh();
                self.quit |= self.rate_only;
                return;
            }
            _ => Ok(()),
        };
        if s.is_over() {
            self.project.refresh(); // the results page shows every rater's totals
        }
        self.message = result.err().map(|e| {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                m.push_str(&format!(": {s}"));
                src = s.source();
            }
            m
        });
    }

    /// `c`: the marked experiments side by side.
    fn open_compare(&mut self) {
        if self.marked.len() < 2 {
            self.message =
                Some("mark two or more experiments (space), then c compares them".into());
            return;
        }
        self.message = None;
        self.compare = self.marked_or_selected().into_iter().map(|(id, _)| id).collect();
        self.sample = 0;
        self.view = View::Compare;
    }

    /// Pick up finished image encodings, metrics read in the background and start/stop
    /// results; returns whether to redraw.
    pub fn collect_background(&mut self) -> bool {
        let mut changed = self.images.collect();
        changed |= self.project.collect_loaded();
        while let Ok(done) = self.control_rx.try_recv() {
            self.message = Some(done.message());
            self.project.refresh();
            changed = true;
        }
        changed |= self.sample_metrics.collect();
        for jobs in [&mut self.evals, &mut self.recons].into_iter().flatten() {
            if !jobs.any_running() {
                continue;
            }
            let (ended, moved) = jobs.poll();
            changed |= moved || !ended.is_empty();
            let command = jobs.command();
            for (id, how) in ended {
                self.project.refresh();
                self.message = Some(match how {
                    Finished::Ok => format!("{command} of {id} done"),
                    Finished::Failed(why) => format!("{command} of {id} failed: {why}"),
                });
            }
        }
        self.dirty |= changed;
        changed
    }

    /// Whether work for the screen is still going on in the background (images, metrics).
    pub fn busy(&self) -> bool {
        self.images.busy() || self.project.loading() > 0 || self.sample_metrics.busy()
    }

    /// Indices of the experiments whose training history the current view draws: in the
    /// detail view the selected one and the marked overlays, elsewhere none.
    pub fn drawn_histories(&self) -> Vec<usize> {
        if self.view != View::Detail {
            return Vec::new();
        }
        let Some(&sel) = self.visible().get(self.selected) else { return Vec::new() };
        let mut v = vec![sel];
        for (i, e) in self.project.experiments.iter().enumerate() {
            if i != sel && self.marked.contains(&e.id) {
                v.push(i);
            }
        }
        v
    }

    /// Load the histories the next frame draws and drop the others (called before drawing).
    pub fn prepare_frame(&mut self) {
        let drawn = self.drawn_histories();
        self.project.keep_histories(&drawn);
    }
}

/// Smoothing steps offered by `+` / `-`.
const SMOOTHING_STEPS: [f64; 9] = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];

fn next_smoothing(cur: f64, up: bool) -> f64 {
    if up {
        SMOOTHING_STEPS.iter().copied().find(|&w| w > cur + 1e-9).unwrap_or(0.99)
    } else {
        SMOOTHING_STEPS.iter().rev().copied().find(|&w| w < cur - 1e-9).unwrap_or(0.0)
    }
}

fn haystack(e: &Experiment) -> String {
    let desc = e.config.as_ref().map(|c| c.description.as_str()).unwrap_or("");
    format!("{} {} {} {}", e.id, e.state().name(), e.roi_set(), desc).to_lowercase()
}

fn compare(col: Column, a: &Experiment, b: &Experiment) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn opt_f(a: Option<f64>, b: Option<f64>) -> Ordering {
        // Missing values sort last.
        match (a, b) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let cfg = |e: &Experiment, f: fn(&crate::experiments::config::ExperimentConfig) -> u64| {
        e.config.as_ref().ok().map(f)
    };
    match col {
        Column::Id => id_order(&a.id, &b.id),
        Column::State => a.state().name().cmp(b.state().name()),
        Column::Roi => a.roi_set().cmp(&b.roi_set()),
        Column::Seed => cfg(a, |c| c.train.seed).cmp(&cfg(b, |c| c.train.seed)),
        Column::Batch => {
            cfg(a, |c| c.train.batch_size as u64).cmp(&cfg(b, |c| c.train.batch_size as u64))
        }
        Column::Epoch => a.progress().total_cmp(&b.progress()),
        Column::Loss => opt_f(a.last_loss(), b.last_loss()),
        Column::Best => opt_f(a.best_val().map(|v| v.1), b.best_val().map(|v| v.1)),
        Column::Eta => opt_f(a.eta_secs().map(|s| s as f64), b.eta_secs().map(|s| s as f64)),
        Column::Human => opt_f(a.human.lowlevel.accuracy, b.human.lowlevel.accuracy),
        Column::Where => a.location().cmp(&b.location()),
        // Runs not started yet (no recorded device) sort last.
        Column::Device => {
            (a.run.device.is_none(), &a.run.device).cmp(&(b.run.device.is_none(), &b.run.device))
        }
        // Higher is better for every eval number: best first (ascending = best first, as for
        // the losses), missing last.
        Column::PixCorr => {
            high_first(eval_num(a, |r| Some(r.pixcorr)), eval_num(b, |r| Some(r.pixcorr)))
        }
        Column::Ssim => high_first(eval_num(a, |r| Some(r.ssim)), eval_num(b, |r| Some(r.ssim))),
        Column::TwoWay => high_first(
            eval_num(a, |r| Some(r.two_way_pixels)),
            eval_num(b, |r| Some(r.two_way_pixels)),
        ),
        Column::ClipSim => {
            high_first(eval_num(a, |r| r.clip_sim_target), eval_num(b, |r| r.clip_sim_target))
        }
    }
}

fn eval_num(
    e: &Experiment,
    f: fn(&crate::experiments::state::EvalRecord) -> Option<f64>,
) -> Option<f64> {
    e.run.eval.as_ref().and_then(f)
}

/// Larger values first, missing values last.
fn high_first(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
