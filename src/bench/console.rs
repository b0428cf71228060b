//! `brainscope bench console`: start-up time, memory and frame times of the console with many
//! experiments and long histories, and the latency from a metrics line being written to it
//! being on screen.
//!
//! The experiments are real folders (experiment.toml, status.json, metrics.jsonl) written to a
//! temporary directory first, so start-up reads files as the console does (from the page cache:
//! they were just written). Frames are drawn into ratatui's in-memory `TestBackend` (the
//! terminal's own write cost is excluded; it is the same for every history length because only
//! changed cells are sent).

use crate::bench::data::{peak_rss_bytes, rss_bytes};
use crate::experiments::metrics::TailUpdate;
use crate::experiments::state::{MetricRecord, RunState, RunStatus, Split, write_status};
use crate::tui::app::App;
use crate::tui::event::{apply_fs_events, watch};
use crate::tui::image::ImageCache;
use crate::tui::keys::Action;
use crate::tui::model::{Probe, Project};
use crate::tui::theme::Theme;
use crate::tui::views;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Arguments of `brainscope bench console`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of experiments.
    #[arg(long, default_value_t = 100)]
    pub experiments: usize,
    /// Training points per experiment.
    #[arg(long, default_value_t = 100_000)]
    pub points: usize,
    /// Frames per measurement (the median is printed).
    #[arg(long, default_value_t = 30)]
    pub frames: usize,
    /// Terminal width in cells.
    #[arg(long, default_value_t = 120)]
    pub width: u16,
    /// Terminal height in cells.
    #[arg(long, default_value_t = 40)]
    pub height: u16,
    /// Metrics lines written for the latency measurement.
    #[arg(long, default_value_t = 20)]
    pub latency_samples: usize,
}

const TOML: &str = "id = {id}\ndescription = \"bench\"\n[data]\nroot = \"demo-data\"\nroi_set = \"set3\"\nvae = \"v\"\n[train]\nseed = 1\nbatch_size = 16\nepochs = 100\n";

/// Steps per epoch of the synthetic histories.
const STEPS_PER_EPOCH: usize = 1000;

fn write_experiment(dir: &Path, id: usize) -> anyhow::Result<()> {
    let d = dir.join(id.to_string());
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    std::fs::write(d.join("experiment.toml"), TOML.replace("{id}", &id.to_string()))?;
    Ok(())
}

/// An experiment with a stopped run of `n` steps on disk: status.json and metrics.jsonl.
fn write_run(dir: &Path, id: usize, n: usize) -> anyhow::Result<()> {
    write_experiment(dir, id)?;
    let d = dir.join(id.to_string());
    let epochs = n.div_ceil(STEPS_PER_EPOCH);
    let status = RunStatus {
        state: RunState::Stopped,
        pid: None,
        pid_start: None,
        host: String::new(),
        started_ms: Some(1_000),
        ended_ms: Some(1_000 * (n as u64 + 1)),
        exit_code: Some(0),
        epoch: epochs,
        epochs: epochs * 2,
        step: n as u64,
        total_steps: (n * 2) as u64,
        message: "stopped by user".into(),
        device: Some("cpu".into()),
    };
    write_status(&d.join("status.json"), &status)?;
    let path = d.join("metrics.jsonl");
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    for r in history(n, id) {
        writeln!(out, "{}", r.to_line())?;
    }
    out.flush()?;
    Ok(())
}

