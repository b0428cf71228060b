//! One epoch of training steps: the epoch's seeded shuffle, one optimizer step per batch (a
//! `train` metrics record each), the divergence check, and a checkpoint when a stop is
//! requested mid-epoch.

use crate::data::split::shuffle;
use crate::experiments::process::now_ms;
use crate::experiments::run::stop_requested;
use crate::experiments::state::{MetricRecord, Split};
use crate::train::checkpoint::CheckpointStore;
use crate::train::dataset::Dataset;
use crate::train::epoch_end::save_checkpoint;
use crate::train::error::TrainError;
use crate::train::learner::Learner;
use crate::train::metrics::MetricsWriter;
use crate::train::plan::{CheckpointMeta, RngState};
use crate::train::trainer::Log;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// How an epoch's steps ended.
pub(crate) enum EpochSteps {
    /// Every batch trained: the mean loss of the steps this process ran.
    Done {
        /// Mean training loss (NaN when the epoch was resumed after its last step).
        mean_loss: f64,
    },
    /// A stop was requested: a mid-epoch checkpoint is written.
    Stopped,
}

/// What the epoch loop reads besides the state it advances.
pub(crate) struct EpochInputs<'a> {
    /// The data.
    pub data: &'a Dataset,
    /// Training rows (shuffled per epoch).
    pub train_rows: &'a [usize],
    /// Samples per step.
    pub batch_size: usize,
    /// Checkpoints (for a mid-epoch stop).
    pub store: &'a CheckpointStore,
    /// Raised by SIGTERM/SIGINT/SIGHUP.
    pub stop: &'a AtomicBool,
    /// The experiment.toml, named in a divergence error.
    pub config_path: &'a Path,
    /// Progress bar or log lines.
    pub log: &'a Log,
}

/// Train the remaining batches of epoch `meta.epoch` (from batch `meta.batch`). On return
/// `meta.shuffle_rng` is the generator after this epoch's shuffle, ready for the next epoch.
pub(crate) fn train_epoch(
    inputs: &EpochInputs,
    meta: &mut CheckpointMeta,
    learner: &mut Learner,
    metrics: &mut MetricsWriter,
) -> Result<EpochSteps, TrainError> {
    let epoch = meta.epoch;
    let steps_per_epoch = meta.plan.steps_per_epoch;
    let mut rng = meta.shuffle_rng.restore()?;
    let order = shuffle(inputs.train_rows, &mut rng);
    let mut loss_sum = 0.0;
    let mut loss_n = 0usize;
    for (b, rows) in order.chunks(inputs.batch_size).enumerate().skip(meta.batch) {
        let (x, y) = inputs.data.batch(rows);
        let (loss, lr) = learner.step(x, y, rows.len(), meta.step)?;
        meta.step += 1;
        meta.batch = b + 1;
        loss_sum += loss;
        loss_n += 1;
        let record = MetricRecord {
            t: now_ms(),
            epoch,
            step: meta.step,
            split: Split::Train,
            loss: Some(loss),
            l1: None,
            lr: Some(lr),
        };
        metrics.append(&record).map_err(|source| TrainError::Io {
            action: "append to",
            path: metrics.path().to_path_buf(),
            source,
        })?;
        if let Some(bar) = &inputs.log.bar {
            bar.set_position(meta.step);
            bar.set_message(format!("loss {loss:.4}"));
        }
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                loss,
                step: meta.step,
                epoch,
                max_lr: meta.plan.max_lr,
                config: inputs.config_path.to_path_buf(),
            });
        }
        if stop_requested(inputs.stop) && (meta.batch as u64) < steps_per_epoch {
            // Mid-epoch stop: keep the epoch's starting RNG so its permutation is rebuilt.
            save_checkpoint(inputs.store, meta, learner, false)?;
            inputs.log.line(&format!(
                "stop requested: checkpoint at epoch {epoch} step {} written",
                meta.step
            ));
            return Ok(EpochSteps::Stopped);
        }
    }
    meta.shuffle_rng = RngState::capture(&rng);
    let mean_loss = if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN };
    Ok(EpochSteps::Done { mean_loss })
}
