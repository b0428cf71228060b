//! The console on evaluation results and the new-experiment actions (issues 14.9, 16.3, 11):
//! eval columns and the detail view's eval panel from `eval/<split>.json` (probe, else val),
//! `e` running an eval command in the background (progress, marker, numbers or the error at
//! the end), votes from `votes.json` (`VoteRecord`), the gallery and compare views on
//! `recon/final-probe/` aligned by dataset row with the pre-probe note, per-sample metrics in
//! the compare view, the `n` clone form and the `s` "local or Slurm?" question.
//! Snapshots at 80x24 and a larger size; each screen is also checked for what it must say.

use crate::common::BIN;
use brainscope::eval::metrics::{Resize, load_image01, score_pair};
use brainscope::experiments::state::{
    EvalRecord, EvalSplit, RunPaths, SampleVote, SlurmJobRecord, VoteRecord, VoteRule,
    write_atomic, write_slurm_job,
};
use brainscope::tui::app::{App, Column, ColumnSet, Launcher};
use brainscope::tui::image::{ImageCache, ImageProtocol};
use brainscope::tui::keys::{Action, FormInput, View};
use brainscope::tui::model::{Probe, Project};
use brainscope::tui::theme::Theme;
use brainscope::tui::views;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FIXTURES: &str = "tests/fixtures/experiments";
const T0: u64 = 1_750_000_000_000;

fn probe() -> Probe {
    Probe { now_ms: || T0 + 55_000, pid_alive: |pid, _| pid == 4242 }
}

/// A copy of the fixture experiments in `<tmp>/experiments`.
fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    crate::common::copy_dir(Path::new(FIXTURES), &tmp.path().join("experiments"));
    tmp
}

fn exp(tmp: &tempfile::TempDir, id: &str) -> PathBuf {
    tmp.path().join("experiments").join(id)
}

fn record(split: EvalSplit, pixcorr: f64, ssim: f64, clip: bool) -> EvalRecord {
    EvalRecord {
        split,
        samples: 40,
        epoch: 4,
        step: 220,
        checkpoint: "checkpoints/last.ckpt".into(),
        vae: "weights/demo/vae".into(),
        clip: clip.then(|| "weights/clip-vit-large-patch14".into()),
        latent_l1: 0.1857,
        pixcorr,
        ssim,
        resize: Some(425),
        two_way_pixels: 0.8125,
        two_way_clip: clip.then_some(0.9),
        clip_sim_target: clip.then_some(0.7123),
        clip_sim_vae_target: clip.then_some(0.8),
        t: T0,
    }
}

fn write_eval(dir: &Path, r: &EvalRecord) {
    let path = RunPaths::new(dir).eval(r.split);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_atomic(&path, &serde_json::to_vec_pretty(r).unwrap()).unwrap();
}

/// 94 evaluated on the probe set with CLIP (and on val, which the probe record hides), 92 only
/// on val without CLIP, 101 with a torn record.
fn with_evals() -> tempfile::TempDir {
    let tmp = project();
    write_eval(&exp(&tmp, "94"), &record(EvalSplit::Probe, 0.3141, 0.4567, true));
    write_eval(&exp(&tmp, "94"), &record(EvalSplit::Val, 0.9, 0.9, false));
    write_eval(&exp(&tmp, "92"), &record(EvalSplit::Val, 0.1234, 0.2346, false));
    let torn = RunPaths::new(exp(&tmp, "101")).eval(EvalSplit::Probe);
    std::fs::create_dir_all(torn.parent().unwrap()).unwrap();
    std::fs::write(torn, "{\"split\": \"probe\", \"samp").unwrap();
    tmp
}

fn app_on(dir: &Path, images: ImageCache) -> App {
    App::new(Project::open(dir.join("experiments"), probe()), images, Theme { color: true }, None)
}

