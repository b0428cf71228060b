//! Running experiments on a cluster scheduler (Slurm): submit, reconcile the displayed state
//! with the scheduler, stop.
//!
//! - [`slurm`]: the Slurm tools (`sbatch`, `squeue`/`sacct`/`scontrol`, `scancel`) and the batch
//!   script.
//! - [`submit`]: write the batch script(s), submit, record `slurm-job.json`
//!   ([`SlurmJobRecord`]) in each experiment folder.
//! - [`reconcile`]: the registry's displayed state for an experiment with a job record
//!   (`queued` while the job waits; `crashed` with Slurm's reason when the job ended without the
//!   trainer recording an exit).
//! - [`stop`]: `brainscope stop` on a Slurm run (`scancel --signal=TERM`, then `scancel`).
//!
//! The trainer's own status.json stays the source of truth once it has started: Slurm is only
//! asked about what the trainer could not record.

pub mod slurm;

use crate::experiments::control::StopOutcome;
use crate::experiments::launch::{LaunchError, ensure_not_running};
use crate::experiments::process::{hostname, now_ms};
use crate::experiments::registry::{ExperimentSummary, RegistryError, effective_state, find};
use crate::experiments::state::{
    RunPaths, RunState, RunStatus, SlurmJobRecord, read_slurm_job, read_status, write_atomic,
    write_slurm_job, write_status,
};
use crate::train::trainer::{TrainError, check_startable};
use slurm::{BatchScript, JobInfo, JobOptions, JobState, Slurm, SlurmError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where an experiment's latest run lives, for `status --json` and the console.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlurmView {
    /// Slurm job id (`1234` or `1234_5`).
    pub job_id: String,
    /// Reduced job state; `None` when Slurm could not be asked or no longer knows the job.
    pub state: Option<JobState>,
    /// Slurm's state name and reason as it printed them (empty when unknown).
    pub slurm_state: String,
    /// Slurm's reason (`Priority`, `Resources`, ...).
    pub reason: String,
    /// Node(s) the job runs on.
    pub nodes: String,
}

impl SlurmView {
    /// `slurm:1234` (the console's location column).
    pub fn location(&self) -> String {
        format!("slurm:{}", self.job_id)
    }
}

/// A trainer status written by the job's trainer (started after submission; 2 s of slack for
/// clocks), not by an earlier run.
fn started_after(status: Option<&RunStatus>, record: &SlurmJobRecord) -> bool {
    // A run that ended before this job was submitted is an earlier run, however close in time;
    // otherwise allow 2 s of clock difference between the submit host and the node.
    let ended_before = status.and_then(|s| s.ended_ms).is_some_and(|t| t < record.submitted_ms);
    !ended_before
        && status.and_then(|s| s.started_ms).is_some_and(|t| t + 2_000 >= record.submitted_ms)
}

