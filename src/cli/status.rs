//! `brainscope status` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope status`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'status' is not built yet")
}
