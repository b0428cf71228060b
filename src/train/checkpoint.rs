//! Atomic, verified checkpoints.
//!
//! Layout inside `experiments/<id>/checkpoints/`:
//! ```text
//! step-00000120/           one checkpoint (written as .tmp-step-00000120-<pid>/, then renamed)
//!   manifest.json          format, step, caller metadata, and per file: name, bytes, checksum
//!   model.safetensors ...  the caller's files (model, optimizer state, ...)
//! last -> step-00000120    symlinks, replaced atomically (new link + rename)
//! best -> step-00000100
//! ```
//! The manifest is written last, so a directory without one is incomplete. Loading checks every
//! file's size and checksum: a file cut short or corrupted is reported by name, and
//! [`CheckpointStore::load_latest`] falls back to the newest checkpoint that verifies.
//! Kept on disk: `last`, `best`, and the previous `last` (the fallback).

use crate::experiments::state::write_atomic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Manifest file name inside a checkpoint directory.
pub const MANIFEST: &str = "manifest.json";
/// Manifest format version.
pub const FORMAT: u32 = 1;
/// The low-level model's weights inside a checkpoint directory (the learner writes it, `eval` reads it).
pub const MODEL_FILE: &str = "model.safetensors";
/// Name of the symlink to the newest checkpoint.
pub const LAST: &str = "last";
/// Name of the symlink to the checkpoint with the best validation L1.
pub const BEST: &str = "best";

/// A checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Filesystem error.
    #[error("checkpoint I/O on {path} failed")]
    Io { path: PathBuf, source: std::io::Error },
    /// No manifest: the checkpoint was never completed.
    #[error("{path} is missing: incomplete checkpoint (the trainer was killed while writing it)")]
    MissingManifest { path: PathBuf },
    /// The manifest does not parse.
    #[error("{path} is corrupt: {message}")]
    BadManifest { path: PathBuf, message: String },
    /// A file's size differs from the manifest.
    #[error(
        "checkpoint file {path} is {actual} bytes but its manifest says {expected}: the file was cut short or overwritten"
    )]
    Truncated { path: PathBuf, expected: u64, actual: u64 },
    /// A file's checksum differs from the manifest.
    #[error(
        "checkpoint file {path} fails its checksum ({actual} != {expected} in the manifest): the file is corrupt"
    )]
    Checksum { path: PathBuf, expected: String, actual: String },
    /// The caller's writer failed.
    #[error("cannot write checkpoint files into {dir}: {message}")]
    Write { dir: PathBuf, message: String },
    /// Nothing usable.
    #[error("no valid checkpoint in {dir}: {reasons}")]
    NoneValid { dir: PathBuf, reasons: String },
}

/// One file listed in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the checkpoint directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// [`checksum`] of the contents, hex.
    pub checksum: String,
}

/// `manifest.json`: what a checkpoint holds. `meta` is the caller's (trainer state).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest<M> {
    /// [`FORMAT`].
    pub format: u32,
    /// Global optimizer step of the checkpoint.
    pub step: u64,
    /// Wall-clock time written, ms since the Unix epoch.
    pub created_ms: u64,
    /// Caller metadata.
    pub meta: M,
    /// The files and their checksums.
    pub files: Vec<FileEntry>,
}

/// A verified checkpoint: every file listed in its manifest has the recorded size and checksum.
#[derive(Debug)]
pub struct Loaded<M> {
    /// Its directory (read the files from here).
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest<M>,
}

/// Which links a save updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags {
    /// Point `best` at the new checkpoint too.
    pub best: bool,
}

/// 64-bit checksum (FNV-1a over little-endian 8-byte words, then the tail bytes, then the
/// length), hex. Fast enough for hundreds of MB; meant to catch truncation and corruption, not
/// tampering. [`Checksum`] computes the same value over bytes that arrive in pieces.
pub fn checksum(bytes: &[u8]) -> String {
    let mut c = Checksum::new();
    c.update(bytes);
    c.finish()
}

