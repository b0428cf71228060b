//! Reading `metrics.jsonl`: a tolerant whole-file reader, an incremental tail (partial last
//! line, truncation, replacement by rename), and the per-experiment aggregate the table shows
//! (last train loss, best val L1 and its epoch, step rate for the ETA).

use super::state::{MetricRecord, Split};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Every complete, parseable record of a metrics file, plus the number of lines skipped
/// (corrupt lines and a partial last line). A missing file reads as empty.
pub fn read_metrics(path: &Path) -> std::io::Result<(Vec<MetricRecord>, usize)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut records = Vec::new();
    let mut skipped = 0;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        skipped += 1; // partial last line (writer mid-line or killed)
    }
    for line in bytes[..complete].split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() {
            continue;
        }
        match MetricRecord::parse_line(&text) {
            Some(r) => records.push(r),
            None => skipped += 1,
        }
    }
    Ok((records, skipped))
}

/// New records found by one [`MetricsTail::poll`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TailUpdate {
    /// The file was truncated or replaced since the last poll: forget earlier records; `records`
    /// then holds the whole new file.
    pub reset: bool,
    /// Complete records appended since the last poll, in file order.
    pub records: Vec<MetricRecord>,
    /// Complete lines that did not parse (skipped).
    pub skipped: usize,
}

impl TailUpdate {
    /// Whether anything changed for the caller.
    pub fn is_empty(&self) -> bool {
        !self.reset && self.records.is_empty() && self.skipped == 0
    }
}

/// Incremental reader of one `metrics.jsonl`: each [`poll`](Self::poll) returns only what was
/// appended since the previous one. Holds back a partial last line until its newline arrives,
/// and starts over when the file shrinks or is replaced (the trainer rewrites it by rename
/// when it resumes from a checkpoint).
#[derive(Debug)]
pub struct MetricsTail {
    path: PathBuf,
    offset: u64,
    identity: Option<(u64, u64)>,
    partial: Vec<u8>,
}

impl MetricsTail {
    /// A tail positioned at the start of `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), offset: 0, identity: None, partial: Vec::new() }
    }

    /// The file being tailed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes consumed so far (complete lines plus a buffered partial line).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Read what was appended since the last poll.
    pub fn poll(&mut self) -> std::io::Result<TailUpdate> {
        let mut update = TailUpdate::default();
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.identity.is_some() || self.offset > 0 {
                    update.reset = true;
                    self.offset = 0;
                    self.identity = None;
                    self.partial.clear();
                }
                return Ok(update);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let identity = (meta.dev(), meta.ino());
        if self.identity.is_some_and(|id| id != identity) || meta.len() < self.offset {
            update.reset = true;
            self.offset = 0;
            self.partial.clear();
        }
        self.identity = Some(identity);
        if meta.len() == self.offset {
            return Ok(update);
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut chunk = Vec::with_capacity((meta.len() - self.offset) as usize);
        file.read_to_end(&mut chunk)?;
        self.offset += chunk.len() as u64;
        self.partial.extend_from_slice(&chunk);
        let complete = self.partial.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in self.partial[..complete].split(|&b| b == b'\n') {
            let text = String::from_utf8_lossy(line);
            if text.trim().is_empty() {
                continue;
            }
            match MetricRecord::parse_line(&text) {
                Some(r) => update.records.push(r),
                None => update.skipped += 1,
            }
        }
        self.partial.drain(..complete);
        Ok(update)
    }
}

/// How many recent train records the step rate (ETA) is computed over.
const RATE_WINDOW: usize = 64;

/// Running aggregate of one experiment's metrics.
#[derive(Debug, Clone, Default)]
pub struct MetricsSummary {
    /// Loss of the latest train record.
    pub last_loss: Option<f64>,
    /// Learning rate of the latest train record.
    pub last_lr: Option<f64>,
    /// Step of the latest record.
    pub last_step: u64,
    /// Time (ms) of the latest record.
    pub last_t: Option<u64>,
    /// Best (lowest) validation L1 and the epoch (0-based) it was reached at.
    pub best_val: Option<(usize, f64)>,
    /// Latest validation L1 and its epoch.
    pub last_val: Option<(usize, f64)>,
    /// Number of train and val records seen.
    pub records: usize,
    /// Lines skipped as corrupt.
    pub skipped: usize,
    recent: VecDeque<(u64, u64)>,
}

