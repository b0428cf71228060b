//! The incremental metrics tailer: append, partial last line, corrupt line, truncation,
//! replacement (rename over), removal.

use brainscope::experiments::metrics::MetricsTail;
use brainscope::experiments::state::{MetricRecord, Split};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

fn rec(step: u64, loss: f64) -> MetricRecord {
    MetricRecord {
        t: 1000 + step,
        epoch: 0,
        step,
        split: Split::Train,
        loss: Some(loss),
        l1: None,
        lr: Some(1e-3),
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn line(r: &MetricRecord) -> String {
    format!("{}\n", r.to_line())
}

#[test]
fn missing_file_yields_nothing_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    let mut t = MetricsTail::new(&path);
    assert!(t.poll().unwrap().is_empty());
    append(&path, &line(&rec(1, 0.5)));
    assert_eq!(t.poll().unwrap().records, vec![rec(1, 0.5)]);
}

#[test]
fn reads_only_appended_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    append(&path, &(line(&rec(1, 0.9)) + &line(&rec(2, 0.8))));
    let mut t = MetricsTail::new(&path);
    let u = t.poll().unwrap();
    assert!(!u.reset);
    assert_eq!(u.records, vec![rec(1, 0.9), rec(2, 0.8)]);
    let offset = t.offset();
    assert_eq!(offset, std::fs::metadata(&path).unwrap().len());
    assert!(t.poll().unwrap().is_empty(), "no change, nothing read");
    append(&path, &line(&rec(3, 0.7)));
    let u = t.poll().unwrap();
    assert_eq!(u.records, vec![rec(3, 0.7)]);
    assert!(t.offset() > offset);
}

#[test]
fn partial_last_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    let full = line(&rec(1, 0.25));
    let (a, b) = full.split_at(17);
    append(&path, a);
    let mut t = MetricsTail::new(&path);
    let u = t.poll().unwrap();
    assert!(u.records.is_empty() && u.skipped == 0, "half a line is neither a record nor corrupt");
    append(&path, b);
    assert_eq!(t.poll().unwrap().records, vec![rec(1, 0.25)]);
}

#[test]
fn corrupt_complete_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    append(&path, &(line(&rec(1, 0.5)) + "{\"t\": 12, \"ep\n\n" + &line(&rec(2, 0.4))));
    let mut t = MetricsTail::new(&path);
    let u = t.poll().unwrap();
    assert_eq!(u.records, vec![rec(1, 0.5), rec(2, 0.4)]);
    assert_eq!(u.skipped, 1, "blank lines are not corrupt");
}

#[test]
fn truncation_restarts_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    append(&path, &(line(&rec(1, 0.9)) + &line(&rec(2, 0.8)) + &line(&rec(3, 0.7))));
    let mut t = MetricsTail::new(&path);
    assert_eq!(t.poll().unwrap().records.len(), 3);
    // Truncate in place (same inode) and write a shorter history: a restarted run.
    std::fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
    append(&path, &line(&rec(1, 0.6)));
    let u = t.poll().unwrap();
    assert!(u.reset, "size below the offset means the file was truncated");
    assert_eq!(u.records, vec![rec(1, 0.6)]);
}

#[test]
fn replacement_by_rename_restarts_even_when_longer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    append(&path, &line(&rec(1, 0.9)));
    let mut t = MetricsTail::new(&path);
    assert_eq!(t.poll().unwrap().records.len(), 1);
    let tmp = dir.path().join("metrics.jsonl.tmp");
    append(&tmp, &(line(&rec(10, 0.1)) + &line(&rec(11, 0.2)) + &line(&rec(12, 0.3))));
    std::fs::rename(&tmp, &path).unwrap();
    let u = t.poll().unwrap();
    assert!(u.reset, "a new inode is a new file");
    assert_eq!(u.records, vec![rec(10, 0.1), rec(11, 0.2), rec(12, 0.3)]);
}

#[test]
fn removal_resets_and_a_new_file_is_read_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    append(&path, &line(&rec(1, 0.9)));
    let mut t = MetricsTail::new(&path);
    t.poll().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(t.poll().unwrap().reset);
    append(&path, &line(&rec(2, 0.8)));
    assert_eq!(t.poll().unwrap().records, vec![rec(2, 0.8)]);
}
