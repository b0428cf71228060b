//! End-to-end in a pseudo-terminal (the real binary, 80x24): `n` clones an experiment through
//! the form (edit the seed, save; the new id is in the table and its file has the seed), and
//! an eval record put in place shows in the eval columns and the detail view's panel; `e` runs
//! `brainscope eval` in the background and its outcome is shown (on this never-trained
//! experiment it fails, and the failure is on screen, not swallowed).

use crate::common::{Session, untrained_project};
use brainscope::experiments::state::{EvalRecord, EvalSplit, RunPaths, write_atomic};

#[test]
fn n_clones_with_an_edited_seed_and_the_new_id_is_in_the_table() {
    let dir = untrained_project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle"]);
    s.send("n");
    s.wait_for(&["clone experiment 92", "new id", "93"]);
    s.send("\t\t\t"); // new id -> ROI set -> mask mode -> seed
    s.send("\x7f5");
    s.wait_for(&["(was 3)"]);
    s.send("\r");
    s.wait_for(&["created experiment 93 from 92"]);
    let rows = s.rows(0, 80);
    assert!(
        rows.iter().any(|r| r.contains(" 93 ") && r.contains("idle") && r.contains(" 5 ")),
        "93 with seed 5 in the table:\n{}",
        rows.join("\n")
    );
    s.quit();
    let cfg =
        brainscope::experiments::config::ExperimentConfig::load(&dir.path().join("experiments/93"))
            .unwrap();
    assert_eq!((cfg.id, cfg.train.seed, cfg.data.roi_set.as_str()), (93, 5, "set3"));
}

#[test]
fn an_eval_record_shows_in_the_columns_and_the_panel_and_e_reports_its_outcome() {
    let dir = untrained_project();
    let mut s = Session::open(dir.path());
    s.wait_for(&["92", "· idle"]);
    let record = EvalRecord {
        split: EvalSplit::Probe,
        samples: 12,
        epoch: 1,
        step: 40,
        checkpoint: "checkpoints/last.ckpt".into(),
        vae: "weights/demo/vae".into(),
        clip: None,
        latent_l1: 0.25,
        pixcorr: 0.3141,
        ssim: 0.2718,
        resize: Some(425),
        two_way_pixels: 0.75,
        two_way_clip: None,
        clip_sim_target: None,
        clip_sim_vae_target: None,
        t: 1,
    };
    let paths = RunPaths::new(dir.path().join("experiments/92"));
    std::fs::create_dir_all(paths.eval(EvalSplit::Probe).parent().unwrap()).unwrap();
    write_atomic(&paths.eval(EvalSplit::Probe), &serde_json::to_vec(&record).unwrap()).unwrap();
    s.send("v");
    s.wait_for(&["PIXCORR", "0.3141", "0.2718", "75.0%"]);
    s.send("\r");
    s.wait_for(&["eval probe · ep 2 · 12 samples", "no CLIP", "PixCorr 0.3141"]);
    s.send("e");
    s.wait_for(&["eval of 92 failed"]);
    assert!(dir.path().join("experiments/92/eval.log").is_file(), "stderr went to eval.log");
    s.quit();
}
