//! `brainscope eval`: score one experiment's checkpoint on a split of its rows.
//!
//! For the last checkpoint (or the one that ended a given epoch): the low-level model predicts
//! the latents of the split's rows ([`experiment_rows`]: the dataset's probe rows, or the
//! experiment's own val / train rows), compared with the cached target latents (latent L1);
//! the experiment's VAE decodes them; the decoded images are written with their targets to
//! `recon/final-<split>/` and scored against the targets:
//!
//! - **PixCorr** and **SSIM** (MindEye's, [`metrics`]) of each written pair
//!   (`sample-XX-target.png`: the stimulus resized to the decoder's output size, as the
//!   per-epoch reconstructions; `sample-XX-lowlevel.png`: the decoded prediction), after the
//!   resize (425 by default);
//! - **2-way identification on pixels**: the flattened RGB pixels of the written pairs at the
//!   decoder's size;
//! - with a CLIP folder: **2-way identification on CLIP image embeddings** (reconstructions
//!   against the real stimulus images), **CLIP similarity to the target image** (the real
//!   stimulus at its own size: the paper's Table III) and **to the VAE-decoded target latent**
//!   (what the seed code compared: the best the low-level model could reach through this VAE).
//!
//! Nothing is written until every number is computed; the folder is staged and renamed, and
//! `eval/<split>.json` ([`EvalRecord`]) is replaced atomically.

use crate::data::DataError;
use crate::data::algonauts::Subject;
use crate::data::probe::experiment_rows;
use crate::data::roi::{MaskMode, RoiSet, VoxelMask};
use crate::eval::clip_features::{ClipImages, read_rgb};
use crate::eval::metrics::{self, MetricsError, Resize};
use crate::eval::progress::Progress;
use crate::experiments::config::{CONFIG_FILE, ConfigError, ExperimentConfig};
use crate::experiments::process::now_ms;
use crate::experiments::state::{
    EvalRecord, EvalSplit, HIGHLEVEL_SETTINGS, RunPaths, caption_file_name, files, recon,
    recon_file_name, write_atomic,
};
use crate::imageio::{self, ImageIoError};
use crate::latents::{LatentCache, LatentError, LatentJob};
use crate::models::clip::ClipError;
use crate::models::lowlevel::{LowLevelConfig, LowLevelError, LowLevelModel};
use crate::models::vae::load_vae;
use crate::models::weights::WeightsError;
use crate::train::checkpoint::{CheckpointError, CheckpointStore, Loaded};
use crate::train::plan::CheckpointMeta;
use crate::train::trainer::project_dir;
use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use ndarray::Array2;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

use crate::train::checkpoint::MODEL_FILE;

/// Rows per low-level forward pass.
const PREDICT_BATCH: usize = 32;
/// Latents per VAE decode.
const DECODE_BATCH: usize = 8;

