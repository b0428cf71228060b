//! `brainscope stop ID [--timeout 30]`: SIGTERM the trainer (it finishes its step, checkpoints
//! and records `stopped`), SIGKILL it after the timeout.

use crate::experiments::control::{StopOutcome, stop};
use crate::experiments::registry::find;
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `brainscope stop`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment id (folder name under --dir).
    pub id: String,
    /// Experiments folder.
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// Seconds to wait for a graceful exit before SIGKILL.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// Run `brainscope stop`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (dir, _) = find(&args.dir, &args.id)?;
    let outcome = stop(&dir, Duration::from_secs(args.timeout))
        .with_context(|| format!("stopping experiment {}", args.id))?;
    match outcome {
        StopOutcome::Graceful(state) => {
            println!("experiment {} stopped (state: {})", args.id, state.name())
        }
        StopOutcome::Killed => println!(
            "experiment {} did not exit within {} s of SIGTERM: killed; it resumes from its last checkpoint",
            args.id, args.timeout
        ),
    }
    Ok(())
}
