//! The seeded train/validation split, identical across runs, platforms and dependency upgrades.
//!
//! Algorithm (fixed; changing it changes every stored split):
//! 1. Key a ChaCha8 stream cipher (`rand_chacha::ChaCha8Rng`, a specified algorithm whose
//!    output does not depend on `rand`'s version) with a 32-byte seed: the 8 little-endian bytes
//!    of `seed` followed by 24 zero bytes (`ChaCha8Rng::from_seed`, stream 0, word position 0).
//! 2. Draw 64-bit words with `next_u64` (two consecutive 32-bit outputs, low word first).
//! 3. Uniform integer in `[0, bound)`: draw `x`; accept when `x < bound * floor(2^64 / bound)`
//!    and return `x % bound`, otherwise draw again (rejection sampling, no modulo bias).
//! 4. Fisher–Yates shuffle of `0..n`: for `i` from `n-1` down to `1`, swap element `i` with
//!    element `uniform(i + 1)`.
//! 5. The first `round(n * val_fraction)` shuffled indices are the validation set, the rest the
//!    training set; both are then sorted ascending.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

/// The paper's validation share (70/30 split).
pub const DEFAULT_VAL_FRACTION: f64 = 0.3;

/// Row indices of the training and validation sets, each sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainValSplit {
    /// Training rows (ascending).
    pub train: Vec<usize>,
    /// Validation rows (ascending).
    pub val: Vec<usize>,
}

/// The seeded random number generator of this module (see the module docs for the key layout).
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// Uniform integer in `[0, bound)` by rejection sampling on 64-bit draws; `bound > 0`.
pub fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    assert!(bound > 0, "uniform_below needs a positive bound");
    let zone = (u64::MAX / bound) * bound; // draws >= zone would bias the low residues
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % bound;
        }
    }
}

/// A permutation of `0..n` by the Fisher–Yates shuffle described in the module docs.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    shuffle(&(0..n).collect::<Vec<_>>(), &mut seeded_rng(seed))
}

/// `items` reordered by the Fisher–Yates shuffle of the module docs (step 4), drawing from
/// `rng`: for `i` from `len-1` down to `1`, swap element `i` with element `uniform(i + 1)`.
/// The split and the trainer's per-epoch shuffles both use it.
pub fn shuffle<T: Clone>(items: &[T], rng: &mut ChaCha8Rng) -> Vec<T> {
    let mut v = items.to_vec();
    for i in (1..v.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// Split rows `0..n` into train and validation sets: `round(n * val_fraction)` validation rows
/// chosen by a seeded shuffle (module docs), the rest for training; both sorted ascending.
/// `val_fraction` is clamped to `[0, 1]`.
pub fn train_val_split(n: usize, seed: u64, val_fraction: f64) -> TrainValSplit {
    let frac =
        if val_fraction.is_finite() { val_fraction.clamp(0.0, 1.0) } else { DEFAULT_VAL_FRACTION };
    let n_val = ((n as f64) * frac).round() as usize;
    let perm = permutation(n, seed);
    let mut val = perm[..n_val].to_vec();
    let mut train = perm[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    TrainValSplit { train, val }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_a_partition_of_the_right_size() {
        let s = train_val_split(1000, 7, 0.3);
        assert_eq!(s.val.len(), 300);
        assert_eq!(s.train.len(), 700);
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn seeds_differ_and_repeat() {
        assert_eq!(train_val_split(500, 1, 0.3), train_val_split(500, 1, 0.3));
        assert_ne!(train_val_split(500, 1, 0.3), train_val_split(500, 2, 0.3));
    }

    #[test]
    fn uniform_below_stays_in_range() {
        let mut rng = seeded_rng(3);
        for bound in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(uniform_below(&mut rng, bound) < bound);
            }
        }
    }
}
