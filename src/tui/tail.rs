//! Incremental tailer of an append-only JSON-lines file (`metrics.jsonl`).
//!
//! Keeps the byte offset of the last complete line and reads only what was appended since.
//! A partial last line (the trainer is mid-write) is buffered until its newline arrives. If the
//! file shrinks below the offset (truncation) or its inode changes (replacement by rename), the
//! tailer starts over from byte 0 and says so with [`TailUpdate::reset`], so callers drop what
//! they had accumulated.

use crate::experiments::state::MetricRecord;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What one [`MetricsTailer::poll`] found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TailUpdate {
    /// The file was truncated, replaced or removed: discard earlier records before `records`.
    pub reset: bool,
    /// New complete, well-formed records in file order.
    pub records: Vec<MetricRecord>,
    /// Complete lines that did not parse (skipped).
    pub corrupt: usize,
}

impl TailUpdate {
    /// Whether anything changed for the caller.
    pub fn is_empty(&self) -> bool {
        !self.reset && self.records.is_empty() && self.corrupt == 0
    }
}

/// Tails one metrics file; create once per experiment and call [`poll`](Self::poll) on change.
#[derive(Debug)]
pub struct MetricsTailer {
    path: PathBuf,
    /// Bytes consumed so far (complete lines plus the buffered partial line).
    offset: u64,
    /// Inode of the file the offset belongs to.
    inode: Option<u64>,
    /// Bytes of an unfinished last line.
    partial: Vec<u8>,
}

impl MetricsTailer {
    /// A tailer positioned at the start of `path` (which may not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), offset: 0, inode: None, partial: Vec::new() }
    }

    /// The file being tailed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Read whatever was appended since the last call. A missing file is not an error: it
    /// yields nothing (or a reset, if the file existed before).
    pub fn poll(&mut self) -> std::io::Result<TailUpdate> {
        let mut update = TailUpdate::default();
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.inode.is_some() {
                    self.restart();
                    update.reset = true;
                }
                return Ok(update);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let inode = meta.ino();
        if self.inode.is_some_and(|old| old != inode) || meta.len() < self.offset {
            self.restart();
            update.reset = true;
        }
        self.inode = Some(inode);
        if meta.len() == self.offset {
            return Ok(update);
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::with_capacity((meta.len() - self.offset) as usize);
        file.read_to_end(&mut fresh)?;
        self.offset += fresh.len() as u64;
        let mut buf = std::mem::take(&mut self.partial);
        buf.extend_from_slice(&fresh);
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => 0,
        };
        self.partial = buf.split_off(complete);
        for line in buf.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match std::str::from_utf8(line).ok().and_then(MetricRecord::parse_line) {
                Some(r) => update.records.push(r),
                None => update.corrupt += 1,
            }
        }
        Ok(update)
    }

    fn restart(&mut self) {
        self.offset = 0;
        self.inode = None;
        self.partial.clear();
    }
}
