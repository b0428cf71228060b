//! The full training path through the real binary on a tiny demo dataset: a foreground run
//! that learns; then a detached run that is double-start-refused, killed with SIGKILL mid-epoch,
//! resumed, stopped with `brainscope stop`, resumed past a truncated checkpoint, with a
//! continuous metrics history throughout.
//!
//! The VAE here is a tiny randomly initialised AutoencoderKL (32 px images -> [4, 8, 8]
//! latents): these tests prove the run machinery, not reconstruction quality (the demo VAE's
//! quality is tested with its own weights).

use brainscope::backend::default_device;
use brainscope::experiments::metrics::read_metrics;
use brainscope::models::vae::{save_vae, AutoencoderKLConfig};
use brainscope::experiments::state::{read_status, MetricRecord, RunState, Split};
use brainscope::train::checkpoint::CheckpointStore;
use brainscope::train::trainer::CheckpointMeta;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_brainscope");
/// Training images of the tiny demo: 29 validation rows (30 %), 67 training rows.
const N_IMAGES: usize = 96;
const N_TRAIN: usize = 67;

/// A project folder with a tiny demo dataset and one tiny experiment.
struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new(epochs: usize, batch: usize) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = root.join("tiny-demo");
        let out = Command::new(BIN)
            .args(["demo", "--out"])
            .arg(&data)
            .args(["--images", &N_IMAGES.to_string(), "--test-images", "0", "--size", "32", "--seed", "5"])
            .output()
            .unwrap();
        assert!(out.status.success(), "demo: {}", String::from_utf8_lossy(&out.stderr));
        let vae = root.join("vae");
        let config: AutoencoderKLConfig = serde_json::from_value(serde_json::json!({
            "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
            "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
            "block_out_channels": [32, 32, 32],
            "layers_per_block": 1,
            "latent_channels": 4,
            "norm_num_groups": 32,
            "sample_size": 32
        }))
        .unwrap();
        save_vae(&config.init(&default_device()), &config, &vae).unwrap();
        let dir = root.join("experiments/7");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("experiment.toml"),
            format!(
                "id = 7\n[data]\nroot = \"tiny-demo\"\nroi_set = \"set3\"\nvae = \"{}\"\n\
                 [train]\nseed = 3\nbatch_size = {batch}\nepochs = {epochs}\nmax_lr = 3e-3\nrecon_samples = 2\n\
                 [model]\nhidden = 64\nblocks = 1\ndropout_in = 0.1\ndropout_block = 0.1\n\
                 proj_channels = 32\nupsampler_channels = [32, 32, 32]\n",
                vae.display()
            ),
        )
        .unwrap();
        Self { _tmp: tmp, root }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("experiments/7")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN).args(args).arg("--dir").arg(self.root.join("experiments")).output().unwrap()
    }

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
            assert!(Instant::now() < deadline, "timed out waiting for {what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("train.log")).unwrap_or_default()
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
    assert!(out.status.success(), "train: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let records = p.metrics();
    assert_continuous(&records);
    assert_eq!(val_epochs(&records), [0, 1, 2, 3], "one val record per epoch");
    // Loss decreases: mean train loss of the last epoch below that of the first.
    let mean = |epoch: usize| {
        let l: Vec<f64> = records.iter().filter(|r| r.split == Split::Train && r.epoch == epoch).map(|r| r.loss.unwrap()).collect();
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
    let (loaded, skipped) = CheckpointStore::new(p.dir().join("checkpoints")).load_latest::<CheckpointMeta>().unwrap().unwrap();
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
    let steps_per_epoch = N_TRAIN.div_ceil(4);
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
    let status = Command::new(BIN).args(["status", "--json", "--dir"]).arg(p.root.join("experiments")).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["experiments"][0]["state"], "crashed");
    let before = p.metrics().len();
    assert!(before > 0);

    // Resume detached: history is cut back to the checkpoint and continues without gaps.
    assert!(p.run(&["train", "7"]).status.success());
    p.wait_metrics("resumed epoch 2", |r| val_epochs(r).len() >= 2 && train_steps(r).len() as u64 > 2 * steps_per_epoch as u64 + 2);
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
    assert!(store.load_latest::<CheckpointMeta>().unwrap().unwrap().1.is_empty(), "the damaged checkpoint was replaced");
}
