//! `brainscope status [--dir experiments] [--json]`: every experiment with its state, the device
//! its run computes on (as the trainer recorded it in status.json; `-` before a run, or for a
//! run recorded before the field existed), epoch, last train loss, best validation L1 and, once
//! `brainscope eval` ran, its PixCorr / SSIM (the probe set's record, else the validation
//! split's; the JSON carries the whole record, and the device as `device`).

use crate::experiments::registry::{ExperimentSummary, scan};
use crate::experiments::state::short_device;
use std::path::PathBuf;

/// Arguments of `brainscope status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiments folder (one `<id>/experiment.toml` per experiment).
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// Print JSON (`{"experiments": [...], "invalid": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `brainscope status`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scan = scan(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scan)?);
        return Ok(());
    }
    for bad in &scan.invalid {
        eprintln!("warning: skipping {}: {}", bad.dir.display(), bad.error);
    }
    if scan.experiments.is_empty() {
        println!("no experiments in {}", args.dir.display());
        return Ok(());
    }
    println!(
        "{:<6} {:<8} {:<8} {:<8} {:>6} {:>5} {:>9} {:>10} {:>16} {:>8} {:>20}  MESSAGE",
        "ID",
        "STATE",
        "DEVICE",
        "ROI",
        "SEED",
        "BATCH",
        "EPOCH",
        "LOSS",
        "BEST VAL L1 (EP)",
        "ETA",
        "PIXCORR/SSIM (SPLIT)"
    );
    for e in &scan.experiments {
        println!("{}", row(e));
    }
    Ok(())
}

/// One table row.
fn row(e: &ExperimentSummary) -> String {
    let (c, e) = (&e.config, &e.run);
    let loss = e.last_loss.map_or("-".into(), |l| format!("{l:.5}"));
    let best = match (e.best_val_l1, e.best_epoch) {
        (Some(l1), Some(ep)) => format!("{l1:.5} ({ep})"),
        _ => "-".into(),
    };
    let eta = e.eta_secs.map_or("-".into(), format_duration);
    let eval = match &e.eval {
        Some(r) => format!("{:.3}/{:.3} ({})", r.pixcorr, r.ssim, r.split.name()),
        None => "-".into(),
    };
    let message = match &e.eval_error {
        Some(err) if e.message.is_empty() => err.clone(),
        Some(err) => format!("{} · {err}", e.message),
        None => e.message.clone(),
    };
    format!(
        "{:<6} {:<8} {:<8} {:<8} {:>6} {:>5} {:>9} {:>10} {:>16} {:>8} {:>20}  {}",
        c.id,
        e.state.name(),
        e.device.as_deref().map_or("-", short_device), // `--json` has the adapter too
        c.data.roi_set,
        c.train.seed,
        c.train.batch_size,
        format!("{}/{}", e.epoch, e.epochs),
        loss,
        best,
        eta,
        eval,
        message
    )
}

/// `1h02m`, `3m20s`, `42s`.
pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
