//! The training loop of the low-level model, wrapped in the run record.
//!
//! [`run`] takes the experiment's lock, records `running` in status.json, trains (resuming from
//! `checkpoints/last` when the previous run did not finish), and records how it ended. SIGTERM,
//! SIGINT and SIGHUP stop it after the current step with a checkpoint (state `stopped`).

use crate::data::algonauts::Subject;
use crate::data::roi::{MaskMode, RoiSet, VoxelMask};
use crate::data::split::{seeded_rng, train_val_split, uniform_below};
use crate::experiments::config::{ConfigError, ExperimentConfig, ModelSection};
use crate::experiments::process::now_ms;
use crate::experiments::run::{ActiveRun, RunError, RunOutcome, install_stop_flag, stop_requested};
use crate::experiments::state::{MetricRecord, RunPaths, RunState, Split, files, read_status};
use crate::imageio::{load_rgb, save_png};
use crate::latents::{LatentCache, LatentJob, LatentMode, default_cache_path, ensure_latent_cache};
use crate::models::lowlevel::{LowLevelConfig, LowLevelModel};
use crate::models::vae::{Vae, load_vae};
use crate::train::adamw::{AdamW, AdamWConfig};
use crate::train::checkpoint::{CheckpointError, CheckpointStore, Tags};
use crate::train::metrics::MetricsWriter;
use crate::train::onecycle::{OneCycleConfig, OneCycleLr};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

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
    #[error(
        "experiment {dir} already finished all its epochs; pass --restart to train it again from scratch"
    )]
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
    experiment_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
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
    let stop = install_stop_flag()
        .map_err(|source| TrainError::Io { path: PathBuf::from("signal handlers"), source })?;
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

/// What a checkpoint records besides the model and optimizer (manifest `meta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Epoch (0-based) the next step belongs to; equals the epochs completed when `batch == 0`.
    pub epoch: usize,
    /// Batches of `epoch` already trained (0 at an epoch boundary; > 0 after a stop mid-epoch).
    pub batch: usize,
    /// Optimizer steps completed.
    pub step: u64,
    /// Shuffle RNG state at the start of `epoch` (its permutation is regenerated on resume).
    pub shuffle_rng: RngState,
    /// Best validation L1 so far and its epoch.
    pub best_val: Option<(usize, f64)>,
    /// What must not change between a checkpoint and a resume.
    pub plan: RunPlan,
}

/// The parts of a run that fix the meaning of a checkpoint: a resume with a different plan
/// would not continue the same run, so it is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// Seed (init, split, shuffling).
    pub seed: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// Total epochs (fixes the OneCycle schedule).
    pub epochs: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
    /// Training rows.
    pub n_train: usize,
    /// Validation rows.
    pub n_val: usize,
    /// Model input width (voxels after masking).
    pub input_width: usize,
    /// Target latent shape `[channels, height, width]`.
    pub latent_shape: [usize; 3],
    /// ROI set and mask mode as written in the experiment.
    pub roi: String,
    /// Model widths.
    pub model: ModelSection,
    /// OneCycle peak learning rate.
    pub max_lr: f64,
}

/// Serializable ChaCha8 state (seed, stream, word position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    /// 32-byte key, hex.
    pub seed: String,
    /// Stream id.
    pub stream: u64,
    /// Word position (u128 as decimal text: JSON numbers cannot hold it).
    pub word_pos: String,
}

