//! The training run of the low-level model, wrapped in the run record.
//!
//! [`run`] takes the experiment's lock, records `running` in status.json, trains (resuming from
//! `checkpoints/last` when the previous run did not finish), and records how it ended. SIGTERM,
//! SIGINT and SIGHUP stop it after the current step with a checkpoint (state `stopped`).
//!
//! The parts: [`super::resume`] (restart, checkpoint choice, plan check, metrics cut),
//! [`super::epoch`] (the steps of one epoch), [`super::epoch_end`] (validation, checkpoint,
//! reconstructions), [`super::dataset`] (fMRI + latents in memory), [`super::learner`] (model,
//! optimizer, schedule), [`super::plan`] (what a checkpoint records), [`super::error`]
//! ([`TrainError`]).

use crate::data::probe::{experiment_rows, probe_set, write_probe_file};
use crate::demo::DemoError;
use crate::experiments::config::{CONFIG_FILE, ExperimentConfig};
use crate::experiments::launch::finished;
use crate::experiments::run::{ActiveRun, RunOutcome, install_stop_flag, stop_requested};
use crate::experiments::state::{EvalSplit, RunPaths};
use crate::train::checkpoint::CheckpointStore;
use crate::train::dataset::Dataset;
use crate::train::epoch::{EpochInputs, EpochSteps, train_epoch};
use crate::train::epoch_end::{Reconstructions, finish_epoch};
use crate::train::learner::Learner;
use crate::train::resume::{discard_run, latest_checkpoint, open_metrics, resume_from};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub use crate::train::error::TrainError;
pub use crate::train::plan::{CheckpointMeta, PlanChange, RngState, RunPlan, shuffle_rng};

/// Prepares a data root before the data is opened, under the run's lock (the CLI passes
/// [`crate::demo::ensure_demo_root`], which generates the embedded demo on first use). Returns
/// whether it wrote anything.
pub type PrepareData = fn(root: &Path, subject: &str) -> Result<bool, DemoError>;

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
    /// Called with the data root and subject before the data is opened.
    pub prepare_data: Option<PrepareData>,
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
    let done = finished(experiment_dir).map_err(|source| TrainError::Io {
        action: "read",
        path,
        source,
    })?;
    if !restart && done {
        return Err(TrainError::AlreadyDone { dir: experiment_dir.to_path_buf() });
    }
    Ok(())
}

/// Project directory of an experiment folder: the parent of `experiments/`.
pub fn project_dir(experiment_dir: &Path) -> PathBuf {
    experiment_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Train the experiment in this process, under its lock, recording the outcome in status.json.
/// Returns how the run ended; an `Err` only when it could not start (lock held, bad config,
/// already done). Failures after the start are recorded as `crashed` (the message is the
/// error's whole [chain](crate::errors::chain)) and returned as [`RunOutcome::Failed`].
pub fn run(request: &TrainRequest) -> Result<RunOutcome, TrainError> {
    let config = ExperimentConfig::load(&request.experiment_dir)?;
    let device_name = request.device.clone().unwrap_or_else(|| config.train.device.clone());
    crate::backend::device(&device_name)?;
    check_startable(&request.experiment_dir, request.restart)?;
    let epochs = request.epochs.unwrap_or(config.train.epochs);
    let mut active = ActiveRun::start(&request.experiment_dir, epochs)?;
    let stop = install_stop_flag().map_err(TrainError::Signals)?;
    let outcome = match train_locked(request, &config, &device_name, epochs, &mut active, &stop) {
        Ok(o) => o,
        Err(e) => RunOutcome::Failed(crate::errors::chain(&e)),
    };
    active.finish(&outcome)?;
    Ok(outcome)
}

/// Log sink: progress bar in a terminal, plain timestamped lines otherwise (train.log).
pub(crate) struct Log {
    /// The progress bar (foreground on a terminal).
    pub bar: Option<ProgressBar>,
}

impl Log {
    /// Print one line above the bar, or with a timestamp.
    pub fn line(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => {
                let secs = crate::experiments::process::now_ms() as f64 / 1000.0;
                println!(
                    "[{}] {msg}",
                    chrono::DateTime::from_timestamp(secs as i64, 0)
                        .map_or(format!("{secs:.0}"), |t| t
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string())
                );
            }
        }
    }
}

