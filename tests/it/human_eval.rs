//! Blind 2-AFC human evaluation and the compare view: snapshots of the rating and compare
//! views (TestBackend + insta, halfblock images), the ratings file across kills and continued
//! sessions, `brainscope rate` bad input, and pty end-to-end sessions from the keyboard (the
//! console's `a`, and `brainscope rate` killed midway then continued).

use crate::common::{BIN, Session};
use brainscope::eval::human::{
    self, HumanError, SampleSource, Session as Rating, SessionOptions, Side, ValidationSamples,
};
use brainscope::experiments::state::{EvalSplit, HumanLine, ReconKind};
use brainscope::tui::app::App;
use brainscope::tui::image::{ImageCache, ImageProtocol};
use brainscope::tui::keys::{Action, View};
use brainscope::tui::model::{Probe, Project};
use brainscope::tui::theme::Theme;
use brainscope::tui::views;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &str = "tests/fixtures/experiments";
/// Fixture timestamps start here (see make_console_fixtures.py).
const T0: u64 = 1_750_000_000_000;

fn probe() -> Probe {
    Probe { now_ms: || T0 + 55_000, pid_alive: |pid, _| pid == 4242 }
}

/// A project with copies of the fixture experiments `ids` (their recon images and metrics;
/// `root = "no-data"` so the console generates no demo data).
fn project(ids: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for id in ids {
        // status.json left out: the copies start with no recorded run state.
        let (from, to) = (Path::new(FIXTURES).join(id), tmp.path().join("experiments").join(id));
        crate::common::copy_dir_skipping(&from, &to, &["status.json"]);
        let toml = tmp.path().join("experiments").join(id).join("experiment.toml");
        let text = std::fs::read_to_string(&toml).unwrap().replace("demo-data", "no-data");
        std::fs::write(&toml, text).unwrap();
    }
    std::fs::copy(
        Path::new(FIXTURES).join("votes.json"),
        tmp.path().join("experiments/votes.json"),
    )
    .unwrap();
    tmp
}

fn exps(root: &Path, ids: &[&str]) -> Vec<(String, PathBuf)> {
    ids.iter().map(|id| (id.to_string(), root.join("experiments").join(id))).collect()
}

fn opts(n: usize, seed: Option<u64>, rater: &str) -> SessionOptions {
    SessionOptions { n, kind: ReconKind::Lowlevel, seed, rater: rater.into() }
}

fn lines(path: &Path) -> Vec<HumanLine> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| HumanLine::parse_line(l).expect("every line parses"))
        .collect()
}

fn ratings_file(root: &Path, id: &str) -> PathBuf {
    root.join("experiments").join(id).join("human-2afc.jsonl")
}

fn app(root: &Path) -> App {
    App::new(
        Project::open(root.join("experiments"), probe()),
        ImageCache::blocking(ImageProtocol::Halfblocks.picker()),
        Theme { color: true },
        None,
    )
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| views::draw(f, app)).unwrap();
    let buf = terminal.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn select(app: &mut App, id: &str) {
    let visible = app.visible();
    app.selected = visible.iter().position(|&i| app.project.experiments[i].id == id).unwrap();
}

fn answer_correctly(s: &mut Rating) {
    let side = if s.current().unwrap().target_left { Side::Left } else { Side::Right };
    s.answer(side).unwrap();
}

