//! `brainscope bench vae` (not built yet).

/// Arguments of `brainscope bench vae`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run the benchmark.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'bench vae' is not built yet")
}