/// The probe size of this run ([`RunPlan::probe`]): `[data] probe`, except that a run resumed
/// from a checkpoint that predates the probe set keeps its old split (`None`, no probe rows),
/// said once in the log.
fn probe_size(resumed: Option<&RunPlan>, config: &ExperimentConfig, log: &Log) -> Option<usize> {
    match resumed {
        Some(plan) if plan.probe.is_none() => {
            log.line(&format!(
                "this run predates the probe set: it keeps its old train/val split (no probe rows; \
                 reconstructions show validation samples); `--restart` holds out [data] probe = {} rows",
                config.data.probe
            ));
            None
        }
        _ => Some(config.data.probe),
    }
}

/// The device a run computes on, as status.json records it: `cpu`, or the GPU backend and index
/// as given (`wgpu`, `cuda:1`) followed by the adapter's name when the backend reports one
/// (`wgpu (llvmpipe (LLVM 19.1.7, 256 bits))`).
pub fn device_label(name: &str, device: &burn::tensor::Device) -> String {
    let kind = name.split_once(':').map_or(name, |(kind, _)| kind);
    if matches!(kind, "cpu" | "flex") {
        return "cpu".into();
    }
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if let Some(identity) = device.identity() {
        return format!("{name} ({})", identity.name);
    }
    let _ = device;
    name.to_string()
}

