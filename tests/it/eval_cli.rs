//! `brainscope eval` through the binary on the tiny demo project (`common::Project`: 96 rows,
//! a random tiny VAE, 1 epoch): every number of `eval --json` is recomputed here from the files
//! it wrote and from the checkpoint (the latent L1 from the model's own predictions), the CLIP
//! numbers with the tiny random CLIP of `tests/fixtures/clip/gelu` (a stand-in for real
//! weights: it checks the plumbing, not CLIP quality), the probe rows are the same across
//! seeds, and bad input fails with the file and the fix, writing nothing.

use crate::common::{BIN, COMMAND_LIMIT, Project, output_within};
use brainscope::backend::default_device;
use brainscope::data::algonauts::Subject;
use brainscope::data::probe::experiment_rows;
use brainscope::data::roi::{MaskMode, RoiSet, VoxelMask};
use brainscope::eval::metrics::{self, Resize};
use brainscope::experiments::state::{EvalRecord, EvalSplit, RunPaths, read_eval};
use brainscope::latents::{LatentCache, LatentMode, default_cache_path};
use brainscope::models::clip::{ClipParts, l2_normalize, load_clip};
use brainscope::models::lowlevel::{LowLevelConfig, LowLevelModel};
use brainscope::models::vae::load_vae;
use brainscope::train::checkpoint::CheckpointStore;
use brainscope::train::trainer::CheckpointMeta;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Probe rows of the tiny project (of 96).
const PROBE: usize = 16;

fn clip_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip/gelu")
}

/// The tiny project with `[data] probe = 16` (the default 100 would take every row).
fn project(epochs: usize) -> Project {
    let p = Project::new(epochs, 8);
    set_probe(&p.dir());
    p
}

fn set_probe(dir: &Path) {
    let path = dir.join("experiment.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    if text.contains(&format!("\nprobe = {PROBE}\n")) {
        return; // the common tiny project already holds out this probe set
    }
    assert!(!text.contains("\nprobe ="), "another probe size in {}", path.display());
    std::fs::write(&path, text.replacen("[data]\n", &format!("[data]\nprobe = {PROBE}\n"), 1))
        .unwrap();
}

