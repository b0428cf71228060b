//! `brainscope [--dir experiments] [--image-protocol auto|...]`: the console.

use crate::tui::app::{App, Launcher};
use crate::tui::event;
use crate::tui::image::{ImageCache, ImageProtocol};
use crate::tui::model::{Probe, Project};
use crate::tui::terminal::{TerminalGuard, termination_flag};
use crate::tui::theme::Theme;
use anyhow::Context;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Options of the console (`brainscope` with no subcommand).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiments folder (one sub-folder per model id holding experiment.toml).
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// How to draw images: auto picks from the environment (kitty, iTerm2/WezTerm, else
    /// halfblocks, which work over any SSH session and inside tmux).
    #[arg(long, value_enum, default_value = "auto")]
    pub image_protocol: ImageProtocol,
}

/// Open the console; returns when the user quits or a termination signal arrives.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    if !dir.is_dir() {
        anyhow::bail!(
            "no experiments folder at {}: run brainscope from the project directory (the one holding experiments/) or pass --dir",
            dir.display()
        );
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("the console needs a terminal; for scripts use `brainscope status --json`");
    }
    ensure_demo_data(&dir)?;
    let exe = std::env::current_exe()
        .context("cannot find the brainscope executable (needed to start training)")?;
    let project = Project::open_lazy(&dir, Probe::system());
    let stop = termination_flag().context("installing signal handlers")?;
    let mut guard = TerminalGuard::enter().context("setting up the terminal")?;
    // The cell size in pixels is read from the terminal (an ioctl, no stdin reads).
    let picker = args.image_protocol.picker();
    let images = ImageCache::threaded(picker);
    let launcher = Launcher { exe, experiments_dir: dir };
    let mut app = App::new(project, images, Theme::from_env(), Some(launcher));
    let result = event::run(&mut guard.terminal, &mut app, &stop);
    drop(guard);
    result.context("console terminal I/O")
}

/// Generate the demo dataset (with a progress bar, before the full-screen UI) when an
/// experiment points at a missing `demo-data` folder.
fn ensure_demo_data(experiments_dir: &std::path::Path) -> anyhow::Result<()> {
    let project_dir = experiments_dir.parent().unwrap_or(experiments_dir);
    let Ok(entries) = std::fs::read_dir(experiments_dir) else { return Ok(()) };
    let mut roots: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|e| crate::experiments::config::ExperimentConfig::load(&e.path()).ok())
        .map(|c| crate::experiments::config::ExperimentConfig::resolve(project_dir, &c.data.root))
        .filter(|root| root.file_name().is_some_and(|n| n == "demo-data") && !root.exists())
        .collect();
    roots.sort();
    roots.dedup();
    for root in roots {
        eprintln!("first use: generating the demo dataset in {}", root.display());
        crate::demo::ensure_demo(&root)
            .with_context(|| format!("generating the demo data in {}", root.display()))?;
    }
    Ok(())
}