/// Why an evaluation could not run. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// experiment.toml is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No checkpoint yet.
    #[error(
        "{dir}: no checkpoint yet, so there is nothing to evaluate; train the experiment first \
         (`brainscope train {id}`)"
    )]
    NoCheckpoint {
        /// The checkpoints folder.
        dir: PathBuf,
        /// Experiment id.
        id: String,
    },
    /// `--epoch E` names an epoch whose checkpoint is not kept.
    #[error(
        "{dir} holds no checkpoint of the end of epoch {epoch} (kept: {kept}); give one of those \
         to --epoch, or leave --epoch out for the last checkpoint"
    )]
    NoEpoch {
        /// The checkpoints folder.
        dir: PathBuf,
        /// The epoch asked for (0-based).
        epoch: usize,
        /// The epochs whose checkpoints exist.
        kept: String,
    },
    /// A checkpoint problem.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The dataset is unusable.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The experiment's ROI set does not fit the dataset's atlas.
    #[error("[data] roi_set = {roi_set:?} in {config} does not fit the dataset")]
    Roi {
        /// The experiment.toml.
        config: PathBuf,
        /// The ROI set as written.
        roi_set: String,
        /// What the atlas says.
        source: DataError,
    },
    /// The split has no rows.
    #[error("{what}; {fix}")]
    EmptySplit {
        /// What is empty.
        what: String,
        /// How to get rows.
        fix: String,
    },
    /// Too few rows for 2-way identification.
    #[error(
        "--split {split} gives {n} sample(s) here; 2-way identification needs at least 2 (a true \
         match and a distractor): raise --limit or pick a larger split"
    )]
    TooFew {
        /// The split.
        split: &'static str,
        /// Rows after `--limit`.
        n: usize,
    },
    /// The data no longer gives the checkpoint's input width or latent shape.
    #[error(
        "checkpoint {checkpoint} was trained on {what} {trained} but the data now gives {now}; \
         restore the settings it was trained with in {config} (or retrain with --restart)"
    )]
    Mismatch {
        /// The checkpoint folder.
        checkpoint: PathBuf,
        /// `input width` / `latent shape`.
        what: &'static str,
        /// The checkpoint's value.
        trained: String,
        /// The data's value.
        now: String,
        /// The experiment.toml.
        config: PathBuf,
    },
    /// The latent cache could not be built or read.
    #[error(transparent)]
    Latents(#[from] LatentError),
    /// The low-level model could not be built or loaded.
    #[error(transparent)]
    Model(#[from] LowLevelError),
    /// The VAE could not be loaded.
    #[error(transparent)]
    Vae(#[from] WeightsError),
    /// CLIP could not be loaded or run.
    #[error(transparent)]
    Clip(#[from] ClipError),
    /// A metric could not be computed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// An image could not be read or written.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// A tensor could not be read back.
    #[error("cannot read back the {what}: {message}")]
    Tensor {
        /// Which tensor.
        what: &'static str,
        /// burn's message.
        message: String,
    },
    /// A result file or folder could not be written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    /// `experiments/<id>/`.
    pub experiment_dir: PathBuf,
    /// Which rows.
    pub split: EvalSplit,
    /// Only the first `N` rows of the split.
    pub limit: Option<usize>,
    /// The checkpoint that ended this 0-based epoch; `None` = the last checkpoint.
    pub epoch: Option<usize>,
    /// CLIP folder; `None` = no CLIP metrics (recorded as absent).
    pub clip: Option<PathBuf>,
    /// Resize before PixCorr / SSIM.
    pub resize: Resize,
    /// Where the models run.
    pub device: Device,
}

/// What an evaluation produced.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    /// The numbers (also written to `eval/<split>.json`).
    pub record: EvalRecord,
    /// Dataset row of each sample (sample `i` is `rows[i]`).
    pub rows: Vec<usize>,
    /// `recon/final-<split>/`.
    pub recon_dir: PathBuf,
    /// `eval/<split>.json`.
    pub eval_file: PathBuf,
    /// Things the user should know (printed on stderr by the CLI).
    pub warnings: Vec<String>,
}

/// The 0-based epoch a checkpoint belongs to: the epoch it ended (`batch == 0`), or the one it
/// stopped inside.
pub fn checkpoint_epoch(meta: &CheckpointMeta) -> usize {
    if meta.batch == 0 { meta.epoch.saturating_sub(1) } else { meta.epoch }
}

/// The checkpoint to evaluate: the newest that verifies, or the one that ended `epoch`.
pub fn pick_checkpoint(
    paths: &RunPaths,
    epoch: Option<usize>,
    id: &str,
) -> Result<Loaded<CheckpointMeta>, EvalError> {
    let store = CheckpointStore::new(paths.checkpoints());
    let no_checkpoint = || EvalError::NoCheckpoint { dir: paths.checkpoints(), id: id.into() };
    let Some(epoch) = epoch else {
        return store.load_latest::<CheckpointMeta>()?.map(|(l, _)| l).ok_or_else(no_checkpoint);
    };
    let entries = match std::fs::read_dir(paths.checkpoints()) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_checkpoint()),
        Err(source) => {
            return Err(EvalError::Io { action: "list", path: paths.checkpoints(), source });
        }
    };
    let mut kept = Vec::new();
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step-")))
        .collect();
    names.sort();
    for dir in names {
        let Ok(loaded) = CheckpointStore::load_dir::<CheckpointMeta>(&dir) else { continue };
        let meta = &loaded.manifest.meta;
        if meta.batch == 0 && meta.epoch > 0 {
            if meta.epoch - 1 == epoch {
                return Ok(loaded);
            }
            kept.push(meta.epoch - 1);
        }
    }
    if kept.is_empty() && !store.has_last() {
        return Err(no_checkpoint());
    }
    kept.sort_unstable();
    let kept = if kept.is_empty() {
        "none at an epoch end".to_string()
    } else {
        kept.iter().map(|e| format!("epoch {e}")).collect::<Vec<_>>().join(", ")
    };
    Err(EvalError::NoEpoch { dir: paths.checkpoints(), epoch, kept })
}

