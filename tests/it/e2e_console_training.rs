//! End-to-end training from the console: the real binary in a pseudo-terminal (80x24,
//! halfblocks, screen decoded with vt100) on a throwaway project with one tiny experiment.
//! `s` starts training from the keyboard; the epoch counter, the step counter and the loss
//! chart move on screen; `q` leaves a restored terminal while the detached trainer keeps
//! going; a reopened console finds it still running; `x` + `y` stops it and it ends stopped.
//!
//! The project is the shared one of `tests/common` (tiny demo dataset, tiny randomly initialised
//! AutoencoderKL, tiny model widths): this proves the console's control path, not training
//! quality.

use crate::common::{Project, Session, WAIT, alive};
use brainscope::experiments::state::{RunState, read_status};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Enough epochs that the run is still going when the console is reopened.
const EPOCHS: usize = 500;

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
        let done =
            line.split_whitespace().find_map(|w| w.strip_suffix(total.as_str())?.parse().ok())?;
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
    let p = Project::new(EPOCHS, 8);
    let _guard = TrainerGuard(p.status_path());
    let log = || p.log();

    // First console: idle, `s` starts training; the epoch counter moves.
    let mut s = Session::open(&p.root);
    s.wait_until("the idle row", &log, |s| {
        table_row(&s.contents()).filter(|(st, d)| st == "idle" && *d == 0)
    });
    s.send("s");
    if brainscope::cluster::slurm::Slurm::available() {
        // sbatch on PATH: `s` asks where; `l` trains here.
        s.wait_for(&["Train experiment 7 locally or on Slurm?"]);
        s.send("l");
    }
    let (_, first) = s.wait_until("running with an epoch done", &log, |s| {
        table_row(&s.contents()).filter(|(st, d)| st == "running" && *d >= 1)
    });
    s.wait_until("the epoch counter to move", &log, |s| {
        table_row(&s.contents()).filter(|(st, d)| st == "running" && *d > first)
    });

    // Detail view: the step counter advances and the train-loss chart is redrawn with new data.
    s.send("\r");
    let chart = s.wait_until("the train-loss chart", &log, train_chart);
    let step = s.wait_until("the step counter", &log, |s| detail_step(&s.contents()));
    s.wait_until("the step counter to move", &log, |s| {
        detail_step(&s.contents()).filter(|&n| n > step)
    });
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
    let (_, seen) = s.wait_until("the running row", &log, |s| {
        table_row(&s.contents()).filter(|(st, _)| st == "running")
    });
    s.wait_until("progress after reopening", &log, |s| {
        table_row(&s.contents()).filter(|(st, d)| st == "running" && *d > seen)
    });
    s.send("x");
    s.wait_until("the stop question", &log, |s| {
        s.contents().contains("Stop training of experiment 7?").then_some(())
    });
    s.send("y");
    let (_, stopped_at) = s.wait_until("the stopped row", &log, |s| {
        table_row(&s.contents()).filter(|(st, _)| st == "stopped")
    });
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