/// What Slurm answered about one job.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// Slurm knows the job.
    Known(&'a JobInfo),
    /// Slurm answered but does not know the job (purged, or never existed on this cluster).
    Unknown,
    /// Slurm could not be asked (no squeue here, slurmctld down).
    Unreachable(&'a str),
}

/// The displayed state of an experiment with a Slurm job record, from the trainer's status
/// (`current` is what [`effective_state`] made of it) and Slurm's answer.
pub fn reconcile(
    status: Option<&RunStatus>,
    record: &SlurmJobRecord,
    answer: Answer<'_>,
    current: (RunState, String),
) -> (RunState, String) {
    let job = &record.job_id;
    let started = started_after(status, record);
    let recorded_exit = status.is_some_and(|s| s.state != RunState::Running);
    // A trainer alive on this machine is running whatever Slurm says (a local run, or the job's
    // trainer while its job is completing).
    let local_alive = current.0 == RunState::Running
        && status.is_some_and(|s| s.host.is_empty() || s.host == hostname());
    match answer {
        Answer::Known(info) => {
            let why = describe(info);
            match info.state {
                JobState::Pending if local_alive => current,
                JobState::Pending => (RunState::Queued, format!("slurm job {job} {why}")),
                JobState::Running if started => current,
                JobState::Running => (
                    RunState::Running,
                    format!("slurm job {job} started on {}; trainer starting", info.nodes),
                ),
                // Ended: the trainer's exit record wins when it wrote one.
                _ if started && (recorded_exit || local_alive) => current,
                _ if started => (
                    RunState::Crashed,
                    format!("slurm job {job} ended {why} without the trainer recording an exit"),
                ),
                JobState::Cancelled if record.cancelled_ms.is_some() => {
                    (RunState::Stopped, format!("slurm job {job} cancelled before it started"))
                }
                _ => (
                    RunState::Crashed,
                    format!(
                        "slurm job {job} ended {why} before the trainer started; see its output in {}",
                        record.script.parent().unwrap_or(Path::new(".")).display()
                    ),
                ),
            }
        }
        Answer::Unknown if started && (recorded_exit || local_alive) => current,
        Answer::Unknown if started => (
            RunState::Crashed,
            format!("slurm no longer knows job {job} and the trainer recorded no exit"),
        ),
        Answer::Unknown if record.cancelled_ms.is_some() => {
            (RunState::Stopped, format!("slurm job {job} cancelled before it started"))
        }
        Answer::Unknown => (
            RunState::Crashed,
            format!("slurm no longer knows job {job} and its trainer never started"),
        ),
        Answer::Unreachable(_) if started => current,
        Answer::Unreachable(err) => {
            (RunState::Queued, format!("slurm job {job} (state unknown: {err})"))
        }
    }
}

/// `PENDING (Priority)`, `FAILED (NonZeroExitCode, exit 1:0)`.
fn describe(info: &JobInfo) -> String {
    let mut extra: Vec<String> = Vec::new();
    if !info.reason.is_empty() {
        extra.push(info.reason.clone());
    }
    if !info.exit_code.is_empty() && info.exit_code != "0:0" {
        extra.push(format!("exit {}", info.exit_code));
    }
    if extra.is_empty() {
        info.slurm_state.clone()
    } else {
        format!("{} ({})", info.slurm_state, extra.join(", "))
    }
}

/// Apply [`reconcile`] to every experiment of a scan that has a Slurm job record, asking Slurm
/// once for all of them. Experiments without a record are untouched.
pub fn reconcile_scan(experiments: &mut [ExperimentSummary]) {
    let records: Vec<Option<SlurmJobRecord>> =
        experiments.iter().map(|e| read_slurm_job(&e.dir).ok().flatten()).collect();
    let ids: Vec<String> = records.iter().flatten().map(|r| r.job_id.clone()).collect();
    if ids.is_empty() {
        return;
    }
    let answers: Result<BTreeMap<String, JobInfo>, String> = match Slurm::detect() {
        Ok(slurm) => slurm.query(&ids).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    for (e, record) in experiments.iter_mut().zip(records) {
        let Some(record) = record else { continue };
        let answer = match &answers {
            Ok(map) => map.get(&record.job_id).map_or(Answer::Unknown, Answer::Known),
            Err(err) => Answer::Unreachable(err),
        };
        let current = (e.run.state, e.run.message.clone());
        let (state, message) = reconcile(e.run.status.as_ref(), &record, answer, current);
        e.run.state = state;
        e.run.message = message;
        let info = match answer {
            Answer::Known(i) => Some(i),
            _ => None,
        };
        e.run.slurm = Some(SlurmView {
            job_id: record.job_id.clone(),
            state: info.map(|i| i.state),
            slurm_state: info.map(|i| i.slurm_state.clone()).unwrap_or_default(),
            reason: info.map(|i| i.reason.clone()).unwrap_or_default(),
            nodes: info.map(|i| i.nodes.clone()).unwrap_or_default(),
        });
        if state != RunState::Running {
            e.run.eta_secs = None;
        }
    }
}

/// The last Slurm answer, shared by the console's experiments: refreshed in the background at
/// most every [`CONSOLE_TTL`], so the console never waits on Slurm (an unreachable slurmctld
/// can take many seconds to time out).
#[derive(Default)]
struct ConsoleCache {
    ids: Vec<String>,
    asked: Option<Instant>,
    answer: Option<Result<BTreeMap<String, JobInfo>, String>>,
    asking: bool,
}

static CONSOLE_CACHE: std::sync::Mutex<Option<ConsoleCache>> = std::sync::Mutex::new(None);

/// How old the console's Slurm answer may get before it is asked again.
pub const CONSOLE_TTL: Duration = Duration::from_secs(2);

/// The console's displayed state and note for an experiment folder: [`reconcile`] with the
/// cached Slurm answer when the experiment has a job record (the note then starts with where
/// the run lives, `[slurm:1234]`); `current` unchanged otherwise. Never blocks on Slurm.
pub fn console_state(
    dir: &Path,
    status: Option<&RunStatus>,
    current: (RunState, String),
) -> (RunState, String) {
    let Ok(Some(record)) = read_slurm_job(dir) else { return current };
    let mut guard = CONSOLE_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(ConsoleCache::default);
    let known = cache.ids.contains(&record.job_id);
    if !known {
        cache.ids.push(record.job_id.clone());
    }
    let stale = !known || cache.asked.is_none_or(|t| t.elapsed() >= CONSOLE_TTL);
    if stale && !cache.asking {
        cache.asking = true;
        cache.asked = Some(Instant::now());
        let ids = cache.ids.clone();
        std::thread::spawn(move || {
            let answer = Slurm::detect()
                .map_err(|e| e.to_string())
                .and_then(|s| s.query(&ids).map_err(|e| e.to_string()));
            let mut guard = CONSOLE_CACHE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = guard.as_mut() {
                c.answer = Some(answer);
                c.asking = false;
            }
        });
    }
    let (state, message) = match &cache.answer {
        None => reconcile(status, &record, Answer::Unreachable("asking Slurm"), current),
        Some(Ok(map)) => {
            let answer = map.get(&record.job_id).map_or(Answer::Unknown, Answer::Known);
            reconcile(status, &record, answer, current)
        }
        Some(Err(e)) => reconcile(status, &record, Answer::Unreachable(e), current),
    };
    (state, format!("[slurm:{}] {message}", record.job_id))
}

/// Submitting failed; nothing was submitted (and no job record written) unless the message says
/// which jobs were.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Slurm tools missing, or Slurm refused (its message).
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    /// An experiment is missing or invalid.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A trainer runs on the experiment here.
    #[error(transparent)]
    Running(#[from] LaunchError),
    /// The experiment cannot start (already done, unreadable status).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Not a device name.
    #[error(transparent)]
    Device(#[from] crate::backend::BackendError),
    /// A job of the experiment is still pending or running.
    #[error(
        "experiment {id} already has slurm job {job_id} ({state}); stop it first with `brainscope stop {id}`"
    )]
    ActiveJob { id: u32, job_id: String, state: &'static str },
    /// An id given twice.
    #[error("experiment {id} is given twice")]
    Duplicate { id: u32 },
    /// The binary the compute nodes should run.
    #[error(
        "{path} is not an executable file; pass --bin with the brainscope binary the compute nodes can run (on the shared filesystem)"
    )]
    BadBin { path: PathBuf },
    /// Writing the batch script or the job record failed.
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A later job of several was refused after earlier ones were submitted.
    #[error("submitted {done} before Slurm refused experiment {id}")]
    Partial {
        done: String,
        id: u32,
        #[source]
        source: SlurmError,
    },
}

