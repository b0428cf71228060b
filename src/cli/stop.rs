//! `brainscope stop` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope stop`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope stop`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'stop' is not built yet")
}
