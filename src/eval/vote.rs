//! `brainscope vote`: pick, per sample, the experiment whose reconstruction wins, from the final
//! reconstructions `eval` wrote (`recon/final-<split>/`).
//!
//! Rules ([`VoteRule`]), on L2-normalised CLIP image embeddings:
//! - `consensus`: the experiment whose low-level embedding is closest (cosine) to the mean of
//!   the other experiments' low-level embeddings of the same sample (a sample only one
//!   experiment has is won by it unopposed, with no score). With two experiments the two
//!   cosines are equal, so the lower id wins: consensus needs three or more to discriminate.
//! - `paper`: the seed code's rule, cos(CLIP(low-level), CLIP(high-level)) of each
//!   experiment's own pair; the highest wins. Needs the high-level images of `brainscope recon`.
//!
//! Ties go to the lowest id. Experiments lacking a sample's images are skipped for that sample
//! and listed. Samples are aligned by dataset row: experiments whose sample `i` is a different
//! row (their own val split, different seeds) are refused. The paper voted on training images;
//! the probe split (the default) holds the same held-out rows in every experiment, which is
//! what makes the vote fair.

use crate::eval::clip_features::{ClipImages, read_rgb};
use crate::eval::metrics::cosine_similarity_rows;
use crate::eval::progress::Progress;
use crate::experiments::config::CONFIG_FILE;
use crate::experiments::process::now_ms;
use crate::experiments::state::{
    EvalSplit, RunPaths, SampleVote, VOTES_FILE, VoteRecord, VoteRule, files, recon,
    recon_file_name, write_atomic,
};
use crate::imageio::ImageIoError;
use crate::models::clip::ClipError;
use burn::prelude::*;
use image::RgbImage;
use ndarray::{Array1, ArrayView1};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why a vote could not run. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum VoteError {
    /// Fewer than two experiments.
    #[error(
        "a vote compares experiments: give at least 2 ids, got {}{}",
        .ids.len(),
        id_list(.ids)
    )]
    TooFew {
        /// The ids given.
        ids: Vec<String>,
    },
    /// No such experiment.
    #[error(
        "no experiment {id} in {dir} (no {CONFIG_FILE} in its folder); `brainscope status --dir \
         {dir}` lists them"
    )]
    Unknown {
        /// The id.
        id: String,
        /// The experiments folder.
        dir: PathBuf,
    },
    /// An experiment has no final reconstructions of the split.
    #[error(
        "{index} not found: experiment {id} has no final reconstructions of the {split} split; \
         run `brainscope eval {id} --split {split}` first"
    )]
    NotEvaluated {
        /// The experiment id.
        id: String,
        /// The missing `samples.json`.
        index: PathBuf,
        /// The split.
        split: &'static str,
    },
    /// A `samples.json` that cannot be read.
    #[error("{path} is not a readable samples index ({message}); rerun `brainscope eval {id}`")]
    BadIndex {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
        /// The experiment id.
        id: String,
    },
    /// Experiments whose sample `i` is a different dataset row.
    #[error(
        "sample {sample} is a different image in different experiments ({rows}): their {split} \
         samples are not aligned, so they cannot be voted on together; vote on --split probe \
         (the same held-out rows in every experiment)"
    )]
    RowMismatch {
        /// The sample index.
        sample: usize,
        /// `id: row N` per experiment.
        rows: String,
        /// The split.
        split: &'static str,
    },
    /// `--rule paper` without high-level images.
    #[error(
        "--rule paper compares each experiment's low-level and high-level reconstructions, but \
         no sample-XX-highlevel.png is in recon/final-{split}/ of {ids}; `brainscope recon ID \
         --split {split}` makes them (or vote with --rule consensus)"
    )]
    NoHighlevel {
        /// The experiments.
        ids: String,
        /// The split.
        split: &'static str,
    },
    /// CLIP could not be loaded or run.
    #[error(transparent)]
    Clip(#[from] ClipError),
    /// An image could not be read.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// votes.json could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

fn id_list(ids: &[String]) -> String {
    if ids.is_empty() { String::new() } else { format!(" ({})", ids.join(", ")) }
}

/// What to vote on.
#[derive(Debug, Clone)]
pub struct VoteRequest {
    /// The experiments folder (`votes.json` goes there).
    pub experiments_dir: PathBuf,
    /// Experiment ids (folder names).
    pub ids: Vec<String>,
    /// Which final reconstructions.
    pub split: EvalSplit,
    /// The rule.
    pub rule: VoteRule,
    /// CLIP folder.
    pub clip: PathBuf,
    /// Where CLIP runs.
    pub device: Device,
}

/// One entry of `recon/final-<split>/samples.json` (the fields a vote needs).
#[derive(Debug, Deserialize)]
struct IndexEntry {
    sample: usize,
    row: usize,
}

#[derive(Debug, Deserialize)]
struct Index {
    samples: Vec<IndexEntry>,
}

/// One experiment's final reconstructions.
struct Entrant {
    id: String,
    dir: PathBuf,
    /// sample -> dataset row.
    rows: BTreeMap<usize, usize>,
}

impl Entrant {
    fn image(&self, sample: usize, kind: &str) -> Option<PathBuf> {
        let path = self.dir.join(recon_file_name(sample, kind));
        path.is_file().then_some(path)
    }
}

/// Numeric ids first in numeric order, then the rest by name.
fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

fn read_entrant(experiments_dir: &Path, id: &str, split: EvalSplit) -> Result<Entrant, VoteError> {
    let exp = experiments_dir.join(id);
    if !exp.join(CONFIG_FILE).is_file() {
        return Err(VoteError::Unknown { id: id.into(), dir: experiments_dir.into() });
    }
    let dir = RunPaths::new(&exp).recon_final(split);
    let index = dir.join(files::RECON_INDEX);
    let bytes = match std::fs::read(&index) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VoteError::NotEvaluated { id: id.into(), index, split: split.name() });
        }
        Err(e) => {
            return Err(VoteError::BadIndex { path: index, message: e.to_string(), id: id.into() });
        }
    };
    let parsed: Index = serde_json::from_slice(&bytes).map_err(|e| VoteError::BadIndex {
        path: index.clone(),
        message: e.to_string(),
        id: id.into(),
    })?;
    let rows = parsed.samples.iter().map(|e| (e.sample, e.row)).collect();
    Ok(Entrant { id: id.into(), dir, rows })
}

