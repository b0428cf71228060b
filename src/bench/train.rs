//! `brainscope bench train` (not built yet).

/// Arguments of `brainscope bench train`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run the benchmark.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'bench train' is not built yet")
}
