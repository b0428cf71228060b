//! Run control through the real binary, against fake trainers (no model needed): status
//! listing and crash detection, double-start refusal, stop with SIGTERM and with SIGKILL after
//! a timeout, a stop that cannot record itself failing loudly, and the typed errors of the
//! library start the console calls.

use crate::common::{COMMAND_LIMIT, output_within};
use brainscope::experiments::launch::{LaunchError, LaunchOptions, StartError, start};
use brainscope::experiments::lock::RunLock;
use brainscope::experiments::process::{hostname, pid_start_time};
use brainscope::experiments::registry::RegistryError;
use brainscope::experiments::state::{RunState, RunStatus, read_status, write_status};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_brainscope");

fn experiment(root: &Path, id: u32) -> PathBuf {
    let dir = root.join("experiments").join(id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("experiment.toml"),
        format!(
            "id = {id}\n[data]\nroot = \"demo-data\"\nroi_set = \"set3\"\nvae = \"weights/demo/vae\"\n\
             [train]\nseed = 3\nbatch_size = 16\nepochs = 4\n"
        ),
    )
    .unwrap();
    dir
}

fn brainscope(root: &Path, args: &[&str]) -> Output {
    output_within(
        Command::new(BIN).args(args).arg("--dir").arg(root.join("experiments")),
        COMMAND_LIMIT,
    )
}

/// A shell that ignores SIGTERM (a trainer that will not stop), once its trap is in place.
fn stubborn_trainer() -> std::process::Child {
    let child = Command::new("sh")
        .args(["-c", "trap '' TERM; while :; do sleep 0.1; done"])
        .spawn()
        .unwrap();
    // Give the shell time to install its trap before the stop (bounded wait on /proc).
    let pid = child.id();
    for _ in 0..100 {
        let sig = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ignored = sig
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
        if ignored.is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

fn fake_status(pid: u32, state: RunState) -> RunStatus {
    RunStatus {
        state,
        pid: Some(pid),
        pid_start: pid_start_time(pid),
        host: hostname(),
        started_ms: Some(1),
        ended_ms: None,
        exit_code: None,
        epoch: 1,
        epochs: 4,
        step: 10,
        total_steps: 40,
        message: String::new(),
        device: None,
    }
}

fn status_json(root: &Path) -> serde_json::Value {
    let out = brainscope(root, &["status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_lists_idle_experiments_and_reports_invalid_folders() {
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), 100);
    experiment(tmp.path(), 92);
    std::fs::create_dir_all(tmp.path().join("experiments/notes")).unwrap();
    let v = status_json(tmp.path());
    let ids: Vec<u64> =
        v["experiments"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [92, 100]);
    assert_eq!(v["experiments"][0]["state"], "idle");
    assert_eq!(v["experiments"][0]["epochs"], 4);
    assert!(v["invalid"][0]["dir"].as_str().unwrap().ends_with("notes"));

    let out = brainscope(tmp.path(), &["status"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("92") && table.contains("idle") && table.contains("set3"), "{table}");
}

#[test]
fn dead_trainer_without_exit_record_shows_as_crashed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), 92);
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let mut status = fake_status(pid, RunState::Running);
    status.pid_start = Some(1); // whatever it was, the pid no longer runs it
    child.wait().unwrap();
    write_status(&dir.join("status.json"), &status).unwrap();
    let v = status_json(tmp.path());
    assert_eq!(v["experiments"][0]["state"], "crashed");
    assert!(v["experiments"][0]["message"].as_str().unwrap().contains("without an exit record"));
}

#[test]
fn second_trainer_is_refused_while_the_lock_is_held() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), 92);
    let _lock = RunLock::acquire(&dir.join("lock")).unwrap();
    for args in [&["train", "92"][..], &["train", "92", "--foreground"][..]] {
        let out = brainscope(tmp.path(), args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("already"), "{args:?}: {err}");
    }
    assert!(!dir.join("status.json").exists(), "a refused start writes nothing");
}

#[test]
fn stop_refuses_an_idle_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    experiment(tmp.path(), 92);
    let out = brainscope(tmp.path(), &["stop", "92"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn stop_sends_sigterm_and_records_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), 92);
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    write_status(&dir.join("status.json"), &fake_status(child.id(), RunState::Running)).unwrap();
    assert_eq!(status_json(tmp.path())["experiments"][0]["state"], "running");
    // Reap the child as soon as it dies so it does not linger as a zombie.
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    let out = brainscope(tmp.path(), &["stop", "92", "--timeout", "20"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exit = waiter.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(exit.signal(), Some(libc::SIGTERM));
    assert_eq!(read_status(&dir.join("status.json")).unwrap().unwrap().state, RunState::Stopped);
}

#[test]
fn stop_kills_a_trainer_that_ignores_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), 92);
    let mut child = stubborn_trainer();
    let pid = child.id();
    write_status(&dir.join("status.json"), &fake_status(pid, RunState::Running)).unwrap();
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    let out = brainscope(tmp.path(), &["stop", "92", "--timeout", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("killed"));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(waiter.join().unwrap().signal(), Some(libc::SIGKILL));
    let s = read_status(&dir.join("status.json")).unwrap().unwrap();
    assert_eq!(s.state, RunState::Stopped);
    assert!(s.message.contains("SIGKILL"));
}

