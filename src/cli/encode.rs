//! `brainscope encode` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope encode`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope encode`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'encode' is not built yet")
}
