//! The GPU test group, part 3: the tiny experiment trained on `--device wgpu` through the real
//! binary — a detached run stopped after its first validation, then resumed in the foreground
//! to the end of its two epochs, with a continuous history and finite losses.

use std::time::{Duration, Instant};

use crate::common::Project;
use crate::gpu_parity::{gpu_name, gpu_or_skip};
use brainscope::experiments::metrics::read_metrics;
use brainscope::experiments::state::{MetricRecord, RunState, Split, read_status};

fn metrics(p: &Project) -> Vec<MetricRecord> {
    read_metrics(&p.dir().join("metrics.jsonl")).map(|(r, _)| r).unwrap_or_default()
}

#[test]
fn gpu_train_two_epochs_stop_and_resume_on_wgpu() {
    let Some(_) = gpu_or_skip("gpu_train_two_epochs_stop_and_resume_on_wgpu") else { return };
    let p = Project::new(2, 8);
    let start = Instant::now();
    let device = gpu_name();
    let out = p.run(&["train", "7", "--device", &device]);
    assert!(out.status.success(), "launch: {}", String::from_utf8_lossy(&out.stderr));
    // Shader compilation on lavapipe makes the first epoch slow: a generous bound.
    let deadline = start + Duration::from_secs(600);
    while !metrics(&p).iter().any(|r| r.split == Split::Val) {
        let state = read_status(&p.status_path()).ok().flatten().map(|s| s.state);
        assert!(
            !matches!(state, Some(RunState::Crashed | RunState::Done)),
            "run ended before its first validation ({state:?}); log:\n{}",
            p.log()
        );
        assert!(Instant::now() < deadline, "no validation within 600 s; log:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let first = start.elapsed();
    let out = p.run(&["stop", "7", "--timeout", "120"]);
    assert!(out.status.success(), "stop: {}", String::from_utf8_lossy(&out.stderr));
    let status = read_status(&p.status_path()).unwrap().unwrap();
    if status.state == RunState::Done {
        // A fast GPU finished epoch 2 before the stop arrived: nothing left to resume.
        eprintln!("note: the run finished before the stop ({first:?}); resume not exercised");
        return;
    }
    assert_eq!(status.state, RunState::Stopped, "log:\n{}", p.log());

    let resumed = Instant::now();
    let out = p.run(&["train", "7", "--foreground", "--device", &device]);
    // The foreground trainer writes its log lines to stdout, not train.log.
    let log = format!(
        "{}{}{}",
        p.log(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "resume: {log}");
    println!("{device}: first epoch + stop {first:?}, resume to the end {:?}", resumed.elapsed());
    let status = read_status(&p.status_path()).unwrap().unwrap();
    assert_eq!((status.state, status.epoch), (RunState::Done, 2));
    let records = metrics(&p);
    let steps: Vec<u64> =
        records.iter().filter(|r| r.split == Split::Train).map(|r| r.step).collect();
    assert_eq!(steps, (1..=steps.len() as u64).collect::<Vec<_>>(), "train steps continuous");
    let vals: Vec<&MetricRecord> = records.iter().filter(|r| r.split == Split::Val).collect();
    assert_eq!(vals.iter().map(|r| r.epoch).collect::<Vec<_>>(), [0, 1], "one val per epoch");
    for r in &records {
        let v = r.loss.or(r.l1).unwrap_or(0.0);
        assert!(v.is_finite(), "non-finite metric on {device}: {r:?}");
    }
    assert!(log.contains("resuming from"), "the second run resumed; log:\n{log}");
}