/// Synthetic history: `n` train steps (1000 per epoch) plus one val record per epoch.
fn history(n: usize, seed: usize) -> Vec<MetricRecord> {
    let mut v = Vec::with_capacity(n + n / STEPS_PER_EPOCH + 1);
    for s in 0..n {
        let step = s as u64 + 1;
        let x = s as f64 / n.max(1) as f64;
        let loss = 0.8 * (-3.0 * x).exp() + 0.1 + 0.05 * ((s * 7 + seed) as f64 * 0.37).sin();
        v.push(MetricRecord {
            t: 1_000 * step,
            epoch: s / STEPS_PER_EPOCH,
            step,
            split: Split::Train,
            loss: Some(loss),
            l1: None,
            lr: Some(1e-4 * (1.0 + x)),
        });
        if step.is_multiple_of(STEPS_PER_EPOCH as u64) {
            v.push(MetricRecord {
                t: 1_000 * step,
                epoch: s / STEPS_PER_EPOCH,
                step,
                split: Split::Val,
                loss: None,
                l1: Some(loss),
                lr: None,
            });
        }
    }
    v
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn frame_times(
    app: &mut App,
    term: &mut Terminal<TestBackend>,
    frames: usize,
    mut before: impl FnMut(&mut App),
) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        before(app);
        let t = Instant::now();
        term.draw(|f| views::draw(f, app))?;
        times.push(t.elapsed());
    }
    Ok(median_ms(times))
}

fn mib(b: Option<u64>) -> String {
    b.map_or("?".into(), |b| format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64))
}

