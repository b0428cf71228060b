//! Creating experiments (`new`, `sweep`) and running them on Slurm (`submit`, `stop`, `status`)
//! through the real binary.
//!
//! The Slurm tests need a real cluster: CI starts a single-node one with
//! `scripts/slurm-local.sh start` before `cargo test`. Without `sbatch` on PATH or an answering
//! `sinfo` they print why and return. Every wait is bounded.

use crate::common::{BIN, Project};
use brainscope::experiments::config::ExperimentConfig;
use brainscope::experiments::create::read_sweeps;
use brainscope::experiments::metrics::read_metrics;
use brainscope::experiments::state::{Split, read_slurm_job, read_status};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Upper bound for a Slurm job to reach a state (the single node has 2 CPUs shared with the
/// other tests); never a timing assertion.
const SLURM_WAIT: Duration = Duration::from_secs(300);

fn experiment(root: &Path, id: u32) -> PathBuf {
    let dir = root.join("experiments").join(id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("experiment.toml"),
        format!(
            "# the source's own comment\nid = {id}\ndescription = \"source\"\n\
             [data]\nroot = \"demo-data\"\nroi_set = \"set3\"\nvae = \"weights/demo/vae\"\n\
             [train]\nseed = 3\nbatch_size = 16\nepochs = 4\n"
        ),
    )
    .unwrap();
    dir
}

fn brainscope(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).arg("--dir").arg(root.join("experiments")).output().unwrap()
}

fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

fn succeeds(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Names in the experiments folder, sorted.
fn entries(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn new_refuses_unknown_keys_bad_values_and_existing_ids_writing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), 92);
    let root = tmp.path();
    let new = |set: &[&str]| {
        let mut args = vec!["new", "200", "--from", "92"];
        for s in set {
            args.extend(["--set", s]);
        }
        brainscope(root, &args)
    };
    // The unknown key is named, with every valid key.
    fails_with(
        &new(&["train.sed=5"]),
        &["unknown key 'train.sed'", "train.seed", "data.roi_set", "model.hidden"],
    );
    fails_with(&new(&["id=5"]), &["unknown key 'id'"]);
    fails_with(&new(&["train.seed=abc"]), &["'abc'", "train.seed", "whole number"]);
    fails_with(&new(&["train.seed=-1"]), &["train.seed"]);
    fails_with(&new(&["train.max_lr=fast"]), &["train.max_lr", "number"]);
    fails_with(&new(&["data.roi_set=set9"]), &["data.roi_set", "set1, set2, set3, none", "FFA-1"]);
    fails_with(&new(&["data.mask_mode=blur"]), &["data.mask_mode", "zero", "select"]);
    fails_with(&new(&["train.device=tpu"]), &["train.device", "cpu, wgpu, wgpu:N, cuda or cuda:N"]);
    fails_with(&new(&["train.batch_size=0"]), &["train.batch_size", ">= 1"]);
    fails_with(&new(&["train.val_fraction=1.5"]), &["train.val_fraction", "between 0 and 1"]);
    fails_with(&new(&["model.upsampler_channels=[30]"]), &["model.upsampler_channels", "32"]);
    fails_with(&new(&["train.seed"]), &["KEY=VALUE"]);
    fails_with(&new(&["train.seed=1", "train.seed=2"]), &["train.seed", "more than once"]);
    fails_with(
        &brainscope(root, &["new", "92", "--from", "92"]),
        &["experiment 92 already exists"],
    );
    fails_with(&brainscope(root, &["new", "200", "--from", "999"]), &["no experiment '999'"]);
    assert_eq!(entries(root), ["92"], "a refused `new` writes nothing");
}

