//! `brainscope decode` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope decode`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope decode`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'decode' is not built yet")
}