/// The streaming form of [`checksum`]: the same value for the same bytes however they are split
/// into [`update`](Self::update) calls (also the latent cache's content fingerprint).
#[derive(Debug, Clone)]
pub struct Checksum {
    h: u64,
    pending: [u8; 8],
    n_pending: usize,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// An empty checksum.
    pub fn new() -> Self {
        Self { h: 0xcbf2_9ce4_8422_2325, pending: [0; 8], n_pending: 0, len: 0 }
    }

    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(Self::PRIME);
        self.h ^= self.h >> 29;
    }

    /// Add `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.n_pending > 0 {
            let take = (8 - self.n_pending).min(bytes.len());
            self.pending[self.n_pending..self.n_pending + take].copy_from_slice(&bytes[..take]);
            self.n_pending += take;
            bytes = &bytes[take..];
            if self.n_pending < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.n_pending = 0;
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.n_pending = rest.len();
    }

    /// The checksum of everything added, hex.
    pub fn finish(&self) -> String {
        let mut h = self.h;
        for &b in &self.pending[..self.n_pending] {
            h = (h ^ b as u64).wrapping_mul(Self::PRIME);
        }
        h = (h ^ self.len).wrapping_mul(Self::PRIME);
        format!("{h:016x}")
    }
}

/// The checkpoints folder of one experiment.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

/// Directory name of the checkpoint at `step`.
pub fn dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

fn parse_step(name: &str) -> Option<u64> {
    name.strip_prefix("step-")?.parse().ok()
}

impl CheckpointStore {
    /// The store rooted at `root` (`experiments/<id>/checkpoints`); created on first save.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `last` exists (as a link, even if dangling).
    pub fn has_last(&self) -> bool {
        self.root.join(LAST).symlink_metadata().is_ok()
    }

