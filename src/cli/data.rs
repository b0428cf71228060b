//! `brainscope data` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope data`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope data`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'data' is not built yet")
}
