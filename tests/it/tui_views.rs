//! Snapshot tests of every view (ratatui TestBackend + insta) on the fixture experiments in
//! tests/fixtures/experiments (running, done, crashed, idle, corrupt metrics line), plus the
//! state the console derives from those files, their colours and styles, the lazy start-up over
//! long histories, and halfblock images drawn from a known picture.

use brainscope::experiments::registry::RunReader;
use brainscope::experiments::state::{MetricRecord, RunState, Split};
use brainscope::tui::app::{App, Column};
use brainscope::tui::image::{ImageCache, ImageProtocol};
use brainscope::tui::keys::{Action, View};
use brainscope::tui::model::{Probe, Project};
use brainscope::tui::theme::Theme;
use brainscope::tui::views;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

const FIXTURES: &str = "tests/fixtures/experiments";
/// Fixture timestamps start here (see make_console_fixtures.py).
const T0: u64 = 1_750_000_000_000;

fn probe() -> Probe {
    Probe { now_ms: || T0 + 55_000, pid_alive: |pid, _| pid == 4242 }
}

fn app_with(images: ImageCache, theme: Theme) -> App {
    App::new(Project::open(FIXTURES, probe()), images, theme, None)
}

fn app() -> App {
    app_with(ImageCache::off(), Theme { color: true })
}

fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| views::draw(f, app)).unwrap();
    terminal
}

fn select(app: &mut App, id: &str) {
    let visible = app.visible();
    app.selected =
        visible.iter().position(|&i| app.project.experiments[i].id == id).expect("fixture id");
}

fn screen(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn states_are_derived_from_the_files() {
    let app = app();
    let ids: Vec<&str> = app.project.experiments.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["92", "94", "97", "100", "101"], "numeric ids in numeric order");
    let state = |id: &str| app.project.get(id).unwrap().state();
    assert_eq!(state("92"), RunState::Running, "live pid");
    assert_eq!(state("94"), RunState::Done);
    assert_eq!(state("97"), RunState::Crashed, "status says running but the pid is dead");
    assert_eq!(state("100"), RunState::Idle);
    assert_eq!(state("101"), RunState::Stopped);
    let c = app.project.get("101").unwrap();
    assert_eq!(c.corrupt_lines(), 1, "the partial last line is not counted as corrupt");
    assert_eq!(c.record_counts().unwrap().0, 20);
    let done = app.project.get("94").unwrap();
    assert_eq!(done.best_val().unwrap().0, 4);
    assert_eq!(done.recon_epochs, vec![0, 1, 2, 3, 4]);
    assert_eq!(app.project.get("92").unwrap().eta_secs(), Some(445));
    assert!(
        app.project.experiments.iter().all(|e| e.history.is_none()),
        "the table holds no history"
    );
    let votes = app.project.votes.as_ref().unwrap();
    assert_eq!((votes.votes[0].sample, votes.votes[0].winner.as_str()), (0, "94"));
}

#[test]
fn table_80x24() {
    let mut app = app();
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
}

#[test]
fn table_sorted_and_filtered() {
    let mut app = app();
    app.apply(Action::SortBy(7)); // best val L1, ascending
    assert_eq!(app.sort, Column::Best);
    app.apply(Action::Filter);
    for c in "set3".chars() {
        app.apply(Action::FilterChar(c));
    }
    app.apply(Action::FilterAccept);
    let ids: Vec<String> =
        app.visible().iter().map(|&i| app.project.experiments[i].id.clone()).collect();
    assert_eq!(ids, ["92", "97", "100"], "set3 only, sorted by best L1, missing last");
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
}

#[test]
fn detail_running_80x24() {
    let mut app = app();
    select(&mut app, "92");
    app.apply(Action::Open);
    assert_eq!(app.view, View::Detail);
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
}

#[test]
fn detail_done_with_halfblock_images() {
    let mut app =
        app_with(ImageCache::blocking(ImageProtocol::Halfblocks.picker()), Theme { color: true });
    select(&mut app, "94");
    app.apply(Action::Open);
    app.apply(Action::EpochPrev); // epoch 4 of 5
    assert_eq!(app.shown_epoch(), Some(3));
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
}

