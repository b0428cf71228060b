//! The run lock: an exclusive lock on `experiments/<id>/lock` (std's `File::try_lock`, which is
//! `flock` on Linux), held by the trainer for its whole life. The kernel drops it when the
//! process dies (even on SIGKILL), so a stale lock file never blocks a restart. The file also
//! records the holder's pid for error messages.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Taking the run lock failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock: a trainer is already running on this experiment.
    #[error("experiment is already being trained (lock {path} held{})", holder_text(*.holder))]
    Held { path: PathBuf, holder: Option<u32> },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {path}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn holder_text(holder: Option<u32>) -> String {
    holder.map(|pid| format!(" by pid {pid}")).unwrap_or_default()
}

/// A held run lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Take the lock without waiting, writing this process's pid into the file.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let mut file = open(path)?;
        if !try_flock(&file, path)? {
            return Err(LockError::Held {
                path: path.to_path_buf(),
                holder: read_holder(&mut file),
            });
        }
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    /// Take the lock, retrying for up to `wait` (covers a brief probe by `brainscope train`
    /// checking the lock just before this trainer starts).
    pub fn acquire_within(path: &Path, wait: Duration) -> Result<Self, LockError> {
        let deadline = Instant::now() + wait;
        loop {
            match Self::acquire(path) {
                Err(LockError::Held { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => return other,
            }
        }
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Raw descriptor (kept open for the process's life).
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

/// Whether some process holds the lock right now (`Some(holder pid if recorded)`). Probes by
/// taking and releasing the lock, so call it only where a momentary probe is harmless (before
/// launching a trainer, whose own acquisition retries briefly); the registry uses pid liveness.
pub fn is_held(path: &Path) -> Result<Option<Option<u32>>, LockError> {
    if !path.exists() {
        return Ok(None);
    }
    let mut file = open(path)?;
    if try_flock(&file, path)? {
        file.unlock().map_err(|source| LockError::Io { path: path.to_path_buf(), source })?;
        Ok(None)
    } else {
        Ok(Some(read_holder(&mut file)))
    }
}

fn open(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| LockError::Io { path: path.to_path_buf(), source })
}

/// Exclusive, non-blocking: `Ok(true)` when taken, `Ok(false)` when held elsewhere.
fn try_flock(file: &File, path: &Path) -> Result<bool, LockError> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(source)) => Err(LockError::Io { path: path.to_path_buf(), source }),
    }
}

fn read_holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_refused_until_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = RunLock::acquire(&path).unwrap();
        match RunLock::acquire(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(is_held(&path).unwrap(), Some(Some(std::process::id())));
        drop(first);
        assert_eq!(is_held(&path).unwrap(), None);
        RunLock::acquire(&path).unwrap();
    }

    #[test]
    fn missing_lock_file_is_not_held() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(is_held(&dir.path().join("lock")).unwrap(), None);
    }
}
