//! `brainscope bench data` (not built yet).

/// Arguments of `brainscope bench data`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run the benchmark.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'bench data' is not built yet")
}