/// The rows of `split` for an experiment (its config) on a dataset of `n_total` rows, after
/// `limit`; errors when none remain (or fewer than 2-way identification needs).
pub fn split_rows(
    config: &ExperimentConfig,
    config_path: &Path,
    n_total: usize,
    split: EvalSplit,
    limit: Option<usize>,
) -> Result<Vec<usize>, EvalError> {
    let all =
        experiment_rows(n_total, config.data.probe, config.train.seed, config.train.val_fraction);
    let mut rows = match split {
        EvalSplit::Probe => all.probe,
        EvalSplit::Val => all.val,
        EvalSplit::Train => all.train,
    };
    if rows.is_empty() {
        let what = format!(
            "the {} split of experiment {} is empty ({n_total} dataset rows, [data] probe = {})",
            split.name(),
            config.id,
            config.data.probe
        );
        let fix = match split {
            EvalSplit::Probe => format!(
                "set [data] probe to a positive size in {} (the same for every experiment on \
                 this dataset), or evaluate --split val",
                config_path.display()
            ),
            _ => {
                format!("change [train] val_fraction or [data] probe in {}", config_path.display())
            }
        };
        return Err(EvalError::EmptySplit { what, fix });
    }
    if let Some(limit) = limit {
        if limit == 0 {
            return Err(EvalError::EmptySplit {
                what: "--limit 0 leaves no sample".into(),
                fix: "give --limit 2 or more, or leave it out".into(),
            });
        }
        rows.truncate(limit);
    }
    if rows.len() < 2 {
        return Err(EvalError::TooFew { split: split.name(), n: rows.len() });
    }
    Ok(rows)
}

/// Everything computed before anything is written.
struct Scored {
    record: EvalRecord,
    targets: Vec<RgbImage>,
    recons: Vec<RgbImage>,
    images: Vec<PathBuf>,
}

/// Evaluate, then write `recon/final-<split>/` and `eval/<split>.json`.
pub fn evaluate(request: &EvalRequest, progress: &Progress) -> Result<EvalOutcome, EvalError> {
    let dir = &request.experiment_dir;
    let config = ExperimentConfig::load(dir)?;
    let config_path = dir.join(CONFIG_FILE);
    let paths = RunPaths::new(dir);
    let id = config.id.to_string();
    let loaded = pick_checkpoint(&paths, request.epoch, &id)?;
    let mut warnings = Vec::new();
    // CLIP first: a bad folder fails before the slow part.
    let clip = match &request.clip {
        Some(clip_dir) => {
            progress.note(&format!("loading CLIP from {}", clip_dir.display()));
            Some(ClipImages::load(clip_dir, &request.device)?)
        }
        None => None,
    };

    let project = project_dir(dir);
    let data_root = ExperimentConfig::resolve(&project, &config.data.root);
    let vae_dir = ExperimentConfig::resolve(&project, &config.data.vae);
    let subject = Subject::open(&data_root, &config.data.subject)?;
    let rows = split_rows(&config, &config_path, subject.n_train(), request.split, request.limit)?;
    let plan = &loaded.manifest.meta.plan;
    if request.split == EvalSplit::Val && plan.n_val != rows.len() && request.limit.is_none() {
        warnings.push(format!(
            "checkpoint {} was trained with {} validation rows but experiment.toml now gives {} \
             (a run from before the probe set, or an edited split): these val rows may include \
             rows it trained on; --split probe is held out of every run that uses the probe set",
            loaded.dir.display(),
            plan.n_val,
            rows.len()
        ));
    }

    let scored = score(
        request,
        &config,
        &config_path,
        &subject,
        &vae_dir,
        &loaded,
        &rows,
        clip.as_ref(),
        progress,
    )?;

    progress.stage("writing", 1);
    let recon_dir = paths.recon_final(request.split);
    write_recon_folder(&paths, request.split, &scored, &rows)?;
    let eval_file = paths.eval(request.split);
    let eval_dir = eval_file.parent().expect("eval/<split>.json has a parent");
    std::fs::create_dir_all(eval_dir).map_err(|source| EvalError::Io {
        action: "create",
        path: eval_dir.into(),
        source,
    })?;
    let mut text = serde_json::to_string_pretty(&scored.record).expect("json");
    text.push('\n');
    write_atomic(&eval_file, text.as_bytes()).map_err(|source| EvalError::Io {
        action: "write",
        path: eval_file.clone(),
        source,
    })?;
    progress.inc(1);
    progress.finish();
    Ok(EvalOutcome { record: scored.record, rows, recon_dir, eval_file, warnings })
}

