//! The event loop: keys, file changes (notify, debounced) with a polling fallback, background
//! results (images, start/stop), and redraws only when something changed, at most ~10 per
//! second.

use crate::tui::app::App;
use crate::tui::terminal::{Tui, terminal_gone, terminated};
use crate::tui::views;
use crossterm::event::{self, Event};
use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Shortest time between two frames (~10 fps).
pub const FRAME: Duration = Duration::from_millis(100);
/// Full re-read of every experiment, for filesystems without change notification (NFS) and to
/// notice a trainer that died.
pub const POLL: Duration = Duration::from_secs(1);
/// Longest wait for input before checking other sources.
const INPUT_WAIT: Duration = Duration::from_millis(50);
/// Debounce window of the file watcher.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Changed paths from the file watcher.
pub type FsEvents = Receiver<Vec<PathBuf>>;

/// The live file watcher; dropping it stops watching.
pub type Watcher = Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>;

/// Watch `dir` recursively; changed paths arrive on the receiver. `Err` when the platform or
/// filesystem cannot watch (the polling fallback still works).
pub fn watch(dir: &Path) -> Result<(Watcher, FsEvents), String> {
    let (tx, rx) = mpsc::channel();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |res: DebounceEventResult| {
        if let Ok(events) = res {
            let paths: Vec<PathBuf> = events.into_iter().flat_map(|e| e.event.paths).collect();
            if !paths.is_empty() {
                let _ = tx.send(paths);
            }
        }
    })
    .map_err(|e| e.to_string())?;
    debouncer
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok((debouncer, rx))
}

/// Apply pending file-change notifications; returns whether anything visible changed.
pub fn apply_fs_events(app: &mut App, rx: &FsEvents) -> bool {
    let mut changed = false;
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Ok(paths) = rx.try_recv() {
        for p in paths {
            // One refresh per experiment folder per batch.
            let exp = app
                .project
                .experiments
                .iter()
                .find(|e| p.starts_with(&e.dir))
                .map(|e| e.dir.clone());
            let key = exp.unwrap_or_else(|| app.project.dir.clone());
            if !seen.contains(&key) {
                changed |= app.project.refresh_path(&key);
                seen.push(key);
            }
        }
    }
    changed
}

/// Wait until stdin has input (or hangs up) or `timeout` passes.
fn wait_for_input(timeout: Duration) {
    let mut fds = [libc::pollfd { fd: libc::STDIN_FILENO, events: libc::POLLIN, revents: 0 }];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: poll(2) on one pollfd we own; an error or EINTR just ends the wait early.
    unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
}

/// Run the console until `q`, a termination signal, or the terminal hanging up.
pub fn run(terminal: &mut Tui, app: &mut App, stop: &AtomicBool) -> std::io::Result<()> {
    let watcher = match watch(&app.project.dir) {
        Ok(w) => Some(w),
        Err(e) => {
            app.message = Some(format!(
                "file watching unavailable ({e}); polling every {} s",
                POLL.as_secs()
            ));
            None
        }
    };
    let mut last_poll = Instant::now();
    let mut last_draw: Option<Instant> = None;
    while !app.quit && !terminated(stop) {
        if let Some((_, rx)) = &watcher {
            app.dirty |= apply_fs_events(app, rx);
        }
        if last_poll.elapsed() >= POLL {
            app.dirty |= app.project.refresh();
            // ETAs count down while something runs.
            app.dirty |= app
                .project
                .experiments
                .iter()
                .any(|e| e.state() == crate::experiments::state::RunState::Running);
            last_poll = Instant::now();
        }
        app.collect_background();
        let since = last_draw.map_or(FRAME, |t| t.elapsed());
        let mut wait = INPUT_WAIT;
        if app.dirty {
            if since >= FRAME {
                terminal.draw(|f| views::draw(f, app))?;
                app.dirty = false;
                last_draw = Some(Instant::now());
            } else {
                wait = wait.min(FRAME - since);
            }
        }
        if app.busy() {
            wait = wait.min(Duration::from_millis(20));
        }
        // crossterm spins forever reading a hung-up terminal (read() = 0 in a loop), so the wait
        // happens here and crossterm is only asked after checking the terminal is still there.
        // A hang-up (SSH dropped, tmux pane killed) ends the console even when no SIGHUP
        // reaches it (it only goes to the session's foreground job).
        wait_for_input(wait); // returns at once on a hung-up terminal
        if terminal_gone() {
            break;
        }
        while event::poll(Duration::ZERO)? {
            match event::read()? {
                Event::Key(k) => app.on_key(k),
                Event::Resize(_, _) => {
                    app.images.clear();
                    app.dirty = true;
                }
                _ => {}
            }
        }
    }
    Ok(())
}
