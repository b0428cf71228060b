//! The dataset-level probe set through the real binary: two experiments with different seeds
//! reconstruct the same probe rows every epoch (sample `XX` = probe row `XX`), never train or
//! validate on them, and the probe set is written beside the latent cache; a probe set that
//! leaves nothing to train on is refused naming `[data] probe`.

use crate::common::{N_IMAGES, N_PROBE, Project};
use brainscope::data::probe::{ProbeSet, experiment_rows, probe_set};
use brainscope::train::checkpoint::CheckpointStore;
use brainscope::train::trainer::CheckpointMeta;
use std::path::{Path, PathBuf};

/// Add experiment `id` to the project: experiment 7's settings with another seed.
fn add_experiment(p: &Project, id: &str, seed: u64) -> PathBuf {
    let toml = std::fs::read_to_string(p.dir().join("experiment.toml")).unwrap();
    let toml = toml
        .replace("id = 7", &format!("id = {id}"))
        .replace("seed = 3", &format!("seed = {seed}"));
    let dir = p.root.join("experiments").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("experiment.toml"), toml).unwrap();
    dir
}

/// `recon/epoch-NNN/samples.json` of the run in `dir`.
fn index(dir: &Path, epoch: usize) -> serde_json::Value {
    let path = dir.join(format!("recon/epoch-{epoch:03}/samples.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

fn rows_of(index: &serde_json::Value) -> Vec<usize> {
    index["samples"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            assert_eq!(s["sample"].as_u64(), Some(i as u64));
            s["row"].as_u64().unwrap() as usize
        })
        .collect()
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        if e.file_name() == name {
            return Some(e.path());
        }
        if e.path().is_dir()
            && let Some(found) = find(&e.path(), name)
        {
            return Some(found);
        }
    }
    None
}

#[test]
fn experiments_with_different_seeds_reconstruct_the_same_probe_rows_and_never_train_on_them() {
    let p = Project::new(2, 16);
    let other = add_experiment(&p, "8", 11);
    let logs: Vec<String> = ["7", "8"]
        .iter()
        .map(|id| {
            let out = p.run(&["train", id, "--foreground"]);
            assert!(out.status.success(), "train {id}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect();
    let probe = probe_set(N_IMAGES, N_PROBE);
    for epoch in 0..2 {
        let (a, b) = (index(&p.dir(), epoch), index(&other, epoch));
        assert_eq!((&a["split"], &b["split"]), (&"probe".into(), &"probe".into()));
        assert_eq!(rows_of(&a), rows_of(&b), "epoch {epoch}: the same rows in both");
        assert_eq!(rows_of(&a), probe.rows[..2], "sample XX = probe row XX");
        assert_eq!(a["samples"][1]["image"], b["samples"][1]["image"]);
    }
    // The probe rows are in neither experiment's train/val split, and the split the trainer
    // used (its plan) is the one of the rest.
    for (dir, seed) in [(p.dir(), 3), (other.clone(), 11)] {
        let rows = experiment_rows(N_IMAGES, N_PROBE, seed, 0.3);
        assert_eq!(rows.probe, probe.rows);
        for r in &probe.rows {
            assert!(!rows.train.contains(r) && !rows.val.contains(r), "row {r} (seed {seed})");
        }
        let (loaded, _) = CheckpointStore::new(dir.join("checkpoints"))
            .load_latest::<CheckpointMeta>()
            .unwrap()
            .unwrap();
        let plan = &loaded.manifest.meta.plan;
        assert_eq!(plan.probe, Some(N_PROBE));
        assert_eq!((plan.n_train, plan.n_val), (rows.train.len(), rows.val.len()));
        assert_eq!(plan.n_train + plan.n_val + N_PROBE, N_IMAGES);
    }
    assert_ne!(
        experiment_rows(N_IMAGES, N_PROBE, 3, 0.3).val,
        experiment_rows(N_IMAGES, N_PROBE, 11, 0.3).val,
        "the seeds give different validation rows: only the probe set aligns them"
    );
    // probe-16.json beside the latent cache, written once (the second run reused it).
    let file = find(&p.root.join("tiny-demo"), &format!("probe-{N_PROBE}.json"))
        .expect("probe file in the dataset folder");
    let written: ProbeSet = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written, probe);
    let cache = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".npy"));
    assert!(cache, "next to the latent cache");
    let said = format!("probe set: {N_PROBE} rows held out, listed in {}", file.display());
    assert!(logs[0].contains(&said), "the first run writes it: {}", logs[0]);
    assert!(!logs[1].contains("probe set:"), "the second reuses it: {}", logs[1]);
    assert!(logs[1].contains(&format!(" / {N_PROBE} probe samples")), "{}", logs[1]);
}

#[test]
fn a_probe_set_that_leaves_nothing_to_train_on_is_refused_naming_the_key() {
    let p = Project::new(1, 16);
    let toml = std::fs::read_to_string(p.dir().join("experiment.toml")).unwrap();
    let toml = toml.replace(&format!("probe = {N_PROBE}"), &format!("probe = {N_IMAGES}"));
    std::fs::write(p.dir().join("experiment.toml"), toml).unwrap();
    let out = p.run(&["train", "7", "--foreground"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{N_IMAGES} samples, {N_IMAGES} held out as the probe set"))
            && err.contains("lower [data] probe")
            && err.contains("experiment.toml"),
        "{err}"
    );
    assert!(!p.dir().join("checkpoints").exists() && !p.dir().join("recon").exists());
}

#[test]
fn train_and_rate_help_explain_the_probe_set() {
    let help = |cmd: &str| {
        let out =
            std::process::Command::new(crate::common::BIN).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let train = help("train");
    assert!(train.contains("the paper voted on training images"), "{train}");
    assert!(train.contains("[data] probe in experiment.toml, default 100, 0 = none"), "{train}");
    assert!(train.contains("Existing runs keep their split"), "{train}");
    let rate = help("rate");
    assert!(rate.contains("Samples come from the dataset's probe set"), "{rate}");
    assert!(rate.contains("human-2afc.jsonl"), "the rest of the long help: {rate}");
}