#[test]
fn rating_view_80x24_hides_the_experiment() {
    let dir = project(&["92", "94"]);
    let mut app = app(dir.path());
    let session = Rating::start(
        &exps(dir.path(), &["92", "94"]),
        &opts(6, Some(0), "tester"),
        &ValidationSamples,
    )
    .unwrap();
    app.rating = Some(session);
    app.view = View::Rate;
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("trial 1 of 6") && s.contains("rater tester"), "{s}");
    assert!(!s.contains("92") && !s.contains("94"), "the experiment id is hidden:\n{s}");
    insta::assert_snapshot!(s);
    // Keys: 1 answers, u takes it back, s skips; q ends and shows the results.
    for (key, want) in [('1', "trial 2 of 6"), ('u', "trial 1 of 6"), ('l', "trial 2 of 6")] {
        app.on_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(key)));
        assert!(screen(&mut app, 80, 24).contains(want), "after {key}");
    }
    let before = app.rating.as_ref().unwrap().current().unwrap().index;
    app.apply(Action::RateSkip);
    assert_ne!(app.rating.as_ref().unwrap().current().unwrap().index, before, "skipped");
    app.apply(Action::RateEnd);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("session over · 1 of 6 answered"), "{s}");
    app.apply(Action::RateEnd);
    assert_eq!(app.view, View::Table);
    assert!(app.rating.is_none() && !app.quit);
}

#[test]
fn rating_results_80x24_and_the_table_column() {
    let dir = project(&["92", "94"]);
    let mut app = app(dir.path());
    let mut session = Rating::start(
        &exps(dir.path(), &["92", "94"]),
        &opts(6, Some(0), "tester"),
        &ValidationSamples,
    )
    .unwrap();
    // Right, right, wrong, right, wrong, right.
    for k in 0..6 {
        let t = session.current().unwrap();
        let right = if t.target_left { Side::Left } else { Side::Right };
        let wrong = if right == Side::Left { Side::Right } else { Side::Left };
        session.answer(if k == 2 || k == 4 { wrong } else { right }).unwrap();
    }
    assert!(session.is_over());
    let results = session.results();
    assert_eq!(results.iter().map(|r| r.trials).sum::<usize>(), 6);
    assert_eq!(results.iter().map(|r| r.correct).sum::<usize>(), 4);
    app.rating = Some(session);
    app.view = View::Rate;
    app.project.refresh();
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("session over · 6 of 6 answered"), "{s}");
    insta::assert_snapshot!("rating_results_80x24", s);
    app.apply(Action::RateEnd);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("HUMAN 2AFC") && s.contains("67% 21-94"), "{s}");
    // Without the title line: it holds the temporary folder's path.
    let s: String = s.lines().skip(1).map(|l| format!("{l}\n")).collect();
    insta::assert_snapshot!("table_with_human_2afc_80x24", s);
    select(&mut app, "94");
    app.apply(Action::Open);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("human 2AFC · low-level"), "{s}");
    insta::assert_snapshot!("detail_with_human_2afc_80x24", s);
}

#[test]
fn compare_view_aligns_images_and_marks_the_vote_winner() {
    let dir = project(&["92", "94", "101"]);
    // 92's sample 1 and 94's sample 0 show the same dataset image; 101 predates samples.json.
    let index = |rows: [u64; 2]| {
        serde_json::json!({"epoch": 0, "split": "val", "samples": [
            {"sample": 0, "row": rows[0], "image": format!("/data/train-{:04}.png", rows[0])},
            {"sample": 1, "row": rows[1], "image": format!("/data/train-{:04}.png", rows[1])},
        ]})
        .to_string()
    };
    let exp = dir.path().join("experiments");
    let last = |id: &str| {
        let mut e = human::recon_epochs(&exp.join(id));
        e.pop().unwrap()
    };
    let folder = |id: &str| exp.join(id).join(format!("recon/epoch-{:03}", last(id)));
    std::fs::write(folder("92").join("samples.json"), index([7, 3])).unwrap();
    std::fs::write(folder("94").join("samples.json"), index([3, 9])).unwrap();
    let mut app = app(dir.path());
    app.apply(Action::Compare);
    assert_eq!(app.view, View::Table, "needs two marked");
    assert!(app.message.as_deref().unwrap().contains("mark two or more"));
    for id in ["92", "94", "101"] {
        select(&mut app, id);
        app.apply(Action::Mark);
    }
    app.apply(Action::Compare);
    assert_eq!(app.view, View::Compare);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("image 1/5 · in 2 of 3"), "the shared image first:\n{s}");
    assert!(s.contains("94 ★ vote"), "votes.json: sample 0 won by 94\n{s}");
    assert!(s.contains("train-0003.png") && s.contains("not among its"), "{s}");
    insta::assert_snapshot!(s);
    app.apply(Action::SampleNext);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("image 2/5 · in 1 of 3"), "{s}");
    app.apply(Action::Back);
    assert_eq!(app.view, View::Table);
}