fn one_point(step: u64) -> TailUpdate {
    let r = MetricRecord {
        t: 1_000 * step,
        epoch: 0,
        step,
        split: Split::Train,
        loss: Some(0.2),
        l1: None,
        lr: Some(1e-4),
    };
    TailUpdate { reset: false, records: vec![r], skipped: 0 }
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.experiments > 0 && args.frames > 0,
        "--experiments and --frames must be at least 1"
    );
    let tmp = tempfile_dir()?;
    let result = measure(&tmp, &args);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn measure(tmp: &Path, args: &Args) -> anyhow::Result<()> {
    let dir = tmp.join("experiments");
    let bar = ProgressBar::new(args.experiments as u64).with_style(
        ProgressStyle::with_template("writing experiments {bar:30} {pos}/{len}")
            .expect("valid template"),
    );
    for id in 0..args.experiments {
        write_run(&dir, id, args.points)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let points = (args.experiments * args.points) as f64;
    println!(
        "console bench: {} experiments x {} points (metrics.jsonl files, page-cached), {}x{} cells",
        args.experiments, args.points, args.width, args.height
    );
    let probe = Probe::system();
    let rss0 = rss_bytes();

    // Start-up as the console does it: metrics read at their end, earlier records off-thread.
    let start = Instant::now();
    let project = Project::open_lazy(&dir, probe);
    let mut app = App::new(project, ImageCache::off(), Theme { color: true }, None);
    let mut term = Terminal::new(TestBackend::new(args.width, args.height))?;
    term.draw(|f| views::draw(f, &mut app))?;
    let to_table = start.elapsed();
    println!("  time to table              {:>9.1} ms (first frame drawn)", ms(to_table));
    while app.project.loading() > 0 {
        app.collect_background();
        std::thread::sleep(Duration::from_millis(5));
    }
    let to_summaries = start.elapsed();
    println!(
        "  every best val L1 known     {:>9.1} ms (earlier records read off the UI thread, {:.0} ns/point)",
        ms(to_summaries),
        to_summaries.as_nanos() as f64 / points
    );
    let rss_table = rss_bytes();
    let table = frame_times(&mut app, &mut term, args.frames, |_| {})?;
    println!("  table frame                {table:>9.2} ms (median)");

    app.apply(Action::Open);
    let t = Instant::now();
    term.draw(|f| views::draw(f, &mut app))?;
    println!(
        "  open detail                {:>9.1} ms (reads the {} points of its history)",
        ms(t.elapsed()),
        args.points
    );
    let detail_cached = frame_times(&mut app, &mut term, args.frames, |_| {})?;
    println!("  detail frame, no new data  {detail_cached:>9.2} ms");
    let mut step = args.points as u64;
    let live = frame_times(&mut app, &mut term, args.frames, |app| {
        step += 1;
        let sel = app.visible()[app.selected];
        let probe = *app.project.probe();
        app.project.experiments[sel].apply(one_point(step), &probe);
    })?;
    println!("  detail frame, +1 point     {live:>9.2} ms (downsampled via the min/max pyramid)");

    // Every history resident: all experiments marked as overlays of the open one.
    app.apply(Action::Back);
    for _ in 0..args.experiments {
        app.apply(Action::Mark);
        app.apply(Action::Down);
    }
    app.apply(Action::Top);
    app.apply(Action::Open);
    let t = Instant::now();
    term.draw(|f| views::draw(f, &mut app))?;
    let all_loaded = t.elapsed();
    let rss_all = rss_bytes();
    let held: usize = app
        .project
        .experiments
        .iter()
        .filter_map(|e| e.history.as_ref())
        .map(|h| h.heap_bytes())
        .sum();
    let resident = match (rss_all, rss_table) {
        (Some(a), Some(b)) => format!("{:.1}", a.saturating_sub(b) as f64 / points),
        _ => "?".into(),
    };
    println!(
        "  every history loaded       {:>9.1} ms ({} overlays drawn); {resident} bytes/point resident, {:.1} bytes/point held by the histories",
        ms(all_loaded),
        args.experiments,
        held as f64 / points
    );
    println!(
        "  RSS: before {} / table ready {} / every history {} (peak {})",
        mib(rss0),
        mib(rss_table),
        mib(rss_all),
        mib(peak_rss_bytes())
    );
    drop(app);

    // Scaling of the live detail frame with history length: one experiment of each size.
    for n in [1_000usize, 100_000, 1_000_000] {
        let d = tmp.join(format!("scale-{n}"));
        write_experiment(&d, 1)?;
        let mut a =
            App::new(Project::open(&d, probe), ImageCache::off(), Theme { color: true }, None);
        a.apply(Action::Open);
        term.draw(|f| views::draw(f, &mut a))?; // loads its (empty) history
        let update = TailUpdate { reset: false, records: history(n, 0), skipped: 0 };
        a.project.experiments[0].apply(update, &probe);
        let mut step = n as u64;
        let ms = frame_times(&mut a, &mut term, args.frames, |a| {
            step += 1;
            a.project.experiments[0].apply(one_point(step), &probe);
        })?;
        println!("  detail frame, {n:>9} pts {ms:>9.2} ms (+1 point per frame)");
    }
    latency(tmp, args)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("brainscope-bench-console-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// Write a metrics line, then run the console's loop steps (watcher events, polling fallback,
/// redraw) until the new loss is on screen.
fn latency(tmp: &Path, args: &Args) -> anyhow::Result<()> {
    let dir = tmp.join("latency");
    write_experiment(&dir, 1)?;
    let metrics = dir.join("1").join("metrics.jsonl");
    std::fs::write(&metrics, "")?;
    let (_watcher, rx) = watch(&dir).map_err(|e| anyhow::anyhow!("file watcher: {e}"))?;
    let mut app = App::new(
        Project::open_lazy(&dir, Probe::system()),
        ImageCache::off(),
        Theme { color: true },
        None,
    );
    let mut term = Terminal::new(TestBackend::new(80, 24))?;
    let mut times = Vec::new();
    for k in 1..=args.latency_samples {
        let loss = 0.5 + k as f64 * 0.001;
        let shown = format!("{loss:.4}");
        let r = MetricRecord {
            t: k as u64,
            epoch: 0,
            step: k as u64,
            split: Split::Train,
            loss: Some(loss),
            lr: None,
            l1: None,
        };
        let start = Instant::now();
        let mut f = std::fs::OpenOptions::new().append(true).open(&metrics)?;
        writeln!(f, "{}", r.to_line())?;
        drop(f);
        loop {
            app.dirty |= apply_fs_events(&mut app, &rx);
            if app.dirty {
                term.draw(|f| views::draw(f, &mut app))?;
                app.dirty = false;
                let buf = term.backend().buffer();
                let text: String = buf.content().iter().map(|c| c.symbol()).collect();
                if text.contains(&shown) {
                    break;
                }
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(10),
                "metrics line never reached the screen"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        times.push(start.elapsed());
    }
    let mut sorted = times.clone();
    sorted.sort();
    println!(
        "  latency line -> screen     {:>9.1} ms median, {:.1} ms max ({} lines; notify debounce {} ms dominates; \
         the console's loop adds at most one 50 ms input wait and the 100 ms frame limit)",
        median_ms(times),
        sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        args.latency_samples,
        150
    );
    Ok(())
}
