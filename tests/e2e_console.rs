//! End-to-end: the real binary in a pseudo-terminal (80x24, halfblocks), screen decoded with
//! vt100. Opens the console on a temporary project, checks the table, quits with `q` (or is
//! sent SIGTERM) and checks the terminal was restored (alternate screen left, cursor shown).

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous upper bound for anything to appear (CI machines are slow); never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

const TOML: &str = r#"id = 92
description = "tiny e2e experiment"

[data]
root = "no-data"
roi_set = "set3"
vae = "weights/demo/vae"

[train]
seed = 3
batch_size = 16
epochs = 2
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments").join("92");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(exp.join("experiment.toml"), TOML).unwrap();
    dir
}

struct Session {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Session {
    fn open(cwd: &Path) -> Self {
        let pty = native_pty_system();
        let pair = pty.openpty(PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 }).unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_brainscope"));
        cmd.args(["--image-protocol", "halfblocks"]);
        cmd.cwd(cwd);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(24, 80, 0)));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let p = Arc::clone(&parser);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                p.lock().unwrap().process(&buf[..n]);
            }
        });
        let writer = pair.master.take_writer().unwrap();
        Self { parser, writer, child, _master: pair.master }
    }

    fn contents(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, what: &[&str]) {
        let start = Instant::now();
        loop {
            let s = self.contents();
            if what.iter().all(|w| s.contains(w)) {
                return;
            }
            assert!(start.elapsed() < WAIT, "waiting for {what:?}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last bytes (the restore sequences).
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(start.elapsed() < WAIT, "console did not exit; screen:\n{}", self.contents());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_restored(&self) {
        let p = self.parser.lock().unwrap();
        let screen = p.screen();
        assert!(!screen.alternate_screen(), "still on the alternate screen");
        assert!(!screen.hide_cursor(), "cursor left hidden");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn opens_the_table_and_q_restores_the_terminal() {
    let dir = project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle", "set3", "tiny e2e experiment"]);
    assert!(s.parser.lock().unwrap().screen().alternate_screen(), "the console uses the alternate screen");
    s.send("?");
    s.wait_for(&["help", "start / resume training"]);
    s.send("\x1b");
    s.wait_for(&["BEST L1"]);
    s.send("q");
    let status = s.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    s.assert_restored();
}

#[test]
fn sigterm_restores_the_terminal() {
    let dir = project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle"]);
    let pid = s.child.process_id().expect("child pid");
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    s.wait_exit();
    s.assert_restored();
}