#[test]
fn a_killed_session_loses_nothing_and_continues_without_repeats() {
    let dir = project(&["92", "94"]);
    let e = exps(dir.path(), &["92", "94"]);
    let mut s = Rating::start(&e, &opts(8, None, "ana"), &ValidationSamples).unwrap();
    assert_eq!((s.seed, s.total(), s.resumed), (0, 8, 0));
    let first: Vec<usize> = (0..3)
        .map(|_| {
            let i = s.current().unwrap().index;
            answer_correctly(&mut s);
            i
        })
        .collect();
    // An answer taken back counts no more and is asked again.
    let fourth = s.current().unwrap().index;
    answer_correctly(&mut s);
    assert!(s.undo().unwrap());
    assert_eq!(s.current().unwrap().index, fourth);
    drop(s); // a kill: nothing more is written
    // A partial line from a kill mid-write is ignored, not counted as corrupt.
    let f92 = ratings_file(dir.path(), "92");
    let mut text = std::fs::read_to_string(&f92).unwrap_or_default();
    text.push_str("{\"t\": 1, \"sess");
    std::fs::write(&f92, text).unwrap();
    let r92 = human::read_ratings(&f92).unwrap();
    let r94 = human::read_ratings(&ratings_file(dir.path(), "94")).unwrap();
    assert_eq!(r92.answers.len() + r94.answers.len(), 3, "three answers kept, the undone not");
    assert_eq!(r92.corrupt + r94.corrupt, 0);
    // Mend the cut line as an editor would (the next append starts on a new line).
    let text = std::fs::read_to_string(&f92).unwrap();
    std::fs::write(&f92, &text[..text.rfind('\n').map_or(0, |i| i + 1)]).unwrap();
    let undos = lines(&ratings_file(dir.path(), "92"))
        .into_iter()
        .chain(lines(&ratings_file(dir.path(), "94")))
        .filter(|l| matches!(l, HumanLine::Undo(_)))
        .count();
    assert_eq!(undos, 1);

    // The same command continues: the answered trials are not asked again.
    let mut s = Rating::start(&e, &opts(8, None, "ana"), &ValidationSamples).unwrap();
    assert_eq!((s.seed, s.resumed, s.answered()), (0, 3, 3));
    let mut rest = Vec::new();
    while let Some(t) = s.current() {
        rest.push(t.index);
        answer_correctly(&mut s);
    }
    assert_eq!(rest.len(), 5);
    assert!(rest.iter().all(|i| !first.contains(i)), "{rest:?} repeats one of {first:?}");
    let mut all: Vec<usize> = first.iter().chain(&rest).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..8).collect::<Vec<_>>());
    // Finished: without a seed the next session is a new one (seed 1); another rater starts
    // at seed 0 again, and the two raters' answers stay apart.
    let s = Rating::start(&e, &opts(8, None, "ana"), &ValidationSamples).unwrap();
    assert_eq!((s.seed, s.resumed), (1, 0));
    let s = Rating::start(&e, &opts(8, Some(0), "ana"), &ValidationSamples).unwrap();
    assert!(s.is_over(), "an explicit seed reopens the finished session");
    let mut ben = Rating::start(&e, &opts(8, None, "ben"), &ValidationSamples).unwrap();
    assert_eq!((ben.seed, ben.resumed), (0, 0));
    answer_correctly(&mut ben);
    let count = |rater: Option<&str>| -> usize {
        ["92", "94"]
            .iter()
            .map(|id| {
                let r = human::read_ratings(&ratings_file(dir.path(), id)).unwrap();
                human::summarize(id, &r.answers, ReconKind::Lowlevel, rater).trials
            })
            .sum()
    };
    assert_eq!((count(None), count(Some("ana")), count(Some("ben"))), (9, 8, 1));
}