/// The winner among `scores` (in id order): the highest; ties (and NaN) go to the lowest id.
pub fn winner<'a>(scores: impl IntoIterator<Item = (&'a str, f64)>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for (id, s) in scores {
        if best.is_none_or(|(_, b)| s > b || (b.is_nan() && !s.is_nan())) {
            best = Some((id, s));
        }
    }
    best.map(|(id, _)| id)
}

/// Cosine of two embedding rows.
fn cosine(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    let a = a.insert_axis(ndarray::Axis(0));
    let b = b.insert_axis(ndarray::Axis(0));
    cosine_similarity_rows(a, b).expect("same width")[0]
}

/// Run the vote (reads images, runs CLIP; writes nothing: see [`write_votes`]).
pub fn vote(request: &VoteRequest, progress: &Progress) -> Result<VoteRecord, VoteError> {
    let mut ids: Vec<String> = request.ids.clone();
    ids.sort_by(|a, b| id_order(a, b));
    ids.dedup();
    if ids.len() < 2 {
        return Err(VoteError::TooFew { ids });
    }
    let split = request.split;
    let entrants: Vec<Entrant> = ids
        .iter()
        .map(|id| read_entrant(&request.experiments_dir, id, split))
        .collect::<Result<_, _>>()?;

    // Align by dataset row.
    let samples: BTreeSet<usize> = entrants.iter().flat_map(|e| e.rows.keys().copied()).collect();
    let mut sample_rows = BTreeMap::new();
    for &s in &samples {
        let have: Vec<(&str, usize)> =
            entrants.iter().filter_map(|e| e.rows.get(&s).map(|&r| (e.id.as_str(), r))).collect();
        if have.iter().any(|&(_, r)| r != have[0].1) {
            let rows = have.iter().map(|(id, r)| format!("{id}: row {r}")).collect::<Vec<_>>();
            return Err(VoteError::RowMismatch {
                sample: s,
                rows: rows.join(", "),
                split: split.name(),
            });
        }
        sample_rows.insert(s, have[0].1);
    }
    if request.rule == VoteRule::Paper
        && !entrants.iter().any(|e| samples.iter().any(|&s| e.image(s, recon::HIGHLEVEL).is_some()))
    {
        return Err(VoteError::NoHighlevel { ids: ids.join(", "), split: split.name() });
    }

    // Which images each experiment has per sample.
    let kinds: &[&str] = match request.rule {
        VoteRule::Consensus => &[recon::LOWLEVEL],
        VoteRule::Paper => &[recon::LOWLEVEL, recon::HIGHLEVEL],
    };
    let mut wanted: Vec<(usize, usize, Vec<PathBuf>)> = Vec::new(); // (sample, entrant, paths)
    for &s in &samples {
        for (i, e) in entrants.iter().enumerate() {
            if !e.rows.contains_key(&s) {
                continue;
            }
            let paths: Option<Vec<PathBuf>> = kinds.iter().map(|k| e.image(s, k)).collect();
            if let Some(paths) = paths {
                wanted.push((s, i, paths));
            }
        }
    }

    progress.note(&format!("loading CLIP from {}", request.clip.display()));
    let clip = ClipImages::load(&request.clip, &request.device)?;
    let images: Vec<RgbImage> = wanted
        .iter()
        .flat_map(|(_, _, paths)| paths.iter())
        .map(|p| read_rgb(p))
        .collect::<Result<_, _>>()?;
    progress.stage("CLIP embeddings", images.len());
    let embeds = clip.embed(&images, |n| progress.inc(n))?; // [images, d]
    progress.finish();

    // (sample, entrant) -> embedding rows (low, high).
    let mut by_sample: BTreeMap<usize, Vec<(usize, Vec<usize>)>> = BTreeMap::new();
    let mut next = 0;
    for (s, i, paths) in &wanted {
        let rows: Vec<usize> = (next..next + paths.len()).collect();
        next += paths.len();
        by_sample.entry(*s).or_default().push((*i, rows));
    }

    let mut votes = Vec::new();
    for &s in &samples {
        let present = by_sample.remove(&s).unwrap_or_default();
        let skipped: Vec<String> = entrants
            .iter()
            .enumerate()
            .filter(|(i, _)| !present.iter().any(|(j, _)| j == i))
            .map(|(_, e)| e.id.clone())
            .collect();
        if present.is_empty() {
            continue;
        }
        let mut scores = BTreeMap::new();
        match request.rule {
            VoteRule::Paper => {
                for (i, rows) in &present {
                    let low = embeds.row(rows[0]);
                    let high = embeds.row(rows[1]);
                    scores.insert(entrants[*i].id.clone(), cosine(low, high));
                }
            }
            VoteRule::Consensus if present.len() >= 2 => {
                let n = present.len();
                for (i, rows) in &present {
                    let mut mean = Array1::<f32>::zeros(embeds.ncols());
                    for (j, other) in &present {
                        if j != i {
                            mean += &embeds.row(other[0]);
                        }
                    }
                    mean /= (n - 1) as f32;
                    scores
                        .insert(entrants[*i].id.clone(), cosine(embeds.row(rows[0]), mean.view()));
                }
            }
            VoteRule::Consensus => {}
        }
        let order = present.iter().map(|(i, _)| entrants[*i].id.as_str());
        let win = if scores.is_empty() {
            order.clone().next().expect("present is not empty").to_string()
        } else {
            winner(order.map(|id| (id, scores[id]))).expect("scores").to_string()
        };
        votes.push(SampleVote { sample: s, row: sample_rows[&s], winner: win, scores, skipped });
    }
    Ok(VoteRecord {
        rule: request.rule,
        split,
        experiments: ids,
        clip: request.clip.display().to_string(),
        votes,
        t: now_ms(),
    })
}