impl MetricsSummary {
    /// Fold one record in.
    pub fn push(&mut self, r: &MetricRecord) {
        self.records += 1;
        self.last_step = r.step;
        self.last_t = Some(r.t);
        match r.split {
            Split::Train => {
                if let Some(loss) = r.loss {
                    self.last_loss = Some(loss);
                }
                if r.lr.is_some() {
                    self.last_lr = r.lr;
                }
                // A step counter going backwards means a new history; restart the rate window.
                if self.recent.back().is_some_and(|&(_, s)| s >= r.step) {
                    self.recent.clear();
                }
                self.recent.push_back((r.t, r.step));
                if self.recent.len() > RATE_WINDOW {
                    self.recent.pop_front();
                }
            }
            Split::Val => {
                if let Some(l1) = r.l1 {
                    self.last_val = Some((r.epoch, l1));
                    if self.best_val.is_none_or(|(_, best)| l1 < best) {
                        self.best_val = Some((r.epoch, l1));
                    }
                }
            }
        }
    }

    /// Apply a tail update (a reset clears the aggregate first).
    pub fn apply(&mut self, update: &TailUpdate) {
        if update.reset {
            *self = Self::default();
        }
        self.skipped += update.skipped;
        for r in &update.records {
            self.push(r);
        }
    }

    /// Recent training speed in steps per second, from the last few train records.
    pub fn steps_per_sec(&self) -> Option<f64> {
        let (&(t0, s0), &(t1, s1)) = (self.recent.front()?, self.recent.back()?);
        (t1 > t0 && s1 > s0).then(|| (s1 - s0) as f64 / ((t1 - t0) as f64 / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn train(step: u64, loss: f64) -> MetricRecord {
        MetricRecord {
            t: step * 100,
            epoch: 0,
            step,
            split: Split::Train,
            loss: Some(loss),
            l1: None,
            lr: Some(1e-4),
        }
    }
    fn val(epoch: usize, step: u64, l1: f64) -> MetricRecord {
        MetricRecord {
            t: step * 100,
            epoch,
            step,
            split: Split::Val,
            loss: None,
            l1: Some(l1),
            lr: None,
        }
    }

    #[test]
    fn read_skips_corrupt_and_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let text = format!(
            "{}\nnot json\n{}\n{{\"t\":1,\"ep",
            train(1, 0.5).to_line(),
            val(0, 1, 0.4).to_line()
        );
        std::fs::write(&path, text).unwrap();
        let (records, skipped) = read_metrics(&path).unwrap();
        assert_eq!(records, vec![train(1, 0.5), val(0, 1, 0.4)]);
        assert_eq!(skipped, 2);
        assert_eq!(read_metrics(&dir.path().join("absent")).unwrap().0.len(), 0);
    }

    #[test]
    fn tail_holds_partial_line_and_detects_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut tail = MetricsTail::new(&path);
        assert!(tail.poll().unwrap().records.is_empty());

        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let line = train(1, 0.9).to_line();
        write!(f, "{}\n{}", line, &line[..10]).unwrap();
        let u = tail.poll().unwrap();
        assert_eq!((u.reset, u.records.len()), (false, 1));
        write!(f, "{}\n", &line[10..]).unwrap();
        let u = tail.poll().unwrap();
        assert_eq!(u.records, vec![train(1, 0.9)]);

        // Replaced by rename (what a resume does): reset, then the whole new file.
        let tmp = dir.path().join("new");
        std::fs::write(&tmp, format!("{}\n", train(1, 0.7).to_line())).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let u = tail.poll().unwrap();
        assert!(u.reset);
        assert_eq!(u.records, vec![train(1, 0.7)]);
    }

    #[test]
    fn summary_tracks_best_val_and_rate() {
        let mut s = MetricsSummary::default();
        for r in [
            train(1, 0.9),
            train(2, 0.8),
            val(0, 2, 0.5),
            train(3, 0.7),
            train(4, 0.6),
            val(1, 4, 0.6),
        ] {
            s.push(&r);
        }
        assert_eq!(s.last_loss, Some(0.6));
        assert_eq!(s.best_val, Some((0, 0.5)));
        assert_eq!(s.last_val, Some((1, 0.6)));
        assert!((s.steps_per_sec().unwrap() - 10.0).abs() < 1e-9);
    }
}
