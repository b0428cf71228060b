//! `brainscope train ID [--dir experiments] [--foreground] [--device cpu|wgpu|cuda] [--epochs N]`:
//! launch a detached trainer (new session, log to train.log) and return, or train in this
//! process with `--foreground`.

use crate::experiments::launch::{self, LaunchOptions};
use crate::experiments::registry::find;
use crate::experiments::state::RunPaths;
use crate::train::trainer::{self, TrainRequest};
use anyhow::Context;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The long `--help` text of `brainscope train` (set on the subcommand in `cli/mod.rs`).
pub const LONG_ABOUT: &str = "Train the low-level model of experiment ID: detached by default (log in \
experiments/<id>/train.log, `brainscope stop ID` to stop), in this process with --foreground. \
A stopped or killed run resumes from its last checkpoint; a changed plan is refused, naming \
each changed key.\n\n\
The probe set: the paper voted on training images, and each experiment's validation samples \
depend on its seed, so two experiments' \"sample 0\" are different images. A fixed list of \
dataset rows ([data] probe in experiment.toml, default 100, 0 = none) is held out of every \
experiment's train/val split; the per-epoch reconstructions show those rows (sample XX = probe \
row XX in every experiment), which is what makes cross-experiment comparison and the vote \
fair. The rows are listed in probe-<size>.json beside the latent cache. Existing runs keep \
their split: a checkpoint from before the probe set resumes with its old validation samples \
and says so; --restart moves it onto the probe set.";

/// Arguments of `brainscope train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment id (folder name under --dir).
    pub id: String,
    /// Experiments folder; relative paths in experiment.toml resolve against its parent.
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// Train in this process (progress bar on a terminal) instead of launching a detached one.
    #[arg(long)]
    pub foreground: bool,
    /// Device (overrides the experiment's): cpu, wgpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Number of epochs (overrides the experiment's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Discard this experiment's run state (metrics, checkpoints, reconstructions) and start over.
    #[arg(long)]
    pub restart: bool,
}

/// Run `brainscope train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let experiments_dir = absolute(&args.dir)?;
    let (dir, config) = find(&experiments_dir, &args.id)?;
    let device = args.device.clone().unwrap_or_else(|| config.train.device.clone());
    crate::backend::device(&device)?;
    if args.epochs == Some(0) {
        anyhow::bail!("--epochs must be at least 1");
    }
    if args.foreground {
        let request = TrainRequest {
            experiment_dir: dir,
            device: args.device,
            epochs: args.epochs,
            restart: args.restart,
            progress: std::io::stdout().is_terminal(),
            prepare_data: Some(crate::demo::ensure_demo_root),
        };
        let outcome = trainer::run(&request)?;
        if let crate::experiments::run::RunOutcome::Failed(message) = &outcome {
            anyhow::bail!("experiment {} crashed: {message}", args.id);
        }
        println!("experiment {}: {}", args.id, outcome);
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the brainscope executable to launch")?;
    let options = LaunchOptions { device: args.device, epochs: args.epochs, restart: args.restart };
    // The console's `s` takes the same path: one set of checks, one launch.
    let pid = launch::start(&exe, &experiments_dir, &args.id, &options)?;
    let log = RunPaths::new(&dir).log();
    println!("experiment {} training in the background (pid {pid})", args.id);
    println!("  log:  {}", log.display());
    println!("  stop: brainscope stop {}", args.id);
    Ok(())
}

/// `path` made absolute against the current directory (the detached trainer gets absolute paths).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}