impl RngState {
    /// Capture `rng`.
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        let seed = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
        Self { seed, stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    /// Rebuild the generator.
    pub fn restore(&self) -> Result<ChaCha8Rng, String> {
        let bytes: Vec<u8> = (0..self.seed.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(self.seed.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad RNG seed in checkpoint: {e}"))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| "bad RNG seed length in checkpoint".to_string())?;
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(self.stream);
        rng.set_word_pos(
            self.word_pos.parse().map_err(|e| format!("bad RNG position in checkpoint: {e}"))?,
        );
        Ok(rng)
    }
}

/// The shuffle generator of a run: the split's ChaCha8 key for `seed` on stream 1 (the split
/// itself uses stream 0), so shuffling never repeats the split's draws.
pub fn shuffle_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = seeded_rng(seed);
    rng.set_stream(1);
    rng
}

/// Fisher–Yates permutation of `items` with the split module's unbiased draws.
pub fn shuffled(items: &[usize], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut v = items.to_vec();
    for i in (1..v.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// Device seed for the dropout masks of optimizer step `step` (fixed per step, so a resumed run
/// draws the same masks as an uninterrupted one).
fn step_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Log sink: progress bar in a terminal, plain timestamped lines otherwise (train.log).
struct Log {
    bar: Option<ProgressBar>,
}

impl Log {
    fn line(&self, msg: &str) {
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

/// Training and validation data held in memory: masked fMRI rows and target latents.
struct Dataset {
    /// `[n, width]` row-major.
    fmri: Vec<f32>,
    width: usize,
    /// `[n, c*h*w]` row-major.
    latents: Vec<f32>,
    latent_shape: [usize; 3],
    images: Vec<PathBuf>,
}

impl Dataset {
    fn latent_len(&self) -> usize {
        self.latent_shape.iter().product()
    }

    /// Gather rows into `([b, width], [b, c*h*w])` buffers.
    fn batch(&self, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let (w, l) = (self.width, self.latent_len());
        let mut x = Vec::with_capacity(rows.len() * w);
        let mut y = Vec::with_capacity(rows.len() * l);
        for &r in rows {
            x.extend_from_slice(&self.fmri[r * w..(r + 1) * w]);
            y.extend_from_slice(&self.latents[r * l..(r + 1) * l]);
        }
        (x, y)
    }
}

fn other<E: std::fmt::Display>(e: E) -> TrainError {
    TrainError::Other(e.to_string())
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
    let project = project_dir(&request.experiment_dir);
    let log = Log { bar: None };
    let store = CheckpointStore::new(paths.checkpoints());
    if request.restart {
        log.line("--restart: discarding metrics, checkpoints and reconstructions");
        store.clear()?;
        for p in [paths.metrics(), paths.dir.join(files::RECON)] {
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
    }

    // Data: the demo is generated on first use; the latent cache is built once per (data, VAE).
    let data_root = ExperimentConfig::resolve(&project, &config.data.root);
    let vae_dir = ExperimentConfig::resolve(&project, &config.data.vae);
    active.progress(0, epochs_requested, 0, 0, "preparing data")?;
    let device = crate::backend::device(device_name)?;
    let data = load_data(config, &data_root, &vae_dir, &device, &log, request.progress)?;
    let n_total = data.images.len();
    let split = train_val_split(n_total, config.train.seed, config.train.val_fraction);
    if split.train.is_empty() || split.val.is_empty() {
        return Err(TrainError::Other(format!(
            "{}: {} samples split into {} train / {} val; both need at least one (check val_fraction)",
            data_root.display(),
            n_total,
            split.train.len(),
            split.val.len()
        )));
    }
    let batch_size = config.train.batch_size.max(1);
    let steps_per_epoch = split.train.len().div_ceil(batch_size) as u64;

    // Resume: the newest checkpoint that verifies (a damaged `last` falls back to an older one).
    let resumed = if store.has_last() || store.root().is_dir() {
        match store.load_latest::<CheckpointMeta>()? {
            Some((loaded, skipped)) => {
                for e in &skipped {
                    log.line(&format!("warning: skipping checkpoint: {e}"));
                }
                Some(loaded)
            }
            None => None,
        }
    } else {
        None
    };
    let epochs = match (&resumed, request.epochs) {
        (Some(l), None) => l.manifest.meta.plan.epochs,
        _ => epochs_requested,
    };
    let plan = RunPlan {
        seed: config.train.seed,
        batch_size,
        epochs,
        steps_per_epoch,
        n_train: split.train.len(),
        n_val: split.val.len(),
        input_width: data.width,
        latent_shape: data.latent_shape,
        roi: format!("{} ({})", config.data.roi_set, config.data.mask_mode),
        model: config.model.clone(),
        max_lr: config.train.max_lr,
    };
    let total_steps = steps_per_epoch * epochs as u64;

    let mut learner = Learner::new(config, &plan, total_steps, &device)?;
    let mut meta = CheckpointMeta {
        epoch: 0,
        batch: 0,
        step: 0,
        shuffle_rng: RngState::capture(&shuffle_rng(config.train.seed)),
        best_val: None,
        plan: plan.clone(),
    };
    if let Some(loaded) = resumed {
        let old = &loaded.manifest.meta;
        if old.plan != plan {
            return Err(TrainError::Other(format!(
                "{} was written by a different run plan ({:?}) than experiment.toml now gives ({:?}); \
                 restore the settings or pass --restart to start over",
                loaded.dir.display(),
                old.plan,
                plan
            )));
        }
        learner.load(&loaded.dir)?;
        meta = old.clone();
        store.rollback_to(meta.step)?;
        log.line(&format!(
            "resuming from {} (epoch {}, step {})",
            loaded.dir.display(),
            meta.epoch,
            meta.step
        ));
    }
    let dropped = crate::train::metrics::truncate_after(&paths.metrics(), meta.step)
        .map_err(|source| TrainError::Io { path: paths.metrics(), source })?;
    if dropped > 0 {
        log.line(&format!("dropped {dropped} metric records written after the checkpoint"));
    }
    let mut metrics = MetricsWriter::open(&paths.metrics())
        .map_err(|source| TrainError::Io { path: paths.metrics(), source })?;
    let append = |metrics: &mut MetricsWriter, r: &MetricRecord| {
        metrics.append(r).map_err(|source| TrainError::Io { path: paths.metrics(), source })
    };

    log.line(&format!(
        "experiment {}: {} train / {} val samples, input {} voxels, latent {:?}, batch {}, {} epochs x {} steps, device {}",
        config.id, plan.n_train, plan.n_val, plan.input_width, plan.latent_shape, batch_size, epochs, steps_per_epoch, device_name
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
    let recon_rows: Vec<usize> =
        split.val.iter().copied().take(config.train.recon_samples).collect();
    let mut decoder: Option<ReconDecoder> = None;
    while meta.epoch < epochs {
        let epoch = meta.epoch;
        let epoch_start = Instant::now();
        let mut rng = meta.shuffle_rng.restore().map_err(TrainError::Other)?;
        let order = shuffled(&split.train, &mut rng);
        if let Some(bar) = &log.bar {
            bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
        }
        let mut loss_sum = 0.0;
        let mut loss_n = 0usize;
        for (b, rows) in order.chunks(batch_size).enumerate().skip(meta.batch) {
            let (x, y) = data.batch(rows);
            let (loss, lr) = learner.step(x, y, rows.len(), meta.step)?;
            meta.step += 1;
            meta.batch = b + 1;
            loss_sum += loss;
            loss_n += 1;
            append(
                &mut metrics,
                &MetricRecord {
                    t: now_ms(),
                    epoch,
                    step: meta.step,
                    split: Split::Train,
                    loss: Some(loss),
                    l1: None,
                    lr: Some(lr),
                },
            )?;
            if let Some(bar) = &log.bar {
                bar.set_position(meta.step);
                bar.set_message(format!("loss {loss:.4}"));
            }
            if !loss.is_finite() {
                return Err(TrainError::Other(format!(
                    "training diverged: loss {loss} at step {}",
                    meta.step
                )));
            }
            if stop_requested(stop) && (meta.batch as u64) < steps_per_epoch {
                // Mid-epoch stop: keep the epoch's starting RNG so its permutation is rebuilt.
                save_checkpoint(&store, &meta, &learner, false)?;
                log.line(&format!(
                    "stop requested: checkpoint at epoch {epoch} step {} written",
                    meta.step
                ));
                return Ok(RunOutcome::Stopped);
            }
        }

        // End of epoch: validation over the whole val split, val record, checkpoint, recon.
        let val_l1 = learner.val_l1(&data, &split.val)?;
        append(
            &mut metrics,
            &MetricRecord {
                t: now_ms(),
                epoch,
                step: meta.step,
                split: Split::Val,
                loss: None,
                l1: Some(val_l1),
                lr: None,
            },
        )?;
        let is_best = meta.best_val.is_none_or(|(_, best)| val_l1 < best);
        if is_best {
            meta.best_val = Some((epoch, val_l1));
        }
        meta.epoch = epoch + 1;
        meta.batch = 0;
        meta.shuffle_rng = RngState::capture(&rng);
        save_checkpoint(&store, &meta, &learner, is_best)?;
        if !recon_rows.is_empty() {
            if decoder.is_none() {
                decoder = Some(ReconDecoder::load(&vae_dir, &device)?);
            }
            let d = decoder.as_ref().expect("decoder loaded above");
            write_recon(&paths, epoch, &learner, d, &data, &recon_rows)?;
        }
        let train_mean = if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN };
        log.line(&format!(
            "epoch {}/{}: train loss {train_mean:.5}, val L1 {val_l1:.5}{}, {:.1} s",
            epoch + 1,
            epochs,
            if is_best { " (best)" } else { "" },
            epoch_start.elapsed().as_secs_f64()
        ));
        active.progress(
            meta.epoch,
            epochs,
            meta.step,
            total_steps,
            &format!("epoch {} val L1 {val_l1:.5}", epoch + 1),
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

/// Write a checkpoint of the current state.
fn save_checkpoint(
    store: &CheckpointStore,
    meta: &CheckpointMeta,
    learner: &Learner,
    best: bool,
) -> Result<(), TrainError> {
    store.save(meta.step, meta, |dir| learner.save(dir), Tags { best })?;
    Ok(())
}

/// File names inside a checkpoint directory.
const MODEL_FILE: &str = "model.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// The model, its optimizer and schedule on the training device.
struct Learner {
    /// `None` only transiently inside [`Learner::step`] (the optimizer consumes the model).
    model: Option<LowLevelModel>,
    model_config: LowLevelConfig,
    optim: AdamW,
    schedule: OneCycleLr,
    /// Autodiff device (training).
    train_device: Device,
    /// Plain device (validation: no autodiff, so no dropout).
    device: Device,
    seed: u64,
    latent_shape: [usize; 3],
    input_width: usize,
}

/// The low-level model's configuration for a run plan: the paper's structure sized for the
/// latent shape, with the experiment's widths and dropouts.
fn model_config(plan: &RunPlan) -> Result<LowLevelConfig, TrainError> {
    let m = &plan.model;
    let [channels, side, _] = plan.latent_shape;
    let ups = m.upsampler_channels.len().max(1) - 1;
    let config = LowLevelConfig::for_latent(plan.input_width, plan.latent_shape)
        .map_err(other)?
        .with_hidden(m.hidden)
        .with_blocks(m.blocks)
        .with_dropout_in(m.dropout_in)
        .with_dropout_block(m.dropout_block)
        .with_proj_channels(m.proj_channels)
        .with_block_out_channels(m.upsampler_channels.clone())
        .with_out_channels(channels)
        .with_proj_size(side >> ups);
    if m.upsampler_channels.is_empty() || config.output_shape() != plan.latent_shape {
        return Err(TrainError::Other(format!(
            "[model] upsampler_channels {:?} cannot produce latents {:?} (each entry after the first doubles the side)",
            m.upsampler_channels, plan.latent_shape
        )));
    }
    Ok(config)
}

impl Learner {
    /// Seeded initialisation of a fresh model and optimizer.
    fn new(
        config: &ExperimentConfig,
        plan: &RunPlan,
        total_steps: u64,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let train_device = device.clone().autodiff();
        let model_config = model_config(plan)?;
        let model = model_config.init(&train_device, config.train.seed);
        let optim =
            AdamWConfig { weight_decay: config.train.weight_decay, ..AdamWConfig::default() }
                .init();
        // The paper's warm-up is 2 epochs (pct_start = 2 / epochs); a warm-up filling the whole
        // run is invalid (PyTorch divides by zero), so runs under 3 epochs warm up for a third.
        let schedule = if plan.epochs >= 3 {
            OneCycleConfig::paper(plan.max_lr, plan.epochs, plan.steps_per_epoch as usize)
        } else {
            OneCycleConfig::new(plan.max_lr, total_steps as usize, 1.0 / 3.0)
        };
        let schedule = schedule.init().map_err(other)?;
        Ok(Self {
            model: Some(model),
            model_config,
            optim,
            schedule,
            train_device,
            device: device.clone(),
            seed: config.train.seed,
            latent_shape: plan.latent_shape,
            input_width: plan.input_width,
        })
    }

    fn model(&self) -> &LowLevelModel {
        self.model.as_ref().expect("the model is only taken inside step")
    }

    /// One optimizer step on a batch; returns the batch's mean L1 and the learning rate used.
    fn step(
        &mut self,
        x: Vec<f32>,
        y: Vec<f32>,
        b: usize,
        step: u64,
    ) -> Result<(f64, f64), TrainError> {
        let values = self.schedule.values_at(step as usize).map_err(other)?;
        let [c, h, w] = self.latent_shape;
        let x =
            Tensor::<2>::from_data(TensorData::new(x, [b, self.input_width]), &self.train_device); // [b, voxels]
        let y = Tensor::<4>::from_data(TensorData::new(y, [b, c, h, w]), &self.train_device); // [b, c, h, w]
        // Dropout masks drawn from a per-step seed: a resumed run draws the same ones.
        let model = self.model.take().expect("model present between steps");
        let pred =
            crate::backend::with_seed(&self.train_device, step_seed(self.seed, step), || {
                model.forward(x)
            }); // [b, c, h, w]
        let loss = (pred - y).abs().mean(); // [1]
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(model, grads, values.lr, values.beta1));
        Ok((loss_value, values.lr))
    }

    /// Eval-mode predictions for `rows`, in batches: `[rows, c*h*w]` flattened.
    fn predict(&self, data: &Dataset, rows: &[usize]) -> Result<Vec<f32>, TrainError> {
        let eval = self.model().valid();
        let mut out = Vec::with_capacity(rows.len() * data.latent_len());
        for chunk in rows.chunks(VAL_BATCH) {
            let (x, _) = data.batch(chunk);
            let x = Tensor::<2>::from_data(
                TensorData::new(x, [chunk.len(), self.input_width]),
                &self.device,
            ); // [b, voxels]
            let pred = eval.forward(x); // [b, c, h, w]
            out.extend(
                pred.into_data().try_into_vec::<f32>().map_err(|e| other(format!("{e:?}")))?,
            );
        }
        Ok(out)
    }

    /// Mean absolute error over every latent element of the validation rows.
    fn val_l1(&self, data: &Dataset, rows: &[usize]) -> Result<f64, TrainError> {
        let pred = self.predict(data, rows)?;
        let l = data.latent_len();
        let mut sum = 0.0f64;
        for (i, &r) in rows.iter().enumerate() {
            let target = &data.latents[r * l..(r + 1) * l];
            sum += pred[i * l..(i + 1) * l]
                .iter()
                .zip(target)
                .map(|(p, t)| (p - t).abs() as f64)
                .sum::<f64>();
        }
        Ok(sum / (rows.len() * l) as f64)
    }

    /// Write the model and optimizer state into a checkpoint directory.
    fn save(&self, dir: &Path) -> Result<(), String> {
        self.model().save(&dir.join(MODEL_FILE)).map_err(|e| e.to_string())?;
        self.optim.save(&dir.join(OPTIMIZER_FILE)).map_err(|e| e.to_string())
    }

    /// Restore the model and optimizer state from a verified checkpoint directory.
    fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let model =
            LowLevelModel::load(&self.model_config, &dir.join(MODEL_FILE), &self.train_device)
                .map_err(other)?;
        self.optim = AdamW::load(&dir.join(OPTIMIZER_FILE), &model).map_err(other)?;
        self.model = Some(model);
        Ok(())
    }
}

/// Validation and reconstruction batch size (no gradients: larger than training batches).
const VAL_BATCH: usize = 64;

/// Load (and, for the demo, first generate) the dataset: masked fMRI of every training row and
/// the latent cache of its images (built on first use, shared with `brainscope latents`).
fn load_data(
    config: &ExperimentConfig,
    data_root: &Path,
    vae_dir: &Path,
    device: &Device,
    log: &Log,
    progress: bool,
) -> Result<Dataset, TrainError> {
    if is_demo_root(data_root) && !data_root.join(&config.data.subject).is_dir() {
        log.line(&format!("generating the demo dataset in {}", data_root.display()));
        crate::demo::ensure_demo(data_root).map_err(other)?;
    }
    let subject = Subject::open(data_root, &config.data.subject).map_err(other)?;
    let set = RoiSet::parse(&config.data.roi_set).map_err(other)?;
    let mode: MaskMode = config.data.mask_mode.parse().map_err(TrainError::Other)?;
    let mask = VoxelMask::build(&subject.roi_atlas().map_err(other)?, &set, mode).map_err(other)?;
    let n = subject.n_train();
    let rows: Vec<usize> = (0..n).collect();
    log.line(&format!("loading fMRI: {n} rows x {} voxels ({set}, {mode})", mask.input_width()));
    let width = mask.input_width();
    let fmri = subject.load_fmri(&mask, &rows).map_err(other)?.into_raw_vec_and_offset().0;

    // The same cache `brainscope latents` writes by default: training then test images, mode.
    let mut images = subject.train_images().to_vec();
    if let Some(test) = subject.test() {
        images.extend(test.images.iter().cloned());
    }
    let latent_mode = LatentMode::Mode;
    let job = LatentJob {
        dataset: subject.dir().to_path_buf(),
        images,
        n_train: n,
        vae: vae_dir.to_path_buf(),
        out: default_cache_path(subject.dir(), vae_dir, latent_mode),
        batch: 16,
        mode: latent_mode,
        image_size: None,
        progress,
    };
    log.line(&format!("latent cache {} (VAE {})", job.out.display(), vae_dir.display()));
    let path = ensure_latent_cache(&job, device).map_err(other)?;
    let cache = LatentCache::open(&path).map_err(other)?;
    let latent_shape = cache.shape();
    let latents = cache.rows(&rows).map_err(other)?.into_raw_vec_and_offset().0;
    Ok(Dataset { fmri, width, latents, latent_shape, images: subject.train_images().to_vec() })
}

/// Whether `root` is the embedded demo dataset's folder (`demo-data`), which training may
/// generate on first use.
fn is_demo_root(root: &Path) -> bool {
    root.file_name().is_some_and(|n| n == "demo-data")
}

/// The VAE decoder used for the per-epoch reconstructions (loaded at the first epoch end).
struct ReconDecoder {
    vae: Vae,
}

impl ReconDecoder {
    fn load(vae_dir: &Path, device: &Device) -> Result<Self, TrainError> {
        Ok(Self { vae: load_vae(vae_dir, device).map_err(other)? })
    }

    /// Cached (scaled) latents `[k, c, h, w]` -> images `[k, 3, H, W]` in about [-1, 1].
    fn decode(&self, latents: Tensor<4>) -> Tensor<4> {
        self.vae.model.decode(latents / self.vae.config.scaling_factor)
    }
}

/// Decode the predictions (and targets) of the fixed validation `rows` to
/// `recon/epoch-NNN/sample-XX-{target,lowlevel,vae}.png` plus `samples.json`:
/// - `target`: the real stimulus image, resized to the decoder's output size;
/// - `lowlevel`: the model's predicted latent decoded by the VAE;
/// - `vae`: the target latent decoded by the VAE (the best a perfect low-level model could do).
///
/// Written into a temporary folder and renamed, so the console never sees a partial epoch.
fn write_recon(
    paths: &RunPaths,
    epoch: usize,
    learner: &Learner,
    decoder: &ReconDecoder,
    data: &Dataset,
    rows: &[usize],
) -> Result<(), TrainError> {
    let final_dir = paths.recon_epoch(epoch);
    let parent = final_dir.parent().expect("recon/epoch-NNN has a parent").to_path_buf();
    let tmp = parent.join(format!(".tmp-epoch-{epoch:03}-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let [c, h, w] = data.latent_shape;
    let k = rows.len();
    let pred = learner.predict(data, rows)?;
    let (_, target) = data.batch(rows);
    let pred = Tensor::<4>::from_data(TensorData::new(pred, [k, c, h, w]), &learner.device); // [k, c, h, w]
    let target = Tensor::<4>::from_data(TensorData::new(target, [k, c, h, w]), &learner.device); // [k, c, h, w]
    let pred_img = decoder.decode(pred); // [k, 3, H, W]
    let target_img = decoder.decode(target); // [k, 3, H, W]
    let [_, _, ih, iw] = pred_img.dims();
    let mut samples = Vec::new();
    for (i, &row) in rows.iter().enumerate() {
        let name = |kind: &str| tmp.join(format!("sample-{i:02}-{kind}.png"));
        let image = &data.images[row];
        let real = load_rgb(image, iw as u32, ih as u32).map_err(other)?;
        real.save(name("target"))
            .map_err(|e| other(format!("{}: {e}", name("target").display())))?;
        save_png(pred_img.clone().slice([i..i + 1]), &name("lowlevel")).map_err(other)?;
        save_png(target_img.clone().slice([i..i + 1]), &name("vae")).map_err(other)?;
        samples.push(serde_json::json!({ "sample": i, "row": row, "image": image }));
    }
    let index = serde_json::json!({ "epoch": epoch, "samples": samples });
    std::fs::write(tmp.join("samples.json"), serde_json::to_vec_pretty(&index).expect("json"))
        .map_err(io(&tmp))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::RngCore;

    #[test]
    fn rng_state_round_trips_mid_stream() {
        let mut rng = shuffle_rng(42);
        let _ = shuffled(&(0..100).collect::<Vec<_>>(), &mut rng);
        let state = RngState::capture(&rng);
        let json = serde_json::to_string(&state).unwrap();
        let mut restored = serde_json::from_str::<RngState>(&json).unwrap().restore().unwrap();
        assert_eq!(restored.next_u64(), rng.next_u64());
    }

    #[test]
    fn shuffles_are_seeded_permutations_that_differ_per_epoch() {
        let items: Vec<usize> = (10..60).collect();
        let mut a = shuffle_rng(7);
        let mut b = shuffle_rng(7);
        let (a1, b1) = (shuffled(&items, &mut a), shuffled(&items, &mut b));
        assert_eq!(a1, b1);
        let a2 = shuffled(&items, &mut a);
        assert_ne!(a1, a2, "the next epoch gets another order");
        let mut sorted = a2.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, items);
        assert_ne!(shuffled(&items, &mut shuffle_rng(8)), a1);
    }

    #[test]
    fn step_seeds_differ() {
        assert_ne!(step_seed(1, 0), step_seed(1, 1));
        assert_ne!(step_seed(1, 5), step_seed(2, 5));
    }

    #[test]
    fn project_dir_is_parent_of_experiments() {
        assert_eq!(project_dir(Path::new("/p/experiments/92")), PathBuf::from("/p"));
    }
}