/// A second experiment `id` like 7 but with another seed.
fn add_experiment(p: &Project, id: u32, seed: u64) {
    let dir = p.root.join(format!("experiments/{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(p.dir().join("experiment.toml")).unwrap();
    let text = text.replacen("id = 7", &format!("id = {id}"), 1).replacen(
        "seed = 3",
        &format!("seed = {seed}"),
        1,
    );
    std::fs::write(dir.join("experiment.toml"), text).unwrap();
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} should fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Every file below `dir`, relative (to check that a failed command wrote nothing).
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.push(e.strip_prefix(dir).unwrap().to_path_buf());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(read) = std::fs::read_dir(dir) {
        for e in read.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

/// Row list of `recon/final-<split>/samples.json`.
fn index_rows(dir: &Path, split: EvalSplit) -> Vec<usize> {
    let path = RunPaths::new(dir).recon_final(split).join("samples.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["samples"].as_array().unwrap().iter().map(|s| s["row"].as_u64().unwrap() as usize).collect()
}

/// L2-normalised CLIP image embeddings of image files, through the file path of the CLIP
/// preprocessor (not the in-memory path `eval` uses).
fn clip_embeds(paths: &[PathBuf]) -> Array2<f32> {
    let device = default_device();
    let clip = load_clip(&clip_fixture(), ClipParts::All, &device).unwrap();
    let pixels = clip.image_processor().unwrap().load_batch(paths, &device).unwrap();
    let e = l2_normalize(clip.get_image_features(pixels).unwrap()); // [n, d]
    let [n, d] = e.dims();
    Array2::from_shape_vec((n, d), e.into_data().convert::<f32>().try_into_vec::<f32>().unwrap())
        .unwrap()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

/// The checkpoint's predictions for `rows` and the cached target latents, computed here.
fn predictions_and_targets(p: &Project, rows: &[usize]) -> (Vec<f32>, Vec<f32>, [usize; 3]) {
    let device = default_device();
    let store = CheckpointStore::new(p.dir().join("checkpoints"));
    let (loaded, _) = store.load_latest::<CheckpointMeta>().unwrap().unwrap();
    let plan = &loaded.manifest.meta.plan;
    let config =
        LowLevelConfig::sized(plan.input_width, plan.model.clone(), plan.latent_shape).unwrap();
    let model =
        LowLevelModel::load(&config, &loaded.dir.join("model.safetensors"), &device).unwrap();
    let subject = Subject::open(&p.root.join("tiny-demo"), "subj01").unwrap();
    let mask = VoxelMask::build(
        &subject.roi_atlas().unwrap(),
        &RoiSet::parse("set3").unwrap(),
        MaskMode::Zero,
    )
    .unwrap();
    let x = subject.load_fmri(&mask, rows).unwrap(); // [k, width]
    let (k, width) = x.dim();
    let x =
        Tensor::<2>::from_data(TensorData::new(x.into_raw_vec_and_offset().0, [k, width]), &device);
    let pred = model.forward(x).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    let vae = p.root.join("vae");
    let cache =
        LatentCache::open(&default_cache_path(subject.dir(), &vae, LatentMode::Mode)).unwrap();
    let target = cache.rows(rows).unwrap().into_raw_vec_and_offset().0;
    (pred, target, cache.shape())
}

#[test]
fn eval_numbers_match_an_independent_computation_from_the_written_files() {
    let p = project(1);
    let experiments = p.root.join("experiments");

    // Before any checkpoint: a clear error, nothing written.
    let before = tree(&p.dir());
    let err = fails(&p.run(&["eval", "7", "--split", "val"]), "eval before training");
    assert!(err.contains("no checkpoint yet") && err.contains("brainscope train 7"), "{err}");
    assert!(err.contains(&p.dir().join("checkpoints").display().to_string()), "{err}");
    assert_eq!(tree(&p.dir()), before, "a failed eval wrote files");

    ok(&p.run(&["train", "7", "--foreground"]), "train");
    let clip = clip_fixture();
    let out = p.run(&["eval", "7", "--split", "val", "--json", "--clip", clip.to_str().unwrap()]);
    let stdout = ok(&out, "eval --split val --json --clip");
    let record: EvalRecord = serde_json::from_str(&stdout).expect("stdout is exactly the record");
    assert_eq!(Some(record.clone()), read_eval(&RunPaths::new(p.dir()), EvalSplit::Val).unwrap());

    // Rows: the experiment's own val split of the non-probe rows.
    let rows = experiment_rows(common_n(), PROBE, 3, 0.3).val;
    assert_eq!(index_rows(&p.dir(), EvalSplit::Val), rows);
    assert_eq!(record.samples, rows.len());
    assert_eq!((record.split, record.epoch, record.resize), (EvalSplit::Val, 0, Some(425)));
    assert!(record.checkpoint.starts_with("checkpoints/step-"), "{}", record.checkpoint);
    assert_eq!(record.clip.as_deref(), Some(clip.to_str().unwrap()));

    // Latent L1 from the checkpoint's own predictions.
    let (pred, target, [c, h, w]) = predictions_and_targets(&p, &rows);
    let l1 = pred.iter().zip(&target).map(|(a, b)| (a - b).abs() as f64).sum::<f64>()
        / pred.len() as f64;
    close(record.latent_l1, l1, 1e-6, "latent L1");

    // PixCorr, SSIM and pixel 2-way from the PNGs as written.
    let final_dir = RunPaths::new(p.dir()).recon_final(EvalSplit::Val);
    let file = |i: usize, kind: &str| final_dir.join(format!("sample-{i:02}-{kind}.png"));
    let (mut pix, mut ssim, mut real, mut recon) = (vec![], vec![], vec![], vec![]);
    for i in 0..rows.len() {
        let t = metrics::load_image01(&file(i, "target")).unwrap();
        let r = metrics::load_image01(&file(i, "lowlevel")).unwrap();
        let t425 = metrics::apply_resize(t.view(), Resize::ShortSide(425)).unwrap();
        let r425 = metrics::apply_resize(r.view(), Resize::ShortSide(425)).unwrap();
        pix.push(metrics::pixcorr(t425.view(), r425.view()).unwrap());
        ssim.push(metrics::ssim(t425.view(), r425.view()).unwrap());
        real.extend(t.iter().copied());
        recon.extend(r.iter().copied());
    }
    close(record.pixcorr, metrics::mean(&pix), 1e-9, "PixCorr");
    close(record.ssim, metrics::mean(&ssim), 1e-9, "SSIM");
    let d = real.len() / rows.len();
    let real = Array2::from_shape_vec((rows.len(), d), real).unwrap();
    let recon = Array2::from_shape_vec((rows.len(), d), recon).unwrap();
    let two_way = metrics::two_way_identification(real.view(), recon.view()).unwrap().score;
    close(record.two_way_pixels, two_way, 1e-12, "2-way on pixels");

    // CLIP numbers: reconstructions against the stimuli and against the VAE-decoded targets.
    let subject = Subject::open(&p.root.join("tiny-demo"), "subj01").unwrap();
    let stimuli: Vec<PathBuf> = rows.iter().map(|&r| subject.train_images()[r].clone()).collect();
    let recons: Vec<PathBuf> = (0..rows.len()).map(|i| file(i, "lowlevel")).collect();
    let tmp = tempfile::tempdir().unwrap();
    let vae = load_vae(&p.root.join("vae"), &default_device()).unwrap();
    let z =
        Tensor::<4>::from_data(TensorData::new(target, [rows.len(), c, h, w]), &default_device());
    let decoded: Vec<PathBuf> = (0..rows.len())
        .map(|i| {
            let path = tmp.path().join(format!("{i:02}.png"));
            #[allow(clippy::single_range_in_vec_init)]
            let one = z.clone().slice([i..i + 1]) / vae.config.scaling_factor;
            brainscope::imageio::save_png(vae.model.decode(one), &path).unwrap();
            path
        })
        .collect();
    let (e_real, e_recon, e_vae) =
        (clip_embeds(&stimuli), clip_embeds(&recons), clip_embeds(&decoded));
    let cos = |a: &Array2<f32>, b: &Array2<f32>| {
        metrics::mean(&metrics::cosine_similarity_rows(a.view(), b.view()).unwrap())
    };
    close(record.clip_sim_target.unwrap(), cos(&e_recon, &e_real), 1e-4, "CLIP sim to target");
    close(
        record.clip_sim_vae_target.unwrap(),
        cos(&e_recon, &e_vae),
        1e-4,
        "CLIP sim to VAE target",
    );
    let two_way_clip =
        metrics::two_way_identification(e_real.view(), e_recon.view()).unwrap().score;
    close(record.two_way_clip.unwrap(), two_way_clip, 1e-9, "2-way on CLIP");

    // Re-evaluating the same checkpoint and rows keeps `recon`'s high-level images; other rows
    // drop them (they were made from other low-level images).
    let high = file(0, "highlevel");
    std::fs::copy(file(0, "lowlevel"), &high).unwrap();
    ok(&p.run(&["eval", "7", "--split", "val"]), "eval again");
    assert!(high.is_file(), "same checkpoint and rows: the high-level image is kept");

    // Without CLIP (no weights/clip-vit-large-patch14 in the project): absent, not zero.
    let out = p.run(&["eval", "7", "--split", "val", "--limit", "3", "--json", "--resize", "none"]);
    let stdout = ok(&out, "eval without CLIP");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLIP numbers will be absent"));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in ["clip", "two_way_clip", "clip_sim_target", "clip_sim_vae_target", "resize"] {
        assert!(v[key].is_null(), "{key} should be null: {v}");
    }
    assert_eq!(v["samples"], 3);
    assert_eq!(index_rows(&p.dir(), EvalSplit::Val), rows[..3]);
    assert!(!high.exists(), "other rows: the stale high-level image is dropped");

    // The readable table says which CLIP number is which.
    let table = ok(&p.run(&["eval", "7", "--split", "val", "--limit", "4"]), "eval table");
    assert!(table.contains("paper Table III") && table.contains("VAE-decoded target"), "{table}");
    assert!(table.contains("2-way, CLIP") && table.contains(" -"), "{table}");

    // Bad input: nothing written for any of these.
    let before = tree(&p.dir());
    let not_clip = clip.join("../../clip");
    let bad: [(&[&str], &[&str]); 5] = [
        (&["eval", "7", "--epoch", "5"], &["no checkpoint of the end of epoch 5", "kept: epoch 0"]),
        (&["eval", "7", "--split", "val", "--limit", "1"], &["needs at least 2", "--limit"]),
        (&["eval", "7", "--clip", "/nonexistent/clip"], &["/nonexistent/clip"]),
        (&["eval", "70"], &["70"]),
        (&["eval", "7", "--clip", not_clip.to_str().unwrap()], &["config.json"]),
    ];
    for (args, needles) in bad {
        let err = fails(&p.run(args), &args.join(" "));
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
    }
    // An empty probe set: names experiment.toml and the fix.
    let cfg = p.dir().join("experiment.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace(&format!("probe = {PROBE}"), "probe = 0")).unwrap();
    let err = fails(&p.run(&["eval", "7"]), "eval of an empty probe split");
    assert!(err.contains("probe split") && err.contains("[data] probe"), "{err}");
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    std::fs::write(&cfg, text).unwrap();
    assert_eq!(tree(&p.dir()), before, "a failed eval wrote files");
    assert!(experiments.join("7/eval/val.json").is_file());
}

/// Rows of the tiny demo dataset.
fn common_n() -> usize {
    crate::common::N_IMAGES
}

#[test]
fn probe_rows_are_the_same_across_seeds_and_vote_aligns_on_them() {
    let p = project(1);
    add_experiment(&p, 8, 11);
    for id in ["7", "8"] {
        ok(&p.run(&["train", id, "--foreground"]), "train");
        ok(&p.run(&["eval", id, "--json"]), "eval --split probe (default)");
    }
    let probe = experiment_rows(common_n(), PROBE, 3, 0.3).probe;
    assert_eq!(probe.len(), PROBE);
    assert_eq!(index_rows(&p.dir(), EvalSplit::Probe), probe);
    assert_eq!(index_rows(&p.root.join("experiments/8"), EvalSplit::Probe), probe);

    // vote over the two probe folders works; over their own val splits it is refused.
    let clip = clip_fixture();
    let clip = clip.to_str().unwrap();
    let out = p.run(&["vote", "7", "8", "--clip", clip, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out, "vote on probe")).unwrap();
    assert_eq!(v["votes"].as_array().unwrap().len(), PROBE);
    for id in ["7", "8"] {
        ok(&p.run(&["eval", id, "--split", "val"]), "eval val");
    }
    let votes = p.root.join("experiments/votes.json");
    let before = std::fs::read(&votes).unwrap();
    let err = fails(&p.run(&["vote", "7", "8", "--split", "val", "--clip", clip]), "vote on val");
    assert!(err.contains("not aligned") && err.contains("--split probe"), "{err}");
    assert!(err.contains("7: row") && err.contains("8: row"), "{err}");
    assert_eq!(std::fs::read(&votes).unwrap(), before, "a refused vote rewrote votes.json");
}

#[test]
fn eval_help_says_what_it_needs_and_where_the_weights_are() {
    let out = output_within(Command::new(BIN).args(["eval", "--help"]), COMMAND_LIMIT);
    let help = ok(&out, "eval --help");
    for needle in [
        "brainscope train",
        "weights/clip-vit-large-patch14",
        "weights/README.md",
        "huggingface.co",
        "probe",
        "Table III",
        "null",
    ] {
        assert!(help.contains(needle), "{needle:?} not in eval --help:\n{help}");
    }
}