#[test]
fn detail_crashed_120x40_three_charts_log_y_epochs() {
    let mut app = app();
    select(&mut app, "97");
    app.apply(Action::Open);
    app.apply(Action::LogY);
    app.apply(Action::XAxis);
    insta::assert_snapshot!(screen(&render(&mut app, 120, 40)));
}

#[test]
fn detail_idle_without_data() {
    let mut app = app();
    select(&mut app, "100");
    app.apply(Action::Open);
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
}

#[test]
fn detail_corrupt_metrics_with_overlay_and_lr() {
    let mut app = app();
    select(&mut app, "94");
    app.apply(Action::Mark);
    select(&mut app, "101");
    app.apply(Action::Open);
    app.apply(Action::SecondChart);
    app.apply(Action::SmoothMore);
    assert!((app.project.smoothing() - 0.7).abs() < 1e-9);
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
}

#[test]
fn gallery_of_runs_without_samples_json_goes_by_sample_number() {
    // The fixtures predate samples.json: shown by sample number (said so), and the vote (on
    // validation row 3) is not claimed for images that cannot be matched to it. The winner on
    // matched images: tui_eval::gallery_prefers_final_probe_marks_the_winner_and_flags_...
    let mut app =
        app_with(ImageCache::blocking(ImageProtocol::Halfblocks.picker()), Theme { color: true });
    app.apply(Action::Gallery);
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("sample 0 (1/2)") && s.contains("by sample number"), "{s}");
    assert!(s.contains("no vote on this image"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn help_80x24() {
    let mut app = app();
    app.apply(Action::Help);
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
    app.apply(Action::Back);
    assert_eq!(app.view, View::Table);
}

#[test]
fn stop_asks_for_confirmation() {
    let mut app = app();
    select(&mut app, "92");
    app.apply(Action::Stop);
    assert_eq!(app.confirm_stop.as_deref(), Some("92"));
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
    app.apply(Action::No);
    assert!(app.confirm_stop.is_none());
    select(&mut app, "94");
    app.apply(Action::Stop);
    assert!(app.confirm_stop.is_none(), "a finished run is not stopped");
}

#[test]
fn too_small_terminal_shows_a_message() {
    let mut app = app();
    insta::assert_snapshot!(screen(&render(&mut app, 50, 12)));
}

#[test]
fn empty_experiments_folder() {
    let mut app = App::new(
        Project::open("tests/fixtures/no-such-folder", probe()),
        ImageCache::off(),
        Theme { color: true },
        None,
    );
    insta::assert_snapshot!(screen(&render(&mut app, 80, 24)));
}

#[test]
fn no_color_uses_no_colours_anywhere() {
    for view in [Action::Open, Action::Gallery, Action::Help] {
        let mut app = app_with(ImageCache::off(), Theme { color: false });
        select(&mut app, "92");
        app.apply(view);
        let t = render(&mut app, 100, 30);
        let buf = t.backend().buffer();
        for c in buf.content() {
            assert_eq!(
                (c.fg, c.bg),
                (Color::Reset, Color::Reset),
                "coloured cell {:?} in {view:?}",
                c.symbol()
            );
        }
    }
    // With colours, states are coloured (and still carry their symbol).
    let mut app = app();
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("▶ running") && s.contains("✖ crashed") && s.contains("✔ done"));
}

/// Each row as runs of equally styled cells: `[fg bg modifiers] text`, so a snapshot shows the
/// colours and styles, not only the symbols.
fn styles(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut runs: Vec<(String, String)> = Vec::new();
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            let style = format!("{:?} {:?} {:?}", c.fg, c.bg, c.modifier);
            match runs.last_mut() {
                Some((s, text)) if *s == style => text.push_str(c.symbol()),
                _ => runs.push((style, c.symbol().to_string())),
            }
        }
        let line: Vec<String> = runs
            .into_iter()
            .filter(|(s, text)| !(text.trim().is_empty() && s.starts_with("Reset Reset NONE")))
            .map(|(s, text)| format!("[{s}] {}", text.trim_end()))
            .collect();
        out.push_str(&format!("{y:>2}: {}\n", line.join(" ")));
    }
    out
}