/// Predict, decode and score (no writes apart from a latent cache the trainer would share).
#[allow(clippy::too_many_arguments)]
fn score(
    request: &EvalRequest,
    config: &ExperimentConfig,
    config_path: &Path,
    subject: &Subject,
    vae_dir: &Path,
    loaded: &Loaded<CheckpointMeta>,
    rows: &[usize],
    clip: Option<&ClipImages>,
    progress: &Progress,
) -> Result<Scored, EvalError> {
    let device = &request.device;
    let meta = &loaded.manifest.meta;
    let plan = &meta.plan;
    let k = rows.len();
    let mismatch = |what, trained: String, now: String| EvalError::Mismatch {
        checkpoint: loaded.dir.clone(),
        what,
        trained,
        now,
        config: config_path.to_path_buf(),
    };

    // fMRI of the split's rows, masked as in training.
    progress.stage("loading fMRI", k);
    let set = RoiSet::parse(&config.data.roi_set)?;
    let mode: MaskMode = config.data.mask_mode.parse().unwrap_or_default();
    let mask =
        VoxelMask::build(&subject.roi_atlas()?, &set, mode).map_err(|source| EvalError::Roi {
            config: config_path.to_path_buf(),
            roi_set: config.data.roi_set.clone(),
            source,
        })?;
    let width = mask.input_width();
    if width != plan.input_width {
        return Err(mismatch("input width", plan.input_width.to_string(), width.to_string()));
    }
    let fmri = subject.load_fmri(&mask, rows)?.into_raw_vec_and_offset().0; // [k, width]
    progress.inc(k);

    // Target latents: the trainer's cache (reused when up to date, else rebuilt).
    let job = LatentJob::for_subject(subject, vae_dir, false);
    let built = crate::latents::ensure_latent_cache(&job, device)?;
    let cache = LatentCache::open(&built.path)?;
    let latent_shape = cache.shape();
    if latent_shape != plan.latent_shape {
        return Err(mismatch(
            "latent shape",
            format!("{:?}", plan.latent_shape),
            format!("{latent_shape:?} ({})", built.path.display()),
        ));
    }
    let [c, h, w] = latent_shape;
    let target_latents = cache.rows(rows)?.into_raw_vec_and_offset().0; // [k, c*h*w]

    // Predictions of the checkpoint's model (plain backend: dropout off).
    progress.stage("predicting latents", k);
    let model_config =
        LowLevelConfig::sized(plan.input_width, plan.model.clone(), plan.latent_shape)?;
    let model = LowLevelModel::load(&model_config, &loaded.dir.join(MODEL_FILE), device)?;
    let mut pred = Vec::with_capacity(target_latents.len());
    for chunk in fmri.chunks(PREDICT_BATCH * width) {
        let b = chunk.len() / width;
        let x = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [b, width]), device); // [b, width]
        let y = model.forward(x); // [b, c, h, w]
        pred.extend(y.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| {
            EvalError::Tensor { what: "predicted latents", message: format!("{e:?}") }
        })?);
        progress.inc(b);
    }
    let latent_l1 = metrics::latent_l1(&pred, &target_latents)?;

    // Decode (cached latents are scaled; the decoder takes unscaled ones).
    progress.stage(if clip.is_some() { "decoding (+ targets)" } else { "decoding" }, k);
    let vae = load_vae(vae_dir, device)?;
    let decode = |latents: &[f32], what: &'static str| -> Result<Vec<RgbImage>, EvalError> {
        let mut out = Vec::with_capacity(k);
        let per = c * h * w;
        for chunk in latents.chunks(DECODE_BATCH * per) {
            let b = chunk.len() / per;
            let z = Tensor::<4>::from_data(TensorData::new(chunk.to_vec(), [b, c, h, w]), device); // [b, c, h, w]
            let img = vae.model.decode(z / vae.config.scaling_factor); // [b, 3, H, W]
            out.extend(
                imageio::tensor_to_images(img)
                    .map_err(|e| EvalError::Tensor { what, message: crate::errors::chain(&e) })?,
            );
            if what == "decoded predictions" {
                progress.inc(b);
            }
        }
        Ok(out)
    };
    let recons = decode(&pred, "decoded predictions")?;
    let vae_targets =
        if clip.is_some() { Some(decode(&target_latents, "decoded targets")?) } else { None };
    let (iw, ih) = (recons[0].width(), recons[0].height());

    // Targets as the per-epoch reconstructions show them: the stimulus at the decoder's size.
    let stimuli: Vec<PathBuf> = rows.iter().map(|&r| subject.train_images()[r].clone()).collect();
    let targets: Vec<RgbImage> =
        stimuli.iter().map(|p| imageio::load_rgb(p, iw, ih)).collect::<Result<_, _>>()?;

    // Pixel metrics on the images as written (RGB8).
    progress.stage("PixCorr / SSIM", k);
    let t01: Vec<metrics::Image01> = targets.iter().map(metrics::image01_from_rgb).collect();
    let r01: Vec<metrics::Image01> = recons.iter().map(metrics::image01_from_rgb).collect();
    let pairs: Vec<metrics::PairScore> = t01
        .par_iter()
        .zip(&r01)
        .map(|(t, r)| {
            let s = metrics::score_pair(t.view(), r.view(), request.resize);
            progress.inc(1);
            s
        })
        .collect::<Result<_, _>>()?;
    let pixcorr = metrics::mean(&pairs.iter().map(|p| p.pixcorr).collect::<Vec<_>>());
    let ssim = metrics::mean(&pairs.iter().map(|p| p.ssim).collect::<Vec<_>>());
    let two_way_pixels =
        metrics::two_way_identification(flatten(&t01).view(), flatten(&r01).view())?.score;

    // CLIP metrics.
    let (mut two_way_clip, mut clip_sim_target, mut clip_sim_vae_target) = (None, None, None);
    if let (Some(clip), Some(vae_targets)) = (clip, &vae_targets) {
        progress.stage("CLIP embeddings", 3 * k);
        let real: Vec<RgbImage> = stimuli.iter().map(|p| read_rgb(p)).collect::<Result<_, _>>()?;
        let e_real = clip.embed(&real, |n| progress.inc(n))?; // [k, d]
        let e_recon = clip.embed(&recons, |n| progress.inc(n))?; // [k, d]
        let e_vae = clip.embed(vae_targets, |n| progress.inc(n))?; // [k, d]
        two_way_clip = Some(metrics::two_way_identification(e_real.view(), e_recon.view())?.score);
        clip_sim_target =
            Some(metrics::mean(&metrics::cosine_similarity_rows(e_recon.view(), e_real.view())?));
        clip_sim_vae_target =
            Some(metrics::mean(&metrics::cosine_similarity_rows(e_recon.view(), e_vae.view())?));
    }

    let checkpoint = loaded
        .dir
        .strip_prefix(&request.experiment_dir)
        .unwrap_or(&loaded.dir)
        .display()
        .to_string();
    let record = EvalRecord {
        split: request.split,
        samples: k,
        epoch: checkpoint_epoch(meta),
        step: meta.step,
        checkpoint,
        vae: vae_dir.display().to_string(),
        clip: clip.map(|c| c.clip.dir.display().to_string()),
        latent_l1,
        pixcorr,
        ssim,
        resize: match request.resize {
            Resize::None => None,
            Resize::ShortSide(n) => Some(n),
        },
        two_way_pixels,
        two_way_clip,
        clip_sim_target,
        clip_sim_vae_target,
        t: now_ms(),
    };
    Ok(Scored { record, targets, recons, images: stimuli })
}

