//! The full training path through the real binary on a tiny demo dataset: a foreground run
//! that learns; then a detached run that is double-start-refused, killed with SIGKILL mid-epoch,
//! resumed, stopped with `brainscope stop`, resumed past a truncated checkpoint, with a
//! continuous metrics history throughout.
//!
//! The project (`tests/common`) has a tiny randomly initialised AutoencoderKL (32 px images ->
//! [4, 8, 8] latents): these tests prove the run machinery, not reconstruction quality (the demo VAE's
//! quality is tested with its own weights).

use crate::common::{BIN, Project, n_train};
use brainscope::experiments::metrics::read_metrics;
use brainscope::experiments::state::{MetricRecord, RunState, Split, read_status};
use brainscope::train::checkpoint::CheckpointStore;
use brainscope::train::trainer::CheckpointMeta;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Test-only views of the shared [`Project`].
trait ProjectExt {
    fn metrics(&self) -> Vec<MetricRecord>;
    fn status(&self) -> brainscope::experiments::state::RunStatus;
    fn wait_metrics(&self, what: &str, cond: impl Fn(&[MetricRecord]) -> bool);
}

impl ProjectExt for Project {
    fn metrics(&self) -> Vec<MetricRecord> {
        let (records, skipped) = read_metrics(&self.dir().join("metrics.jsonl")).unwrap();
        assert_eq!(skipped, 0, "metrics.jsonl has unparseable lines");
        records
    }

    fn status(&self) -> brainscope::experiments::state::RunStatus {
        read_status(&self.dir().join("status.json")).unwrap().expect("status.json written")
    }

    /// Wait (bounded) until `cond` holds on the metrics.
    fn wait_metrics(&self, what: &str, cond: impl Fn(&[MetricRecord]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (records, _) = read_metrics(&self.dir().join("metrics.jsonl")).unwrap();
            if cond(&records) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn train_steps(records: &[MetricRecord]) -> Vec<u64> {
    records.iter().filter(|r| r.split == Split::Train).map(|r| r.step).collect()
}

fn val_epochs(records: &[MetricRecord]) -> Vec<usize> {
    records.iter().filter(|r| r.split == Split::Val).map(|r| r.epoch).collect()
}

/// Train steps are exactly 1..=n and val records are exactly epochs 0..k, in order.
fn assert_continuous(records: &[MetricRecord]) {
    let steps = train_steps(records);
    assert_eq!(steps, (1..=steps.len() as u64).collect::<Vec<_>>(), "train steps not continuous");
    let vals = val_epochs(records);
    assert_eq!(vals, (0..vals.len()).collect::<Vec<_>>(), "val epochs not continuous");
}

#[test]
fn foreground_run_learns_and_records_every_epoch() {
    let p = Project::new(4, 8);
    let out = p.run(&["train", "7", "--foreground"]);
    assert!(
        out.status.success(),
        "train: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records = p.metrics();
    assert_continuous(&records);
    assert_eq!(val_epochs(&records), [0, 1, 2, 3], "one val record per epoch");
    // Loss decreases: mean train loss of the last epoch below that of the first.
    let mean = |epoch: usize| {
        let l: Vec<f64> = records
            .iter()
            .filter(|r| r.split == Split::Train && r.epoch == epoch)
            .map(|r| r.loss.unwrap())
            .collect();
        l.iter().sum::<f64>() / l.len() as f64
    };
    assert!(mean(3) < mean(0) * 0.9, "train loss did not decrease: {} -> {}", mean(0), mean(3));
    let status = p.status();
    assert_eq!((status.state, status.exit_code, status.epoch), (RunState::Done, Some(0), 4));
    for epoch in 0..4 {
        for kind in ["target", "lowlevel"] {
            let png = p.dir().join(format!("recon/epoch-{epoch:03}/sample-01-{kind}.png"));
            assert!(png.is_file(), "missing {}", png.display());
        }
    }
    let (loaded, skipped) = CheckpointStore::new(p.dir().join("checkpoints"))
        .load_latest::<CheckpointMeta>()
        .unwrap()
        .unwrap();
    assert!(skipped.is_empty());
    assert_eq!(loaded.manifest.meta.epoch, 4);
    // A finished run is not restarted by accident.
    let again = p.run(&["train", "7", "--foreground"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--restart"));
}

#[test]
fn detached_run_survives_kill_resumes_and_stops() {
    let p = Project::new(200, 4);
    let steps_per_epoch = n_train().div_ceil(4);
    let out = p.run(&["train", "7"]);
    assert!(out.status.success(), "launch: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pid"));
    let pid = p.status().pid.unwrap();

    // A second trainer is refused while the first runs.
    let second = p.run(&["train", "7"]);
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already"));

    // Past the first epoch's checkpoint and into the second epoch, then SIGKILL.
    p.wait_metrics("epoch 1 steps", |r| train_steps(r).len() as u64 > steps_per_epoch as u64 + 3);
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new(BIN)
        .args(["status", "--json", "--dir"])
        .arg(p.root.join("experiments"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["experiments"][0]["state"], "crashed");
    let before = p.metrics().len();
    assert!(before > 0);

    // Resume detached: history is cut back to the checkpoint and continues without gaps.
    assert!(p.run(&["train", "7"]).status.success());
    p.wait_metrics("resumed epoch 2", |r| {
        val_epochs(r).len() >= 2 && train_steps(r).len() as u64 > 2 * steps_per_epoch as u64 + 2
    });
    let out = p.run(&["stop", "7", "--timeout", "60"]);
    assert!(out.status.success(), "stop: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(p.status().state, RunState::Stopped);
    let records = p.metrics();
    assert_continuous(&records);
    assert!(p.log().contains("resuming from"), "log:\n{}", p.log());

    // The stop left a mid-epoch checkpoint at the last recorded step.
    let store = CheckpointStore::new(p.dir().join("checkpoints"));
    let (last, skipped) = store.load_latest::<CheckpointMeta>().unwrap().unwrap();
    assert!(skipped.is_empty());
    assert_eq!(last.manifest.step, *train_steps(&records).last().unwrap());

    // Cut the newest checkpoint's model file short: the resume names it and uses the previous one.
    let model = last.dir.join("model.safetensors");
    let len = std::fs::metadata(&model).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&model).unwrap().set_len(len / 2).unwrap();
    assert!(p.run(&["train", "7"]).status.success());
    p.wait_metrics("second resume", |r| train_steps(r).len() as u64 > last.manifest.step + 3);
    assert!(p.run(&["stop", "7"]).status.success());
    let log = p.log();
    assert!(log.contains("model.safetensors") && log.contains("cut short"), "log:\n{log}");
    assert_continuous(&p.metrics());
    assert!(
        store.load_latest::<CheckpointMeta>().unwrap().unwrap().1.is_empty(),
        "the damaged checkpoint was replaced"
    );
}