/// What `brainscope submit` asks for.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// The experiments folder (made absolute).
    pub experiments_dir: PathBuf,
    /// Experiment ids.
    pub ids: Vec<String>,
    /// The binary the job runs (absolute).
    pub exe: PathBuf,
    /// One array job for all ids instead of one job each.
    pub array: bool,
    /// Resources.
    pub options: JobOptions,
}

/// One submitted experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Experiment id.
    pub id: u32,
    /// Its Slurm job id (`1234` or `1234_5`).
    pub job_id: String,
    /// The batch script.
    pub script: PathBuf,
}

/// Folder for array-job scripts and Slurm's own output of array tasks (hidden, so the
/// registry does not list it).
pub const ARRAY_DIR: &str = ".slurm";

/// File name of a single experiment's batch script inside its folder.
pub const SCRIPT_FILE: &str = "slurm-job.sh";

/// Check every experiment, write the batch script(s), have Slurm check them (`sbatch
/// --test-only`), submit, and record the job of each experiment.
pub fn submit(slurm: &Slurm, req: &SubmitRequest) -> Result<Vec<Submitted>, SubmitError> {
    use std::os::unix::fs::PermissionsExt;
    let exec_ok = std::fs::metadata(&req.exe)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if !exec_ok || !req.exe.is_absolute() {
        return Err(SubmitError::BadBin { path: req.exe.clone() });
    }
    let exp = &req.experiments_dir;
    let mut members: Vec<(u32, PathBuf, String)> = Vec::new();
    for id in &req.ids {
        let (dir, config) = find(exp, id)?;
        if members.iter().any(|(i, _, _)| *i == config.id) {
            return Err(SubmitError::Duplicate { id: config.id });
        }
        ensure_not_running(&dir)?;
        check_startable(&dir, false)?;
        let device = req.options.device.clone().unwrap_or_else(|| config.train.device.clone());
        // By name only: the login node need not have the compute nodes' GPUs.
        crate::backend::parse_device_name(&device).map_err(SubmitError::Device)?;
        members.push((config.id, dir, device));
    }
    // Refuse ids whose previous job still waits or runs.
    let records: Vec<(u32, SlurmJobRecord)> = members
        .iter()
        .filter_map(|(id, dir, _)| read_slurm_job(dir).ok().flatten().map(|r| (*id, r)))
        .collect();
    if !records.is_empty() {
        let ids: Vec<String> = records.iter().map(|(_, r)| r.job_id.clone()).collect();
        let known = slurm.query(&ids)?;
        for (id, r) in &records {
            if let Some(info) = known.get(&r.job_id).filter(|i| i.state.is_active()) {
                return Err(SubmitError::ActiveJob {
                    id: *id,
                    job_id: r.job_id.clone(),
                    state: info.state.name(),
                });
            }
        }
    }
    let script_for = |ids: Vec<u32>, devices: Vec<String>, output: PathBuf| BatchScript {
        ids,
        devices,
        experiments_dir: exp.clone(),
        exe: req.exe.clone(),
        output,
        options: req.options.clone(),
    };
    // (script path, script, member indices)
    let mut jobs: Vec<(PathBuf, BatchScript, Vec<usize>)> = Vec::new();
    if req.array && members.len() > 1 {
        let ids: Vec<u32> = members.iter().map(|m| m.0).collect();
        let dir = exp.join(ARRAY_DIR);
        let path = dir.join(format!("array-{}-{}.sh", ids[0], ids[ids.len() - 1]));
        let output = dir.join("array-%A_%a.out");
        let devices = members.iter().map(|m| m.2.clone()).collect();
        jobs.push((path, script_for(ids, devices, output), (0..members.len()).collect()));
    } else {
        for (i, (id, dir, device)) in members.iter().enumerate() {
            let script = script_for(vec![*id], vec![device.clone()], dir.join("slurm-%j.out"));
            jobs.push((dir.join(SCRIPT_FILE), script, vec![i]));
        }
    }
    let mut written = Vec::new();
    let cleanup = |written: &[PathBuf]| {
        for p in written {
            let _ = std::fs::remove_file(p);
        }
    };
    for (path, script, _) in &jobs {
        let io = |source| SubmitError::Io { path: path.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        if let Err(e) = write_atomic(path, script.render().as_bytes()) {
            cleanup(&written);
            return Err(io(e));
        }
        written.push(path.clone());
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    for (path, _, _) in &jobs {
        if let Err(e) = slurm.test_only(path) {
            cleanup(&written);
            return Err(e.into());
        }
    }
    let mut submitted: Vec<Submitted> = Vec::new();
    for (path, script, idx) in &jobs {
        let submitted_ms = now_ms();
        let job_id = match slurm.submit(path) {
            Ok(j) => j,
            Err(source) if submitted.is_empty() => {
                cleanup(&written);
                return Err(source.into());
            }
            Err(source) => {
                let done: Vec<String> =
                    submitted.iter().map(|s| format!("{} as job {}", s.id, s.job_id)).collect();
                return Err(SubmitError::Partial {
                    done: done.join(", "),
                    id: script.ids[0],
                    source,
                });
            }
        };
        for (task, &i) in idx.iter().enumerate() {
            let (id, dir, _) = &members[i];
            let (member_job, array_job_id, array_task) = if script.is_array() {
                (format!("{job_id}_{task}"), Some(job_id.clone()), Some(task as u32))
            } else {
                (job_id.clone(), None, None)
            };
            let record = SlurmJobRecord {
                job_id: member_job.clone(),
                array_job_id,
                array_task,
                partition: req.options.partition.clone(),
                submitted_ms,
                submit_host: hostname(),
                script: path.clone(),
                cancelled_ms: None,
            };
            write_slurm_job(dir, &record)
                .map_err(|source| SubmitError::Io { path: dir.clone(), source })?;
            submitted.push(Submitted { id: *id, job_id: member_job, script: path.clone() });
        }
    }
    Ok(submitted)
}

/// `brainscope stop` on an experiment whose Slurm job is pending or running: a pending job is
/// cancelled; a running one gets SIGTERM through `scancel --signal=TERM` (the trainer finishes
/// its step, checkpoints and records `stopped`), then `scancel` after `timeout`. `Ok(None)`
/// when the experiment has no active Slurm job (the caller stops a local trainer).
pub fn stop(dir: &Path, timeout: Duration) -> Result<Option<StopOutcome>, SlurmError> {
    let Ok(Some(mut record)) = read_slurm_job(dir) else { return Ok(None) };
    let Ok(slurm) = Slurm::detect() else { return Ok(None) };
    let job = record.job_id.clone();
    let state = |slurm: &Slurm| -> Result<Option<JobState>, SlurmError> {
        Ok(slurm.query(std::slice::from_ref(&job))?.get(&job).map(|i| i.state))
    };
    let Some(now) = state(&slurm)?.filter(|s| s.is_active()) else { return Ok(None) };
    record.cancelled_ms = Some(now_ms());
    let _ = write_slurm_job(dir, &record);
    if now == JobState::Pending {
        slurm.cancel(&job, None)?;
        return Ok(Some(StopOutcome::Graceful(RunState::Stopped)));
    }
    let paths = RunPaths::new(dir);
    slurm.cancel(&job, Some("TERM"))?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let ended = !state(&slurm)?.is_some_and(|s| s.is_active());
        let status = read_status(&paths.status()).ok().flatten();
        let recorded = status.as_ref().filter(|s| s.state != RunState::Running);
        if ended || recorded.is_some() {
            // Let the job finish after the trainer's exit record (bounded).
            let settle = Instant::now() + Duration::from_secs(10);
            while !ended && Instant::now() < settle && state(&slurm)?.is_some_and(|s| s.is_active())
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            let (shown, _) =
                effective_state(status.as_ref(), &crate::experiments::registry::Probe::system());
            return Ok(Some(StopOutcome::Graceful(match shown {
                RunState::Running | RunState::Queued | RunState::Idle => RunState::Stopped,
                other => other,
            })));
        }
    }
    slurm.cancel(&job, None)?;
    if let Ok(Some(mut s)) = read_status(&paths.status())
        && s.state == RunState::Running
    {
        s.state = RunState::Stopped;
        s.ended_ms = Some(now_ms());
        s.message = format!(
            "slurm job {job} cancelled (scancel) after {} s without exiting on SIGTERM",
            timeout.as_secs()
        );
        let _ = write_status(&paths.status(), &s);
    }
    Ok(Some(StopOutcome::Killed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SlurmJobRecord {
        SlurmJobRecord {
            job_id: "12".into(),
            array_job_id: None,
            array_task: None,
            partition: None,
            submitted_ms: 10_000,
            submit_host: "login".into(),
            script: "/p/experiments/7/slurm-job.sh".into(),
            cancelled_ms: None,
        }
    }

    fn status(state: RunState, started_ms: u64, host: &str) -> RunStatus {
        RunStatus {
            state,
            pid: Some(u32::MAX - 1),
            pid_start: Some(1),
            host: host.into(),
            started_ms: Some(started_ms),
            ended_ms: None,
            exit_code: None,
            epoch: 1,
            epochs: 4,
            step: 3,
            total_steps: 12,
            message: "epoch 1".into(),
            device: None,
        }
    }

    fn info(state: &str, reason: &str, exit: &str) -> JobInfo {
        JobInfo {
            job_id: "12".into(),
            state: JobState::parse(state).unwrap(),
            slurm_state: state.into(),
            reason: reason.into(),
            nodes: "node3".into(),
            exit_code: exit.into(),
        }
    }

    #[test]
    fn pending_job_shows_queued_with_the_reason_even_over_an_old_run() {
        let old = status(RunState::Done, 1_000, "node1");
        let pending = info("PENDING", "Priority", "");
        let (state, msg) = reconcile(
            Some(&old),
            &record(),
            Answer::Known(&pending),
            (RunState::Done, "finished".into()),
        );
        assert_eq!(state, RunState::Queued);
        assert!(msg.contains("slurm job 12") && msg.contains("Priority"), "{msg}");
    }

    #[test]
    fn job_that_ended_without_an_exit_record_is_crashed_with_slurms_reason() {
        // The trainer on another node wrote `running` and never its exit (node died, time-out).
        let s = status(RunState::Running, 20_000, "node3");
        for (slurm, word) in
            [("TIMEOUT", "TIMEOUT"), ("NODE_FAIL", "NODE_FAIL"), ("FAILED", "exit 0:9")]
        {
            let i = info(slurm, "", if slurm == "FAILED" { "0:9" } else { "0:0" });
            let (state, msg) = reconcile(
                Some(&s),
                &record(),
                Answer::Known(&i),
                (RunState::Running, "running on node3".into()),
            );
            assert_eq!(state, RunState::Crashed, "{slurm}");
            assert!(msg.contains(word) && msg.contains("without the trainer recording"), "{msg}");
        }
        // The trainer's own exit record wins.
        let done = status(RunState::Stopped, 20_000, "node3");
        let i = info("CANCELLED", "", "0:15");
        let current = (RunState::Stopped, "stopped by user".to_string());
        assert_eq!(reconcile(Some(&done), &record(), Answer::Known(&i), current.clone()), current);
    }

    #[test]
    fn job_that_failed_before_the_trainer_started_or_was_purged_is_crashed() {
        let i = info("FAILED", "NonZeroExitCode", "127:0");
        let (state, msg) =
            reconcile(None, &record(), Answer::Known(&i), (RunState::Idle, String::new()));
        assert_eq!(state, RunState::Crashed);
        assert!(msg.contains("before the trainer started") && msg.contains("127:0"), "{msg}");
        let (state, msg) = reconcile(None, &record(), Answer::Unknown, (RunState::Idle, "".into()));
        assert_eq!(state, RunState::Crashed);
        assert!(msg.contains("no longer knows job 12"), "{msg}");
        // Cancelled by `brainscope stop` while queued: stopped.
        let mut r = record();
        r.cancelled_ms = Some(11_000);
        let c = info("CANCELLED", "", "0:0");
        assert_eq!(
            reconcile(None, &r, Answer::Known(&c), (RunState::Idle, "".into())).0,
            RunState::Stopped
        );
        // Slurm unreachable from here: still queued as far as we know.
        let (state, msg) = reconcile(
            None,
            &record(),
            Answer::Unreachable("no squeue"),
            (RunState::Idle, "".into()),
        );
        assert_eq!(state, RunState::Queued);
        assert!(msg.contains("no squeue"));
    }

    #[test]
    fn running_job_before_the_trainer_writes_shows_running() {
        let i = info("RUNNING", "", "");
        let old = status(RunState::Crashed, 1_000, "node1");
        let (state, msg) = reconcile(
            Some(&old),
            &record(),
            Answer::Known(&i),
            (RunState::Crashed, "old crash".into()),
        );
        assert_eq!(state, RunState::Running);
        assert!(msg.contains("node3") && msg.contains("trainer starting"), "{msg}");
    }
}
