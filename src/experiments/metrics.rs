//! Reading `metrics.jsonl`: a tolerant whole-file reader, an incremental tail (partial last
//! line, truncation, replacement by rename) that can also start at the end of a long file after
//! a cheap read of its last lines, a streaming reader of a file's first bytes (for what the tail
//! skipped, read off the UI thread), and the per-experiment aggregate the table shows (last
//! train loss, best val L1 and its epoch, step rate for the ETA).

use super::state::{MetricRecord, Split};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
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

    /// Bytes of complete lines consumed so far: every record before this offset has been
    /// returned by a poll (or skipped by [`open_at_end`](Self::open_at_end)).
    pub fn consumed(&self) -> u64 {
        self.offset - self.partial.len() as u64
    }

    /// `(device, inode)` of the file last read, to tell a replaced file from the same one.
    pub fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// A tail positioned at the end of the complete lines of `path`, and the records of its last
    /// `window` bytes (the first, probably cut, line of the window is dropped). Reads at most
    /// `window` bytes however long the file is: the cheap start of a console over long runs,
    /// whose earlier records [`read_prefix`] reads off the UI thread. A missing file gives an
    /// empty tail at offset 0.
    pub fn open_at_end(
        path: impl Into<PathBuf>,
        window: u64,
    ) -> std::io::Result<(Self, Vec<MetricRecord>)> {
        let mut tail = Self::new(path);
        let mut file = match File::open(&tail.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((tail, Vec::new())),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let start = meta.len().saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = Vec::with_capacity((meta.len() - start) as usize);
        (&mut file).take(meta.len() - start).read_to_end(&mut chunk)?;
        let complete = chunk.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // The window's first line is whole only when the window starts the file (or a line).
        let first = if start == 0 {
            0
        } else {
            let mut before = [0u8];
            file.seek(SeekFrom::Start(start - 1))?;
            file.read_exact(&mut before)?;
            if before[0] == b'\n' {
                0
            } else {
                chunk[..complete].iter().position(|&b| b == b'\n').map_or(complete, |i| i + 1)
            }
        };
        let records = chunk[first..complete]
            .split(|&b| b == b'\n')
            .filter_map(|line| MetricRecord::parse_line(&String::from_utf8_lossy(line)))
            .collect();
        tail.offset = start + complete as u64;
        tail.identity = Some((meta.dev(), meta.ino()));
        Ok((tail, records))
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

/// Feed every record of the complete lines in the first `end` bytes of `path` to `each`,
/// streaming (the file is never held whole). Returns the number of corrupt lines skipped, or
/// `None` when the file is no longer the one with `identity` (replaced: its tail starts over
/// anyway).
pub fn read_prefix(
    path: &Path,
    end: u64,
    identity: Option<(u64, u64)>,
    mut each: impl FnMut(&MetricRecord),
) -> std::io::Result<Option<usize>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(if end == 0 { Some(0) } else { None });
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if identity.is_some_and(|id| id != (meta.dev(), meta.ino())) {
        return Ok(None);
    }
    let mut reader = BufReader::with_capacity(1 << 16, file.take(end));
    let mut line = Vec::with_capacity(256);
    let mut skipped = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            break; // cut at `end`: not a complete line of this prefix
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        match MetricRecord::parse_line(&text) {
            Some(r) => each(&r),
            None => skipped += 1,
        }
    }
    Ok(Some(skipped))
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
    /// Number of train records (with a loss).
    pub train_records: usize,
    /// Number of val records (with an L1).
    pub val_records: usize,
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
                    self.train_records += 1;
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
                    self.val_records += 1;
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
        self.rate_since(0).map(|(rate, _)| rate)
    }

    /// Steps per second over the last few train records written at or after `since_ms` (this
    /// run's, when given its start), and the time of the last one.
    pub fn rate_since(&self, since_ms: u64) -> Option<(f64, u64)> {
        let first = self.recent.partition_point(|&(t, _)| t < since_ms);
        let (&(t0, s0), &(t1, s1)) = (self.recent.get(first)?, self.recent.back()?);
        (t1 > t0 && s1 > s0).then(|| ((s1 - s0) as f64 / ((t1 - t0) as f64 / 1000.0), t1))
    }

    /// This summary (of a file's first records) followed by `later` (of the records after them).
    pub fn then(&self, later: &MetricsSummary) -> MetricsSummary {
        let mut out = later.clone();
        out.records += self.records;
        out.train_records += self.train_records;
        out.val_records += self.val_records;
        out.skipped += self.skipped;
        if later.last_loss.is_none() {
            out.last_loss = self.last_loss;
        }
        if later.last_lr.is_none() {
            out.last_lr = self.last_lr;
        }
        if later.records == 0 {
            out.last_step = self.last_step;
            out.last_t = self.last_t;
        }
        if later.last_val.is_none() {
            out.last_val = self.last_val;
        }
        out.best_val = match (self.best_val, later.best_val) {
            (Some(a), Some(b)) => Some(if b.1 < a.1 { b } else { a }),
            (a, b) => a.or(b),
        };
        // The rate window: the earlier records' tail, then the later ones, as pushing would.
        let mut recent = self.recent.clone();
        for &(t, step) in &later.recent {
            if recent.back().is_some_and(|&(_, s)| s >= step) {
                recent.clear();
            }
            recent.push_back((t, step));
            if recent.len() > RATE_WINDOW {
                recent.pop_front();
            }
        }
        out.recent = recent;
        out
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
        writeln!(f, "{}", &line[10..]).unwrap();
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

    #[test]
    fn a_prefix_then_the_rest_equals_the_whole() {
        let records: Vec<MetricRecord> = (1..=200)
            .flat_map(|s| {
                let loss = 1.0 / s as f64 + if s == 37 { -0.5 } else { 0.0 };
                let mut v = vec![train(s, loss)];
                if s % 20 == 0 {
                    v.push(val((s / 20) as usize, s, (s as f64 - 70.0).abs()));
                }
                v
            })
            .collect();
        let mut whole = MetricsSummary::default();
        records.iter().for_each(|r| whole.push(r));
        for cut in [0, 1, 50, 150, records.len()] {
            let (mut a, mut b) = (MetricsSummary::default(), MetricsSummary::default());
            records[..cut].iter().for_each(|r| a.push(r));
            records[cut..].iter().for_each(|r| b.push(r));
            let joined = a.then(&b);
            assert_eq!(
                (joined.records, joined.train_records, joined.val_records),
                (whole.records, whole.train_records, whole.val_records)
            );
            assert_eq!((joined.best_val, joined.last_val), (whole.best_val, whole.last_val));
            assert_eq!((joined.last_loss, joined.last_step), (whole.last_loss, whole.last_step));
            assert_eq!(joined.recent, whole.recent, "cut {cut}");
        }
    }

    #[test]
    fn open_at_end_reads_only_the_last_lines_and_the_prefix_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut text = String::new();
        for s in 1..=500 {
            text.push_str(&train(s, s as f64).to_line());
            text.push('\n');
        }
        text.push_str("{\"t\":5,\"ep"); // a partial last line
        std::fs::write(&path, &text).unwrap();
        let (mut tail, window) = MetricsTail::open_at_end(&path, 1000).unwrap();
        assert!(!window.is_empty() && window.len() < 20, "{} records", window.len());
        assert_eq!(window.last(), Some(&train(500, 500.0)));
        let first = window[0].step;
        assert_eq!(window, (first..=500).map(|s| train(s, s as f64)).collect::<Vec<_>>());
        let mut prefix = Vec::new();
        let skipped =
            read_prefix(&path, tail.consumed(), tail.identity(), |r| prefix.push(r.clone()));
        assert_eq!(skipped.unwrap(), Some(0));
        assert_eq!(prefix, (1..=500).map(|s| train(s, s as f64)).collect::<Vec<_>>());
        // The partial line is read by the next poll once complete.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(f, "\"och\":0}}").unwrap();
        writeln!(f, "{}", train(501, 1.0).to_line()).unwrap();
        let u = tail.poll().unwrap();
        assert_eq!((u.reset, u.skipped, u.records), (false, 1, vec![train(501, 1.0)]));
        // A replaced file is not read as the prefix of the old one.
        std::fs::rename(&path, dir.path().join("old")).unwrap();
        std::fs::write(&path, text).unwrap();
        assert_eq!(read_prefix(&path, 10, tail.identity(), |_| ()).unwrap(), None);
    }
}