#[test]
fn new_copies_the_source_with_the_edits_and_status_lists_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = experiment(tmp.path(), 92);
    let out = brainscope(
        tmp.path(),
        &[
            "new",
            "200",
            "--from",
            "92",
            "--set",
            "train.seed=5",
            "--set",
            "data.roi_set=set1",
            "--set",
            "model.hidden=128",
            "--set",
            "train.max_lr=1e-3",
            "--set",
            "data.roi_set2=x",
        ],
    );
    fails_with(&out, &["data.roi_set2"]);
    let out = brainscope(
        tmp.path(),
        &[
            "new",
            "200",
            "--from",
            "92",
            "--set",
            "train.seed=5",
            "--set",
            "data.roi_set=set1",
            "--set",
            "model.hidden=128",
            "--set",
            "train.max_lr=1e-3",
            "--set",
            "model.upsampler_channels=[32, 64]",
        ],
    );
    assert!(succeeds(&out).contains("created experiment 200"));
    let source = ExperimentConfig::load(&src).unwrap();
    let copy = ExperimentConfig::load(&tmp.path().join("experiments/200")).unwrap();
    assert_eq!(copy.id, 200);
    assert_eq!((copy.train.seed, copy.data.roi_set.as_str()), (5, "set1"));
    assert_eq!((copy.model.hidden, copy.train.max_lr), (128, 1e-3));
    assert_eq!(copy.model.upsampler_channels, [32, 64]);
    // Everything else is the source's.
    assert_eq!(copy.data.root, source.data.root);
    assert_eq!(copy.data.vae, source.data.vae);
    assert_eq!(copy.train.batch_size, source.train.batch_size);
    assert_eq!(copy.train.epochs, source.train.epochs);
    assert_eq!(copy.model.blocks, source.model.blocks);
    assert!(copy.description.contains("from 92") && copy.description.contains("train.seed=5"));
    let text = std::fs::read_to_string(tmp.path().join("experiments/200/experiment.toml")).unwrap();
    assert!(
        text.starts_with("# Experiment 200: created by `brainscope new 200 --from 92`"),
        "{text}"
    );
    assert!(!text.contains("the source's own comment"));
    let v: Value =
        serde_json::from_str(&succeeds(&brainscope(tmp.path(), &["status", "--json"]))).unwrap();
    let ids: Vec<u64> =
        v["experiments"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [92, 200]);
    assert_eq!(v["experiments"][1]["state"], "idle");
    assert!(v["experiments"][1].get("slurm").is_none(), "never submitted: no slurm field");
    // A copy of a copy, with no edits.
    succeeds(&brainscope(tmp.path(), &["new", "201", "--from", "200"]));
    let copy2 = ExperimentConfig::load(&tmp.path().join("experiments/201")).unwrap();
    assert_eq!((copy2.train.seed, copy2.model.hidden), (5, 128));
    assert_eq!(copy2.description, "copy of 200");
}

#[test]
fn sweep_creates_every_combination_and_lists_them_in_sweep_toml() {
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), 92);
    let out = brainscope(
        tmp.path(),
        &[
            "sweep",
            "--from",
            "92",
            "--grid",
            "data.roi_set=set1,set2,set3",
            "--grid",
            "train.seed=1,2",
            "--first-id",
            "200",
        ],
    );
    let stdout = succeeds(&out);
    assert!(
        stdout.contains("submit: brainscope submit 200 201 202 203 204 205 --array"),
        "{stdout}"
    );
    let exp = tmp.path().join("experiments");
    let load = |id: u32| ExperimentConfig::load(&exp.join(id.to_string())).unwrap();
    // First axis slowest.
    let got: Vec<(String, u64)> =
        (200..206).map(|id| (load(id).data.roi_set, load(id).train.seed)).collect();
    let want: Vec<(String, u64)> =
        ["set1", "set2", "set3"].iter().flat_map(|r| [1, 2].map(|s| (r.to_string(), s))).collect();
    assert_eq!(got, want);
    let sweeps = read_sweeps(&exp).unwrap();
    assert_eq!(sweeps.sweep.len(), 1);
    assert_eq!(sweeps.sweep[0].from, 92);
    assert_eq!(sweeps.sweep[0].ids, (200..206).collect::<Vec<_>>());
    assert_eq!(sweeps.sweep[0].members[3].set["data.roi_set"], "set2");
    assert_eq!(sweeps.sweep[0].members[3].set["train.seed"], "2");
    // A second sweep is appended; the registry ignores sweep.toml.
    succeeds(&brainscope(
        tmp.path(),
        &["sweep", "--from", "200", "--grid", "train.batch_size=8,32", "--first-id", "300"],
    ));
    let sweeps = read_sweeps(&exp).unwrap();
    assert_eq!(
        sweeps.sweep.iter().map(|s| s.ids.clone()).collect::<Vec<_>>(),
        [(200..206).collect::<Vec<_>>(), vec![300, 301]]
    );
    assert_eq!(load(301).train.batch_size, 32);
    assert_eq!(load(301).data.roi_set, "set1");
    let v: Value =
        serde_json::from_str(&succeeds(&brainscope(tmp.path(), &["status", "--json"]))).unwrap();
    assert_eq!(v["experiments"].as_array().unwrap().len(), 9);
    assert_eq!(v["invalid"].as_array().unwrap().len(), 0, "{v}");
}

