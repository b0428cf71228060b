//! `brainscope show IMG [--width N] [--height N]`: print one image to the terminal with viuer
//! (kitty / iTerm2 when the terminal has them, coloured half blocks otherwise), outside the
//! console.

use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `brainscope show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image file (PNG, e.g. experiments/92/recon/epoch-004/sample-00-lowlevel.png).
    pub image: PathBuf,
    /// Width in terminal cells (default: fit the terminal).
    #[arg(long)]
    pub width: Option<u32>,
    /// Height in terminal cells (default: keep the aspect ratio).
    #[arg(long)]
    pub height: Option<u32>,
    /// Use coloured half blocks only (no kitty / iTerm2 protocol).
    #[arg(long)]
    pub blocks: bool,
}

/// Run `brainscope show`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let img = image::open(&args.image)
        .with_context(|| format!("cannot read image {} (PNG expected)", args.image.display()))?;
    let width = args.width.or_else(|| {
        // Fit the terminal width when neither size is given (viuer would use the image size).
        if args.height.is_none() {
            crossterm::terminal::size().ok().map(|(w, _)| u32::from(w).min(img.width()))
        } else {
            None
        }
    });
    let config = viuer::Config {
        absolute_offset: false,
        width,
        height: args.height,
        use_kitty: !args.blocks,
        use_iterm: !args.blocks,
        ..Default::default()
    };
    viuer::print(&img, &config).with_context(|| format!("printing {}", args.image.display()))?;
    Ok(())
}
