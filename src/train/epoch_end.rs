//! The work at the end of each epoch: validation L1 over the whole validation split (a `val`
//! metrics record), the checkpoint (tagged `best` on a new best val L1), and the
//! reconstructions of the fixed samples (the dataset's probe rows, else validation rows).

use crate::experiments::process::now_ms;
use crate::experiments::state::{
    EvalSplit, MetricRecord, RunPaths, Split, files, recon, recon_file_name,
};
use crate::imageio::{load_rgb, save_png};
use crate::models::vae::{Vae, load_vae};
use crate::train::checkpoint::{CheckpointStore, Tags};
use crate::train::dataset::Dataset;
use crate::train::error::TrainError;
use crate::train::learner::Learner;
use crate::train::metrics::MetricsWriter;
use crate::train::plan::CheckpointMeta;
use burn::prelude::*;
use burn::tensor::TensorData;
use std::path::{Path, PathBuf};

/// What the end of an epoch produced.
pub(crate) struct EpochSummary {
    /// Validation L1 of the epoch.
    pub val_l1: f64,
    /// Whether it is the best so far.
    pub is_best: bool,
}

/// Validate, record, checkpoint and reconstruct at the end of `epoch`. `meta` arrives with the
/// epoch's steps counted and leaves pointing at the next epoch (`shuffle_rng` already advanced
/// by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_epoch(
    epoch: usize,
    meta: &mut CheckpointMeta,
    learner: &Learner,
    data: &Dataset,
    val_rows: &[usize],
    metrics: &mut MetricsWriter,
    store: &CheckpointStore,
    recon: &mut Reconstructions,
) -> Result<EpochSummary, TrainError> {
    let val_l1 = learner.val_l1(data, val_rows)?;
    metrics
        .append(&MetricRecord {
            t: now_ms(),
            epoch,
            step: meta.step,
            split: Split::Val,
            loss: None,
            l1: Some(val_l1),
            lr: None,
        })
        .map_err(|source| TrainError::Io {
            action: "append to",
            path: metrics.path().to_path_buf(),
            source,
        })?;
    let is_best = meta.best_val.is_none_or(|(_, best)| val_l1 < best);
    if is_best {
        meta.best_val = Some((epoch, val_l1));
    }
    meta.epoch = epoch + 1;
    meta.batch = 0;
    save_checkpoint(store, meta, learner, is_best)?;
    recon.write(epoch, learner, data)?;
    Ok(EpochSummary { val_l1, is_best })
}

/// Write a checkpoint of the current state.
pub(crate) fn save_checkpoint(
    store: &CheckpointStore,
    meta: &CheckpointMeta,
    learner: &Learner,
    best: bool,
) -> Result<(), TrainError> {
    store.save(meta.step, meta, |dir| learner.save(dir), Tags { best })?;
    Ok(())
}

/// The per-epoch reconstructions of fixed rows; the VAE decoder is loaded at the first epoch
/// end.
pub(crate) struct Reconstructions {
    paths: RunPaths,
    vae_dir: PathBuf,
    rows: Vec<usize>,
    split: EvalSplit,
    vae: Option<Vae>,
}

impl Reconstructions {
    /// Reconstructions of `rows` (none when empty), the first rows of `split` (sample `i` is
    /// `rows[i]`), decoded by the VAE in `vae_dir`.
    pub fn new(paths: RunPaths, vae_dir: PathBuf, rows: Vec<usize>, split: EvalSplit) -> Self {
        Self { paths, vae_dir, rows, split, vae: None }
    }

    /// Decode the predictions of the fixed rows to
    /// `recon/epoch-NNN/sample-XX-{target,lowlevel}.png` plus `samples.json`
    /// (`{"epoch", "split": "probe"|"val", "samples": [{"sample", "row", "image"}]}`;
    /// [`recon`] kinds):
    /// - `target`: the real stimulus image, resized to the decoder's output size;
    /// - `lowlevel`: the model's predicted latent decoded by the VAE.
    ///
    /// Written into a temporary folder and renamed, so the console never sees a partial epoch.
    pub fn write(
        &mut self,
        epoch: usize,
        learner: &Learner,
        data: &Dataset,
    ) -> Result<(), TrainError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if self.vae.is_none() {
            self.vae = Some(load_vae(&self.vae_dir, &learner.device)?);
        }
        let vae = self.vae.as_ref().expect("loaded above");
        let final_dir = self.paths.recon_epoch(epoch);
        let parent = self.paths.dir.join(files::RECON);
        let tmp = parent.join(format!(".tmp-epoch-{epoch:03}-{}", std::process::id()));
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| TrainError::Io { action, path, source }
        };
        std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
        let [c, h, w] = data.latent_shape;
        let k = self.rows.len();
        let pred = learner.predict(data, &self.rows)?;
        let pred = Tensor::<4>::from_data(TensorData::new(pred, [k, c, h, w]), &learner.device); // [k, c, h, w]
        // Cached latents are scaled; the decoder takes unscaled ones.
        let pred_img = vae.model.decode(pred / vae.config.scaling_factor); // [k, 3, H, W]
        let [_, _, ih, iw] = pred_img.dims();
        let mut samples = Vec::new();
        for (i, &row) in self.rows.iter().enumerate() {
            let name = |kind: &str| tmp.join(recon_file_name(i, kind));
            let image = &data.images[row];
            let real = load_rgb(image, iw as u32, ih as u32)?;
            let target = name(recon::TARGET);
            real.save(&target).map_err(|source| TrainError::Png { path: target, source })?;
            #[allow(clippy::single_range_in_vec_init)] // burn's slice takes one range per dim
            save_png(pred_img.clone().slice([i..i + 1]), &name(recon::LOWLEVEL))?;
            samples.push(serde_json::json!({ "sample": i, "row": row, "image": image }));
        }
        let index =
            serde_json::json!({ "epoch": epoch, "split": self.split.name(), "samples": samples });
        let index_path = tmp.join(files::RECON_INDEX);
        std::fs::write(&index_path, serde_json::to_vec_pretty(&index).expect("json"))
            .map_err(io("write", &index_path))?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(io("replace", &final_dir))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(io("write", &final_dir))
    }
}