#[test]
fn sweep_that_would_overwrite_or_has_a_bad_value_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), 92);
    experiment(tmp.path(), 202);
    let before = entries(tmp.path());
    let sweep = |grid: &str, first: &str| {
        brainscope(tmp.path(), &["sweep", "--from", "92", "--grid", grid, "--first-id", first])
    };
    fails_with(
        &sweep("train.seed=1,2,3", "200"),
        &["overwrite", "202", "nothing was written", "203"],
    );
    // The last combination is invalid: the first two are not written either.
    fails_with(&sweep("train.seed=1,2,x", "300"), &["'x'", "train.seed"]);
    fails_with(&sweep("train.sede=1,2", "300"), &["unknown key 'train.sede'", "train.seed"]);
    fails_with(&sweep("train.seed", "300"), &["KEY=V1,V2"]);
    assert_eq!(entries(tmp.path()), before, "nothing written, not even sweep.toml");
}

#[test]
fn submit_without_sbatch_says_to_install_slurm_or_use_train() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), 92);
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["submit", "92", "--dir"])
        .arg(tmp.path().join("experiments"))
        .env("PATH", empty.path())
        .output()
        .unwrap();
    fails_with(&out, &["sbatch", "install the Slurm client tools", "brainscope train"]);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "only experiment.toml: no script, no job record"
    );
}

// ------------------------------------------------------------------------------------------
// With a real Slurm.
// ------------------------------------------------------------------------------------------

/// `None` when a Slurm cluster answers here, else why the test is skipped.
fn slurm_missing() -> Option<String> {
    if brainscope::cluster::slurm::find_on_path("sbatch").is_none() {
        return Some("sbatch is not on PATH (start one with scripts/slurm-local.sh start)".into());
    }
    match Command::new("sinfo").args(["--noheader", "--format=%t"]).output() {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => None,
        Ok(o) => {
            Some(format!("sinfo does not answer: {}", String::from_utf8_lossy(&o.stderr).trim()))
        }
        Err(e) => Some(format!("cannot run sinfo: {e}")),
    }
}

