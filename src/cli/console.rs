//! `brainscope console` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope console`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope console`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'console' is not built yet")
}
