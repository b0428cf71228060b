//! Stopping a running trainer: SIGTERM (it finishes its step, checkpoints and records
//! `stopped`), wait for the status to leave `running`, SIGKILL after a timeout and record
//! `stopped` on its behalf.

use super::process;
use super::registry::{Probe, effective_state};
use super::state::{RunPaths, RunState, read_status, write_status};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Stopping failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing to stop.
    #[error("experiment {dir} is not running (state: {state})")]
    NotRunning { dir: PathBuf, state: &'static str },
    /// status.json is unreadable.
    #[error("cannot read {path}")]
    Status { path: PathBuf, source: std::io::Error },
    /// The trainer is gone but `stopped` could not be recorded for it.
    #[error(
        "the trainer is gone but recording \"stopped\" in {path} failed; the experiment shows as crashed until that file is writable (check the folder's permissions and free space), then run `brainscope stop` again or resume it"
    )]
    Record { path: PathBuf, source: std::io::Error },
    /// The trainer runs on another host.
    #[error("experiment {dir} is running on host '{host}', not here; stop it there")]
    OtherHost { dir: PathBuf, host: String },
    /// Cancelling the experiment's Slurm job failed.
    #[error(transparent)]
    Slurm(#[from] crate::cluster::slurm::SlurmError),
    /// Sending a signal failed (permissions).
    #[error("cannot signal pid {pid}")]
    Signal { pid: u32, source: std::io::Error },
}

/// How a stop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// The trainer exited on SIGTERM and recorded its own state (normally `stopped`).
    Graceful(RunState),
    /// The trainer ignored SIGTERM for the whole timeout and was killed.
    Killed,
}

/// Stop the trainer of the experiment in `dir`: SIGTERM, wait up to `timeout` for it to exit,
/// then SIGKILL and record `stopped` in status.json.
pub fn stop(dir: &Path, timeout: Duration) -> Result<StopOutcome, ControlError> {
    // A pending or running Slurm job is stopped through Slurm (scancel).
    if let Some(outcome) = crate::cluster::stop(dir, timeout)? {
        return Ok(outcome);
    }
    let paths = RunPaths::new(dir);
    let path = paths.status();
    let read =
        || read_status(&path).map_err(|source| ControlError::Status { path: path.clone(), source });
    let status = read()?;
    let (state, _) = effective_state(status.as_ref(), &Probe::system());
    let status = match status {
        Some(s) if state == RunState::Running => s,
        _ => return Err(ControlError::NotRunning { dir: dir.to_path_buf(), state: state.name() }),
    };
    if !status.host.is_empty() && status.host != process::hostname() {
        return Err(ControlError::OtherHost { dir: dir.to_path_buf(), host: status.host });
    }
    let pid = status.pid.expect("a running status with a live pid has a pid");
    signal(pid, libc::SIGTERM)?;
    let deadline = Instant::now() + timeout;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let alive = process::pid_matches(pid, status.pid_start);
        if let Ok(Some(now)) = read_status(&path)
            && now.pid == status.pid
            && now.state != RunState::Running
        {
            wait_exit(pid, status.pid_start, Duration::from_secs(5));
            return Ok(StopOutcome::Graceful(now.state));
        }
        if !alive {
            record_stopped(&paths, "trainer exited on SIGTERM without an exit record")?;
            return Ok(StopOutcome::Graceful(RunState::Stopped));
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    if process::pid_matches(pid, status.pid_start) {
        signal(pid, libc::SIGKILL)?;
        wait_exit(pid, status.pid_start, Duration::from_secs(10));
    }
    record_stopped(
        &paths,
        &format!("killed (SIGKILL) after {} s without exiting on SIGTERM", timeout.as_secs()),
    )?;
    Ok(StopOutcome::Killed)
}

fn signal(pid: u32, sig: i32) -> Result<(), ControlError> {
    // SAFETY: plain kill(2) on a pid we verified is the recorded trainer.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } == -1 {
        let source = std::io::Error::last_os_error();
        if source.raw_os_error() != Some(libc::ESRCH) {
            return Err(ControlError::Signal { pid, source });
        }
    }
    Ok(())
}

fn wait_exit(pid: u32, start: Option<u64>, max: Duration) {
    let deadline = Instant::now() + max;
    while process::pid_matches(pid, start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Write `stopped` into status.json on behalf of a trainer that could not. Fails when the
/// status cannot be read back or written: a stop that did not record itself must not report
/// success.
fn record_stopped(paths: &RunPaths, message: &str) -> Result<(), ControlError> {
    let path = paths.status();
    let status =
        read_status(&path).map_err(|source| ControlError::Record { path: path.clone(), source })?;
    let Some(mut s) = status.filter(|s| s.state == RunState::Running) else {
        return Ok(()); // the trainer recorded its own end after all
    };
    s.state = RunState::Stopped;
    s.ended_ms = Some(process::now_ms());
    s.message = message.to_string();
    write_status(&path, &s).map_err(|source| ControlError::Record { path, source })
}
