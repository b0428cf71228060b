//! `brainscope train-vae` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope train-vae`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope train-vae`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'train-vae' is not built yet")
}
