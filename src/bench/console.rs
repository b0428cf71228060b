//! `brainscope bench console` (not built yet).

/// Arguments of `brainscope bench console`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run the benchmark.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'bench console' is not built yet")
}