/// `[k, 3 * H * W]`: each image's pixels as one feature row.
fn flatten(images: &[metrics::Image01]) -> Array2<f32> {
    let d = images.first().map_or(0, |i| i.len());
    let mut out = Array2::zeros((images.len(), d));
    for (mut row, img) in out.rows_mut().into_iter().zip(images) {
        row.iter_mut().zip(img.iter()).for_each(|(o, &v)| *o = v);
    }
    out
}

/// Keep the high-level images and captions (`brainscope recon`) of an older final folder made
/// from the same checkpoint step and rows: its low-level images are the ones just rewritten, so
/// the high-level ones made from them still belong to them. Otherwise they are dropped.
fn carry_high_level(old: &Path, new: &Path, step: u64, rows: &[usize]) -> std::io::Result<()> {
    let Ok(bytes) = std::fs::read(old.join(files::RECON_INDEX)) else { return Ok(()) };
    let Ok(index) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Ok(()) };
    let old_rows: Option<Vec<usize>> = index["samples"]
        .as_array()
        .map(|s| s.iter().filter_map(|e| e["row"].as_u64().map(|r| r as usize)).collect());
    if index["step"].as_u64() != Some(step) || old_rows.as_deref() != Some(rows) {
        return Ok(());
    }
    let settings = old.join(HIGHLEVEL_SETTINGS);
    if settings.is_file() {
        std::fs::copy(&settings, new.join(HIGHLEVEL_SETTINGS))?;
    }
    for i in 0..rows.len() {
        let caption = caption_file_name(i);
        for name in [recon_file_name(i, recon::HIGHLEVEL), caption] {
            if old.join(&name).is_file() {
                std::fs::copy(old.join(&name), new.join(&name))?;
            }
        }
    }
    Ok(())
}

