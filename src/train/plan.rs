//! What a checkpoint records besides the weights: where the run is ([`CheckpointMeta`]) and what
//! must not change for a resume to continue the same run ([`RunPlan`]), with the per-key
//! differences a refused resume reports ([`PlanChange`]).

use crate::data::split::seeded_rng;
use crate::models::lowlevel::LowLevelWidths;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

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

impl CheckpointMeta {
    /// The state before the first step of a run with `plan`.
    pub fn start(plan: RunPlan) -> Self {
        Self {
            epoch: 0,
            batch: 0,
            step: 0,
            shuffle_rng: RngState::capture(&shuffle_rng(plan.seed)),
            best_val: None,
            plan,
        }
    }
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
    /// Model widths (experiment.toml `[model]`).
    pub model: LowLevelWidths,
    /// OneCycle peak learning rate.
    pub max_lr: f64,
    /// Rows held out as the dataset's probe set (`[data] probe`; `data::probe`). `None` in a
    /// checkpoint that predates the probe set: that run keeps its old split (probe 0) when it
    /// resumes, and its later checkpoints keep `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<usize>,
}

/// One key whose value differs between a checkpoint's plan and the plan experiment.toml gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    /// The plan key (`batch_size`, `model.hidden`, ...).
    pub key: String,
    /// The checkpoint's value (JSON text).
    pub old: String,
    /// The value now (JSON text).
    pub new: String,
}

impl std::fmt::Display for PlanChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (checkpoint) -> {} (now)", self.key, self.old, self.new)?;
        if DATA_KEYS.contains(&self.key.as_str()) {
            write!(f, " [from the data: the dataset, ROI set or VAE changed]")?;
        }
        Ok(())
    }
}

/// Plan keys that come from the data rather than from experiment.toml.
const DATA_KEYS: [&str; 5] = ["steps_per_epoch", "n_train", "n_val", "input_width", "latent_shape"];

impl RunPlan {
    /// Every key whose value differs from `new`'s, sorted by key (nested `[model]` keys as
    /// `model.<key>`).
    pub fn changes(&self, new: &RunPlan) -> Vec<PlanChange> {
        fn flatten(prefix: &str, v: serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        let key = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                        flatten(&key, v, out);
                    }
                }
                other => out.push((prefix.to_string(), other)),
            }
        }
        let pairs = |plan: &RunPlan| {
            let mut out = Vec::new();
            flatten("", serde_json::to_value(plan).expect("plans serialise"), &mut out);
            out
        };
        let new_pairs = pairs(new);
        let mut changes: Vec<PlanChange> = pairs(self)
            .into_iter()
            .filter_map(|(key, old)| {
                let now = new_pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
                let now = now.unwrap_or(serde_json::Value::Null);
                (now != old).then(|| PlanChange { key, old: old.to_string(), new: now.to_string() })
            })
            .collect();
        changes.sort_by(|a, b| a.key.cmp(&b.key));
        changes
    }
}

/// A checkpoint's shuffle-RNG state does not parse.
#[derive(Debug, thiserror::Error)]
#[error("the checkpoint's shuffle RNG state is damaged ({reason}); pass --restart to start over")]
pub struct RngStateError {
    /// What is wrong with it.
    pub reason: String,
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
    pub fn restore(&self) -> Result<ChaCha8Rng, RngStateError> {
        let bad = |reason: String| RngStateError { reason };
        let bytes: Vec<u8> = (0..self.seed.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(self.seed.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("seed is not hex: {e}")))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| bad("seed is not 32 bytes".to_string()))?;
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse().map_err(|e| bad(format!("word position: {e}")))?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::split::shuffle;
    use rand_chacha::rand_core::RngCore;

    fn plan() -> RunPlan {
        RunPlan {
            seed: 3,
            batch_size: 4,
            epochs: 5,
            steps_per_epoch: 17,
            n_train: 67,
            n_val: 29,
            input_width: 100,
            latent_shape: [4, 8, 8],
            roi: "set3 (zero)".into(),
            model: LowLevelWidths::default(),
            max_lr: 3e-3,
            probe: Some(16),
        }
    }

    #[test]
    fn changes_name_each_key_with_old_and_new_values() {
        assert!(plan().changes(&plan()).is_empty());
        let mut new = plan();
        new.batch_size = 8;
        new.model.hidden = 64;
        new.n_train = 70;
        let changes = plan().changes(&new);
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["batch_size", "model.hidden", "n_train"]);
        assert_eq!(changes[0].to_string(), "batch_size: 4 (checkpoint) -> 8 (now)");
        assert_eq!(changes[1].to_string(), "model.hidden: 2048 (checkpoint) -> 64 (now)");
        assert!(changes[2].to_string().contains("from the data"));
    }

    #[test]
    fn a_changed_probe_size_is_a_plan_change() {
        let mut new = plan();
        new.probe = Some(100);
        let changes = plan().changes(&new);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to_string(), "probe: 16 (checkpoint) -> 100 (now)");
    }

    #[test]
    fn a_plan_that_predates_the_probe_set_reads_as_none_and_is_written_back_so() {
        let mut json = serde_json::to_value(plan()).unwrap();
        json.as_object_mut().unwrap().remove("probe");
        let old: RunPlan = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(old.probe, None);
        assert_eq!(serde_json::to_value(&old).unwrap(), json, "no probe key added on rewrite");
        assert!(old.changes(&old.clone()).is_empty());
    }

    #[test]
    fn rng_state_round_trips_mid_stream() {
        let mut rng = shuffle_rng(42);
        let _ = shuffle(&(0..100).collect::<Vec<_>>(), &mut rng);
        let state = RngState::capture(&rng);
        let json = serde_json::to_string(&state).unwrap();
        let mut restored = serde_json::from_str::<RngState>(&json).unwrap().restore().unwrap();
        assert_eq!(restored.next_u64(), rng.next_u64());
        let damaged = RngState { seed: "zz".into(), ..state };
        assert!(damaged.restore().unwrap_err().to_string().contains("--restart"));
    }

    #[test]
    fn shuffles_are_seeded_permutations_that_differ_per_epoch() {
        let items: Vec<usize> = (10..60).collect();
        let mut a = shuffle_rng(7);
        let mut b = shuffle_rng(7);
        let (a1, b1) = (shuffle(&items, &mut a), shuffle(&items, &mut b));
        assert_eq!(a1, b1);
        let a2 = shuffle(&items, &mut a);
        assert_ne!(a1, a2, "the next epoch gets another order");
        let mut sorted = a2.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, items);
        assert_ne!(shuffle(&items, &mut shuffle_rng(8)), a1);
    }
}
