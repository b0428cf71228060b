//! `brainscope sweep --from FROM --grid KEY=V1,V2 [--grid ...] --first-id N [--dir experiments]`:
//! one experiment per combination of the grid values, ids N, N+1, ... (first axis slowest),
//! listed in `experiments/sweep.toml`. Nothing is written when any id exists or any value is
//! invalid.

use crate::experiments::create::{GridAxis, SWEEP_FILE, sweep};
use std::path::PathBuf;

/// Arguments of `brainscope sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment to copy.
    #[arg(long)]
    pub from: String,
    /// An axis, `KEY=V1,V2,...` (values with commas inside: separate them with `;`); repeatable.
    #[arg(long = "grid", value_name = "KEY=V1,V2,...", required = true)]
    pub grid: Vec<String>,
    /// Id of the first experiment; the others follow.
    #[arg(long)]
    pub first_id: u32,
    /// Experiments folder.
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
}

/// Run `brainscope sweep`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let axes = args.grid.iter().map(|g| g.parse::<GridAxis>()).collect::<Result<Vec<_>, _>>()?;
    let record = sweep(&args.dir, &args.from, &axes, args.first_id)?;
    for m in &record.members {
        let set: Vec<String> = m.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("created experiment {}: {}", m.id, set.join(" "));
    }
    let ids: Vec<String> = record.ids.iter().map(u32::to_string).collect();
    println!(
        "{} experiments from {}, listed in {}",
        ids.len(),
        record.from,
        args.dir.join(SWEEP_FILE).display()
    );
    println!("  submit: brainscope submit {} --array", ids.join(" "));
    Ok(())
}
