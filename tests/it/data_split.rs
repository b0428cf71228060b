//! The seeded train/val split: exact indices (golden, so a dependency upgrade that changed the
//! random stream fails here), agreement with an independent Python implementation of the
//! documented algorithm, determinism, and partition properties.

use std::path::Path;

use brainscope::data::split::{DEFAULT_VAL_FRACTION, permutation, train_val_split};

#[test]
fn golden_indices() {
    assert_eq!(permutation(10, 0), vec![3, 0, 5, 9, 6, 7, 2, 4, 1, 8]);
    assert_eq!(permutation(10, 42), vec![2, 1, 4, 3, 7, 0, 5, 8, 6, 9]);
    assert_eq!(train_val_split(20, 42, 0.3).val, vec![3, 4, 5, 10, 13, 17]);
    // subj01's size: 2952 validation rows.
    let s = train_val_split(9841, 1, DEFAULT_VAL_FRACTION);
    assert_eq!(s.val.len(), 2952);
    assert_eq!(s.train.len(), 9841 - 2952);
    assert_eq!(&s.val[..5], &[3, 8, 12, 22, 25]);
    assert_eq!(&s.val[s.val.len() - 3..], &[9830, 9833, 9840]);
}

#[test]
fn matches_the_python_reference() {
    #[derive(serde::Deserialize)]
    struct Case {
        n: usize,
        seed: u64,
        val_fraction: f64,
        val: Vec<usize>,
        train: Vec<usize>,
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy/split_golden.json");
    let cases: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let s = train_val_split(c.n, c.seed, c.val_fraction);
        assert_eq!(s.val, c.val, "n={} seed={}", c.n, c.seed);
        assert_eq!(s.train, c.train, "n={} seed={}", c.n, c.seed);
    }
}

#[test]
fn deterministic_sorted_partition() {
    for (n, seed) in [(0, 1), (1, 1), (2, 9), (333, 5)] {
        let a = train_val_split(n, seed, 0.3);
        assert_eq!(a, train_val_split(n, seed, 0.3));
        assert!(a.val.windows(2).all(|w| w[0] < w[1]) && a.train.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<usize> = a.train.iter().chain(&a.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        assert_eq!(a.val.len(), ((n as f64) * 0.3).round() as usize);
    }
    assert_ne!(train_val_split(100, 1, 0.3).val, train_val_split(100, 2, 0.3).val);
}
