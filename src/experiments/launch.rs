//! Detached launch: start a trainer process in a new session (no controlling terminal, so it
//! survives the shell, the console and an SSH hang-up) with stdin from /dev/null and
//! stdout + stderr appended to the experiment's `train.log`.

use super::lock;
use super::process;
use super::registry::{Probe, RegistryError, effective_state, find};
use super::state::{RunPaths, RunState, read_status};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Launching a detached trainer failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A trainer is already running on this experiment.
    #[error(
        "experiment {dir} is already running (pid {pid}); stop it first with `brainscope stop`"
    )]
    AlreadyRunning { dir: PathBuf, pid: String },
    /// The lock could not be probed.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// Spawning or preparing the log failed.
    #[error("cannot start the trainer ({path})")]
    Io { path: PathBuf, source: std::io::Error },
    /// The trainer exited right away.
    #[error("the trainer exited at once ({code}); last lines of {log}:\n{tail}")]
    EarlyExit { code: String, log: PathBuf, tail: String },
    /// The trainer did not record its start in time.
    #[error("the trainer (pid {pid}) did not write {status} within {secs} s; see {log}")]
    NoStart { pid: u32, status: PathBuf, log: PathBuf, secs: u64 },
}

/// Refuse when a trainer runs on `dir` (lock held, or status says running with a live pid).
pub fn ensure_not_running(dir: &Path) -> Result<(), LaunchError> {
    let paths = RunPaths::new(dir);
    if let Some(holder) = lock::is_held(&paths.lock())? {
        let pid = holder.map_or("unknown".into(), |p| p.to_string());
        return Err(LaunchError::AlreadyRunning { dir: dir.to_path_buf(), pid });
    }
    if let Ok(status) = read_status(&paths.status())
        && effective_state(status.as_ref(), &Probe::system()).0 == RunState::Running
    {
        let pid = status.and_then(|s| s.pid).map_or("unknown".into(), |p| p.to_string());
        return Err(LaunchError::AlreadyRunning { dir: dir.to_path_buf(), pid });
    }
    Ok(())
}

/// Spawn `exe args...` detached: new session (`setsid`), stdin /dev/null, stdout and stderr
/// appended to `log`. Returns the child's pid. The child is not waited for here.
pub fn spawn_detached(
    exe: &Path,
    args: &[OsString],
    log: &Path,
) -> Result<std::process::Child, LaunchError> {
    let io = |source| LaunchError::Io { path: log.to_path_buf(), source };
    let mut out = OpenOptions::new().create(true).append(true).open(log).map_err(io)?;
    writeln!(
        out,
        "=== {} launched {:?} {:?} at {} ms ===",
        process::hostname(),
        exe,
        args,
        process::now_ms()
    )
    .map_err(io)?;
    let err = out.try_clone().map_err(io)?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| LaunchError::Io { path: exe.to_path_buf(), source })
}

/// Launch a detached trainer for the experiment in `dir` and wait until it has taken the lock
/// and written its running status (or exited, which is reported with the log's tail).
pub fn launch(
    exe: &Path,
    args: &[OsString],
    dir: &Path,
    wait: Duration,
) -> Result<u32, LaunchError> {
    ensure_not_running(dir)?;
    let paths = RunPaths::new(dir);
    let mut child = spawn_detached(exe, args, &paths.log())?;
    let pid = child.id();
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(Some(s)) = read_status(&paths.status())
            && s.pid == Some(pid)
        {
            return Ok(pid);
        }
        if let Ok(Some(code)) = child.try_wait() {
            // It may have recorded its start and finished quickly (tiny runs).
            if let Ok(Some(s)) = read_status(&paths.status())
                && s.pid == Some(pid)
            {
                return Ok(pid);
            }
            return Err(LaunchError::EarlyExit {
                code: code.to_string(),
                log: paths.log(),
                tail: log_tail(&paths.log(), 10),
            });
        }
        if Instant::now() >= deadline {
            return Err(LaunchError::NoStart {
                pid,
                status: paths.status(),
                log: paths.log(),
                secs: wait.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Last `n` lines of a text file (empty when unreadable).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Options of a detached training launch (the `brainscope train` flags).
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Device override.
    pub device: Option<String>,
    /// Epochs override.
    pub epochs: Option<usize>,
    /// Start over, discarding the run state.
    pub restart: bool,
}

/// The command line of a detached trainer: `train ID --foreground --dir DIR [...]`.
pub fn trainer_args(id: &str, experiments_dir: &Path, options: &LaunchOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "train".into(),
        id.into(),
        "--foreground".into(),
        "--dir".into(),
        experiments_dir.into(),
    ];
    if let Some(d) = &options.device {
        args.extend(["--device".into(), d.into()]);
    }
    if let Some(n) = options.epochs {
        args.extend(["--epochs".into(), n.to_string().into()]);
    }
    if options.restart {
        args.push("--restart".into());
    }
    args
}

/// Start (or resume) experiment `id` of `experiments_dir` as a detached `exe train ... --foreground`
/// (what the console's `s` and `brainscope train` do). Returns the trainer's pid once it has
/// recorded its start.
pub fn start_training(
    exe: &Path,
    experiments_dir: &Path,
    id: &str,
    options: &LaunchOptions,
) -> Result<u32, LaunchError> {
    let experiments_dir = std::path::absolute(experiments_dir)
        .map_err(|source| LaunchError::Io { path: experiments_dir.to_path_buf(), source })?;
    let dir = experiments_dir.join(id);
    launch(exe, &trainer_args(id, &experiments_dir, options), &dir, Duration::from_secs(30))
}

/// Starting training refused or failed (what the console's `s` reports).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No such experiment, or its experiment.toml is invalid.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The experiment's (or the override's) device is not available.
    #[error(transparent)]
    Device(#[from] crate::backend::BackendError),
    /// The run finished all its epochs.
    #[error(
        "experiment {dir} already finished all its epochs; pass --restart to train it again from scratch"
    )]
    AlreadyDone { dir: PathBuf },
    /// `--epochs 0`.
    #[error("--epochs must be at least 1")]
    NoEpochs,
    /// Already running, or the trainer did not start.
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

/// Check that experiment `id` can start and start (or resume) it detached: its config and
/// device are valid, no trainer runs on it, it has not finished (unless `restart`); then
/// [`start_training`]. Returns the trainer's pid once it has recorded its start. The console
/// calls this directly (one process: the trainer), as `brainscope train` does.
pub fn start(
    exe: &Path,
    experiments_dir: &Path,
    id: &str,
    options: &LaunchOptions,
) -> Result<u32, StartError> {
    let (dir, config) = find(experiments_dir, id)?;
    crate::backend::device(options.device.as_deref().unwrap_or(&config.train.device))?;
    if options.epochs == Some(0) {
        return Err(StartError::NoEpochs);
    }
    ensure_not_running(&dir)?;
    let path = RunPaths::new(&dir).status();
    let done = finished(&dir).map_err(|source| LaunchError::Io { path, source })?;
    if !options.restart && done {
        return Err(StartError::AlreadyDone { dir });
    }
    Ok(start_training(exe, experiments_dir, id, options)?)
}

/// Whether the run in `dir` finished all its epochs (its `status.json` says `done`); the one
/// check behind [`start`] and the trainer's `check_startable`. The error is reading
/// `status.json`.
pub fn finished(dir: &Path) -> std::io::Result<bool> {
    Ok(read_status(&RunPaths::new(dir).status())?.is_some_and(|s| s.state == RunState::Done))
}
