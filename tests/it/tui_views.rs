//! Snapshot tests of every view (ratatui TestBackend + insta) on the fixture experiments in
//! tests/fixtures/experiments (running, done, crashed, idle, corrupt metrics line), plus the
//! state the console derives from those files.

use brainscope::experiments::state::RunState;
use brainscope::tui::app::{App, Column};
use brainscope::tui::image::{ImageCache, ImageProtocol};
use brainscope::tui::keys::{Action, View};
use brainscope::tui::model::{Probe, Project};
use brainscope::tui::views::{self, Theme};
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
    let state = |id: &str| app.project.get(id).unwrap().state;
    assert_eq!(state("92"), RunState::Running, "live pid");
    assert_eq!(state("94"), RunState::Done);
    assert_eq!(state("97"), RunState::Crashed, "status says running but the pid is dead");
    assert_eq!(state("100"), RunState::Idle);
    assert_eq!(state("101"), RunState::Stopped);
    let c = app.project.get("101").unwrap();
    assert_eq!(c.corrupt_lines, 1, "the partial last line is not counted as corrupt");
    assert_eq!(c.train.len(), 20);
    let done = app.project.get("94").unwrap();
    assert_eq!(done.best_val().unwrap().epoch, 4);
    assert_eq!(done.recon_epochs, vec![0, 1, 2, 3, 4]);
    assert_eq!(app.project.get("92").unwrap().eta_secs(&probe()), Some(445));
    assert_eq!(app.project.votes.as_ref().unwrap().winners.get(&0).map(String::as_str), Some("94"));
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
fn gallery_marks_the_vote_winner() {
    let mut app =
        app_with(ImageCache::blocking(ImageProtocol::Halfblocks.picker()), Theme { color: true });
    app.apply(Action::Gallery);
    let s = screen(&render(&mut app, 80, 24));
    assert!(s.contains("vote winner: 94"), "{s}");
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
