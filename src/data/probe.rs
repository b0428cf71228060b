//! The dataset-level probe set: a fixed list of rows held out of every experiment's train/val
//! split, so every cross-experiment view (gallery, compare, 2-AFC, `vote`, `eval --split
//! probe`) looks at the same images.
//!
//! Why: each experiment's validation split is drawn from its own seed, so "validation sample 0"
//! is a different image in experiments with different seeds (the paper's four models all have
//! different seeds). The paper voted on training images; the probe set is what makes the vote
//! fair.
//!
//! Algorithm (fixed; changing it changes every stored probe set): the first `size` entries of
//! [`split::permutation`]`(n_total, PROBE_SEED)`, sorted ascending. The experiment's own
//! train/val split is then drawn (as before, [`split::train_val_split`]) over the remaining
//! rows, which keeps it independent of the probe set's size apart from the held-out rows.

use crate::data::split;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default number of probe rows (`[data] probe = 100`).
pub const DEFAULT_PROBE_SIZE: usize = 100;

/// The fixed dataset seed the probe rows are drawn with (never per experiment).
pub const PROBE_SEED: u64 = 0x0050_524f_4245; // "PROBE"

/// The probe rows of a dataset with `n_total` rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSet {
    /// Rows of the dataset (training fMRI / image rows), ascending. Probe sample `i` is
    /// `rows[i]` in every experiment.
    pub rows: Vec<usize>,
    /// Rows in the dataset the set was drawn from.
    pub n_total: usize,
    /// [`PROBE_SEED`] at the time of drawing.
    pub seed: u64,
}

/// The probe set of `size` rows (clamped to `n_total`) of a dataset with `n_total` rows;
/// `size == 0` gives the empty set (the pre-probe behaviour).
pub fn probe_set(n_total: usize, size: usize) -> ProbeSet {
    let size = size.min(n_total);
    let mut rows = split::permutation(n_total, PROBE_SEED)[..size].to_vec();
    rows.sort_unstable();
    ProbeSet { rows, n_total, seed: PROBE_SEED }
}

/// `probe-<size>.json`: the name of the file holding the probe set of `[data] probe = size`,
/// written beside the latent cache ([`write_probe_file`]) so a user can see which rows every
/// experiment holds out.
pub fn probe_file_name(size: usize) -> String {
    format!("probe-{size}.json")
}

/// Write `set` (drawn for `[data] probe = size`) as pretty JSON to `dir/probe-<size>.json`,
/// atomically; a file that already holds exactly this set is left alone (one small read per
/// training start). Returns the path and whether it was written.
pub fn write_probe_file(
    dir: &Path,
    size: usize,
    set: &ProbeSet,
) -> std::io::Result<(PathBuf, bool)> {
    let path = dir.join(probe_file_name(size));
    let same = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ProbeSet>(&bytes).ok())
        .is_some_and(|old| old == *set);
    if same {
        return Ok((path, false));
    }
    std::fs::create_dir_all(dir)?;
    let mut text = serde_json::to_vec_pretty(set).expect("a probe set serialises");
    text.push(b'\n');
    crate::experiments::state::write_atomic(&path, &text)?;
    Ok((path, true))
}

/// The rows one experiment uses: the dataset's probe rows, and its own seeded train/val split
/// of the rest. Every row appears in exactly one of the three lists; each list is ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentRows {
    /// The dataset's probe rows (same for every experiment on this dataset).
    pub probe: Vec<usize>,
    /// Training rows of this experiment.
    pub train: Vec<usize>,
    /// Validation rows of this experiment.
    pub val: Vec<usize>,
}

/// Probe rows, then the experiment's split (`seed`, `val_fraction`) of the remaining rows.
/// With `probe_size == 0` this is exactly [`split::train_val_split`] over all rows.
pub fn experiment_rows(
    n_total: usize,
    probe_size: usize,
    seed: u64,
    val_fraction: f64,
) -> ExperimentRows {
    let probe = probe_set(n_total, probe_size).rows;
    let mut held = vec![false; n_total];
    for &r in &probe {
        held[r] = true;
    }
    let rest: Vec<usize> = (0..n_total).filter(|&r| !held[r]).collect();
    let local = split::train_val_split(rest.len(), seed, val_fraction);
    ExperimentRows {
        probe,
        train: local.train.iter().map(|&i| rest[i]).collect(),
        val: local.val.iter().map(|&i| rest[i]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_rows_are_fixed_disjoint_and_cover_every_row() {
        let a = experiment_rows(1000, 100, 3, 0.3);
        let b = experiment_rows(1000, 100, 97, 0.3);
        assert_eq!(a.probe, b.probe, "the probe set does not depend on the experiment seed");
        assert_eq!(a.probe.len(), 100);
        assert_ne!(a.val, b.val, "the experiment split still does");
        let mut all: Vec<usize> = a.probe.iter().chain(&a.train).chain(&a.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(a.val.len(), 270); // round(900 * 0.3)
    }

    #[test]
    fn zero_probe_is_the_old_split() {
        let old = split::train_val_split(500, 7, 0.3);
        let new = experiment_rows(500, 0, 7, 0.3);
        assert!(new.probe.is_empty());
        assert_eq!((new.train, new.val), (old.train, old.val));
    }

    #[test]
    fn the_probe_file_is_written_once_and_rewritten_when_it_differs() {
        let tmp = tempfile::tempdir().unwrap();
        let set = probe_set(50, 7);
        let (path, wrote) = write_probe_file(tmp.path(), 7, &set).unwrap();
        assert!(wrote);
        assert_eq!(path, tmp.path().join("probe-7.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(serde_json::from_str::<ProbeSet>(&text).unwrap(), set);
        assert!(text.contains("\n  \"rows\": ["), "pretty JSON: {text}");
        assert!(!write_probe_file(tmp.path(), 7, &set).unwrap().1, "identical: reused");
        std::fs::write(&path, "{\"rows\": [1]}").unwrap();
        assert!(write_probe_file(tmp.path(), 7, &set).unwrap().1, "damaged: rewritten");
        assert_eq!(
            serde_json::from_slice::<ProbeSet>(&std::fs::read(&path).unwrap()).unwrap(),
            set
        );
    }

    #[test]
    fn probe_larger_than_the_dataset_is_clamped() {
        assert_eq!(probe_set(5, 100).rows, vec![0, 1, 2, 3, 4]);
    }
}
