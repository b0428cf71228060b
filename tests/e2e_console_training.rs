//! End-to-end training from the console: the real binary in a pseudo-terminal (80x24,
//! halfblocks, screen decoded with vt100) on a throwaway project with one tiny experiment.
//! `s` starts training from the keyboard; the epoch counter, the step counter and the loss
//! chart move on screen; `q` leaves a restored terminal while the detached trainer keeps
//! going; a reopened console finds it still running; `x` + `y` stops it and it ends stopped.
//!
//! The project is built exactly as in `tests/train_e2e.rs` (tiny demo dataset, tiny randomly
//! initialised AutoencoderKL, tiny model widths): this proves the console's control path, not
//! training quality.

use brainscope::backend::default_device;
use brainscope::experiments::state::{read_status, RunState};
use brainscope::models::vae::{save_vae, AutoencoderKLConfig};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_brainscope");
/// Generous upper bound for anything to appear (CI machines are slow); never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);
/// Enough epochs that the run is still going when the console is reopened.
const EPOCHS: usize = 500;

/// A project folder with a tiny demo dataset and one tiny experiment (id 7).
struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = root.join("tiny-demo");
        let out = Command::new(BIN)
            .args(["demo", "--out"])
            .arg(&data)
            .args(["--images", "96", "--test-images", "0", "--size", "32", "--seed", "5"])
            .output()
            .unwrap();
        assert!(out.status.success(), "demo: {}", String::from_utf8_lossy(&out.stderr));
        let vae = root.join("vae");
        let config: AutoencoderKLConfig = serde_json::from_value(serde_json::json!({
            "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
            "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
            "block_out_channels": [32, 32, 32],
            "layers_per_block": 1,
            "latent_channels": 4,
            "norm_num_groups": 32,
            "sample_size": 32
        }))
        .unwrap();
        save_vae(&config.init(&default_device()), &config, &vae).unwrap();
        let dir = root.join("experiments/7");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("experiment.toml"),
            format!(
                "id = 7\ndescription = \"tiny console training\"\n\
                 [data]\nroot = \"tiny-demo\"\nroi_set = \"set3\"\nvae = \"{}\"\n\
                 [train]\nseed = 3\nbatch_size = 8\nepochs = {EPOCHS}\nmax_lr = 3e-3\nrecon_samples = 2\n\
                 [model]\nhidden = 64\nblocks = 1\ndropout_in = 0.1\ndropout_block = 0.1\n\
                 proj_channels = 32\nupsampler_channels = [32, 32, 32]\n",
                vae.display()
            ),
        )
        .unwrap();
        Self { _tmp: tmp, root }
    }

    fn status_path(&self) -> PathBuf {
        self.root.join("experiments/7/status.json")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("experiments/7/train.log")).unwrap_or_default()
    }
}

/// Kills the detached trainer (pid from status.json) if the test ends with it still alive.
struct TrainerGuard(PathBuf);

