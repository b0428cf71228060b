//! Bad input and interrupted runs through the real binary: every bad experiment.toml field is
//! refused naming the file and key (exit != 0, nothing written), `--restart` fails loudly when
//! it cannot delete, a diverging loss ends the run `crashed` with the step and a hint, a resume
//! under a changed plan names each change and the fix, an unreadable image says why once, and a
//! run killed with SIGKILL mid-epoch and resumed ends byte-identical to an uninterrupted one.

use crate::common::{BIN, Project, n_train};
use brainscope::experiments::metrics::read_metrics;
use brainscope::experiments::state::{RunState, Split, read_status};
use brainscope::models::vae::{AutoencoderKLConfig, save_vae};
use brainscope::train::checkpoint::CheckpointStore;
use brainscope::train::trainer::CheckpointMeta;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Rewrite the experiment's `key = ...` line (the first one) to `key = value`.
fn set_key(p: &Project, key: &str, value: &str) {
    let path = p.dir().join("experiment.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    let mut done = false;
    let lines: Vec<String> = toml
        .lines()
        .map(|l| {
            if !done && l.split('=').next().map(str::trim) == Some(key) {
                done = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(done, "no {key} in {toml}");
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Names of the entries of the experiment folder besides experiment.toml.
fn run_files(p: &Project) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(p.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "experiment.toml")
        .collect();
    names.sort();
    names
}

fn status(p: &Project) -> brainscope::experiments::state::RunStatus {
    read_status(&p.status_path()).unwrap().expect("status.json written")
}

/// Wait (bounded) until the metrics satisfy `cond`.
fn wait_metrics(p: &Project, what: &str, cond: impl Fn(usize, usize) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (records, _) = read_metrics(&p.dir().join("metrics.jsonl")).unwrap();
        let train = records.iter().filter(|r| r.split == Split::Train).count();
        let val = records.iter().filter(|r| r.split == Split::Val).count();
        if cond(train, val) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; log:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_dead(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::common::alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_bad_field_is_refused_naming_the_file_and_key_and_nothing_is_written() {
    let p = Project::new(2, 4);
    let cases = [
        ("batch_size", "0", "[train] batch_size = 0 in ", "must be >= 1"),
        ("epochs", "0", "[train] epochs = 0 in ", "must be >= 1"),
        ("max_lr", "-1e-3", "[train] max_lr = -0.001 in ", "must be a number > 0"),
        ("hidden", "0", "[model] hidden = 0 in ", "must be >= 1"),
        (
            "upsampler_channels",
            "[32, 48, 32]",
            "[model] upsampler_channels = [32, 48, 32] in ",
            "multiple of 32",
        ),
        ("roi_set", "\" , \"", "[data] roi_set = \" , \" in ", "comma-separated list"),
    ];
    let path = p.dir().join("experiment.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    for (key, value, head, rule) in cases {
        set_key(&p, key, value);
        for args in [&["train", "7", "--foreground"][..], &["train", "7"][..]] {
            let out = p.run(args);
            let err = stderr(&out);
            assert!(!out.status.success(), "{key} = {value} accepted: {}", text(&out));
            assert!(err.contains(head) && err.contains(rule), "{key}: {err}");
            assert!(err.contains(&path.display().to_string()), "names the file: {err}");
            assert_eq!(run_files(&p), Vec::<String>::new(), "{key}: files written");
        }
        std::fs::write(&path, &original).unwrap();
    }
}

#[test]
fn an_roi_name_missing_from_the_atlas_is_refused_naming_the_key_before_any_training() {
    let p = Project::new(2, 4);
    set_key(&p, "roi_set", "\"NOSUCHROI\"");
    let out = p.run(&["train", "7", "--foreground"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(err.contains("[data] roi_set = \"NOSUCHROI\" in "), "{err}");
    assert!(err.contains("NOSUCHROI") && err.contains("valid names"), "{err}");
    let s = status(&p);
    assert_eq!(s.state, RunState::Crashed);
    assert!(s.message.contains("roi_set"), "{}", s.message);
    // Only the run record: no metrics, checkpoints or reconstructions.
    assert_eq!(run_files(&p), ["lock", "status.json"]);
}

#[test]
fn restart_that_cannot_delete_an_old_run_file_fails_loudly_and_deletes_nothing() {
    let p = Project::new(2, 4);
    let metrics = p.dir().join("metrics.jsonl");
    let old = "{\"t\":1,\"epoch\":0,\"step\":1,\"split\":\"train\",\"loss\":0.5,\"lr\":0.001}\n";
    std::fs::write(&metrics, old).unwrap();
    std::fs::create_dir_all(p.dir().join("checkpoints/step-00000001")).unwrap();
    // `recon` is a file where the run keeps a folder: it cannot be deleted as one.
    std::fs::write(p.dir().join("recon"), "not a folder").unwrap();
    let out = p.run(&["train", "7", "--foreground", "--restart"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(err.contains("--restart cannot delete") && err.contains("recon"), "{err}");
    assert!(err.contains("nothing was trained") && err.contains("expected a folder"), "{err}");
    assert_eq!(std::fs::read_to_string(&metrics).unwrap(), old, "old metrics kept, untouched");
    assert!(p.dir().join("checkpoints/step-00000001").is_dir(), "checkpoints kept");
    assert_eq!(status(&p).state, RunState::Crashed);
}

#[test]
fn a_diverging_loss_ends_the_run_crashed_with_the_step_and_a_hint() {
    let p = Project::new(3, 4);
    set_key(&p, "max_lr", "1e30");
    let out = p.run(&["train", "7", "--foreground"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(err.contains("training diverged at step "), "{err}");
    assert!(err.contains("lower [train] max_lr (now 1000000000000000000000000000000)"), "{err}");
    assert!(err.contains("--restart") && err.contains("experiment.toml"), "{err}");
    let s = status(&p);
    assert_eq!((s.state, s.exit_code), (RunState::Crashed, Some(1)));
    assert!(s.message.contains("training diverged at step"), "{}", s.message);
    // The non-finite loss is the last record; nothing after it.
    let (records, _) = read_metrics(&p.dir().join("metrics.jsonl")).unwrap();
    let last = records.last().expect("steps were recorded");
    // JSON has no NaN: serde_json writes a non-finite loss as null.
    assert!(last.loss.is_none_or(|l| !l.is_finite()), "{last:?}");
    assert!(records[..records.len() - 1].iter().all(|r| r.loss.is_some_and(f64::is_finite)));
    assert!(err.contains(&format!("at step {} ", last.step)), "{err}");
}

#[test]
fn a_resume_under_a_changed_plan_names_each_change_and_the_fix() {
    let p = Project::new(200, 4);
    assert!(p.run(&["train", "7"]).status.success());
    wait_metrics(&p, "the first epoch's checkpoint", |_, val| val >= 1);
    let out = p.run(&["stop", "7", "--timeout", "60"]);
    assert!(out.status.success(), "{}", text(&out));
    let metrics_before = std::fs::read(p.dir().join("metrics.jsonl")).unwrap();
    let checkpoints_before = std::fs::read_dir(p.dir().join("checkpoints")).unwrap().count();

    set_key(&p, "batch_size", "8");
    set_key(&p, "hidden", "32");
    set_key(&p, "probe", "20");
    let out = p.run(&["train", "7", "--foreground"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(err.contains("batch_size: 4 (checkpoint) -> 8 (now)"), "{err}");
    assert!(err.contains("model.hidden: 64 (checkpoint) -> 32 (now)"), "{err}");
    assert!(err.contains("probe: 16 (checkpoint) -> 20 (now)"), "{err}");
    let rows = brainscope::data::probe::experiment_rows(crate::common::N_IMAGES, 20, 3, 0.3);
    let steps = format!(
        "steps_per_epoch: {} (checkpoint) -> {} (now)",
        n_train().div_ceil(4),
        rows.train.len().div_ceil(8)
    );
    assert!(err.contains(&steps), "{err}");
    assert!(err.contains(&format!("n_train: {} (checkpoint) -> {}", n_train(), rows.train.len())));
    assert!(err.contains("restore those values in") && err.contains("--restart"), "{err}");
    assert!(!err.contains("seed:"), "unchanged keys are not listed: {err}");
    assert_eq!(std::fs::read(p.dir().join("metrics.jsonl")).unwrap(), metrics_before);
    assert_eq!(std::fs::read_dir(p.dir().join("checkpoints")).unwrap().count(), checkpoints_before);
}

#[test]
fn a_checkpoint_from_before_the_probe_set_resumes_with_its_old_split_and_says_so_once() {
    // A run made before the probe set existed: its split is the probe-0 split and its
    // checkpoints have no `probe` in their plan.
    let p = Project::new(200, 4);
    set_key(&p, "probe", "0");
    assert!(p.run(&["train", "7"]).status.success());
    wait_metrics(&p, "the first epoch's checkpoint", |_, val| val >= 1);
    let out = p.run(&["stop", "7", "--timeout", "60"]);
    assert!(out.status.success(), "{}", text(&out));
    let strip_probe = |p: &Project| {
        let manifest = p.dir().join("checkpoints/last/manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        let plan = m["meta"]["plan"].as_object_mut().unwrap();
        assert_eq!(plan.remove("probe"), Some(serde_json::json!(0)));
        std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    };
    strip_probe(&p);
    set_key(&p, "probe", "16"); // the experiment now asks for a probe set

    // Resumed: no plan change, the old split kept, said once.
    let (records, _) = read_metrics(&p.dir().join("metrics.jsonl")).unwrap();
    let val_before = records.iter().filter(|r| r.split == Split::Val).count();
    assert!(p.run(&["train", "7"]).status.success());
    wait_metrics(&p, "an epoch after the resume", |_, v| v > val_before);
    let out = p.run(&["stop", "7", "--timeout", "60"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = p.log();
    assert!(log.contains("resuming from"), "{log}");
    assert_eq!(log.matches("predates the probe set").count(), 1, "{log}");
    let old = brainscope::data::split::train_val_split(crate::common::N_IMAGES, 3, 0.3);
    assert!(log.contains(&format!("{} train / {} val / 0 probe", old.train.len(), old.val.len())));
    let (loaded, _) = CheckpointStore::new(p.dir().join("checkpoints"))
        .load_latest::<CheckpointMeta>()
        .unwrap()
        .unwrap();
    assert!(loaded.manifest.meta.epoch > val_before);
    assert_eq!(loaded.manifest.meta.plan.probe, None, "it stays a pre-probe run");
    assert_eq!(loaded.manifest.meta.plan.n_val, old.val.len());
    let manifest = std::fs::read_to_string(loaded.dir.join("manifest.json")).unwrap();
    assert!(!manifest.contains("\"probe\""), "{manifest}");
    // Its reconstructions are still of its own validation rows.
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.dir().join(format!("recon/epoch-{val_before:03}/samples.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(index["split"], "val");
    let rows: Vec<u64> =
        index["samples"].as_array().unwrap().iter().map(|s| s["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, old.val[..2].iter().map(|&r| r as u64).collect::<Vec<_>>());
}

#[test]
fn encoding_a_file_that_is_not_a_png_says_why_once_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let vae = tmp.path().join("vae");
    let config: AutoencoderKLConfig = serde_json::from_value(serde_json::json!({
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
        "block_out_channels": [32, 32],
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 32,
        "sample_size": 16
    }))
    .unwrap();
    save_vae(&config.init(&brainscope::backend::default_device()), &config, &vae).unwrap();
    let image = tmp.path().join("notes.png");
    std::fs::write(&image, "these are notes, not a picture").unwrap();
    let latent = tmp.path().join("out.npy");
    let out = Command::new(BIN)
        .args(["encode", "--vae"])
        .arg(&vae)
        .arg(&image)
        .arg("-o")
        .arg(&latent)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(err.contains("cannot read image") && err.contains("notes.png"), "{err}");
    assert!(err.contains("expected a PNG or JPEG file"), "{err}");
    assert_eq!(err.matches("Invalid PNG signature").count(), 1, "said once: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!latent.exists());
}

/// The metrics lines without their wall-clock `t`, byte for byte.
fn rows_without_time(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            assert!(l.starts_with("{\"t\":"), "{l}");
            l[l.find(',').expect("more than t") + 1..].to_string()
        })
        .collect()
}

/// Every tensor (name -> raw bytes) of the newest checkpoint's model and optimizer files.
fn final_tensors(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let (loaded, skipped) = CheckpointStore::new(dir.join("checkpoints"))
        .load_latest::<CheckpointMeta>()
        .unwrap()
        .expect("a checkpoint");
    assert!(skipped.is_empty());
    let mut out = Vec::new();
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let bytes = std::fs::read(loaded.dir.join(file)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = st.names().into_iter().cloned().collect();
        names.sort();
        for n in names {
            let t = st.tensor(&n).unwrap();
            out.push((format!("{file}:{n}"), t.data().to_vec()));
        }
    }
    assert!(out.len() > 10, "model and optimizer tensors: {}", out.len());
    out
}

fn pid_of(p: &Project) -> u32 {
    status(p).pid.expect("pid recorded")
}

#[test]
fn a_run_killed_mid_epoch_and_resumed_equals_an_uninterrupted_one_byte_for_byte() {
    let p = Project::new(4, 4);
    let steps_per_epoch = n_train().div_ceil(4);
    let out = p.run(&["train", "7", "--foreground"]);
    assert!(out.status.success(), "{}", text(&out));
    let reference_rows = rows_without_time(&p.dir());
    let reference_tensors = final_tensors(&p.dir());
    assert_eq!(reference_rows.len(), 4 * steps_per_epoch + 4);

    // The same experiment again from scratch, detached, killed in the middle of epoch 1.
    let out = p.run(&["train", "7", "--restart"]);
    assert!(out.status.success(), "{}", text(&out));
    let pid = pid_of(&p);
    // The new trainer deletes the old metrics after it starts: wait for its first epoch's end
    // in status.json before reading them.
    let deadline = Instant::now() + Duration::from_secs(120);
    while status(&p).pid != Some(pid) || status(&p).epoch < 1 {
        assert!(Instant::now() < deadline, "no epoch end; log:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_metrics(&p, "epoch 1 steps", |train, _| train > steps_per_epoch + 2);
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_dead(pid);
    let s = status(&p);
    assert_eq!(s.state, RunState::Running, "killed before it finished (it records nothing)");
    let killed_at = rows_without_time(&p.dir()).len();
    assert!(killed_at < reference_rows.len(), "the kill came before the end");

    let out = p.run(&["train", "7", "--foreground"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resuming from"), "{}", text(&out));
    assert!(text(&out).contains("dropped "), "rows after the checkpoint cut: {}", text(&out));
    assert_eq!(status(&p).state, RunState::Done);
    let rows = rows_without_time(&p.dir());
    assert_eq!(rows.len(), reference_rows.len());
    for (i, (a, b)) in rows.iter().zip(&reference_rows).enumerate() {
        assert_eq!(a, b, "metrics row {i} differs (killed after {killed_at} rows)");
    }
    let tensors = final_tensors(&p.dir());
    assert_eq!(tensors.len(), reference_tensors.len());
    for ((name, a), (rname, b)) in tensors.iter().zip(&reference_tensors) {
        assert_eq!(name, rname);
        assert!(a == b, "tensor {name} differs after the resume");
    }
}
