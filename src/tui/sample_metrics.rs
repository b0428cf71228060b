//! Per-sample PixCorr / SSIM of the images the compare view shows, computed with
//! [`eval::metrics::score_pair`](crate::eval::metrics::score_pair) (MindEye's settings, the
//! 425-pixel resize, as `brainscope eval` scores a split) on a worker thread and cached by file
//! and modification time, so drawing never waits for them and a rewritten image is scored
//! again.

use crate::eval::metrics::{PairScore, Resize, load_image01, score_pair};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::SystemTime;

/// A target / reconstruction pair with both files' modification times.
type Key = (PathBuf, PathBuf, Option<SystemTime>, Option<SystemTime>);

/// The cache and its worker.
#[derive(Debug, Default)]
pub struct SampleMetrics {
    done: HashMap<Key, Result<PairScore, String>>,
    pending: HashSet<Key>,
    worker: Option<(Sender<Key>, Receiver<(Key, Result<PairScore, String>)>)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Score one pair from its files (what the worker runs).
pub fn score_files(target: &Path, recon: &Path) -> Result<PairScore, String> {
    let t = load_image01(target).map_err(|e| crate::errors::chain(&e))?;
    let r = load_image01(recon).map_err(|e| crate::errors::chain(&e))?;
    score_pair(t.view(), r.view(), Resize::default()).map_err(|e| crate::errors::chain(&e))
}

impl SampleMetrics {
    /// The scores of `recon` against `target` when computed; otherwise asks the worker and
    /// returns `None` (the view says "…" until [`collect`](Self::collect) picks them up).
    pub fn get(&mut self, target: &Path, recon: &Path) -> Option<&Result<PairScore, String>> {
        let key = (target.to_path_buf(), recon.to_path_buf(), mtime(target), mtime(recon));
        if !self.done.contains_key(&key) && !self.pending.contains(&key) {
            let (tx, _) = self.worker.get_or_insert_with(start_worker);
            if tx.send(key.clone()).is_ok() {
                self.pending.insert(key.clone());
            }
        }
        self.done.get(&key)
    }

    /// Take the finished scores; whether any arrived.
    pub fn collect(&mut self) -> bool {
        let Some((_, rx)) = &self.worker else { return false };
        let mut any = false;
        while let Ok((key, result)) = rx.try_recv() {
            self.pending.remove(&key);
            self.done.insert(key, result);
            any = true;
        }
        any
    }

    /// Whether scores are being computed.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Wait until every requested score is computed (tests and snapshots; at most `timeout`).
    pub fn wait(&mut self, timeout: std::time::Duration) {
        let start = std::time::Instant::now();
        while self.busy() && start.elapsed() < timeout {
            if !self.collect() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

fn start_worker() -> (Sender<Key>, Receiver<(Key, Result<PairScore, String>)>) {
    let (tx, requests) = mpsc::channel::<Key>();
    let (done, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("sample-metrics".into())
        .spawn(move || {
            while let Ok(key) = requests.recv() {
                let result = score_files(&key.0, &key.1);
                if done.send((key, result)).is_err() {
                    break;
                }
            }
        })
        .expect("spawning the sample-metrics thread");
    (tx, rx)
}
