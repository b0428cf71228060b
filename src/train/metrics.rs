//! Writing `metrics.jsonl`: append one JSON line per record (flushed per line, so a reader or a
//! kill never sees more than one partial line), and cut the history back to a checkpoint's step
//! when a run resumes, so the file stays one continuous history.
//!
//! Reading lives in [`crate::experiments::metrics`].

use crate::experiments::metrics::read_metrics;
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
pub fn truncate_after(path: &Path, step: u64) -> std::io::Result<usize> {
    let (records, skipped) = read_metrics(path)?;
    let keep: Vec<&MetricRecord> = records.iter().filter(|r| r.step <= step).collect();
    let dropped = records.len() - keep.len();
    if dropped == 0 && skipped == 0 {
        return Ok(0);
    }
    let mut text = String::new();
    for r in keep {
        text.push_str(&r.to_line());
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
