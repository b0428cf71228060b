//! Shared harness of the end-to-end tests: the real binary, a throwaway project with a tiny
//! demo dataset and one tiny experiment, and the console in a pseudo-terminal decoded by vt100.
#![allow(dead_code)] // not every helper is used by every test module

use brainscope::backend::default_device;
use brainscope::models::vae::{AutoencoderKLConfig, save_vae};
use brainscope::rng::{TorchInit, init_rng};
use burn::module::Module;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_brainscope");
/// Generous upper bound for anything to appear on screen (CI machines are slow); never a timing
/// assertion.
pub const WAIT: Duration = Duration::from_secs(30);
/// Longest any one command of a test may take before it is killed and the test fails (every
/// wait in these tests is bounded, so a hang fails with a message instead of eating CI's budget).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Run `cmd` to completion like [`Command::output`], but kill it and fail the test, naming the
/// command and showing what it printed, when it runs longer than `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    wait_output_within(child, limit)
}

/// Wait for a spawned `child` (stdout and stderr piped) like [`std::process::Child::wait_with_output`],
/// but kill it and fail the test after `limit`.
pub fn wait_output_within(mut child: std::process::Child, limit: Duration) -> Output {
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout piped")));
    let err = drain(Box::new(child.stderr.take().expect("stderr piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pid {} still running after {limit:?}: killed\nstdout:\n{}\nstderr:\n{}",
                child.id(),
                String::from_utf8_lossy(&out.join().unwrap_or_default()),
                String::from_utf8_lossy(&err.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Wait (bounded) for `child` to exit; kill it and fail with `what` after `limit`.
pub fn wait_child_within(
    child: &mut dyn portable_pty::Child,
    limit: Duration,
    what: &str,
) -> portable_pty::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} did not exit within {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Training images of the tiny demo: [`N_PROBE`] probe rows, then 24 validation rows (30 % of
/// the rest) and 56 training rows.
pub const N_IMAGES: usize = 96;

/// `[data] probe` of the tiny experiment: rows held out as the dataset's probe set.
pub const N_PROBE: usize = 16;

/// Training rows of the tiny experiment (seed 3, 30 % validation, after the probe rows).
pub fn n_train() -> usize {
    brainscope::data::probe::experiment_rows(N_IMAGES, N_PROBE, 3, 0.3).train.len()
}

/// A project folder with a tiny demo dataset (32 px), a tiny randomly initialised AutoencoderKL
/// (32 px -> [4, 8, 8] latents) and one tiny experiment, id 7. It proves run machinery, not
/// reconstruction quality.
pub struct Project {
    _tmp: tempfile::TempDir,
    /// The project folder (holds `experiments/`).
    pub root: PathBuf,
}

impl Project {
    /// A project whose experiment trains `epochs` epochs with batches of `batch` (the VAE drawn
    /// from burn's unseeded generator: another one every run).
    pub fn new(epochs: usize, batch: usize) -> Self {
        Self::with_vae_seed(epochs, batch, None)
    }

    /// As [`Project::new`]; with `Some(seed)` the VAE's weights are drawn on the host from
    /// `seed` ([`brainscope::rng::TorchInit`]), so every run of a test sees the same latents.
    pub fn with_vae_seed(epochs: usize, batch: usize, vae_seed: Option<u64>) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let data = root.join("tiny-demo");
        let out = output_within(
            Command::new(BIN).args(["demo", "--out"]).arg(&data).args([
                "--images",
                &N_IMAGES.to_string(),
                "--test-images",
                "0",
                "--size",
                "32",
                "--seed",
                "5",
            ]),
            COMMAND_LIMIT,
        );
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
        let model = config.init(&default_device());
        let model = match vae_seed {
            Some(seed) => model.map(&mut TorchInit::new(&mut init_rng(seed))),
            None => model,
        };
        save_vae(&model, &config, &vae).unwrap();
        let dir = root.join("experiments/7");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("experiment.toml"),
            format!(
                "id = 7\ndescription = \"tiny test experiment\"\n\
                 [data]\nroot = \"tiny-demo\"\nroi_set = \"set3\"\nvae = \"{}\"\nprobe = {N_PROBE}\n\
                 [train]\nseed = 3\nbatch_size = {batch}\nepochs = {epochs}\nmax_lr = 3e-3\nrecon_samples = 2\n\
                 [model]\nhidden = 64\nblocks = 1\ndropout_in = 0.1\ndropout_block = 0.1\n\
                 proj_channels = 32\nupsampler_channels = [32, 32, 32]\n",
                vae.display()
            ),
        )
        .unwrap();
        Self { _tmp: tmp, root }
    }

    /// The experiment's folder.
    pub fn dir(&self) -> PathBuf {
        self.root.join("experiments/7")
    }

    /// The experiment's `status.json`.
    pub fn status_path(&self) -> PathBuf {
        self.dir().join("status.json")
    }

    /// The experiment's `train.log` (empty when there is none yet).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("train.log")).unwrap_or_default()
    }

    /// Run the binary with `args` plus `--dir <project>/experiments`.
    pub fn run(&self, args: &[&str]) -> Output {
        output_within(
            Command::new(BIN).args(args).arg("--dir").arg(self.root.join("experiments")),
            COMMAND_LIMIT,
        )
    }
}

/// experiment.toml of the untrained e2e experiment 92 (data root that does not exist).
pub const UNTRAINED_TOML: &str = r#"id = 92
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

/// A temporary project with one never-trained experiment 92 ([`UNTRAINED_TOML`]).
pub fn untrained_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments").join("92");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(exp.join("experiment.toml"), UNTRAINED_TOML).unwrap();
    dir
}

/// Copy the folder `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    copy_dir_skipping(from, to, &[]);
}

/// Copy the folder `from` to `to`, recursively, leaving out files named one of `skip`.
pub fn copy_dir_skipping(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir_skipping(&e.path(), &dest, skip);
        } else if !skip.iter().any(|s| e.file_name() == *s) {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Whether process `pid` exists.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The console in an 80x24 pseudo-terminal (halfblocks), its output fed to a vt100 screen by a
/// reader thread. Killed when dropped.
pub struct Session {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    /// The console process.
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Session {
    /// Start `brainscope` (the console) in `cwd`.
    pub fn open(cwd: &Path) -> Self {
        Self::open_with(cwd, &[], &[])
    }

    /// Start the console in `cwd` with extra environment variables.
    pub fn open_with_env(cwd: &Path, env: &[(&str, &str)]) -> Self {
        Self::open_with(cwd, &[], env)
    }

    /// Start `brainscope ARGS... --image-protocol halfblocks` in `cwd` with extra environment
    /// variables.
    pub fn open_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let pty = native_pty_system();
        let pair =
            pty.openpty(PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 }).unwrap();
        let mut cmd = CommandBuilder::new(BIN);
        cmd.args(args);
        cmd.args(["--image-protocol", "halfblocks"]);
        cmd.cwd(cwd);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(24, 80, 0)));
        // The reader thread only feeds the screen (it ends when the console's side closes);
        // every wait on the screen has a deadline.
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

    /// The whole screen as text.
    pub fn contents(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Screen rows, each cut to columns `col..col + width`.
    pub fn rows(&self, col: u16, width: u16) -> Vec<String> {
        self.parser.lock().unwrap().screen().rows(col, width).collect()
    }

    /// Foreground and background colours of every cell of the screen.
    pub fn colours(&self) -> Vec<(vt100::Color, vt100::Color)> {
        let p = self.parser.lock().unwrap();
        let screen = p.screen();
        let (rows, cols) = screen.size();
        (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .filter_map(|(r, c)| screen.cell(r, c).map(|cell| (cell.fgcolor(), cell.bgcolor())))
            .collect()
    }

    /// Whether the console is on the alternate screen.
    pub fn on_alternate_screen(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }

    /// Poll the screen until `cond` returns `Some`; fail after [`WAIT`] showing the screen and
    /// `log()`.
    pub fn wait_until<T>(
        &self,
        what: &str,
        log: &dyn Fn() -> String,
        mut cond: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            assert!(
                start.elapsed() < WAIT,
                "waiting for {what}; screen:\n{}\nlog:\n{}",
                self.contents(),
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until every one of `what` is on screen.
    pub fn wait_for(&self, what: &[&str]) {
        self.wait_until(&format!("{what:?}"), &String::new, |s| {
            let screen = s.contents();
            what.iter().all(|w| screen.contains(w)).then_some(())
        });
    }

    /// Type `keys`.
    pub fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Wait (bounded) for the console to exit.
    pub fn wait_exit(&mut self) -> portable_pty::ExitStatus {
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

    /// The terminal is back to normal: alternate screen left, cursor shown.
    pub fn assert_restored(&self) {
        let p = self.parser.lock().unwrap();
        let screen = p.screen();
        assert!(!screen.alternate_screen(), "still on the alternate screen");
        assert!(!screen.hide_cursor(), "cursor left hidden");
    }

    /// `q`, a successful exit and a restored terminal.
    pub fn quit(&mut self) {
        self.send("q");
        let status = self.wait_exit();
        assert!(status.success(), "console exit status {status:?}");
        self.assert_restored();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
