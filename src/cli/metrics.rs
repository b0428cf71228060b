//! `brainscope metrics --targets DIR --recons DIR [--resize 425|none] [--json]`: PixCorr and SSIM
//! of any folder of reconstructions against a folder of targets (this project's or another's).

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::eval::metrics::{self, PairScore, Resize};

/// Arguments of `brainscope metrics`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Images are paired by sorted file name: the first target with the first reconstruction, and so on \
(both folders must hold the same number). Every file not starting with '.' must be a PNG image \
(sub-folders are skipped); in a folder that mixes kinds, such as experiments/<id>/recon/epoch-NNN/ \
(sample-XX-target.png beside sample-XX-lowlevel.png), pick files with --target-match / \
--recon-match:

  brainscope metrics --targets experiments/92/recon/epoch-004 --target-match target \\
                     --recons experiments/92/recon/epoch-004 --recon-match lowlevel

Definitions are MindEye's (the paper's code has no pixel metrics). Each target is resized to \
short side 425 (torchvision Resize(425, BILINEAR); antialiased when shrinking, as torchvision >= \
0.17); each reconstruction is resized straight to its target's final size, so pairs of different \
sizes are compared in the target's frame. PixCorr is Pearson r over the RGB pixels (undefined, \
printed as NaN / JSON null, when an image is constant; the mean is then NaN too, as numpy's). SSIM \
is scikit-image's structural_similarity on rgb2gray images with gaussian_weights=True, sigma=1.5, \
use_sample_covariance=False, data_range=1.0 (images need 11 px a side; --resize none keeps sizes).

--json prints {\"pixcorr\": mean, \"ssim\": mean, \"per_image\": [{\"target\", \"recon\", \"pixcorr\", \
\"ssim\"}]}.")]
pub struct Args {
    /// Folder of target (ground-truth) images.
    #[arg(long)]
    pub targets: PathBuf,
    /// Folder of reconstructions, paired with the targets by sorted file name.
    #[arg(long)]
    pub recons: PathBuf,
    /// Short side in pixels to resize to before scoring (MindEye: 425), or `none`.
    #[arg(long, default_value = "425", value_parser = parse_resize)]
    pub resize: Resize,
    /// Only the target files whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub target_match: Option<String>,
    /// Only the reconstruction files whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub recon_match: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_resize(s: &str) -> Result<Resize, String> {
    s.parse::<Resize>().map_err(|e| e.to_string())
}

/// One pair in the `--json` report.
#[derive(Debug, Serialize)]
pub struct PerImage {
    /// Target image path.
    pub target: String,
    /// Reconstruction image path.
    pub recon: String,
    /// Pearson r over RGB pixels (`null` when undefined: a constant image).
    pub pixcorr: f64,
    /// Grey SSIM.
    pub ssim: f64,
}

/// The `--json` report: means over pairs and every pair.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Mean PixCorr (`null` when any pair's is undefined, as numpy's mean gives NaN).
    pub pixcorr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// Every pair, in pairing order.
    pub per_image: Vec<PerImage>,
}

/// Score every pair of the two folders (library errors, with their file names).
pub fn evaluate(args: &Args, bar: &ProgressBar) -> anyhow::Result<Report> {
    let pairs = metrics::pair_folders(
        &args.targets,
        &args.recons,
        args.target_match.as_deref(),
        args.recon_match.as_deref(),
    )?;
    bar.set_length(pairs.len() as u64);
    let scores: Vec<PairScore> = pairs
        .par_iter()
        .map(|(t, r)| {
            let score = score_files(t, r, args.resize);
            bar.inc(1);
            score
        })
        .collect::<Result<_, _>>()?;
    let per_image: Vec<PerImage> = pairs
        .iter()
        .zip(&scores)
        .map(|((t, r), s)| PerImage {
            target: t.display().to_string(),
            recon: r.display().to_string(),
            pixcorr: s.pixcorr,
            ssim: s.ssim,
        })
        .collect();
    let pix: Vec<f64> = scores.iter().map(|s| s.pixcorr).collect();
    let ssim: Vec<f64> = scores.iter().map(|s| s.ssim).collect();
    Ok(Report { pixcorr: metrics::mean(&pix), ssim: metrics::mean(&ssim), per_image })
}

fn score_files(target: &Path, recon: &Path, resize: Resize) -> anyhow::Result<PairScore> {
    let t = metrics::load_image01(target)?;
    let r = metrics::load_image01(recon)?;
    metrics::score_pair(t.view(), r.view(), resize)
        .with_context(|| format!("scoring {} against {}", recon.display(), target.display()))
}

/// Run `brainscope metrics`.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Drawn on stderr only when it is a terminal (indicatif hides itself otherwise).
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} pairs  {elapsed} (eta {eta})")
            .expect("valid template"),
    );
    let report = evaluate(&args, &bar)?;
    bar.finish_and_clear();
    let undefined: Vec<&str> =
        report.per_image.iter().filter(|p| p.pixcorr.is_nan()).map(|p| p.recon.as_str()).collect();
    if !undefined.is_empty() {
        eprintln!(
            "warning: PixCorr is undefined (NaN) for {} pair(s) with a constant image, so its \
             mean is NaN: {}",
            undefined.len(),
            undefined.join(", ")
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, &args));
    }
    Ok(())
}

/// The readable table: one row per pair, then the means.
fn render(report: &Report, args: &Args) -> String {
    let name = |p: &str| {
        Path::new(p).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    };
    let rows: Vec<(String, String)> =
        report.per_image.iter().map(|p| (name(&p.target), name(&p.recon))).collect();
    let wt = rows.iter().map(|r| r.0.len()).chain([6]).max().unwrap_or(6);
    let wr = rows.iter().map(|r| r.1.len()).chain([5]).max().unwrap_or(5);
    let mut out = format!(
        "targets {}\nrecons  {}\nresize  {}\n\n{:<wt$}  {:<wr$}  {:>8}  {:>8}\n",
        args.targets.display(),
        args.recons.display(),
        match args.resize {
            Resize::None => "none (the target's size)".to_string(),
            Resize::ShortSide(n) => format!("short side {n} px, bilinear"),
        },
        "target",
        "recon",
        "PixCorr",
        "SSIM"
    );
    for ((t, r), p) in rows.iter().zip(&report.per_image) {
        out += &format!("{t:<wt$}  {r:<wr$}  {:>8.4}  {:>8.4}\n", p.pixcorr, p.ssim);
    }
    out += &format!(
        "{:<w$}  {:>8.4}  {:>8.4}\n",
        format!("mean of {} pair(s)", rows.len()),
        report.pixcorr,
        report.ssim,
        w = wt + wr + 2
    );
    out
}