/// The training itself, with the lock held.
fn train_locked(
    request: &TrainRequest,
    config: &ExperimentConfig,
    device_name: &str,
    epochs_requested: usize,
    active: &mut ActiveRun,
    stop: &AtomicBool,
) -> Result<RunOutcome, TrainError> {
    let paths = active.paths().clone();
    let config_path = request.experiment_dir.join(CONFIG_FILE);
    let project = project_dir(&request.experiment_dir);
    let log = Log { bar: None };
    let store = CheckpointStore::new(paths.checkpoints());
    if request.restart {
        log.line("--restart: discarding metrics, checkpoints and reconstructions");
        discard_run(&paths, &store)?;
    }

    // Data: the caller may prepare it (the demo is generated on first use); the latent cache
    // is built once per (data, VAE).
    let data_root = ExperimentConfig::resolve(&project, &config.data.root);
    let vae_dir = ExperimentConfig::resolve(&project, &config.data.vae);
    active.progress(0, epochs_requested, 0, 0, "preparing data")?;
    if let Some(prepare) = request.prepare_data
        && prepare(&data_root, &config.data.subject)?
    {
        log.line(&format!("generated the demo dataset in {}", data_root.display()));
    }
    let device = crate::backend::device(device_name)?;
    let device_used = device_label(device_name, &device);
    active.device(&device_used)?;
    let data = Dataset::load(
        config,
        &request.experiment_dir,
        &data_root,
        &vae_dir,
        &device,
        &log,
        request.progress,
    )?;
    let n_total = data.images.len();
    let resumed = latest_checkpoint(&store, &log)?;
    let probe = probe_size(resumed.as_ref().map(|l| &l.manifest.meta.plan), config, &log);
    let probe_rows = probe.unwrap_or(0);
    let rows = experiment_rows(n_total, probe_rows, config.train.seed, config.train.val_fraction);
    if rows.train.is_empty() || rows.val.is_empty() {
        return Err(TrainError::EmptySplit {
            root: data_root,
            n: n_total,
            probe: rows.probe.len(),
            train: rows.train.len(),
            val: rows.val.len(),
            config: config_path,
        });
    }
    if probe_rows > 0
        && let Some(dir) = data.latent_cache.parent()
    {
        let set = probe_set(n_total, probe_rows);
        let (path, wrote) = write_probe_file(dir, probe_rows, &set)
            .map_err(|source| TrainError::Io { action: "write", path: dir.into(), source })?;
        if wrote {
            log.line(&format!(
                "probe set: {} rows held out, listed in {}",
                set.rows.len(),
                path.display()
            ));
        }
    }
    let batch_size = config.train.batch_size;
    let steps_per_epoch = rows.train.len().div_ceil(batch_size) as u64;

    let epochs = match (&resumed, request.epochs) {
        (Some(l), None) => l.manifest.meta.plan.epochs,
        _ => epochs_requested,
    };
    let plan = RunPlan {
        seed: config.train.seed,
        batch_size,
        epochs,
        steps_per_epoch,
        n_train: rows.train.len(),
        n_val: rows.val.len(),
        input_width: data.width,
        latent_shape: data.latent_shape,
        roi: format!("{} ({})", config.data.roi_set, config.data.mask_mode),
        model: config.model.clone(),
        max_lr: config.train.max_lr,
        probe,
    };
    let total_steps = steps_per_epoch * epochs as u64;
    let mut learner = Learner::new(&plan, config.train.weight_decay, &device)?;
    let mut meta = match &resumed {
        Some(loaded) => resume_from(loaded, &plan, &config_path, &mut learner, &store, &log)?,
        None => CheckpointMeta::start(plan.clone()),
    };
    let mut metrics = open_metrics(&paths, meta.step, &log)?;

    log.line(&format!(
        "experiment {}: {} train / {} val / {} probe samples, input {} voxels, latent {:?}, batch {}, {} epochs x {} steps, device {}",
        config.id, plan.n_train, plan.n_val, rows.probe.len(), plan.input_width, plan.latent_shape, batch_size, epochs, steps_per_epoch, device_used
    ));
    if meta.epoch >= epochs {
        log.line("all epochs already done");
        return Ok(RunOutcome::Done);
    }
    let bar = request.progress.then(|| {
        let bar = ProgressBar::new(total_steps);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} epoch {prefix} [{bar:30}] {pos}/{len} steps {msg} ({eta} left)",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_position(meta.step);
        bar
    });
    let log = Log { bar };
    active.progress(meta.epoch, epochs, meta.step, total_steps, "training")?;

    if stop_requested(stop) {
        log.line("stop requested before the first step: nothing to checkpoint");
        return Ok(RunOutcome::Stopped);
    }
    // Probe rows when there are any (sample XX = probe row XX in every experiment), else the
    // experiment's own validation rows (runs without a probe set).
    let (recon_split, recon_from) = if rows.probe.is_empty() {
        (EvalSplit::Val, &rows.val)
    } else {
        (EvalSplit::Probe, &rows.probe)
    };
    let recon_rows = recon_from.iter().copied().take(config.train.recon_samples).collect();
    let mut recon = Reconstructions::new(paths.clone(), vae_dir, recon_rows, recon_split);
    let inputs = EpochInputs {
        data: &data,
        train_rows: &rows.train,
        batch_size,
        store: &store,
        stop,
        config_path: &config_path,
        log: &log,
    };
    while meta.epoch < epochs {
        let epoch = meta.epoch;
        let epoch_start = Instant::now();
        if let Some(bar) = &log.bar {
            bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
        }
        let mean_loss = match train_epoch(&inputs, &mut meta, &mut learner, &mut metrics)? {
            EpochSteps::Done { mean_loss } => mean_loss,
            EpochSteps::Stopped => return Ok(RunOutcome::Stopped),
        };
        let end = finish_epoch(
            epoch,
            &mut meta,
            &learner,
            &data,
            &rows.val,
            &mut metrics,
            &store,
            &mut recon,
        )?;
        log.line(&format!(
            "epoch {}/{}: train loss {mean_loss:.5}, val L1 {:.5}{}, {:.1} s",
            epoch + 1,
            epochs,
            end.val_l1,
            if end.is_best { " (best)" } else { "" },
            epoch_start.elapsed().as_secs_f64()
        ));
        active.progress(
            meta.epoch,
            epochs,
            meta.step,
            total_steps,
            &format!("epoch {} val L1 {:.5}", epoch + 1, end.val_l1),
        )?;
        if stop_requested(stop) && meta.epoch < epochs {
            log.line(&format!("stop requested: checkpoint at end of epoch {epoch} written"));
            return Ok(RunOutcome::Stopped);
        }
    }
    if let Some(bar) = &log.bar {
        bar.finish_and_clear();
    }
    log.line(&format!(
        "done: {} epochs, best val L1 {}",
        epochs,
        meta.best_val.map_or("-".into(), |(e, l)| format!("{l:.5} (epoch {e})"))
    ));
    Ok(RunOutcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_dir_is_parent_of_experiments() {
        assert_eq!(project_dir(Path::new("/p/experiments/92")), PathBuf::from("/p"));
    }

    #[test]
    fn a_changed_plan_is_reported_key_by_key_with_the_fix() {
        let err = TrainError::PlanChanged {
            checkpoint: "experiments/7/checkpoints/step-17".into(),
            config: "experiments/7/experiment.toml".into(),
            changes: vec![PlanChange {
                key: "batch_size".into(),
                old: "4".into(),
                new: "8".into(),
            }],
        };
        let msg = err.to_string();
        assert!(msg.contains("\n  batch_size: 4 (checkpoint) -> 8 (now)\n"), "{msg}");
        assert!(msg.contains("restore those values in experiments/7/experiment.toml"), "{msg}");
        assert!(msg.contains("--restart"), "{msg}");
    }
}