/// The style of the first cell of the first occurrence of `text` on screen.
fn style_at(t: &Terminal<TestBackend>, text: &str) -> (Color, Color, ratatui::style::Modifier) {
    let s = screen(t);
    let (y, line) = s.lines().enumerate().find(|(_, l)| l.contains(text)).expect(text);
    let x = line[..line.find(text).unwrap()].chars().count() as u16;
    let c = &t.backend().buffer()[(x, y as u16)];
    (c.fg, c.bg, c.modifier)
}

#[test]
fn table_colours_per_state_and_none_under_no_color() {
    use ratatui::style::Modifier;
    let mut app = app();
    let t = render(&mut app, 80, 24);
    assert_eq!(style_at(&t, "▶ running"), (Color::Green, Color::DarkGray, Modifier::BOLD));
    assert_eq!(style_at(&t, "✔ done"), (Color::Cyan, Color::Reset, Modifier::empty()));
    assert_eq!(style_at(&t, "✖ crashed"), (Color::Red, Color::Reset, Modifier::BOLD));
    assert_eq!(style_at(&t, "· idle"), (Color::Gray, Color::Reset, Modifier::empty()));
    assert_eq!(style_at(&t, "■ stopped"), (Color::Yellow, Color::Reset, Modifier::empty()));
    insta::assert_snapshot!("table_styles_colour", styles(&t));

    // NO_COLOR (Theme::from_env reads it; e2e_console checks the variable end to end): no
    // colour anywhere, the selected row still stands out by reversed video.
    let mut app = app_with(ImageCache::off(), Theme { color: false });
    let t = render(&mut app, 80, 24);
    assert!(
        t.backend().buffer().content().iter().all(|c| (c.fg, c.bg) == (Color::Reset, Color::Reset))
    );
    assert_eq!(style_at(&t, "▶ running").2, Modifier::BOLD | Modifier::REVERSED);
    insta::assert_snapshot!("table_styles_no_color", styles(&t));
}

