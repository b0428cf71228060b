//! `e` and `R` in the console: `brainscope eval ID` / `brainscope recon ID` in the background, as
//! a child process of this same binary with its stderr (the progress) in
//! `experiments/<id>/<command>.log`. The console shows the last progress line while it runs, a
//! marker in the table, and the results (re-read from `eval/<split>.json` and
//! `recon/final-<split>/` by the registry's reader) or the error when it ends.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// File inside the experiment folder receiving the eval command's stderr.
pub const EVAL_LOG: &str = "eval.log";
/// File inside the experiment folder receiving the recon command's stderr.
pub const RECON_LOG: &str = "recon.log";

/// Bytes read from the end of `eval.log` for its last line.
const TAIL_BYTES: u64 = 4096;

/// One eval command running.
#[derive(Debug)]
struct Running {
    child: Child,
    log: PathBuf,
    started: Instant,
    progress: String,
}

/// How the last eval of an experiment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Exit status 0.
    Ok,
    /// It failed: the exit status and the last line it wrote (its error).
    Failed(String),
}

/// The background commands of one kind (`eval` or `recon`) started from this console.
#[derive(Debug)]
pub struct BackgroundJobs {
    exe: PathBuf,
    command: &'static str,
    experiments_dir: PathBuf,
    running: BTreeMap<String, Running>,
    finished: BTreeMap<String, Finished>,
    polled: Option<Instant>,
}

/// How often [`BackgroundJobs::poll`] looks at the logs and processes.
pub const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl BackgroundJobs {
    /// Jobs that run `exe eval ID --dir experiments_dir`.
    pub fn new(exe: PathBuf, experiments_dir: PathBuf) -> Self {
        Self::for_command(exe, experiments_dir, "eval")
    }

    /// Jobs that run `exe <command> ID --dir experiments_dir` (`eval` or `recon`), with stderr
    /// in `<id>/<command>.log`.
    pub fn for_command(exe: PathBuf, experiments_dir: PathBuf, command: &'static str) -> Self {
        Self {
            exe,
            command,
            experiments_dir,
            running: BTreeMap::new(),
            finished: BTreeMap::new(),
            polled: None,
        }
    }

    /// Start `brainscope eval id` unless one runs already; the error says why it could not
    /// start (the log file or the process).
    pub fn start(&mut self, id: &str) -> Result<(), String> {
        let command = self.command;
        if self.running.contains_key(id) {
            return Err(format!("{command} of {id} is already running"));
        }
        let log = self.experiments_dir.join(id).join(format!("{command}.log"));
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        let child = Command::new(&self.exe)
            .arg(command)
            .arg(id)
            .arg("--dir")
            .arg(&self.experiments_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot run {} {command} {id}: {e}", self.exe.display()))?;
        self.finished.remove(id);
        let progress = "starting…".to_string();
        self.running.insert(id.into(), Running { child, log, started: Instant::now(), progress });
        Ok(())
    }

    /// Re-read progress and reap ended commands: the ids that ended, with how, and whether a
    /// progress line changed. Reads at most every [`POLL_EVERY`].
    pub fn poll(&mut self) -> (Vec<(String, Finished)>, bool) {
        let mut ended = Vec::new();
        let mut moved = false;
        if self.polled.is_some_and(|t| t.elapsed() < POLL_EVERY) {
            return (ended, moved);
        }
        self.polled = Some(Instant::now());
        for (id, r) in &mut self.running {
            if let Some(line) = last_line(&r.log)
                && line != r.progress
            {
                r.progress = line;
                moved = true;
            }
            match r.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) if status.success() => ended.push((id.clone(), Finished::Ok)),
                Ok(Some(status)) => {
                    let why = last_line(&r.log).unwrap_or_else(|| "no output".into());
                    let code = status.code().map_or("a signal".into(), |c| format!("status {c}"));
                    ended.push((id.clone(), Finished::Failed(format!("exit {code}: {why}"))));
                }
                Err(e) => ended.push((id.clone(), Finished::Failed(e.to_string()))),
            }
        }
        for (id, how) in &ended {
            self.running.remove(id);
            self.finished.insert(id.clone(), how.clone());
        }
        (ended, moved)
    }

    /// The subcommand these jobs run (`eval` or `recon`).
    pub fn command(&self) -> &'static str {
        self.command
    }

    /// Whether a job for `id` runs now.
    pub fn is_running(&self, id: &str) -> bool {
        self.running.contains_key(id)
    }

    /// Whether any eval runs (the event loop then keeps polling).
    pub fn any_running(&self) -> bool {
        !self.running.is_empty()
    }

    /// The last progress line of a running eval and its seconds so far.
    pub fn progress(&self, id: &str) -> Option<(&str, u64)> {
        self.running.get(id).map(|r| (r.progress.as_str(), r.started.elapsed().as_secs()))
    }

    /// How the last eval of `id` started here ended, if one did.
    pub fn finished(&self, id: &str) -> Option<&Finished> {
        self.finished.get(id)
    }
}

/// The last non-empty line of `path` (progress bars redraw with `\r`: the last frame).
pub fn last_line(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let line = text.split(['\n', '\r']).map(strip_ansi).rfind(|l| !l.trim().is_empty())?;
    Some(line.trim().to_string())
}

/// Remove terminal escape sequences (`ESC [ ... letter`) a progress bar may write.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_takes_the_last_progress_frame_without_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(EVAL_LOG);
        std::fs::write(&p, "loading\n\u{1b}[2K[1/8] decoding\r\u{1b}[2K[5/8] decoding\r\n\n")
            .unwrap();
        assert_eq!(last_line(&p).as_deref(), Some("[5/8] decoding"));
        std::fs::write(&p, "").unwrap();
        assert_eq!(last_line(&p), None);
    }

    #[test]
    fn a_failing_command_reports_its_last_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("7")).unwrap();
        let script = dir.path().join("fake");
        std::fs::write(
            &script,
            "#!/bin/sh\necho \"working on $2\" >&2\necho 'error: no checkpoint' >&2\nexit 3\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut jobs = BackgroundJobs::new(script, dir.path().to_path_buf());
        jobs.start("7").unwrap();
        assert!(jobs.is_running("7"));
        assert!(jobs.start("7").is_err(), "one at a time per experiment");
        let t = Instant::now();
        let ended = loop {
            let (e, _) = jobs.poll();
            if !e.is_empty() || t.elapsed().as_secs() > 20 {
                break e;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(
            ended,
            vec![("7".into(), Finished::Failed("exit status 3: error: no checkpoint".into()))]
        );
        assert!(!jobs.any_running());
        let log = std::fs::read_to_string(dir.path().join("7").join(EVAL_LOG)).unwrap();
        assert!(log.starts_with("working on 7"), "{log}");
    }
}