impl Drop for TrainerGuard {
    fn drop(&mut self) {
        if let Ok(Some(s)) = read_status(&self.0)
            && let Some(pid) = s.pid
            && alive(pid)
        {
            // SAFETY: plain kill(2) on the trainer this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The console in a pseudo-terminal, its output fed to a vt100 screen by a reader thread.
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
        let mut cmd = CommandBuilder::new(BIN);
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

    /// Screen rows, each cut to columns `col..col + width`.
    fn rows(&self, col: u16, width: u16) -> Vec<String> {
        self.parser.lock().unwrap().screen().rows(col, width).collect()
    }

    /// Poll the screen every 100 ms until `cond` returns `Some`; fail after [`WAIT`].
    fn wait_until<T>(&self, what: &str, log: &dyn Fn() -> String, mut cond: impl FnMut(&Self) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            assert!(start.elapsed() < WAIT, "waiting for {what}; screen:\n{}\ntrain.log:\n{}", self.contents(), log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    fn quit(&mut self) {
        self.send("q");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last bytes (the restore sequences).
                std::thread::sleep(Duration::from_millis(200));
                break status;
            }
            assert!(start.elapsed() < WAIT, "console did not exit; screen:\n{}", self.contents());
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "console exit status {status:?}");
        let p = self.parser.lock().unwrap();
        assert!(!p.screen().alternate_screen(), "still on the alternate screen");
        assert!(!p.screen().hide_cursor(), "cursor left hidden");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The table row of experiment 7: `(state word, epochs done)`, e.g. `("running", 3)`.
fn table_row(screen: &str) -> Option<(String, usize)> {
    let total = format!("/{EPOCHS}");
    screen.lines().find_map(|line| {
        let line = line.replace('│', " ");
        let mut words = line.split_whitespace();
        if words.next()?.trim_start_matches('*') != "7" {
            return None;
        }
        let _symbol = words.next()?;
        let state = words.next()?.to_string();
        let done = line.split_whitespace().find_map(|w| w.strip_suffix(total.as_str())?.parse().ok())?;
        Some((state, done))
    })
}

/// The detail header's `epoch k/N · step s/T`: `s`.
fn detail_step(screen: &str) -> Option<u64> {
    let rest = &screen[screen.find(" · step ")? + " · step ".len()..];
    rest.split('/').next()?.parse().ok()
}

/// The train-loss chart's plot rows (left 55 % of an 80-column screen, below its title).
fn train_chart(s: &Session) -> Option<Vec<String>> {
    let rows = s.rows(0, 44);
    let title = rows.iter().position(|r| r.contains("train loss"))?;
    let plot: Vec<String> = rows.iter().skip(title + 1).take(6).cloned().collect();
    // Braille dots (U+2800..U+28FF) are the plotted line.
    plot.iter().any(|r| r.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))).then_some(plot)
}

#[test]
fn start_from_keyboard_quit_reopen_and_stop() {
    let p = Project::new();
    let _guard = TrainerGuard(p.status_path());
    let log = || p.log();

    // First console: idle, `s` starts training; the epoch counter moves.
    let mut s = Session::open(&p.root);
    s.wait_until("the idle row", &log, |s| table_row(&s.contents()).filter(|(st, d)| st == "idle" && *d == 0));
    s.send("s");
    let (_, first) =
        s.wait_until("running with an epoch done", &log, |s| table_row(&s.contents()).filter(|(st, d)| st == "running" && *d >= 1));
    s.wait_until("the epoch counter to move", &log, |s| table_row(&s.contents()).filter(|(st, d)| st == "running" && *d > first));

    // Detail view: the step counter advances and the train-loss chart is redrawn with new data.
    s.send("\r");
    let chart = s.wait_until("the train-loss chart", &log, train_chart);
    let step = s.wait_until("the step counter", &log, |s| detail_step(&s.contents()));
    s.wait_until("the step counter to move", &log, |s| detail_step(&s.contents()).filter(|&n| n > step));
    s.wait_until("the chart to change", &log, |s| train_chart(s).filter(|c| *c != chart));
    s.quit();
    drop(s);

    // The detached trainer outlives the console.
    let status = read_status(&p.status_path()).unwrap().expect("status.json written");
    assert_eq!(status.state, RunState::Running, "train.log:\n{}", p.log());
    let pid = status.pid.expect("trainer pid");
    assert!(alive(pid), "trainer {pid} died with the console; train.log:\n{}", p.log());

    // Second console: reattaches to the running training, which keeps progressing; `x` + `y` stops it.
    let mut s = Session::open(&p.root);
    let (_, seen) = s.wait_until("the running row", &log, |s| table_row(&s.contents()).filter(|(st, _)| st == "running"));
    s.wait_until("progress after reopening", &log, |s| table_row(&s.contents()).filter(|(st, d)| st == "running" && *d > seen));
    s.send("x");
    s.wait_until("the stop question", &log, |s| s.contents().contains("Stop training of experiment 7?").then_some(()));
    s.send("y");
    let (_, stopped_at) = s.wait_until("the stopped row", &log, |s| table_row(&s.contents()).filter(|(st, _)| st == "stopped"));
    assert!(stopped_at < EPOCHS, "the run finished before it could be stopped");
    s.quit();

    let status = read_status(&p.status_path()).unwrap().expect("status.json written");
    assert_eq!(status.state, RunState::Stopped, "train.log:\n{}", p.log());
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < WAIT, "trainer {pid} still alive after stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}