#[test]
fn halfblock_image_cells_are_the_picture() {
    // A 64x64 picture in four solid quadrants.
    let quadrant = |x: u32, y: u32| match (x < 32, y < 32) {
        (true, true) => [255, 0, 0],
        (false, true) => [0, 255, 0],
        (true, false) => [0, 0, 255],
        (false, false) => [255, 255, 255],
    };
    let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb(quadrant(x, y)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quadrants.png");
    img.save(&path).unwrap();
    let mut cache = ImageCache::blocking(ImageProtocol::Halfblocks.picker());
    let mut t = Terminal::new(TestBackend::new(40, 20)).unwrap();
    t.draw(|f| cache.render(f, f.area(), &path, ratatui::style::Style::new())).unwrap();
    let buf = t.backend().buffer();
    // The image is drawn where the cells carry colours; find that box.
    let drawn: Vec<(u16, u16)> = (0..20)
        .flat_map(|y| (0..40).map(move |x| (x, y)))
        .filter(|&(x, y)| buf[(x, y)].fg != Color::Reset || buf[(x, y)].bg != Color::Reset)
        .collect();
    assert!(drawn.len() > 100, "only {} image cells", drawn.len());
    let (x0, x1) =
        (drawn.iter().map(|p| p.0).min().unwrap(), drawn.iter().map(|p| p.0).max().unwrap());
    let (y0, y1) =
        (drawn.iter().map(|p| p.1).min().unwrap(), drawn.iter().map(|p| p.1).max().unwrap());
    let rgb = |c: Color| match c {
        Color::Rgb(r, g, b) => [r, g, b],
        other => panic!("halfblocks draw RGB colours, got {other:?}"),
    };
    // Quadrant centres: both half-cells (fg and bg) carry that quadrant's colour.
    for (fx, fy, want) in
        [(1, 1, [255, 0, 0]), (3, 1, [0, 255, 0]), (1, 3, [0, 0, 255]), (3, 3, [255, 255, 255])]
    {
        let x = x0 + (x1 - x0) * fx / 4;
        let y = y0 + (y1 - y0) * fy / 4;
        let c = &buf[(x, y)];
        // A half block shows its two pixels as foreground and background; a blank cell (both
        // pixels alike) only its background.
        let colours = match c.symbol() {
            "▄" | "▀" => vec![rgb(c.fg), rgb(c.bg)],
            " " => vec![rgb(c.bg)],
            other => panic!("cell ({x}, {y}) is {other:?}, not a half block"),
        };
        for got in colours {
            assert!(
                got.iter().zip(want).all(|(g, w)| (*g as i32 - w).abs() <= 8),
                "cell ({x}, {y}) is {got:?}, the picture is {want:?} there"
            );
        }
    }
}

#[test]
fn the_console_shows_the_registry_summary() {
    // One run-state reader: what the console shows is what `brainscope status` computes.
    let app = app();
    for e in &app.project.experiments {
        let mut reader = RunReader::new(&e.dir);
        reader.poll();
        let epochs = e.config.as_ref().unwrap().train.epochs;
        assert_eq!(reader.summary(epochs, &probe()), e.run, "experiment {}", e.id);
    }
}

#[test]
fn lazy_open_ends_like_the_eager_one() {
    let eager = app();
    let mut lazy = App::new(
        Project::open_lazy(FIXTURES, probe()),
        ImageCache::off(),
        Theme { color: true },
        None,
    );
    let start = std::time::Instant::now();
    while lazy.project.loading() > 0 {
        lazy.collect_background();
        assert!(start.elapsed().as_secs() < 30, "the metrics thread never answered");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for (a, b) in eager.project.experiments.iter().zip(&lazy.project.experiments) {
        assert_eq!(a.run, b.run, "experiment {}", a.id);
        assert_eq!(a.record_counts(), b.record_counts());
        assert_eq!(a.corrupt_lines(), b.corrupt_lines());
    }
    let mut eager = eager;
    assert_eq!(screen(&render(&mut eager, 80, 24)), screen(&render(&mut lazy, 80, 24)));
}

#[test]
fn lazy_start_reads_the_end_then_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |step: u64, split: Split, v: f64| MetricRecord {
        t: step,
        epoch: (step / 100) as usize,
        step,
        split,
        loss: (split == Split::Train).then_some(v),
        l1: (split == Split::Val).then_some(v),
        lr: None,
    };
    let mut text = String::new();
    for step in 1..=5_000u64 {
        text += &(rec(step, Split::Train, 1.0 + step as f64).to_line() + "\n");
        if step % 100 == 0 {
            // The best val L1 is the first epoch's, far before the end of the file.
            let l1 = if step == 100 { 0.125 } else { 0.5 };
            text += &(rec(step, Split::Val, l1).to_line() + "\n");
        }
    }
    std::fs::write(dir.path().join("metrics.jsonl"), &text).unwrap();
    let (mut reader, request) = RunReader::open_at_end(dir.path());
    let request = request.expect("a long file has a prefix to read");
    assert!(reader.prefix_pending());
    let early = reader.summary(1, &probe());
    assert_eq!(early.last_loss, Some(5001.0), "the end is read at once");
    assert_eq!(early.best_val_l1, Some(0.5), "only the last records are known yet");
    let prefix = request.read().unwrap().expect("same file");
    assert!(reader.set_prefix(request.era, prefix));
    assert!(!reader.prefix_pending());
    let done = reader.summary(1, &probe());
    assert_eq!((done.best_val_l1, done.best_epoch), (Some(0.125), Some(1)));
    assert_eq!(done.last_loss, Some(5001.0));
    assert_eq!((reader.metrics().train_records, reader.metrics().val_records), (5_000, 50));
}

#[test]
fn histories_are_held_only_while_drawn() {
    let mut app = app();
    select(&mut app, "94");
    app.apply(Action::Mark);
    select(&mut app, "101");
    app.apply(Action::Open);
    render(&mut app, 80, 24);
    let held: Vec<&str> = app
        .project
        .experiments
        .iter()
        .filter(|e| e.history.is_some())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(held, ["94", "101"], "the open experiment and its overlay");
    assert_eq!(app.project.get("101").unwrap().history.as_ref().unwrap().len(), 20);
    app.apply(Action::Back);
    render(&mut app, 80, 24);
    assert!(app.project.experiments.iter().all(|e| e.history.is_none()));
}

/// The fixture experiments with what `eval` + `recon` write for 92 and 94 on probe rows 100
/// and 101: target, low-level and high-level images, captions (one long, one missing), the
/// `samples.json` index and a probe vote (94 wins row 100).
fn recon_project() -> tempfile::TempDir {
    use brainscope::experiments::state::{EvalSplit, RunPaths};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("experiments");
    crate::common::copy_dir(std::path::Path::new(FIXTURES), &root);
    let captions = [
        ("92", 0, "a brown dog running across a grassy field on a sunny afternoon"),
        ("92", 1, "a plate of food"),
        ("94", 0, "a dog on the grass"),
    ];
    for id in ["92", "94"] {
        let paths = RunPaths::new(root.join(id));
        let to = paths.recon_final(EvalSplit::Probe);
        std::fs::create_dir_all(&to).unwrap();
        let epoch = paths.recon_epoch(1);
        for i in 0..2 {
            let name = |kind: &str| format!("sample-{i:02}-{kind}.png");
            std::fs::copy(epoch.join(name("target")), to.join(name("target"))).unwrap();
            std::fs::copy(epoch.join(name("lowlevel")), to.join(name("lowlevel"))).unwrap();
            // A visibly different high-level image: the target itself.
            std::fs::copy(epoch.join(name("target")), to.join(name("highlevel"))).unwrap();
        }
        for (_, i, text) in captions.iter().filter(|c| c.0 == id) {
            std::fs::write(to.join(format!("sample-{i:02}-caption.txt")), format!("{text}\n"))
                .unwrap();
        }
        let index = serde_json::json!({"epoch": 1, "split": "probe", "samples": [
            {"sample": 0, "row": 100, "image": "/data/probe-0100.png"},
            {"sample": 1, "row": 101, "image": "/data/probe-0101.png"},
        ]});
        std::fs::write(to.join("samples.json"), index.to_string()).unwrap();
    }
    let votes = serde_json::json!({"rule": "consensus", "split": "probe", "experiments": ["92", "94"],
    "clip": "weights/clip", "t": T0, "votes": [
        {"sample": 0, "row": 100, "winner": "94", "scores": {"92": 0.25, "94": 0.5}},
        {"sample": 1, "row": 101, "winner": "92", "scores": {"92": 0.5, "94": 0.25}},
    ]});
    std::fs::write(root.join("votes.json"), votes.to_string()).unwrap();
    tmp
}

#[test]
fn gallery_shows_captions_under_low_and_high_level_images() {
    let tmp = recon_project();
    let images = ImageCache::blocking(ImageProtocol::Halfblocks.picker());
    let project = Project::open(tmp.path().join("experiments"), probe());
    let mut app = App::new(project, images, Theme { color: true }, None);
    app.filter = "9".into(); // 92, 94 and 97 (no final probe: predates the probe set)
    app.apply(Action::Gallery);
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("probe-0100.png (1/2)") && s.contains("vote winner: 94 ★"), "{s}");
    assert!(s.contains("94 · final probe ★"), "the winner mark stays:\n{s}");
    assert!(s.contains("lowlevel ★") && s.contains("highlevel ★"), "{s}");
    // Cut to the 18 cells of an 80-column terminal's image column, with a mark.
    assert!(s.contains("\"a brown dog runn…") && s.contains("\"a dog on the gras…"), "{s}");
    let caption_row = s.lines().nth(21).unwrap();
    assert!(caption_row.contains("runn…") && !caption_row.contains("target"), "{s}");
    insta::assert_snapshot!(s);
    // Wider: the short caption whole, the long one still cut.
    let s = screen(&render(&mut app, 120, 30));
    assert!(s.contains("\"a dog on the grass\"") && s.contains("\"a brown dog running"), "{s}");
    assert!(!s.contains("afternoon"), "{s}");
    // Row 101 at the larger size: 92 won; 94 has no caption for it.
    app.apply(Action::SampleNext);
    let s = screen(&render(&mut app, 120, 30));
    assert!(s.contains("probe-0101.png (2/2)") && s.contains("92 · final probe ★"), "{s}");
    assert!(s.contains("\"a plate of food\""), "{s}");
    assert_eq!(s.matches('"').count(), 2, "one caption only:\n{s}");
    insta::assert_snapshot!(s);
}
