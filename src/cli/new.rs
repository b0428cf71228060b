//! `brainscope new ID --from FROM [--set KEY=VALUE ...] [--dir experiments]`: a new experiment
//! copied from another with edits (validated; an existing id is refused).

use crate::experiments::create::{Setting, create};
use std::path::PathBuf;

/// Arguments of `brainscope new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Id of the new experiment (its folder name).
    pub id: u32,
    /// Experiment to copy.
    #[arg(long)]
    pub from: String,
    /// A change, `KEY=VALUE` with a dotted key (`train.seed=5`, `data.roi_set=set1`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Experiments folder.
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
}

/// Run `brainscope new`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = args.set.iter().map(|s| s.parse::<Setting>()).collect::<Result<Vec<_>, _>>()?;
    let dir = create(&args.dir, &args.from, args.id, &settings)?;
    println!("created experiment {} from {} at {}", args.id, args.from, dir.display());
    println!(
        "  train: brainscope train {}   (or on Slurm: brainscope submit {})",
        args.id, args.id
    );
    Ok(())
}