fn render(app: &mut App, w: u16, h: u16) -> String {
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

fn ids(app: &App) -> Vec<String> {
    app.visible().iter().map(|&i| app.project.experiments[i].id.clone()).collect()
}

/// The screen's text with the tmp folder's name (random) replaced.
fn stable(s: String, tmp: &tempfile::TempDir) -> String {
    let dir = tmp.path().join("experiments").display().to_string();
    s.replace(&dir, "<tmp>")
}

#[test]
fn columns_fit_the_width_and_v_switches_to_the_eval_set() {
    assert_eq!(Column::fitting(ColumnSet::Training, 78).len(), 10);
    for set in [ColumnSet::Training, ColumnSet::Eval] {
        for width in [58u16, 78, 100, 160] {
            let cols = Column::fitting(set, width);
            let used: u16 = cols.iter().map(|c| c.width()).sum::<u16>() + cols.len() as u16 - 1;
            assert!(used <= width, "{set:?} at {width}: {used}");
            assert_eq!(cols[0], Column::Id);
        }
    }
    assert_eq!(Column::fitting(ColumnSet::Eval, 200), Column::ALL.to_vec(), "wide: all");
    let eval80 = Column::fitting(ColumnSet::Eval, 78);
    for c in [Column::PixCorr, Column::Ssim, Column::TwoWay, Column::ClipSim, Column::Human] {
        assert!(eval80.contains(&c), "{c:?} in the eval set at 80 columns");
    }
}

#[test]
fn eval_columns_show_the_probe_record_else_val_and_sort() {
    let tmp = with_evals();
    let mut app = app_on(tmp.path(), ImageCache::off());
    let e94 = app.project.get("94").unwrap();
    assert_eq!(e94.run.eval.as_ref().unwrap().split, EvalSplit::Probe, "probe before val");
    assert_eq!(app.project.get("92").unwrap().run.eval.as_ref().unwrap().split, EvalSplit::Val);
    let e101 = app.project.get("101").unwrap();
    assert!(e101.run.eval.is_none());
    assert!(e101.run.eval_error.as_deref().unwrap().contains("eval/probe.json"), "names the file");
    let s = stable(render(&mut app, 80, 24), &tmp);
    assert!(s.contains("BEST L1") && !s.contains("PIXCORR"), "training set first:\n{s}");
    app.apply(Action::Columns);
    let s = stable(render(&mut app, 80, 24), &tmp);
    assert!(s.contains("PIXCORR") && s.contains("0.3141") && s.contains("0.4567"), "{s}");
    assert!(s.contains("81.2%") && s.contains("0.7123"), "2-way and CLIP sim of 94:\n{s}");
    assert!(s.contains("error"), "101's torn record is an error, not '-':\n{s}");
    for line in s.lines() {
        assert!(line.chars().count() <= 80, "overflow: {line}");
    }
    insta::assert_snapshot!("eval_columns_80x24", s);
    // Digits sort by the shown columns: PixCorr, best first, missing last.
    let n = app.columns.iter().position(|&c| c == Column::PixCorr).unwrap();
    app.apply(Action::SortBy(n));
    assert_eq!(app.sort, Column::PixCorr);
    assert_eq!(&ids(&app)[..2], ["94", "92"]);
    app.apply(Action::SortBy(n));
    assert_eq!(ids(&app).last().unwrap(), "94", "again: reversed");
    // A wide terminal shows every column of both sets.
    app.apply(Action::SortBy(0));
    let s = stable(render(&mut app, 150, 20), &tmp);
    assert_eq!(app.columns, Column::ALL.to_vec());
    assert!(
        s.contains("ROI") && s.contains("PIXCORR") && s.contains("WHERE") && s.contains("local")
    );
    insta::assert_snapshot!("eval_columns_150x20", s);
}

#[test]
fn status_json_carries_the_eval_record() {
    let tmp = with_evals();
    let out = std::process::Command::new(BIN)
        .args(["status", "--json", "--dir"])
        .arg(tmp.path().join("experiments"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let exps = v["experiments"].as_array().unwrap();
    let by_id = |id: u64| exps.iter().find(|e| e["id"] == id).unwrap();
    assert_eq!(by_id(94)["eval"]["split"], "probe");
    assert_eq!(by_id(94)["eval"]["pixcorr"], 0.3141);
    assert_eq!(by_id(92)["eval"]["split"], "val");
    assert!(by_id(92)["eval"]["clip_sim_target"].is_null(), "no CLIP: null, never 0");
    assert!(by_id(100)["eval"].is_null());
    assert!(by_id(101)["eval_error"].as_str().unwrap().contains("probe.json"));
    let text = std::process::Command::new(BIN)
        .args(["status", "--dir"])
        .arg(tmp.path().join("experiments"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("0.314/0.457 (probe)") && text.contains("0.123/0.235 (val)"), "{text}");
}

#[test]
fn detail_eval_panel_names_split_epoch_and_clip() {
    let tmp = with_evals();
    let mut app = app_on(tmp.path(), ImageCache::off());
    select(&mut app, "94");
    app.apply(Action::Open);
    let s = stable(render(&mut app, 80, 24), &tmp);
    assert!(s.contains("eval probe · ep 5 · 40 samples"), "{s}");
    assert!(s.contains("CLIP clip-vit-large-patch14") || s.contains("CLIP clip-vit"), "{s}");
    assert!(s.contains("PixCorr 0.3141  SSIM 0.4567  2-way 81.2%  CLIP 2-way 90.0%"), "{s}");
    insta::assert_snapshot!("detail_eval_panel_80x24", s);
    select(&mut app, "92");
    let s = stable(render(&mut app, 120, 32), &tmp);
    assert!(s.contains("eval val · ep 5") && s.contains("no CLIP"), "{s}");
    assert!(s.contains("CLIP 2-way -  CLIP sim -"), "CLIP numbers absent, not 0:\n{s}");
    insta::assert_snapshot!("detail_eval_panel_val_120x32", s);
    select(&mut app, "100");
    let s = render(&mut app, 80, 24);
    assert!(s.contains("not evaluated yet (e runs brainscope eval)"), "{s}");
}

/// A stand-in for `brainscope eval` (a shell script run as the console's executable): it writes
/// progress on stderr, waits for `go` to appear, then writes the record (or fails).
fn fake_eval(dir: &Path, fail: bool) -> PathBuf {
    let script = dir.join("fake-brainscope");
    let record = serde_json::to_string(&record(EvalSplit::Probe, 0.5555, 0.6666, false)).unwrap();
    let tail = if fail {
        "echo >&2\necho 'error: no checkpoint in experiments/$2/checkpoints (train it first)' >&2\nexit 2"
            .to_string()
    } else {
        format!("mkdir -p \"$4/$2/eval\"\necho '{record}' > \"$4/$2/eval/probe.json\"")
    };
    let text = format!(
        "#!/bin/sh\n[ \"$1\" = eval ] || exit 9\nprintf 'evaluating %s\\n[1/4] predicting\\r[2/4] decoding' \"$2\" >&2\n\
         while [ ! -e \"$4/go\" ]; do sleep 0.05; done\n{tail}\n"
    );
    std::fs::write(&script, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn wait_until(app: &mut App, what: &str, mut cond: impl FnMut(&mut App) -> bool) {
    let start = Instant::now();
    while !cond(app) {
        assert!(start.elapsed() < Duration::from_secs(30), "waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
        app.collect_background();
    }
}

#[test]
fn e_runs_eval_in_the_background_and_shows_progress_then_numbers() {
    let tmp = project();
    let experiments = tmp.path().join("experiments");
    let launcher =
        Launcher { exe: fake_eval(tmp.path(), false), experiments_dir: experiments.clone() };
    let mut app = App::new(
        Project::open(&experiments, probe()),
        ImageCache::off(),
        Theme { color: true },
        Some(launcher),
    );
    select(&mut app, "100");
    app.apply(Action::Eval);
    assert!(app.message.as_deref().unwrap().contains("evaluating 100 in the background"));
    app.apply(Action::Columns);
    wait_until(&mut app, "the progress line", |a| {
        a.evals.as_ref().unwrap().progress("100").is_some_and(|(p, _)| p == "[2/4] decoding")
    });
    let s = render(&mut app, 80, 24);
    assert!(s.contains("eval…"), "the table's marker while it runs:\n{s}");
    app.apply(Action::Open);
    let s = render(&mut app, 80, 24);
    assert!(s.contains("eval running") && s.contains("[2/4] decoding"), "{s}");
    std::fs::write(experiments.join("go"), "").unwrap();
    wait_until(&mut app, "the end", |a| !a.evals.as_ref().unwrap().any_running());
    assert_eq!(app.message.as_deref(), Some("eval of 100 done"));
    let s = render(&mut app, 80, 24);
    assert!(s.contains("PixCorr 0.5555  SSIM 0.6666"), "numbers refreshed at the end:\n{s}");
    let log = std::fs::read_to_string(experiments.join("100/eval.log")).unwrap();
    assert!(log.starts_with("evaluating 100"), "stderr goes to eval.log: {log}");
}

#[test]
fn a_failed_eval_shows_its_error() {
    let tmp = project();
    let experiments = tmp.path().join("experiments");
    std::fs::write(experiments.join("go"), "").unwrap();
    let launcher =
        Launcher { exe: fake_eval(tmp.path(), true), experiments_dir: experiments.clone() };
    let mut app = App::new(
        Project::open(&experiments, probe()),
        ImageCache::off(),
        Theme { color: true },
        Some(launcher),
    );
    select(&mut app, "97");
    app.apply(Action::Eval);
    wait_until(&mut app, "the failure", |a| !a.evals.as_ref().unwrap().any_running());
    let msg = app.message.clone().unwrap();
    assert!(msg.starts_with("eval of 97 failed: exit status 2: error: no checkpoint"), "{msg}");
    app.apply(Action::Open);
    let s = render(&mut app, 80, 24);
    assert!(s.contains("eval failed: exit status 2: error: no checkpoint"), "{s}");
}

/// `recon/final-probe/` for `id`: the images of its latest epoch as probe samples whose rows are
/// `rows` (sample i = probe row i, the same rows in every experiment).
fn final_probe(tmp: &tempfile::TempDir, id: &str, rows: &[u64]) {
    let dir = exp(tmp, id);
    let last = brainscope::eval::human::recon_epochs(&dir).pop().unwrap();
    let from = RunPaths::new(&dir).recon_epoch(last);
    let to = RunPaths::new(&dir).recon_final(EvalSplit::Probe);
    crate::common::copy_dir(&from, &to);
    let samples: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| serde_json::json!({"sample": i, "row": r, "image": format!("/data/probe-{r:04}.png")}))
        .collect();
    let index = serde_json::json!({"epoch": last, "split": "probe", "samples": samples});
    std::fs::write(to.join("samples.json"), index.to_string()).unwrap();
}

fn probe_votes(tmp: &tempfile::TempDir) {
    let vote = |sample: usize, row: usize, winner: &str| SampleVote {
        sample,
        row,
        winner: winner.into(),
        scores: [("92".to_string(), 0.5), ("94".to_string(), 0.25)].into(),
        skipped: Vec::new(),
    };
    let record = VoteRecord {
        rule: VoteRule::Consensus,
        split: EvalSplit::Probe,
        experiments: vec!["92".into(), "94".into()],
        clip: "weights/clip".into(),
        votes: vec![vote(0, 100, "94"), vote(1, 101, "92")],
        t: T0,
    };
    let path = tmp.path().join("experiments/votes.json");
    std::fs::write(path, serde_json::to_vec(&record).unwrap()).unwrap();
}

#[test]
fn votes_come_from_the_vote_record() {
    let tmp = project();
    let app = app_on(tmp.path(), ImageCache::off());
    let v = app.project.votes.as_ref().expect("fixture votes.json");
    assert_eq!((v.split, v.votes[0].winner.as_str(), v.votes[0].row), (EvalSplit::Val, "94", 3));
    std::fs::write(tmp.path().join("experiments/votes.json"), "{\"winners\": {\"0\": \"94\"}}")
        .unwrap();
    let app = app_on(tmp.path(), ImageCache::off());
    assert!(app.project.votes.is_none());
    assert!(app.project.votes_error.as_deref().unwrap().contains("votes.json"), "not guessed");
}

#[test]
fn gallery_prefers_final_probe_marks_the_winner_and_flags_pre_probe_runs() {
    let tmp = project();
    final_probe(&tmp, "92", &[100, 101]);
    final_probe(&tmp, "94", &[100, 101]);
    probe_votes(&tmp);
    let mut app = app_on(tmp.path(), ImageCache::blocking(ImageProtocol::Halfblocks.picker()));
    app.filter = "9".into(); // 92, 94, 97 (97 predates the probe set)
    assert_eq!(ids(&app), ["92", "94", "97"]);
    app.apply(Action::Gallery);
    let s = render(&mut app, 80, 24);
    assert!(s.contains("probe-0100.png (1/2)") && s.contains("vote winner: 94 ★"), "{s}");
    assert!(s.contains("94 · final probe ★") && s.contains("92 · final probe"), "{s}");
    assert!(s.contains("run predates the") && s.contains("retrain"), "97 says why:\n{s}");
    insta::assert_snapshot!("gallery_final_probe_80x24", s);
    app.apply(Action::SampleNext);
    let s = render(&mut app, 120, 30);
    assert!(s.contains("probe-0101.png (2/2)") && s.contains("vote winner: 92 ★"), "{s}");
    assert!(s.contains("92 · final probe ★"), "{s}");
    assert!(s.contains("run predates the") && s.contains("to compare"), "{s}");
    insta::assert_snapshot!("gallery_final_probe_120x30", s);
}

#[test]
fn compare_shows_per_sample_metrics_eval_numbers_and_the_winner() {
    let tmp = with_evals();
    final_probe(&tmp, "92", &[100, 101]);
    final_probe(&tmp, "94", &[100, 101]);
    probe_votes(&tmp);
    let mut app = app_on(tmp.path(), ImageCache::blocking(ImageProtocol::Halfblocks.picker()));
    for id in ["92", "94", "97"] {
        select(&mut app, id);
        app.apply(Action::Mark);
    }
    app.apply(Action::Compare);
    assert_eq!(app.view, View::Compare);
    let s = render(&mut app, 80, 24);
    assert!(s.contains("scoring…"), "scored off the draw path:\n{s}");
    app.sample_metrics.wait(Duration::from_secs(60));
    let s = render(&mut app, 80, 24);
    // Independently: the same pair scored by eval::metrics from the files.
    let dir = RunPaths::new(exp(&tmp, "94")).recon_final(EvalSplit::Probe);
    let t = load_image01(&dir.join("sample-00-target.png")).unwrap();
    let r = load_image01(&dir.join("sample-00-lowlevel.png")).unwrap();
    let p = score_pair(t.view(), r.view(), Resize::ShortSide(425)).unwrap();
    let expected = format!(
        "r {} s {}",
        format!("{:.3}", p.pixcorr).replacen("0.", ".", 1),
        format!("{:.3}", p.ssim).replacen("0.", ".", 1)
    );
    assert!(s.contains(&expected), "94's image scores {expected}:\n{s}");
    assert!(s.contains("probe r .314 s .457"), "94's eval numbers:\n{s}");
    assert!(s.contains("94 ★ vote"), "{s}");
    assert!(s.contains("run predates"), "97:\n{s}");
    for line in s.lines() {
        assert!(line.chars().count() <= 80, "overflow: {line}");
    }
    insta::assert_snapshot!("compare_metrics_80x24", s);
    app.apply(Action::SampleNext);
    let s = render(&mut app, 130, 36);
    app.sample_metrics.wait(Duration::from_secs(60));
    let s2 = render(&mut app, 130, 36);
    assert!(s.contains("92 ★ vote") && s2.contains("PixCorr "), "wide: names written out:\n{s2}");
    insta::assert_snapshot!("compare_metrics_130x36", s2);
}

#[test]
fn n_clones_through_the_form_refusing_bad_values_and_esc_writes_nothing() {
    let tmp = project();
    let experiments = tmp.path().join("experiments");
    let mut app = app_on(tmp.path(), ImageCache::off());
    select(&mut app, "94");
    app.apply(Action::Clone);
    let form = app.form.as_ref().expect("the form opens");
    assert_eq!(form.fields[0].value, "95", "the next free id");
    let s = stable(render(&mut app, 80, 24), &tmp);
    assert!(s.contains("clone experiment 94") && s.contains("seed") && s.contains("2423"), "{s}");
    insta::assert_snapshot!("clone_form_80x24", s);
    // Mask mode "bogus": refused, the error names the valid values, nothing written.
    app.apply(Action::Form(FormInput::Next));
    app.apply(Action::Form(FormInput::Next));
    for _ in 0..10 {
        app.apply(Action::Form(FormInput::Backspace));
    }
    for c in "bogus".chars() {
        app.apply(Action::Form(FormInput::Char(c)));
    }
    app.apply(Action::Form(FormInput::Save));
    let err = app.form.as_ref().unwrap().error.clone().expect("refused");
    assert!(err.contains("data.mask_mode") && err.contains("zero"), "{err}");
    assert!(!experiments.join("95").exists(), "nothing written");
    let s = stable(render(&mut app, 100, 30), &tmp);
    assert!(s.contains("mask_mode"), "{s}");
    insta::assert_snapshot!("clone_form_error_100x30", s);
    // Esc: nothing written.
    app.apply(Action::Form(FormInput::Cancel));
    assert!(app.form.is_none() && !experiments.join("95").exists());
    // Again: seed 5, saved through experiments::create, selected in the table.
    app.apply(Action::Clone);
    for _ in 0..3 {
        app.apply(Action::Form(FormInput::Next));
    }
    for _ in 0..10 {
        app.apply(Action::Form(FormInput::Backspace));
    }
    app.apply(Action::Form(FormInput::Char('5')));
    app.apply(Action::Form(FormInput::Save));
    assert!(app.form.is_none(), "{:?}", app.form.as_ref().and_then(|f| f.error.clone()));
    let cfg =
        brainscope::experiments::config::ExperimentConfig::load(&experiments.join("95")).unwrap();
    assert_eq!((cfg.id, cfg.train.seed, cfg.data.roi_set.as_str()), (95, 5, "set1"));
    assert_eq!(app.selected_experiment().unwrap().id, "95");
    let text = std::fs::read_to_string(experiments.join("95/experiment.toml")).unwrap();
    assert!(text.contains("brainscope new 95 --from 94` with train.seed=5"), "{text}");
}

#[test]
fn s_asks_local_or_slurm_and_a_queued_job_blocks_a_local_start() {
    let tmp = project();
    let experiments = tmp.path().join("experiments");
    let launcher = Launcher { exe: PathBuf::from(BIN), experiments_dir: experiments.clone() };
    let mut app = App::new(
        Project::open(&experiments, probe()),
        ImageCache::off(),
        Theme { color: true },
        Some(launcher),
    );
    app.slurm_available = true; // as on a machine with sbatch on PATH
    select(&mut app, "100");
    app.apply(Action::Start);
    assert_eq!(app.ask_where.as_deref(), Some("100"));
    let s = stable(render(&mut app, 80, 24), &tmp);
    assert!(s.contains("Train experiment 100 locally or on Slurm?"), "{s}");
    insta::assert_snapshot!("ask_local_or_slurm_80x24", s);
    app.apply(Action::StartCancel);
    assert!(app.ask_where.is_none() && app.message.as_deref() == Some("not started"));
    // Where the run lives: a column on wide terminals, `@` after the id on narrow ones.
    let record = SlurmJobRecord {
        job_id: "4711".into(),
        array_job_id: None,
        array_task: None,
        partition: Some("debug".into()),
        submitted_ms: brainscope::experiments::process::now_ms(),
        submit_host: "login".into(),
        script: experiments.join("100/slurm-job.sh"),
        cancelled_ms: None,
    };
    write_slurm_job(&experiments.join("100"), &record).unwrap();
    app.project.refresh();
    let e = app.project.get("100").unwrap();
    assert_eq!(e.location(), "slurm:4711");
    let s = render(&mut app, 150, 20);
    assert!(s.contains("slurm:4711"), "{s}");
    let s = render(&mut app, 80, 24);
    assert!(s.contains(" 100@"), "{s}");
    // Until Slurm answers (or where it cannot be asked) the job shows queued and `s` refuses a
    // local start; a Slurm that answers it never heard of job 4711 shows it crashed instead.
    let e = app.project.get("100").unwrap();
    let (state, message) = (e.state(), e.run.message.clone());
    assert!(message.contains("4711"), "{message}");
    if state == brainscope::experiments::state::RunState::Queued {
        app.apply(Action::Start);
        assert!(app.ask_where.is_none(), "no local-or-Slurm question for a queued job");
        let m = app.message.clone().unwrap();
        assert!(m.contains("queued as Slurm job 4711"), "{m}");
    } else {
        assert_eq!(state, brainscope::experiments::state::RunState::Crashed, "{message}");
    }
}