/// Stage `recon/final-<split>/` (targets, reconstructions, `samples.json`) and rename it into
/// place, replacing an older one.
fn write_recon_folder(
    paths: &RunPaths,
    split: EvalSplit,
    scored: &Scored,
    rows: &[usize],
) -> Result<(), EvalError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Io { action, path, source }
    };
    let final_dir = paths.recon_final(split);
    let parent = paths.dir.join(files::RECON);
    let tmp = parent.join(format!(".tmp-final-{}-{}", split.name(), std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io("clear", &tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
    let result = (|| {
        let mut samples = Vec::new();
        for (i, &row) in rows.iter().enumerate() {
            for (kind, img) in
                [(recon::TARGET, &scored.targets[i]), (recon::LOWLEVEL, &scored.recons[i])]
            {
                let path = tmp.join(recon_file_name(i, kind));
                img.save_with_format(&path, image::ImageFormat::Png).map_err(|e| {
                    ImageIoError::Write { path: path.clone(), message: e.to_string() }
                })?;
            }
            samples.push(serde_json::json!({
                "sample": i, "row": row, "image": scored.images[i],
            }));
        }
        let r = &scored.record;
        let index = serde_json::json!({
            "split": split.name(), "epoch": r.epoch, "step": r.step,
            "checkpoint": r.checkpoint, "samples": samples,
        });
        let index_path = tmp.join(files::RECON_INDEX);
        std::fs::write(&index_path, serde_json::to_vec_pretty(&index).expect("json"))
            .map_err(io("write", &index_path))?;
        if final_dir.exists() {
            carry_high_level(&final_dir, &tmp, r.step, rows)
                .map_err(io("copy from", &final_dir))?;
            std::fs::remove_dir_all(&final_dir).map_err(io("replace", &final_dir))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(io("write", &final_dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
