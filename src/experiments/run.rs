//! The trainer's side of the run record: take the lock, write `status.json` at start, on every
//! epoch and at exit, and turn SIGTERM/SIGINT/SIGHUP into a "stop after this step" flag.

use super::lock::{LockError, RunLock};
use super::process;
use super::state::{RunPaths, RunState, RunStatus, write_status};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Starting or recording a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another trainer holds the lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A run-state file could not be written.
    #[error("cannot write {path}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// All epochs done (exit code 0).
    Done,
    /// Stopped by a signal after checkpointing (exit code 0).
    Stopped,
    /// Failed with this message (exit code 1).
    Failed(String),
}

/// A run in progress: holds the lock and owns `status.json`. Dropping it without
/// [`finish`](Self::finish) (a panic) records `crashed`.
#[derive(Debug)]
pub struct ActiveRun {
    paths: RunPaths,
    status: RunStatus,
    finished: bool,
    _lock: RunLock,
}

impl ActiveRun {
    /// Take the experiment's lock (waiting up to 2 s for a concurrent probe to let go) and write
    /// `status.json` as running with this process's pid, pid start time and host.
    pub fn start(dir: &Path, epochs: usize) -> Result<Self, RunError> {
        let paths = RunPaths::new(dir);
        let lock = RunLock::acquire_within(&paths.lock(), Duration::from_secs(2))?;
        let pid = std::process::id();
        let status = RunStatus {
            state: RunState::Running,
            pid: Some(pid),
            pid_start: process::pid_start_time(pid),
            host: process::hostname(),
            started_ms: Some(process::now_ms()),
            ended_ms: None,
            exit_code: None,
            epoch: 0,
            epochs,
            step: 0,
            total_steps: 0,
            message: "starting".into(),
            device: None,
        };
        let run = Self { paths, status, finished: false, _lock: lock };
        run.write()?;
        Ok(run)
    }

    /// The experiment's run-state paths.
    pub fn paths(&self) -> &RunPaths {
        &self.paths
    }

    /// The status as last written.
    pub fn status(&self) -> &RunStatus {
        &self.status
    }

    /// Record the device the run computes on (status.json `device`).
    pub fn device(&mut self, device: &str) -> Result<(), RunError> {
        self.status.device = Some(device.to_string());
        self.write()
    }

    /// Record progress (epochs completed, steps completed, totals and a short message).
    pub fn progress(
        &mut self,
        epoch: usize,
        epochs: usize,
        step: u64,
        total_steps: u64,
        message: &str,
    ) -> Result<(), RunError> {
        self.status.epoch = epoch;
        self.status.epochs = epochs;
        self.status.step = step;
        self.status.total_steps = total_steps;
        self.status.message = message.to_string();
        self.write()
    }

    /// Record the end of the run (state, exit code, end time) and release the lock.
    pub fn finish(mut self, outcome: &RunOutcome) -> Result<(), RunError> {
        self.finished = true;
        let (state, code, message) = match outcome {
            RunOutcome::Done => (RunState::Done, 0, "finished".to_string()),
            RunOutcome::Stopped => (RunState::Stopped, 0, "stopped by user".to_string()),
            RunOutcome::Failed(msg) => (RunState::Crashed, 1, msg.clone()),
        };
        self.record_exit(state, code, message)
    }

    fn record_exit(&mut self, state: RunState, code: i32, message: String) -> Result<(), RunError> {
        self.status.state = state;
        self.status.exit_code = Some(code);
        self.status.ended_ms = Some(process::now_ms());
        self.status.message = message;
        self.write()
    }

    fn write(&self) -> Result<(), RunError> {
        let path = self.paths.status();
        write_status(&path, &self.status).map_err(|source| RunError::Io { path, source })
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if !self.finished {
            let _ =
                self.record_exit(RunState::Crashed, 101, "trainer panicked (see train.log)".into());
        }
    }
}

/// A flag raised by SIGTERM, SIGINT or SIGHUP: the trainer finishes its step, checkpoints and
/// exits. A second SIGINT/SIGTERM while the flag is already up terminates at once.
pub fn install_stop_flag() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Order matters: the conditional shutdown sees the flag as set by the first signal.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    signal_hook::flag::register(SIGHUP, Arc::clone(&flag))?;
    Ok(flag)
}

/// Whether a stop was requested.
pub fn stop_requested(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::state::read_status;

    #[test]
    fn lifecycle_writes_running_then_done_and_refuses_a_second_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = ActiveRun::start(dir.path(), 5).unwrap();
        let s = read_status(&run.paths().status()).unwrap().unwrap();
        assert_eq!((s.state, s.pid), (RunState::Running, Some(std::process::id())));
        assert!(s.pid_start.is_some());
        assert!(matches!(
            ActiveRun::start(dir.path(), 5),
            Err(RunError::Lock(LockError::Held { .. }))
        ));
        run.progress(2, 5, 20, 50, "epoch 2").unwrap();
        let s = read_status(&run.paths().status()).unwrap().unwrap();
        assert_eq!((s.epoch, s.step, s.total_steps), (2, 20, 50));
        run.finish(&RunOutcome::Done).unwrap();
        let s = read_status(&dir.path().join("status.json")).unwrap().unwrap();
        assert_eq!((s.state, s.exit_code), (RunState::Done, Some(0)));
        assert!(s.ended_ms.is_some());
        // The lock was released with the run.
        ActiveRun::start(dir.path(), 5).unwrap().finish(&RunOutcome::Stopped).unwrap();
        assert_eq!(
            read_status(&dir.path().join("status.json")).unwrap().unwrap().state,
            RunState::Stopped
        );
    }

    #[test]
    fn dropped_run_is_recorded_as_crashed() {
        let dir = tempfile::tempdir().unwrap();
        drop(ActiveRun::start(dir.path(), 1).unwrap());
        let s = read_status(&dir.path().join("status.json")).unwrap().unwrap();
        assert_eq!((s.state, s.exit_code), (RunState::Crashed, Some(101)));
    }
}
