//! `brainscope rate IDS... [--n 40] [--kind lowlevel|highlevel] [--seed N] [--rater NAME]
//! [--json]`: a blind two-alternative forced-choice session in the terminal (the console's
//! rating view), or with `--json` only the per-experiment summary.

use crate::eval::human::{self, HumanError, Session, SessionOptions};
use crate::experiments::config::CONFIG_FILE;
use crate::experiments::state::{ReconKind, RunPaths};
use crate::tui::app::{App, Launcher};
use crate::tui::event;
use crate::tui::image::{ImageCache, ImageProtocol};
use crate::tui::keys::View;
use crate::tui::model::{Probe, Project, id_order};
use crate::tui::terminal::{TerminalGuard, termination_flag};
use crate::tui::theme::Theme;
use anyhow::Context;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The long `--help` text of `brainscope rate` (set on the subcommand in `cli/mod.rs`).
pub const LONG_ABOUT: &str = "Blind two-alternative forced choice (2AFC): each trial shows one reconstruction and two \
candidate images, the one the subject saw and a distractor (another image of the same \
sample set), in random left/right order; the experiment is never shown and the trials of all \
IDS are interleaved. Keys: 1/h/← left, 2/l/→ right, u undo, s skip, q end.\n\n\
Samples come from the dataset's probe set ([data] probe, default 100 rows held out of every \
experiment's training): the same images for every experiment, so results compare across \
experiments. When any of IDS was trained before the probe set existed (or with [data] probe = \
0), every experiment's own validation samples are rated instead.\n\n\
Every answer is appended to experiments/<id>/human-2afc.jsonl at once, so a killed session \
loses nothing: the same command continues it without repeating answered trials. Images come \
from the latest recon/epoch-NNN/ folder that training writes.";

/// Arguments of `brainscope rate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiments to rate (folder names under --dir); their trials are interleaved.
    #[arg(required = true, value_name = "IDS")]
    pub ids: Vec<String>,
    /// Experiments folder (one `<id>/experiment.toml` per experiment).
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// Trials in the session, shared evenly between the experiments.
    #[arg(long = "n", value_name = "N", default_value_t = human::DEFAULT_TRIALS)]
    pub n: usize,
    /// Which reconstructions: the low-level model's, or the high-level ones `brainscope recon`
    /// makes.
    #[arg(long, value_enum, default_value = "lowlevel")]
    pub kind: ReconKind,
    /// Seed of the trial order, distractors and sides. Default: the first seed (from 0) whose
    /// session this rater has not finished, so running the same command again continues.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Who rates (default: $USER). With --json: count only this rater's answers (default:
    /// every rater combined).
    #[arg(long)]
    pub rater: Option<String>,
    /// Print `{"experiments": [{"id", "trials", "correct", "accuracy", "ci_low", "ci_high",
    /// "raters"}]}` (95% Wilson interval) and run no session.
    #[arg(long)]
    pub json: bool,
    /// How to draw images (as the console's --image-protocol).
    #[arg(long, value_enum, default_value = "auto")]
    pub image_protocol: ImageProtocol,
}

/// The JSON summary.
#[derive(Debug, serde::Serialize)]
struct Summary {
    experiments: Vec<human::ExperimentSummary>,
}

/// Run `brainscope rate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let exps = resolve(&dir, &args.ids)?;
    if args.json {
        return print_summary(&exps, args.kind, args.rater.as_deref());
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "rating needs a terminal (it shows images and reads keys); for the summary use `brainscope rate {} --json`",
            args.ids.join(" ")
        );
    }
    let opts = SessionOptions {
        n: args.n,
        kind: args.kind,
        seed: args.seed,
        rater: args.rater.unwrap_or_else(human::default_rater),
    };
    // Prepared before the terminal is taken over: a bad input fails here, nothing written.
    let session = Session::start(&exps, &opts, human::source_for(&exps))?;
    let exe = std::env::current_exe().context("cannot find the brainscope executable")?;
    let project = Project::open(&dir, Probe::system());
    let stop = termination_flag().context("installing signal handlers")?;
    let mut guard = TerminalGuard::enter().context("setting up the terminal")?;
    let images = ImageCache::threaded(args.image_protocol.picker());
    let launcher = Launcher { exe, experiments_dir: dir };
    let mut app = App::new(project, images, Theme::from_env(), Some(launcher));
    app.rating = Some(session);
    app.rate_only = true;
    app.view = View::Rate;
    let result = event::run(&mut guard.terminal, &mut app, &stop);
    drop(guard);
    result.context("rating terminal I/O")?;
    // The session (if it was still open) and every rater's totals, after the terminal is back.
    let session = app.rating.as_ref();
    let answered = session.map(|s| format!("{} of {} trials answered", s.answered(), s.total()));
    if let Some(a) = answered {
        println!("{a}");
    }
    for (id, d) in &exps {
        let r = human::read_ratings(&RunPaths::new(d).human_ratings())?;
        let s = human::summarize(id, &r.answers, opts.kind, None);
        println!("{id:<8} {}", s.line());
    }
    Ok(())
}

/// Each id's folder; an error naming the known ids for one that is not an experiment.
fn resolve(dir: &Path, ids: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        anyhow::bail!(
            "no experiments folder at {}: run brainscope from the project directory or pass --dir",
            dir.display()
        );
    }
    let mut out = Vec::new();
    for id in ids {
        let d = dir.join(id);
        if !d.join(CONFIG_FILE).is_file() {
            let mut known: Vec<String> = std::fs::read_dir(dir)
                .map(|r| {
                    r.flatten()
                        .filter(|e| e.path().join(CONFIG_FILE).is_file())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            known.sort_by(|a, b| id_order(a, b));
            anyhow::bail!(
                "no experiment {id} in {} (no {id}/{CONFIG_FILE}); known: {}",
                dir.display(),
                if known.is_empty() { "none".into() } else { known.join(", ") }
            );
        }
        if !out.iter().any(|(i, _): &(String, PathBuf)| i == id) {
            out.push((id.clone(), d));
        }
    }
    Ok(out)
}

fn print_summary(
    exps: &[(String, PathBuf)],
    kind: ReconKind,
    rater: Option<&str>,
) -> anyhow::Result<()> {
    let mut experiments = Vec::new();
    let mut any = false;
    for (id, d) in exps {
        let r = human::read_ratings(&RunPaths::new(d).human_ratings())?;
        let s = human::summarize(id, &r.answers, kind, rater);
        any |= r.answers.iter().any(|a| a.kind == kind);
        experiments.push(s);
    }
    if kind == ReconKind::Highlevel && !any {
        // Neither ratings nor images of that kind: say how to make the images.
        let source = human::source_for(exps);
        let missing: Vec<HumanError> =
            exps.iter().filter_map(|(id, d)| source.samples(id, d, kind, None).err()).collect();
        if missing.len() == exps.len() {
            return Err(HumanError::NothingToRate(missing).into());
        }
    }
    println!("{}", serde_json::to_string_pretty(&Summary { experiments })?);
    Ok(())
}
