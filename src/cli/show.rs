//! `brainscope show` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope show`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope show`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'show' is not built yet")
}