/// Write `<experiments>/votes.json` atomically.
pub fn write_votes(experiments_dir: &Path, record: &VoteRecord) -> Result<PathBuf, VoteError> {
    let path = experiments_dir.join(VOTES_FILE);
    let mut text = serde_json::to_string_pretty(record).expect("json");
    text.push('\n');
    write_atomic(&path, text.as_bytes())
        .map_err(|source| VoteError::Write { path: path.clone(), source })?;
    Ok(path)
}

/// Wins per experiment (every experiment listed, ascending by id).
pub fn wins(record: &VoteRecord) -> Vec<(String, usize)> {
    record
        .experiments
        .iter()
        .map(|id| (id.clone(), record.votes.iter().filter(|v| &v.winner == id).count()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_lowest_id_and_nan_never_wins() {
        assert_eq!(winner([("7", 0.5), ("8", 0.5)]), Some("7"));
        assert_eq!(winner([("7", 0.4), ("8", 0.5)]), Some("8"));
        assert_eq!(winner([("7", f64::NAN), ("8", 0.1)]), Some("8"));
        assert_eq!(winner(std::iter::empty()), None);
    }

    #[test]
    fn ids_sort_numerically() {
        let mut ids = vec!["100", "92", "b", "97", "a"];
        ids.sort_by(|a, b| id_order(a, b));
        assert_eq!(ids, ["92", "97", "100", "a", "b"]);
    }
}