    /// Write a checkpoint at `step`: `write` fills a fresh temporary directory with the
    /// caller's files (model, optimizer state, ...); their sizes and checksums go into the
    /// manifest, written last; the directory is then renamed into place, `last` (and `best` if
    /// tagged) point at it, and checkpoints no longer referenced are pruned (keeping the
    /// previous `last`).
    pub fn save<M: Serialize>(
        &self,
        step: u64,
        meta: &M,
        write: impl FnOnce(&Path) -> Result<(), String>,
        tags: Tags,
    ) -> Result<PathBuf, CheckpointError> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let name = dir_name(step);
        let tmp = self.root.join(format!(".tmp-{name}-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        write(&tmp).map_err(|message| CheckpointError::Write { dir: tmp.clone(), message })?;
        let mut names: Vec<String> = std::fs::read_dir(&tmp)
            .map_err(io(&tmp))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != MANIFEST)
            .collect();
        names.sort();
        let mut entries = Vec::new();
        for file_name in names {
            let path = tmp.join(&file_name);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
            entries.push(FileEntry {
                name: file_name,
                bytes: bytes.len() as u64,
                checksum: checksum(&bytes),
            });
        }
        let manifest = Manifest {
            format: FORMAT,
            step,
            created_ms: crate::experiments::process::now_ms(),
            meta,
            files: entries,
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| CheckpointError::Io {
            path: tmp.join(MANIFEST),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&tmp.join(MANIFEST), &text).map_err(io(&tmp.join(MANIFEST)))?;
        let previous_last = self.link_target(LAST);
        let target = self.root.join(&name);
        if target.exists() {
            // Same step written again (resumed from an older checkpoint): replace.
            std::fs::remove_dir_all(&target).map_err(io(&target))?;
        }
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        self.set_link(LAST, &name)?;
        if tags.best {
            self.set_link(BEST, &name)?;
        }
        sync_dir(&self.root);
        self.prune(previous_last.as_deref())?;
        Ok(target)
    }

    /// Name of the directory a link points to.
    fn link_target(&self, link: &str) -> Option<String> {
        let t = std::fs::read_link(self.root.join(link)).ok()?;
        Some(t.file_name()?.to_string_lossy().into_owned())
    }

    /// Atomically point `link` at `name` (relative symlink, created beside it then renamed).
    fn set_link(&self, link: &str, name: &str) -> Result<(), CheckpointError> {
        let tmp = self.root.join(format!(".{link}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp).map_err(io(&tmp))?;
        let path = self.root.join(link);
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Remove step directories other than `last`, `best` and `keep`, and stale temp dirs.
    fn prune(&self, keep: Option<&str>) -> Result<(), CheckpointError> {
        let last = self.link_target(LAST);
        let best = self.link_target(BEST);
        let read = std::fs::read_dir(&self.root).map_err(io(&self.root))?;
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let referenced =
                [last.as_deref(), best.as_deref(), keep].contains(&Some(name.as_str()));
            let stale_tmp = name.starts_with(".tmp-step-");
            if (parse_step(&name).is_some() && !referenced) || stale_tmp {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// Read and verify the checkpoint in `dir`.
    pub fn load_dir<M: DeserializeOwned>(dir: &Path) -> Result<Loaded<M>, CheckpointError> {
        let manifest_path = dir.join(MANIFEST);
        let text = match std::fs::read(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CheckpointError::MissingManifest { path: manifest_path });
            }
            Err(e) => return Err(CheckpointError::Io { path: manifest_path, source: e }),
        };
        let manifest: Manifest<M> = serde_json::from_slice(&text).map_err(|e| {
            CheckpointError::BadManifest { path: manifest_path.clone(), message: e.to_string() }
        })?;
        if manifest.format != FORMAT {
            return Err(CheckpointError::BadManifest {
                path: manifest_path,
                message: format!("format {} (this build reads {FORMAT})", manifest.format),
            });
        }
        for entry in &manifest.files {
            let path = dir.join(&entry.name);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            if bytes.len() as u64 != entry.bytes {
                return Err(CheckpointError::Truncated {
                    path,
                    expected: entry.bytes,
                    actual: bytes.len() as u64,
                });
            }
            let actual = checksum(&bytes);
            if actual != entry.checksum {
                return Err(CheckpointError::Checksum {
                    path,
                    expected: entry.checksum.clone(),
                    actual,
                });
            }
        }
        Ok(Loaded { dir: dir.to_path_buf(), manifest })
    }

    /// Load the newest checkpoint that verifies: `last` first, then every other step directory,
    /// newest first. Returns it with the errors of the ones skipped (callers log them), or
    /// `Ok(None)` when there is no checkpoint at all.
    pub fn load_latest<M: DeserializeOwned>(
        &self,
    ) -> Result<Option<(Loaded<M>, Vec<CheckpointError>)>, CheckpointError> {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(last) = self.link_target(LAST) {
            candidates.push(last);
        }
        let mut steps: Vec<(u64, String)> = match std::fs::read_dir(&self.root) {
            Ok(read) => read
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    parse_step(&name).map(|s| (s, name))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(CheckpointError::Io { path: self.root.clone(), source: e }),
        };
        steps.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (_, name) in steps {
            if !candidates.contains(&name) {
                candidates.push(name);
            }
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut errors = Vec::new();
        for name in candidates {
            let dir = self.root.join(&name);
            if !dir.is_dir() {
                errors.push(CheckpointError::MissingManifest { path: dir.join(MANIFEST) });
                continue;
            }
            match Self::load_dir(&dir) {
                Ok(loaded) => return Ok(Some((loaded, errors))),
                Err(e) => errors.push(e),
            }
        }
        let reasons = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
        Err(CheckpointError::NoneValid { dir: self.root.clone(), reasons })
    }

    /// Forget checkpoints newer than `step` (after resuming from an older, valid one): they
    /// belong to a history that is being replaced. `last` is re-pointed at `step`'s checkpoint;
    /// a `best` newer than `step` is removed.
    pub fn rollback_to(&self, step: u64) -> Result<(), CheckpointError> {
        let name = dir_name(step);
        if let Some(best) = self.link_target(BEST)
            && parse_step(&best).is_none_or(|s| s > step)
        {
            let path = self.root.join(BEST);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        if self.root.join(&name).is_dir() {
            self.set_link(LAST, &name)?;
        }
        let read = std::fs::read_dir(&self.root).map_err(io(&self.root))?;
        for entry in read.flatten() {
            let n = entry.file_name().to_string_lossy().into_owned();
            if parse_step(&n).is_some_and(|s| s > step) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// Remove every checkpoint (a fresh start).
    pub fn clear(&self) -> Result<(), CheckpointError> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointError::Io { path: self.root.clone(), source: e })
            }
            _ => Ok(()),
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_checksum_matches_one_shot_for_any_split() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = checksum(&bytes);
        assert_eq!(whole, checksum(&bytes.clone()));
        assert_ne!(whole, checksum(&bytes[..999]));
        for cut in [0, 1, 3, 7, 8, 9, 500, 999, 1000] {
            for piece in [1, 3, 8, 13, 4096] {
                let mut c = Checksum::new();
                c.update(&bytes[..cut]);
                for p in bytes[cut..].chunks(piece) {
                    c.update(p);
                }
                assert_eq!(c.finish(), whole, "cut {cut}, pieces of {piece}");
            }
        }
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Meta {
        epoch: usize,
    }

    fn save(store: &CheckpointStore, step: u64, best: bool) {
        let write = |dir: &Path| {
            std::fs::write(dir.join("model.bin"), vec![step as u8; 1000])
                .map_err(|e| e.to_string())?;
            std::fs::write(dir.join("opt.bin"), b"opt").map_err(|e| e.to_string())
        };
        store.save(step, &Meta { epoch: step as usize }, write, Tags { best }).unwrap();
    }

    #[test]
    fn save_load_keeps_last_best_and_previous() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().join("checkpoints"));
        assert!(store.load_latest::<Meta>().unwrap().is_none());
        save(&store, 10, true);
        save(&store, 20, false);
        save(&store, 30, false);
        let (loaded, skipped) = store.load_latest::<Meta>().unwrap().unwrap();
        assert!(skipped.is_empty());
        assert_eq!((loaded.manifest.step, loaded.manifest.meta.epoch), (30, 30));
        assert_eq!(std::fs::read(loaded.dir.join("model.bin")).unwrap(), vec![30u8; 1000]);
        assert_eq!(loaded.manifest.files.len(), 2);
        let mut names: Vec<_> = std::fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["best", "last", "step-00000010", "step-00000020", "step-00000030"]);
        save(&store, 40, false);
        assert!(
            !store.root().join("step-00000020").exists(),
            "older than previous last and not best: pruned"
        );
    }

    #[test]
    fn truncated_file_is_named_and_previous_checkpoint_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().join("checkpoints"));
        save(&store, 10, true);
        save(&store, 20, false);
        let victim = store.root().join("step-00000020/model.bin");
        let f = std::fs::OpenOptions::new().write(true).open(&victim).unwrap();
        f.set_len(500).unwrap();
        let err =
            CheckpointStore::load_dir::<Meta>(&store.root().join("step-00000020")).unwrap_err();
        assert!(matches!(err, CheckpointError::Truncated { .. }));
        assert!(
            err.to_string().contains("step-00000020/model.bin")
                && err.to_string().contains("cut short"),
            "{err}"
        );
        let (loaded, skipped) = store.load_latest::<Meta>().unwrap().unwrap();
        assert_eq!(loaded.manifest.step, 10);
        assert_eq!(skipped.len(), 1);
        store.rollback_to(10).unwrap();
        assert!(!store.root().join("step-00000020").exists());
        assert_eq!(store.link_target(LAST).as_deref(), Some("step-00000010"));
        assert_eq!(store.link_target(BEST).as_deref(), Some("step-00000010"));
    }

    #[test]
    fn corrupted_bytes_fail_the_checksum_and_missing_manifest_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().join("checkpoints"));
        save(&store, 10, true);
        let victim = store.root().join("step-00000010/model.bin");
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[3] ^= 0xff;
        std::fs::write(&victim, bytes).unwrap();
        let err = store.load_latest::<Meta>().unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        std::fs::remove_file(store.root().join("step-00000010/manifest.json")).unwrap();
        let err =
            CheckpointStore::load_dir::<Meta>(&store.root().join("step-00000010")).unwrap_err();
        assert!(matches!(err, CheckpointError::MissingManifest { .. }));
    }

    #[test]
    fn checksum_depends_on_every_byte_and_length() {
        let a = vec![0u8; 17];
        let mut b = a.clone();
        b[16] = 1;
        assert_ne!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&a[..16]));
        assert_ne!(checksum(&[]), checksum(&[0]));
    }
}