#[test]
fn experiments_that_cannot_be_rated_are_left_out_or_refused() {
    let dir = project(&["92", "94", "100"]);
    // 94 keeps only one sample in its latest epoch.
    let exp = dir.path().join("experiments");
    let last = *human::recon_epochs(&exp.join("94")).last().unwrap();
    let folder = exp.join(format!("94/recon/epoch-{last:03}"));
    for f in std::fs::read_dir(&folder).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("sample-01") {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    let s = Rating::start(
        &exps(dir.path(), &["92", "94", "100"]),
        &opts(4, Some(1), "a"),
        &ValidationSamples,
    )
    .unwrap();
    let left_out: Vec<String> = s.skipped.iter().map(|k| k.reason.to_string()).collect();
    assert_eq!(s.skipped.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["100", "94"]);
    assert!(
        left_out[0].contains("no reconstructions") && left_out[0].contains("brainscope train 100")
    );
    assert!(left_out[1].contains("only 1 reconstruction sample"), "{left_out:?}");
    assert!(s.trials.iter().all(|t| t.id == "92"));
    let err = Rating::start(&exps(dir.path(), &["94"]), &opts(4, None, "a"), &ValidationSamples)
        .unwrap_err();
    assert!(matches!(&err, HumanError::NothingToRate(v) if v.len() == 1), "{err}");
    let err = Rating::start(
        &exps(dir.path(), &["92"]),
        &SessionOptions { kind: ReconKind::Highlevel, ..opts(4, None, "a") },
        &ValidationSamples,
    )
    .unwrap_err();
    assert!(err.to_string().contains("brainscope recon 92"), "{err}");
    let err = Rating::start(&exps(dir.path(), &["92"]), &opts(0, None, "a"), &ValidationSamples)
        .unwrap_err();
    assert!(matches!(err, HumanError::ZeroTrials));
    // Only the names in experiments::state::recon are read: the old `vae` spelling is not a
    // low-level reconstruction.
    let set = ValidationSamples.samples("92", &exp.join("92"), ReconKind::Lowlevel, None).unwrap();
    assert!(set.samples.len() >= 2);
    for epoch in human::recon_epochs(&exp.join("92")) {
        let folder = exp.join(format!("92/recon/epoch-{epoch:03}"));
        for f in std::fs::read_dir(folder).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix("-lowlevel.png") {
                std::fs::rename(f.path(), f.path().with_file_name(format!("{stem}-vae.png")))
                    .unwrap();
            }
        }
    }
    let err =
        ValidationSamples.samples("92", &exp.join("92"), ReconKind::Lowlevel, None).unwrap_err();
    assert!(matches!(err, HumanError::NoReconstructions { .. }), "{err}");
}

/// Write a `samples.json` with `split` (none: a pre-probe index) into every epoch folder of
/// `id`, sample `i` = `rows[i]`.
fn write_index(root: &Path, id: &str, split: Option<&str>, rows: [u64; 2]) {
    let dir = root.join("experiments").join(id);
    for epoch in human::recon_epochs(&dir) {
        let mut index = serde_json::json!({"epoch": epoch, "samples": [
            {"sample": 0, "row": rows[0], "image": format!("/data/train-{:04}.png", rows[0])},
            {"sample": 1, "row": rows[1], "image": format!("/data/train-{:04}.png", rows[1])},
        ]});
        if let Some(split) = split {
            index["split"] = split.into();
        }
        let path = dir.join(format!("recon/epoch-{epoch:03}/samples.json"));
        std::fs::write(path, index.to_string()).unwrap();
    }
}

