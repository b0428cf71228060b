//! `brainscope vote IDS... [--split probe] [--rule paper|consensus] [--clip DIR] [--json]`: the
//! winning experiment per sample (library: [`crate::eval::vote`]).

use std::path::PathBuf;

use anyhow::anyhow;

use crate::cli::eval::{DEFAULT_CLIP, resolve_clip};
use crate::eval::progress::Progress;
use crate::eval::vote::{VoteRequest, vote, wins, write_votes};
use crate::experiments::state::{EvalSplit, VoteRecord, VoteRule};
use crate::models::clip::CLIP_SOURCES;

/// `--help` text.
pub const LONG_ABOUT: &str = "\
Pick, for every sample, the experiment whose reconstruction wins, from the final reconstructions
`brainscope eval ID --split SPLIT` wrote (experiments/<id>/recon/final-<split>/; run eval first).

Rules (cosines of L2-normalised CLIP image embeddings):
  consensus  the experiment whose low-level reconstruction is closest to the mean of the others'
             (needs 3+ experiments to discriminate: with 2 the cosines are equal and the lower id
             wins)
  paper      the seed code's rule: cos(CLIP(low-level), CLIP(high-level)) of each experiment's
             own pair, highest wins; needs the high-level images `brainscope recon` makes
Ties go to the lowest id; experiments missing a sample are skipped for it and listed.

The paper voted on training images. The probe split (the default) holds the same held-out rows in
every experiment, which is what makes the vote fair; samples are aligned by dataset row and
experiments whose samples are different images (their own val splits) are refused.

Needs a CLIP folder with a vision tower: --clip DIR, else weights/clip-vit-large-patch14 of the
project (see weights/README.md; get it from CLIP_SOURCES).

Writes experiments/votes.json (shown by the console's gallery) and prints the wins per experiment
(--json: the record).";

/// The `--help` text with the CLIP download sources filled in.
pub fn long_about() -> String {
    LONG_ABOUT.replace("CLIP_SOURCES", CLIP_SOURCES)
}

/// Arguments of `brainscope vote`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment ids (two or more).
    #[arg(value_name = "IDS")]
    pub ids: Vec<String>,
    /// Experiments folder (votes.json is written there).
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// Which final reconstructions (`eval --split`).
    #[arg(long, value_enum, default_value = "probe")]
    pub split: EvalSplit,
    /// How a sample's winner is picked.
    #[arg(long, value_enum, default_value = "consensus")]
    pub rule: VoteRule,
    /// CLIP hub folder (default: weights/clip-vit-large-patch14 when it exists).
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// Print exactly the vote record as JSON.
    #[arg(long)]
    pub json: bool,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Run `brainscope vote`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Some(clip) = resolve_clip(args.clip.as_deref(), &args.dir) else {
        return Err(anyhow!(
            "vote compares reconstructions by their CLIP embeddings and no CLIP folder was found: \
             give --clip DIR or put the weights in {DEFAULT_CLIP} beside {} (see \
             weights/README.md: {CLIP_SOURCES})",
            args.dir.display()
        ));
    };
    let request = VoteRequest {
        experiments_dir: args.dir.clone(),
        ids: args.ids.clone(),
        split: args.split,
        rule: args.rule,
        clip,
        device: args.device.device()?,
    };
    let progress = Progress::stderr("vote");
    let record = vote(&request, &progress)?;
    let path = write_votes(&args.dir, &record)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", render(&record));
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Wins per experiment, then the skipped experiments.
pub fn render(record: &VoteRecord) -> String {
    let rule = match record.rule {
        VoteRule::Paper => "paper",
        VoteRule::Consensus => "consensus",
    };
    let mut out = format!(
        "vote ({rule} rule, {} split, {} samples, CLIP {})\n\n{:<12} {:>6}\n",
        record.split.name(),
        record.votes.len(),
        record.clip,
        "experiment",
        "wins"
    );
    for (id, n) in wins(record) {
        out += &format!("{id:<12} {n:>6}\n");
    }
    let skipped: Vec<String> = record
        .votes
        .iter()
        .filter(|v| !v.skipped.is_empty())
        .map(|v| format!("sample {}: {}", v.sample, v.skipped.join(", ")))
        .collect();
    if !skipped.is_empty() {
        out += &format!("\nskipped (images missing): {}\n", skipped.join("; "));
    }
    out
}
