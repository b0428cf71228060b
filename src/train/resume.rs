//! Starting over or picking up where a run left off: `--restart` discards the run files (and
//! fails loudly when it cannot), a resume takes the newest checkpoint that verifies, refuses one
//! made under another plan (naming each changed key), and cuts `metrics.jsonl` back to the
//! checkpoint's step.

use crate::experiments::state::{RunPaths, files};
use crate::train::checkpoint::{CheckpointStore, Loaded};
use crate::train::error::TrainError;
use crate::train::learner::Learner;
use crate::train::metrics::{MetricsWriter, truncate_after};
use crate::train::plan::{CheckpointMeta, RunPlan};
use crate::train::trainer::Log;
use std::path::{Path, PathBuf};

/// `--restart`: delete the checkpoints, `metrics.jsonl` and the reconstructions. Every path is
/// checked first (a file where a folder belongs, or the reverse, stops the restart before
/// anything is deleted); any deletion that fails stops the run with the path named, so stale
/// metrics never merge into the new run.
pub(crate) fn discard_run(paths: &RunPaths, store: &CheckpointStore) -> Result<(), TrainError> {
    let targets: [(PathBuf, bool); 3] = [
        (store.root().to_path_buf(), true),
        (paths.metrics(), false),
        (paths.dir.join(files::RECON), true),
    ];
    let restart_error =
        |path: &Path, source| TrainError::Restart { path: path.to_path_buf(), source };
    for (path, is_dir) in &targets {
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.is_dir() != *is_dir => {
                let what = if *is_dir { "a folder" } else { "a file" };
                return Err(restart_error(
                    path,
                    std::io::Error::other(format!("expected {what}; move it away by hand")),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(restart_error(path, e)),
        }
    }
    for (path, is_dir) in &targets {
        let result =
            if *is_dir { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(restart_error(path, e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The newest checkpoint that verifies (a damaged `last` falls back to an older one, logged).
pub(crate) fn latest_checkpoint(
    store: &CheckpointStore,
    log: &Log,
) -> Result<Option<Loaded<CheckpointMeta>>, TrainError> {
    if !store.has_last() && !store.root().is_dir() {
        return Ok(None);
    }
    Ok(store.load_latest::<CheckpointMeta>()?.map(|(loaded, skipped)| {
        for e in &skipped {
            log.line(&format!("warning: skipping checkpoint: {}", crate::errors::chain(e)));
        }
        loaded
    }))
}

/// Continue from `loaded`: refuse it when its plan differs from `plan` (the error lists each
/// changed key with both values), else load its model and optimizer into `learner`, forget
/// newer checkpoints and return its state.
pub(crate) fn resume_from(
    loaded: &Loaded<CheckpointMeta>,
    plan: &RunPlan,
    config_path: &Path,
    learner: &mut Learner,
    store: &CheckpointStore,
    log: &Log,
) -> Result<CheckpointMeta, TrainError> {
    let old = &loaded.manifest.meta;
    let changes = old.plan.changes(plan);
    if !changes.is_empty() {
        return Err(TrainError::PlanChanged {
            checkpoint: loaded.dir.clone(),
            config: config_path.to_path_buf(),
            changes,
        });
    }
    learner.load(&loaded.dir)?;
    store.rollback_to(old.step)?;
    log.line(&format!(
        "resuming from {} (epoch {}, step {})",
        loaded.dir.display(),
        old.epoch,
        old.step
    ));
    Ok(old.clone())
}

/// Cut `metrics.jsonl` back to `step` (the kept lines byte for byte) and open it for appending.
pub(crate) fn open_metrics(
    paths: &RunPaths,
    step: u64,
    log: &Log,
) -> Result<MetricsWriter, TrainError> {
    let path = paths.metrics();
    let io = |action| {
        let path = path.clone();
        move |source| TrainError::Io { action, path, source }
    };
    let dropped = truncate_after(&path, step).map_err(io("cut back"))?;
    if dropped > 0 {
        log.line(&format!("dropped {dropped} metric records written after the checkpoint"));
    }
    MetricsWriter::open(&path).map_err(io("open"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_deletes_every_run_file() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = RunPaths::new(tmp.path());
        let store = CheckpointStore::new(paths.checkpoints());
        std::fs::create_dir_all(paths.checkpoints().join("step-1")).unwrap();
        std::fs::create_dir_all(paths.recon_epoch(0)).unwrap();
        std::fs::write(paths.metrics(), "{}\n").unwrap();
        std::fs::write(paths.status(), "{}").unwrap();
        discard_run(&paths, &store).unwrap();
        let left: Vec<_> =
            std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [files::STATUS]);
        discard_run(&paths, &store).unwrap(); // nothing left to delete is fine
    }

    #[test]
    fn restart_refuses_before_deleting_anything_when_a_path_has_the_wrong_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = RunPaths::new(tmp.path());
        let store = CheckpointStore::new(paths.checkpoints());
        std::fs::create_dir_all(paths.checkpoints().join("step-1")).unwrap();
        std::fs::write(paths.metrics(), "{}\n").unwrap();
        std::fs::write(tmp.path().join(files::RECON), "not a folder").unwrap();
        let err = discard_run(&paths, &store).unwrap_err();
        assert!(matches!(&err, TrainError::Restart { path, .. } if path.ends_with(files::RECON)));
        assert!(paths.metrics().is_file() && paths.checkpoints().is_dir(), "nothing deleted");
    }
}