#[test]
fn the_probe_set_is_the_default_source_when_every_experiment_has_it() {
    let dir = project(&["92", "94", "101"]);
    let e = |ids: &[&str]| exps(dir.path(), ids);
    let kind = ReconKind::Lowlevel;
    // Probe runs: sample i is probe row i in both, whatever their seeds.
    write_index(dir.path(), "92", Some("probe"), [4, 11]);
    write_index(dir.path(), "94", Some("probe"), [4, 11]);
    write_index(dir.path(), "101", None, [7, 3]); // a run from before the probe set
    let is_probe = |ids: &[&str]| human::source_for(&e(ids)).label() == "probe set";
    assert!(is_probe(&["92", "94"]), "both have probe recons: the probe set");
    assert!(!is_probe(&["92", "94", "101"]), "101 predates it: every run's own samples");
    assert_eq!(human::latest_split(&dir.path().join("experiments/101")), Some(EvalSplit::Val));
    assert_eq!(human::latest_split(&dir.path().join("experiments/92")), Some(EvalSplit::Probe));

    let probe = human::ProbeSamples;
    let a = probe.samples("92", &dir.path().join("experiments/92"), kind, None).unwrap();
    let b = probe.samples("94", &dir.path().join("experiments/94"), kind, None).unwrap();
    let keys = |s: &human::SampleSet| -> Vec<(usize, String)> {
        s.samples.iter().map(|x| (x.index, x.key.clone())).collect()
    };
    assert_eq!(keys(&a), keys(&b), "aligned by sample index");
    assert_eq!(keys(&a)[1], (1, "/data/train-0011.png".to_string()));
    let err = probe.samples("101", &dir.path().join("experiments/101"), kind, None).unwrap_err();
    assert!(
        matches!(&err, HumanError::NotProbe { id, .. } if id == "101")
            && err.to_string().contains("brainscope train 101 --restart"),
        "{err}"
    );

    // A session over probe runs: each trial's target and distractor are two probe samples of
    // the same experiment, and the recon is that experiment's reconstruction of the target.
    let s = Rating::start(&e(&["92", "94"]), &opts(8, Some(3), "ana"), &probe).unwrap();
    assert_eq!(s.total(), 8);
    for t in &s.trials {
        assert_ne!(t.sample, t.distractor);
        let folder = dir.path().join("experiments").join(&t.id);
        assert!(t.recon.starts_with(&folder) && t.left.starts_with(&folder), "{t:?}");
        assert!(t.right.starts_with(&folder), "{t:?}");
    }
    // With 101 in the session, the probe source leaves it out and says why.
    let s = Rating::start(&e(&["92", "101"]), &opts(4, Some(3), "ana"), &probe).unwrap();
    assert_eq!(s.skipped.len(), 1);
    assert!(matches!(&s.skipped[0].reason, HumanError::NotProbe { .. }));
}

fn rate(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("rate")
        .args(args)
        .arg("--dir")
        .arg(root.join("experiments"))
        .output()
        .unwrap()
}

