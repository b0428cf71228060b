//! `brainscope demo` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope demo`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'demo' is not built yet")
}
