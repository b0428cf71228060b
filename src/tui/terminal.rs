//! Terminal setup and guaranteed restore: on quit (guard drop), on panic (hook), and on
//! SIGTERM / SIGHUP / SIGINT (flags the event loop checks, so it unwinds through the guard).

use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{Stdout, stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The console's terminal type.
pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Raw mode + alternate screen while alive; restores the terminal when dropped.
pub struct TerminalGuard {
    /// The ratatui terminal.
    pub terminal: Tui,
}

impl TerminalGuard {
    /// Enter raw mode and the alternate screen, and install the panic hook.
    pub fn enter() -> std::io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        if let Err(e) = execute!(stdout(), EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leave the alternate screen, show the cursor, leave raw mode. Safe to call more than once;
/// errors are ignored (the terminal may already be gone after SIGHUP).
pub fn restore() {
    let _ = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
    let _ = disable_raw_mode();
}

fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Set when SIGTERM, SIGHUP or SIGINT arrives; the event loop exits when it sees it.
pub fn termination_flag() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in
        [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP, signal_hook::consts::SIGINT]
    {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// Whether a termination signal arrived.
pub fn terminated(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}

/// Whether the terminal has gone away (SSH dropped, tmux pane killed). A hung-up terminal fails
/// every ioctl with EIO. The console only gets SIGHUP when it is in the session's foreground
/// job, so it also checks this itself; otherwise it would spin on a dead terminal forever.
pub fn terminal_gone() -> bool {
    // SAFETY: tcgetattr only writes the termios struct we own.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    [libc::STDIN_FILENO, libc::STDOUT_FILENO]
        .into_iter()
        .any(|fd| unsafe { libc::tcgetattr(fd, &mut termios) != 0 })
}