macro_rules! require_slurm {
    () => {
        if let Some(why) = slurm_missing() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

/// One experiment's entry in `status --json`.
fn entry(root: &Path, id: u32) -> Value {
    let v: Value =
        serde_json::from_str(&succeeds(&brainscope(root, &["status", "--json"]))).unwrap();
    v["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("experiment {id} not in status: {v}"))
}

fn job_id(dir: &Path) -> String {
    read_slurm_job(dir).unwrap().expect("slurm-job.json written").job_id
}

/// Everything that explains a Slurm run: the job, train.log, Slurm's output files.
fn diagnostics(root: &Path, id: u32) -> String {
    let dir = root.join("experiments").join(id.to_string());
    let mut s = String::new();
    if let Ok(Some(r)) = read_slurm_job(&dir) {
        let q = Command::new("scontrol").args(["show", "job", &r.job_id]).output().unwrap();
        s.push_str(&String::from_utf8_lossy(&q.stdout));
    }
    s.push_str("\ntrain.log:\n");
    s.push_str(&std::fs::read_to_string(dir.join("train.log")).unwrap_or_default());
    for folder in [dir.clone(), root.join("experiments/.slurm")] {
        for e in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".out") {
                s.push_str(&format!(
                    "\n{name}:\n{}",
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                ));
            }
        }
    }
    s
}

/// Poll `status --json` until experiment `id` satisfies `cond`; returns the entry and the
/// distinct states seen on the way. Fails after [`SLURM_WAIT`] with the diagnostics.
fn wait_for(
    root: &Path,
    id: u32,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> (Value, Vec<String>) {
    let start = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let e = entry(root, id);
        let state = e["state"].as_str().unwrap().to_string();
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        if cond(&e) {
            return (e, seen);
        }
        assert!(
            start.elapsed() < SLURM_WAIT,
            "experiment {id}: timed out waiting for {what}; states seen {seen:?}; last {e}\n{}",
            diagnostics(root, id)
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn state_is(want: &'static str) -> impl Fn(&Value) -> bool {
    move |e| e["state"] == want
}

fn val_epochs(dir: &Path) -> Vec<usize> {
    let (records, _) = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    records.iter().filter(|r| r.split == Split::Val).map(|r| r.epoch).collect()
}

#[test]
fn submitted_experiment_is_queued_then_running_then_done() {
    require_slurm!();
    let p = Project::new(4, 16);
    // Held, so `queued` is seen whatever the scheduler's speed; then released.
    let out = succeeds(&p.run(&["submit", "7", "--slurm", "--hold", "--time", "00:30:00"]));
    let job = job_id(&p.dir());
    assert!(out.contains(&format!("slurm job {job}")), "{out}");
    let script = std::fs::read_to_string(p.dir().join("slurm-job.sh")).unwrap();
    assert!(script.contains(&format!("exec '{BIN}' train \"$ID\" --foreground")), "{script}");
    assert!(!script.contains("--restart"));
    let (e, _) = wait_for(&p.root, 7, "queued", state_is("queued"));
    assert_eq!(e["slurm"]["job_id"], job.as_str());
    assert_eq!(e["slurm"]["state"], "pending");
    assert!(e["message"].as_str().unwrap().contains(&job), "{e}");
    // A second submission while the first waits is refused, naming the job.
    fails_with(&p.run(&["submit", "7"]), &["already has slurm job", &job]);
    let rel = Command::new("scontrol").args(["release", &job]).output().unwrap();
    assert!(rel.status.success(), "{}", String::from_utf8_lossy(&rel.stderr));
    wait_for(&p.root, 7, "running", state_is("running"));
    // Done once the trainer recorded it; the job itself completes just after.
    let (e, _) = wait_for(&p.root, 7, "done and the job completed", |e| {
        e["state"] == "done" && e["slurm"]["state"] != "running"
    });
    assert_eq!((e["epoch"].as_u64(), e["epochs"].as_u64()), (Some(4), Some(4)));
    assert_eq!(e["slurm"]["state"], "completed", "{e}");
    assert_eq!(val_epochs(&p.dir()), [0, 1, 2, 3]);
    assert!(p.log().contains(&format!("slurm job {job}")), "the trainer logs into train.log");
}

#[test]
fn scancel_mid_run_records_stopped_and_stop_cancels_a_queued_job() {
    require_slurm!();
    let p = Project::new(200, 8);
    succeeds(&p.run(&["submit", "7"]));
    let job = job_id(&p.dir());
    wait_for(&p.root, 7, "a running step", |e| {
        e["state"] == "running" && e["step"].as_u64() > Some(0)
    });
    let out = Command::new("scancel").arg(&job).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (e, _) = wait_for(&p.root, 7, "stopped", |e| e["state"] != "running");
    assert_eq!(e["state"], "stopped", "{e}\n{}", diagnostics(&p.root, 7));
    let s = read_status(&p.status_path()).unwrap().unwrap();
    assert_eq!(s.exit_code, Some(0), "the trainer recorded its own stop");
    // The job itself ends once the trainer has exited.
    let (e, _) = wait_for(&p.root, 7, "the job to end", |e| e["slurm"]["state"] != "running");
    assert_eq!(
        (e["state"].as_str(), e["slurm"]["state"].as_str()),
        (Some("stopped"), Some("cancelled"))
    );

    // `brainscope stop` on a queued job cancels it: stopped, not crashed.
    succeeds(&p.run(&["submit", "7", "--hold"]));
    let job2 = job_id(&p.dir());
    assert_ne!(job, job2);
    wait_for(&p.root, 7, "queued", state_is("queued"));
    succeeds(&p.run(&["stop", "7"]));
    let (e, _) = wait_for(&p.root, 7, "stopped", |e| e["state"] != "queued");
    assert_eq!(e["state"], "stopped", "{e}");
    assert!(e["message"].as_str().unwrap().contains("cancelled before it started"), "{e}");
    assert_eq!(e["slurm"]["state"], "cancelled");
    // A job id Slurm does not know is refused by `stop` as not running.
    fails_with(&p.run(&["stop", "7"]), &["not running"]);
}

#[test]
fn sigkilled_trainer_shows_crashed_and_a_resubmission_resumes_without_losing_an_epoch() {
    require_slurm!();
    let p = Project::new(6, 16);
    succeeds(&p.run(&["submit", "7"]));
    let job = job_id(&p.dir());
    wait_for(&p.root, 7, "two epochs", |e| {
        e["state"] == "running" && e["epoch"].as_u64() >= Some(2)
    });
    let pid = read_status(&p.status_path()).unwrap().unwrap().pid.unwrap();
    // SAFETY: kill(2) on the trainer pid the job recorded.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let (e, _) = wait_for(&p.root, 7, "crashed", |e| {
        e["state"] == "crashed" && e["slurm"]["state"] != "running"
    });
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(&job) && msg.contains("FAILED"), "the reason names the job: {e}");
    // Resubmitted: the trainer resumes from the last checkpoint.
    succeeds(&p.run(&["submit", "7"]));
    assert_ne!(job_id(&p.dir()), job);
    let (e, _) = wait_for(&p.root, 7, "done", state_is("done"));
    assert_eq!(e["epoch"].as_u64(), Some(6));
    assert!(p.log().contains("resuming from"), "{}", p.log());
    // Every epoch validated exactly once, in order: nothing lost, nothing repeated.
    assert_eq!(val_epochs(&p.dir()), (0..6).collect::<Vec<_>>());
}

#[test]
fn a_sweep_of_three_submitted_as_an_array_runs_to_completion() {
    require_slurm!();
    let p = Project::new(2, 16);
    succeeds(&p.run(&["sweep", "--from", "7", "--grid", "train.seed=1,2,3", "--first-id", "30"]));
    let out = succeeds(&p.run(&["submit", "30", "31", "32", "--array", "--bin", BIN]));
    let records: Vec<_> = (30..33)
        .map(|id| read_slurm_job(&p.root.join(format!("experiments/{id}"))).unwrap().unwrap())
        .collect();
    let array = records[0].array_job_id.clone().expect("an array job");
    for (task, r) in records.iter().enumerate() {
        assert_eq!(r.array_job_id.as_deref(), Some(array.as_str()));
        assert_eq!(r.array_task, Some(task as u32));
        assert_eq!(r.job_id, format!("{array}_{task}"));
        assert!(out.contains(&r.job_id), "{out}");
    }
    assert_eq!(records[0].script, records[2].script, "one script for the whole array");
    for id in 30..33 {
        let (e, _) = wait_for(&p.root, id, "done", state_is("done"));
        assert_eq!(e["epoch"].as_u64(), Some(2), "{e}");
        assert_eq!(e["config"]["train"]["seed"].as_u64(), Some(u64::from(id - 29)));
    }
    // Slurm's refusal is shown, and nothing is written for it.
    let dir = p.dir();
    fails_with(
        &p.run(&["submit", "7", "--partition", "no-such-partition"]),
        &["sbatch", "partition"],
    );
    assert!(!dir.join("slurm-job.sh").exists() && !dir.join("slurm-job.json").exists());
}
