//! `brainscope train` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope train`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope train`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'train' is not built yet")
}
