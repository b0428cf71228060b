//! End-to-end: the real binary in a pseudo-terminal (80x24, halfblocks), screen decoded with
//! vt100. Opens the console on a temporary project, checks the table, quits with `q` (or is
//! sent SIGTERM) and checks the terminal was restored (alternate screen left, cursor shown).

mod common;

use common::Session;

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

#[test]
fn opens_the_table_and_q_restores_the_terminal() {
    let dir = project();
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
    let dir = project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle"]);
    let pid = s.child.process_id().expect("child pid");
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    s.wait_exit();
    s.assert_restored();
}
