//! Writing `metrics.jsonl`: append one JSON line per record (flushed per line, so a reader or a
//! kill never sees more than one partial line), and cut the history back to a checkpoint's step
//! when a run resumes, so the file stays one continuous history.
//!
//! Reading lives in [`crate::experiments::metrics`].

use crate::experiments::state::{MetricRecord, write_atomic};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Append-only writer of one experiment's metrics file.
#[derive(Debug)]
pub struct MetricsWriter {
    file: File,
    path: PathBuf,
}

impl MetricsWriter {
    /// Open `path` for appending (created if missing). Call [`truncate_after`] first so a partial
    /// line left by a killed trainer is not glued to the first new record.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    /// Append one record as a line and flush it to the file.
    pub fn append(&mut self, record: &MetricRecord) -> std::io::Result<()> {
        let mut line = record.to_line();
        line.push('\n');
        // One write call per line: O_APPEND makes it land whole at the end.
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Keep only the records with `step <= step` (and drop corrupt or partial lines), rewriting the
/// file atomically when anything is dropped. Returns the number of records dropped. Used at
/// every (re)start: a resume from a checkpoint at step S forgets what happened after S.
///
/// Kept lines are written back byte for byte, never re-serialised: a float parsed and printed
/// again can come back one ULP off (`2.4090659618377686` -> `2.409065961837769`), and a resumed
/// history must be the same bytes as an uninterrupted one.
pub fn truncate_after(path: &Path, step: u64) -> std::io::Result<usize> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut keep = String::with_capacity(text.len());
    let (mut dropped, mut skipped) = (0usize, 0usize);
    for line in text.split_inclusive('\n') {
        match MetricRecord::parse_line(line) {
            Some(r) if r.step <= step => {
                keep.push_str(line.trim_end_matches(['\n', '\r']));
                keep.push('\n');
            }
            Some(_) => dropped += 1,
            None => skipped += 1,
        }
    }
    if dropped == 0 && skipped == 0 && keep.len() == bytes.len() {
        return Ok(0);
    }
    write_atomic(path, keep.as_bytes())?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::metrics::read_metrics;
    use crate::experiments::state::Split;

    fn rec(step: u64) -> MetricRecord {
        MetricRecord {
            t: step,
            epoch: 0,
            step,
            split: Split::Train,
            loss: Some(1.0 / step as f64),
            l1: None,
            lr: Some(1e-3),
        }
    }

    #[test]
    fn append_then_truncate_keeps_a_continuous_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut w = MetricsWriter::open(&path).unwrap();
        for s in 1..=5 {
            w.append(&rec(s)).unwrap();
        }
        drop(w);
        // A killed writer left half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"t\":6,\"epo").unwrap();
        assert_eq!(truncate_after(&path, 3).unwrap(), 2);
        let mut w = MetricsWriter::open(&path).unwrap();
        w.append(&rec(4)).unwrap();
        let (records, skipped) = read_metrics(&path).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(records.iter().map(|r| r.step).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(truncate_after(&path, 10).unwrap(), 0);
    }

    #[test]
    fn kept_lines_are_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        // serde_json reads this float one ULP off; re-serialising would change the line.
        let kept = "{\"t\":1,\"epoch\":0,\"step\":1,\"split\":\"train\",\"loss\":2.4090659618377686,\"lr\":0.00012000000000000002}\n";
        let later =
            "{\"t\":2,\"epoch\":0,\"step\":2,\"split\":\"train\",\"loss\":1.0,\"lr\":0.1}\n";
        std::fs::write(&path, format!("{kept}{later}{{\"t\":3,")).unwrap();
        assert_eq!(truncate_after(&path, 1).unwrap(), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), kept);
        // A last line without its newline is kept, completed.
        std::fs::write(&path, kept.trim_end()).unwrap();
        assert_eq!(truncate_after(&path, 1).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), kept);
        assert_eq!(truncate_after(&dir.path().join("missing.jsonl"), 1).unwrap(), 0);
    }
}