#[test]
fn a_trainer_that_fails_records_crashed_with_the_reason_and_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), 92);
    // The data root is not a dataset (and not the demo folder, so nothing is generated).
    std::fs::write(
        dir.join("experiment.toml"),
        std::fs::read_to_string(dir.join("experiment.toml"))
            .unwrap()
            .replace("demo-data", "no-such-data"),
    )
    .unwrap();
    let out = brainscope(tmp.path(), &["train", "92", "--foreground"]);
    assert!(!out.status.success());
    let s = read_status(&dir.join("status.json")).unwrap().unwrap();
    assert_eq!((s.state, s.exit_code), (RunState::Crashed, Some(1)));
    assert!(s.message.contains("no-such-data"), "{}", s.message);
    // Detached: the trainer starts, fails, and records why; its log has the error.
    let out = brainscope(tmp.path(), &["train", "92"]);
    let pid = read_status(&dir.join("status.json")).unwrap().unwrap().pid.unwrap();
    assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("no-such-data"));
    for _ in 0..200 {
        let s = read_status(&dir.join("status.json")).unwrap().unwrap();
        if s.pid == Some(pid) && s.state == RunState::Crashed {
            assert!(
                std::fs::read_to_string(dir.join("train.log")).unwrap().contains("no-such-data")
            );
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the detached trainer never recorded its crash");
}

#[test]
fn stop_fails_loudly_when_it_cannot_record_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path(), 92);
    let mut child = stubborn_trainer();
    let running = fake_status(child.id(), RunState::Running);
    write_status(&dir.join("status.json"), &running).unwrap();
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    let stop = Command::new(BIN)
        .args(["stop", "92", "--timeout", "1", "--dir"])
        .arg(tmp.path().join("experiments"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // status.json is replaced through `.status.json.tmp-<pid of the writer>` (write_atomic): a
    // folder in that place makes the write fail, even for root, and the stop spends its 1 s
    // timeout before writing.
    std::fs::create_dir(dir.join(format!(".status.json.tmp-{}", stop.id()))).unwrap();
    let out = crate::common::wait_output_within(stop, COMMAND_LIMIT);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(waiter.join().unwrap().signal(), Some(libc::SIGKILL), "the trainer was killed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a stop that recorded nothing succeeded: {err}");
    assert!(err.contains(&dir.join("status.json").display().to_string()), "{err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "no success line");
    // Nothing was written: the record is still the trainer's, which now shows as crashed.
    assert_eq!(read_status(&dir.join("status.json")).unwrap().unwrap(), running);
    assert_eq!(status_json(tmp.path())["experiments"][0]["state"], "crashed");
}

#[test]
fn library_start_refuses_with_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let experiments = tmp.path().join("experiments");
    let dir = experiment(tmp.path(), 92);
    let bin = Path::new(BIN);
    let opts = LaunchOptions::default();
    assert!(matches!(
        start(bin, &experiments, "93", &opts),
        Err(StartError::Registry(RegistryError::NotFound { .. }))
    ));
    let mut done = fake_status(std::process::id(), RunState::Done);
    done.exit_code = Some(0);
    write_status(&dir.join("status.json"), &done).unwrap();
    assert!(matches!(start(bin, &experiments, "92", &opts), Err(StartError::AlreadyDone { .. })));
    let lock = RunLock::acquire(&dir.join("lock")).unwrap();
    let restart = LaunchOptions { restart: true, ..LaunchOptions::default() };
    assert!(matches!(
        start(bin, &experiments, "92", &restart),
        Err(StartError::Launch(LaunchError::AlreadyRunning { .. }))
    ));
    drop(lock);
    let bad_device =
        LaunchOptions { device: Some("tpu".into()), restart: true, ..LaunchOptions::default() };
    let err = start(bin, &experiments, "92", &bad_device).unwrap_err();
    assert!(matches!(err, StartError::Device(_)), "{err:?}");
    assert!(!dir.join("train.log").exists(), "a refused start launches nothing");
}
