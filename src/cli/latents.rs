//! `brainscope latents` (not built yet: owned by the issue that delivers it).

/// Arguments of `brainscope latents`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `brainscope latents`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("'latents' is not built yet")
}