fn summary(root: &Path, args: &[&str]) -> serde_json::Value {
    let out = rate(root, &[args, &["--json"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rate_cli_bad_input_fails_clearly_and_writes_nothing() {
    let dir = project(&["92", "94"]);
    let out = rate(dir.path(), &["92", "999", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no experiment 999") && err.contains("known: 92, 94"), "{err}");
    let out = rate(dir.path(), &["92", "--kind", "highlevel", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("brainscope recon 92"), "{err}");
    let out = rate(dir.path(), &["92", "94"]); // no terminal
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--json"), "{err}");
    assert!(!ratings_file(dir.path(), "92").exists() && !ratings_file(dir.path(), "94").exists());
    // Never rated: zero trials, null accuracy.
    let v = summary(dir.path(), &["92"]);
    assert_eq!(
        v,
        serde_json::json!({"experiments": [{"id": "92", "trials": 0, "correct": 0,
            "accuracy": null, "ci_low": null, "ci_high": null, "raters": []}]})
    );
}

/// `brainscope rate` in a pty: answer three trials, SIGKILL it, run the same command again
/// (it continues at trial 4), finish; `rate --json` counts each trial once.
#[test]
fn rate_killed_midway_then_continued_from_the_keyboard() {
    let dir = project(&["92", "94"]);
    let d = dir.path().join("experiments");
    let args = ["rate", "92", "94", "--n", "6", "--rater", "kim", "--dir", d.to_str().unwrap()];
    let mut s = Session::open_with(dir.path(), &args, &[]);
    s.wait_for(&["trial 1 of 6", "rater kim", "reconstruction"]);
    for (key, next) in [("1", "trial 2 of 6"), ("2", "trial 3 of 6"), ("l", "trial 4 of 6")] {
        s.send(key);
        s.wait_for(&[next]);
    }
    let pid = s.child.process_id().unwrap();
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    s.wait_exit();
    let v = summary(dir.path(), &["92", "94", "--rater", "kim"]);
    let trials: u64 =
        v["experiments"].as_array().unwrap().iter().map(|e| e["trials"].as_u64().unwrap()).sum();
    assert_eq!(trials, 3, "{v}");

    let mut s = Session::open_with(dir.path(), &args, &[]);
    s.wait_for(&["trial 4 of 6", "continued (3 done before)"]);
    for (key, next) in [("h", "trial 5 of 6"), ("\x1b[C", "trial 6 of 6"), ("1", "session over")] {
        s.send(key);
        s.wait_for(&[next]);
    }
    s.wait_for(&["6 of 6 answered"]);
    s.send("q");
    let status = s.wait_exit();
    assert!(status.success(), "{status:?}");
    s.assert_restored();
    let v = summary(dir.path(), &["92", "94"]);
    let exps = v["experiments"].as_array().unwrap();
    assert_eq!(exps.iter().map(|e| e["trials"].as_u64().unwrap()).sum::<u64>(), 6, "{v}");
    for e in exps {
        assert_eq!(e["raters"], serde_json::json!(["kim"]));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in ["92", "94"] {
        for a in human::read_ratings(&ratings_file(dir.path(), id)).unwrap().answers {
            assert!(seen.insert(a.trial), "trial {} answered twice", a.trial);
        }
    }
    assert_eq!(seen.len(), 6);
}

/// The console: mark 92 and 94, `a`, answer four trials from the keyboard, end with `q`; the
/// table then shows the human 2AFC column and `rate --json` has the same four answers.
#[test]
fn console_rating_session_from_the_keyboard() {
    let dir = project(&["92", "94"]);
    let mut s = Session::open_with(dir.path(), &[], &[("USER", "lee")]);
    s.wait_for(&["HUMAN 2AFC", "92", "94"]);
    s.send(" j ");
    s.wait_for(&["*92", "*94"]);
    s.send("a");
    s.wait_for(&["trial 1 of 40", "rater lee"]);
    for (key, next) in [("1", "trial 2 of 40"), ("2", "trial 3 of 40"), ("s", "trial 3 of 40")] {
        s.send(key);
        s.wait_for(&[next]);
    }
    for (key, next) in [("h", "trial 4 of 40"), ("l", "trial 5 of 40")] {
        s.send(key);
        s.wait_for(&[next]);
    }
    s.send("q");
    s.wait_for(&["session over · 4 of 40 answered", "36 trial(s) unanswered"]);
    s.send("q");
    s.wait_for(&["HUMAN 2AFC", "BEST L1"]);
    let v = summary(dir.path(), &["92", "94"]);
    let exps = v["experiments"].as_array().unwrap();
    assert_eq!(exps.iter().map(|e| e["trials"].as_u64().unwrap()).sum::<u64>(), 4, "{v}");
    for e in exps {
        let cell = match e["accuracy"].as_f64() {
            Some(_) => human::summarize(
                e["id"].as_str().unwrap(),
                &human::read_ratings(&ratings_file(dir.path(), e["id"].as_str().unwrap()))
                    .unwrap()
                    .answers,
                ReconKind::Lowlevel,
                None,
            )
            .cell(),
            None => "-".into(),
        };
        assert_eq!(
            e["raters"],
            if e["trials"] == 0 { serde_json::json!([]) } else { serde_json::json!(["lee"]) }
        );
        s.wait_for(&[&cell]); // the table shows it
    }
    s.quit();
}
