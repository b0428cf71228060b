//! `brainscope eval ID [--split probe|val|train] [--limit N] [--epoch E] [--clip DIR]
//! [--resize 425|none] [--json]`: score an experiment's checkpoint (library:
//! [`crate::eval::evaluate`]).

use std::path::{Path, PathBuf};

use crate::eval::evaluate::{EvalRequest, evaluate};
use crate::eval::metrics::Resize;
use crate::eval::progress::Progress;
use crate::experiments::registry::find;
use crate::experiments::state::{EvalRecord, EvalSplit};
use crate::models::clip::CLIP_SOURCES;

/// The CLIP folder looked for when `--clip` is not given, relative to the project folder.
pub const DEFAULT_CLIP: &str = "weights/clip-vit-large-patch14";

/// `--help` text.
pub const LONG_ABOUT: &str = "\
Score an experiment's checkpoint (the last one, or --epoch E: the one that ended 0-based epoch E)
on the rows of a split: the low-level model predicts their latents, the experiment's VAE decodes
them, and the reconstructions are compared with the stimuli.

Needs: a trained experiment (a checkpoint in experiments/<id>/checkpoints/ made by
`brainscope train ID`), its dataset and VAE (experiment.toml [data]). Optional: a CLIP folder (transformers
CLIPModel or CLIPVisionModelWithProjection, vision tower only) for the CLIP numbers: --clip DIR,
else weights/clip-vit-large-patch14 of the project when it exists (see weights/README.md; get it
from CLIP_SOURCES). Without CLIP those numbers are absent (JSON null), never 0.

Splits: probe (default) = the dataset's probe rows ([data] probe), held out of every experiment's
train/val split and the same in all of them: the numbers to compare across experiments; val / train
= the experiment's own seeded split.

Numbers: latent L1 (predicted vs cached target latents); PixCorr and SSIM as MindEye (after
--resize, default short side 425, bilinear), on the written PNG pairs; 2-way identification on the
pixels; with CLIP: 2-way identification on CLIP image embeddings, CLIP similarity to the target
image (the real stimulus: the paper's Table III) and to the VAE-decoded target latent (what the
seed code compared: the ceiling of the low-level model through this VAE).

Writes: experiments/<id>/recon/final-<split>/ (samples.json, sample-XX-target.png,
sample-XX-lowlevel.png; replaced as a whole, keeping the high-level images of `brainscope recon`
only when the checkpoint and rows are unchanged) and experiments/<id>/eval/<split>.json, the
record printed by --json. Progress goes to stderr, results to stdout.";

/// The `--help` text with the CLIP download sources filled in.
pub fn long_about() -> String {
    LONG_ABOUT.replace("CLIP_SOURCES", CLIP_SOURCES)
}

/// Arguments of `brainscope eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment id (folder name under --dir).
    pub id: String,
    /// Experiments folder.
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// Which rows: the shared probe set, or the experiment's own val / train split.
    #[arg(long, value_enum, default_value = "probe")]
    pub split: EvalSplit,
    /// Only the first N rows of the split (at least 2).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Evaluate the checkpoint that ended this 0-based epoch (default: the last checkpoint).
    #[arg(long, value_name = "E")]
    pub epoch: Option<usize>,
    /// CLIP hub folder (default: weights/clip-vit-large-patch14 when it exists).
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// Short side in pixels to resize to before PixCorr / SSIM (MindEye: 425), or `none`.
    #[arg(long, default_value = "425", value_parser = parse_resize)]
    pub resize: Resize,
    /// Print exactly the eval record as JSON.
    #[arg(long)]
    pub json: bool,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

fn parse_resize(s: &str) -> Result<Resize, String> {
    s.parse::<Resize>().map_err(|e| e.to_string())
}

/// `given`, else `default` (a path like `weights/<name>`) under the project folder: the parent
/// of the experiments folder. The one place the CLI finds the default weights folders.
pub fn project_weights(given: Option<&Path>, experiments_dir: &Path, default: &str) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_path_buf();
    }
    let project = experiments_dir.parent().filter(|p| !p.as_os_str().is_empty());
    project.unwrap_or(Path::new(".")).join(default)
}

/// `--clip`, else the project's `weights/clip-vit-large-patch14` when it exists (the project is
/// the parent of the experiments folder). `None` when neither.
pub fn resolve_clip(clip: Option<&Path>, experiments_dir: &Path) -> Option<PathBuf> {
    let dir = project_weights(clip, experiments_dir, DEFAULT_CLIP);
    (clip.is_some() || dir.is_dir()).then_some(dir)
}

/// Run `brainscope eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (experiment_dir, _) = find(&args.dir, &args.id)?;
    let clip = resolve_clip(args.clip.as_deref(), &args.dir);
    if clip.is_none() {
        eprintln!(
            "note: no CLIP folder (--clip DIR, or {DEFAULT_CLIP} beside {}): CLIP numbers will be \
             absent; see weights/README.md",
            args.dir.display()
        );
    }
    let request = EvalRequest {
        experiment_dir,
        split: args.split,
        limit: args.limit,
        epoch: args.epoch,
        clip,
        resize: args.resize,
        device: args.device.device()?,
    };
    let progress = Progress::stderr(format!("eval {}", args.id));
    let outcome = evaluate(&request, &progress)?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.record)?);
    } else {
        print!("{}", render(&args.id, &outcome.record));
        println!("wrote {} and {}", outcome.eval_file.display(), outcome.recon_dir.display());
    }
    Ok(())
}

/// The readable table.
pub fn render(id: &str, r: &EvalRecord) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let resize = r.resize.map_or("none".to_string(), |n| format!("short side {n} px"));
    let mut out = format!(
        "experiment {id}: {} split, {} samples, {} (epoch {}, step {})\n\
         VAE  {}\nCLIP {}\n\n",
        r.split.name(),
        r.samples,
        r.checkpoint,
        r.epoch,
        r.step,
        r.vae,
        r.clip.as_deref().unwrap_or("none (CLIP numbers absent)")
    );
    let rows = [
        ("latent L1", format!("{:.4}", r.latent_l1)),
        ("PixCorr", format!("{:.4}  (resize: {resize})", r.pixcorr)),
        ("SSIM", format!("{:.4}  (resize: {resize})", r.ssim)),
        ("2-way, pixels", format!("{:.4}", r.two_way_pixels)),
        ("2-way, CLIP", opt(r.two_way_clip)),
        (
            "CLIP sim to target image",
            format!("{}  (the stimulus: paper Table III)", opt(r.clip_sim_target)),
        ),
        (
            "CLIP sim to VAE target",
            format!(
                "{}  (the VAE-decoded target latent: what the seed code compared)",
                opt(r.clip_sim_vae_target)
            ),
        ),
    ];
    for (name, value) in rows {
        out += &format!("{name:<26} {value}\n");
    }
    out
}
