//! End-to-end: the real binary in a pseudo-terminal (80x24, halfblocks), screen decoded with
//! vt100. Opens the console on a temporary project, checks the table, quits with `q` (or is
//! sent SIGTERM) and checks the terminal was restored (alternate screen left, cursor shown).

use crate::common::{Session, WAIT, untrained_project, wait_child_within};

#[test]
fn opens_the_table_and_q_restores_the_terminal() {
    let dir = untrained_project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle", "set3", "tiny e2e experiment"]);
    assert!(s.on_alternate_screen(), "the console uses the alternate screen");
    s.send("?");
    s.wait_for(&["help", "start / resume training"]);
    s.send("\x1b");
    s.wait_for(&["BEST L1"]);
    s.quit();
}

#[test]
fn sigterm_restores_the_terminal() {
    let dir = untrained_project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle"]);
    let pid = s.child.process_id().expect("child pid");
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    s.wait_exit();
    s.assert_restored();
}

/// A dropped SSH session or a killed tmux pane where no SIGHUP reaches the console (here it runs
/// in a session of its own through `setsid`, so the hang-up signal goes elsewhere). It must
/// notice the dead terminal and exit instead of spinning on it (crossterm alone reads the dead
/// terminal in a busy loop forever).
#[test]
fn hangup_without_sighup_ends_the_console() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use std::io::Read;
    use std::time::Instant;

    let dir = untrained_project();
    let pair = native_pty_system()
        .openpty(PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 })
        .unwrap();
    let mut cmd = CommandBuilder::new("setsid");
    cmd.args(["--wait", crate::common::BIN, "--image-protocol", "halfblocks"]);
    cmd.cwd(dir.path());
    cmd.env("TERM", "xterm-256color");
    let mut shell = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    // Bounded reads: wait for output with poll(2) on the master (not in a thread of its own,
    // which would keep the master open and so prevent the very hang-up this test makes).
    let fd = pair.master.as_raw_fd().expect("a unix pty has a descriptor");
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut seen = Vec::new();
    let start = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("STATE") {
        let left = WAIT.saturating_sub(start.elapsed()).as_millis() as i32;
        let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
        // SAFETY: poll(2) on one descriptor the master owns, kept open meanwhile.
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, left) } <= 0 {
            let _ = shell.kill();
            panic!(
                "the console did not draw its table within {WAIT:?}; it wrote:\n{}",
                String::from_utf8_lossy(&seen)
            );
        }
        let mut buf = [0u8; 4096];
        let n = reader.read(&mut buf).unwrap(); // readable: does not block
        seen.extend_from_slice(&buf[..n]);
    }
    let shell_pid = shell.process_id().expect("shell pid");
    let children =
        std::fs::read_to_string(format!("/proc/{shell_pid}/task/{shell_pid}/children")).unwrap();
    let console: u32 =
        children.split_whitespace().next().expect("the console runs under setsid").parse().unwrap();

    // Let it settle into waiting for input (nothing to redraw), as an idle console over SSH.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(reader);
    drop(pair.master); // hang up
    wait_child_within(&mut *shell, WAIT, "setsid --wait (the console's parent)");
    let start = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{console}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("gone");
        if state == "gone" || state == "Z" || state == "X" {
            break;
        }
        if start.elapsed() > crate::common::WAIT {
            // SAFETY: plain kill(2) on the console this test started.
            unsafe { libc::kill(console as libc::pid_t, libc::SIGKILL) };
            panic!(
                "the console (pid {console}) is still running {:?} after its terminal hung up",
                crate::common::WAIT
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `NO_COLOR` set: not one cell of the real terminal is coloured; without it, the state is.
#[test]
fn no_color_turns_every_colour_off() {
    let dir = untrained_project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle"]);
    let default = vt100::Color::Default;
    assert!(
        s.colours().iter().any(|&(fg, bg)| fg != default || bg != default),
        "colours are on by default"
    );
    s.quit();
    let mut s = Session::open_with_env(dir.path(), &[("NO_COLOR", "1")]);
    s.wait_for(&["92", "· idle", "tiny e2e experiment"]);
    let coloured = s.colours().into_iter().filter(|&(fg, bg)| fg != default || bg != default);
    assert_eq!(coloured.count(), 0, "coloured cells under NO_COLOR:\n{}", s.contents());
    s.quit();
}
