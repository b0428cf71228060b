//! `brainscope vote` through the binary, on hand-made `recon/final-probe/` folders (the files
//! `eval` writes): the consensus winner against cosines computed here from CLIP embeddings of
//! the PNGs, the tie rule, skipped experiments, the paper rule, and bad input. CLIP is the tiny
//! random model of `tests/fixtures/clip/gelu`, standing in for real weights (it checks the
//! voting, not CLIP quality).

use crate::common::{BIN, COMMAND_LIMIT, output_within};
use brainscope::backend::default_device;
use brainscope::eval::metrics::cosine_similarity_rows;
use brainscope::experiments::state::{VoteRecord, VoteRule, read_votes};
use brainscope::models::clip::{ClipParts, l2_normalize, load_clip};
use image::{Rgb, RgbImage};
use ndarray::{Array1, Array2};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn clip_fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip/gelu").display().to_string()
}

/// A 32 px test image: stripes of period `period` in `colour` over a gradient.
fn pattern(period: u32, colour: [u8; 3], noise: u8) -> RgbImage {
    RgbImage::from_fn(32, 32, |x, y| {
        let on = (x / period + y / period).is_multiple_of(2);
        let g = (x * 7 + y * 3) as u8;
        let n = ((x * 31 + y * 17) % 5) as u8 * noise;
        if on {
            Rgb([colour[0].saturating_add(n), colour[1], colour[2]])
        } else {
            Rgb([g, 255 - g, g / 2])
        }
    })
}

/// Projects of hand-made final reconstructions: `experiments/<id>/recon/final-probe/`.
struct Votes {
    _tmp: tempfile::TempDir,
    experiments: PathBuf,
}

impl Votes {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let experiments = tmp.path().join("experiments");
        std::fs::create_dir_all(&experiments).unwrap();
        Self { _tmp: tmp, experiments }
    }

    /// Experiment `id` with final probe reconstructions: `(sample, row, lowlevel, highlevel)`.
    fn add(&self, id: &str, samples: &[(usize, usize, Option<&RgbImage>, Option<&RgbImage>)]) {
        let dir = self.experiments.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("experiment.toml"), format!("id = {id}\n")).unwrap();
        let fin = dir.join("recon/final-probe");
        std::fs::create_dir_all(&fin).unwrap();
        let mut index = Vec::new();
        for &(s, row, low, high) in samples {
            pattern(3, [9, 9, 9], 0).save(fin.join(format!("sample-{s:02}-target.png"))).unwrap();
            if let Some(img) = low {
                img.save(fin.join(format!("sample-{s:02}-lowlevel.png"))).unwrap();
            }
            if let Some(img) = high {
                img.save(fin.join(format!("sample-{s:02}-highlevel.png"))).unwrap();
            }
            index.push(serde_json::json!({"sample": s, "row": row, "image": "x.png"}));
        }
        let v = serde_json::json!({"split": "probe", "epoch": 0, "step": 1, "samples": index});
        std::fs::write(fin.join("samples.json"), v.to_string()).unwrap();
    }

    fn file(&self, id: &str, sample: usize, kind: &str) -> PathBuf {
        self.experiments.join(id).join(format!("recon/final-probe/sample-{sample:02}-{kind}.png"))
    }

    fn run(&self, args: &[&str]) -> Output {
        output_within(
            Command::new(BIN).arg("vote").args(args).arg("--dir").arg(&self.experiments),
            COMMAND_LIMIT,
        )
    }

    fn vote_json(&self, args: &[&str]) -> VoteRecord {
        let out = self.run(args);
        assert!(out.status.success(), "vote {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let record: VoteRecord = serde_json::from_slice(&out.stdout).expect("stdout is the record");
        assert_eq!(read_votes(&self.experiments).unwrap(), Some(record.clone()));
        record
    }
}

/// L2-normalised CLIP embedding of each file, through the preprocessor's file path.
fn embeds(paths: &[PathBuf]) -> Array2<f32> {
    let device = default_device();
    let clip = load_clip(Path::new(&clip_fixture()), ClipParts::All, &device).unwrap();
    let pixels = clip.image_processor().unwrap().load_batch(paths, &device).unwrap();
    let e = l2_normalize(clip.get_image_features(pixels).unwrap()); // [n, d]
    let [n, d] = e.dims();
    Array2::from_shape_vec((n, d), e.into_data().convert::<f32>().try_into_vec::<f32>().unwrap())
        .unwrap()
}

fn cos(a: ndarray::ArrayView1<f32>, b: ndarray::ArrayView1<f32>) -> f64 {
    cosine_similarity_rows(a.insert_axis(ndarray::Axis(0)), b.insert_axis(ndarray::Axis(0)))
        .unwrap()[0]
}

#[test]
fn consensus_winner_matches_cosines_to_the_mean_of_the_others() {
    let v = Votes::new();
    let (a, a_noisy, b, c) = (
        pattern(4, [250, 20, 20], 0),
        pattern(4, [250, 20, 20], 9),
        pattern(2, [10, 200, 250], 0),
        pattern(8, [120, 120, 0], 0),
    );
    // Sample 0: 1 and 2 show the same image, 3 another: 3 must lose (for unit vectors
    // cos(X, (X + Y) / 2) = sqrt((1 + c) / 2) > c = cos(Y, X) unless X = Y).
    // Sample 1: three different images. Sample 2: 3 lacks its image (skipped).
    v.add("1", &[(0, 5, Some(&a), None), (1, 9, Some(&a_noisy), None), (2, 11, Some(&c), None)]);
    v.add("2", &[(0, 5, Some(&a), None), (1, 9, Some(&b), None), (2, 11, Some(&a), None)]);
    v.add("10", &[(0, 5, Some(&b), None), (1, 9, Some(&c), None), (2, 11, None, None)]);
    let record = v.vote_json(&["10", "2", "1", "--clip", &clip_fixture(), "--json"]);
    assert_eq!(record.experiments, ["1", "2", "10"], "ascending by id, numerically");
    assert_eq!(record.rule, VoteRule::Consensus);
    assert_eq!(
        record.votes.iter().map(|s| (s.sample, s.row)).collect::<Vec<_>>(),
        [(0, 5), (1, 9), (2, 11)]
    );

    let ids = ["1", "2", "10"];
    for sample in 0..2 {
        let files: Vec<PathBuf> = ids.iter().map(|id| v.file(id, sample, "lowlevel")).collect();
        let e = embeds(&files); // [3, d]
        let scores: Vec<f64> = (0..3)
            .map(|i| {
                let mut mean = Array1::<f32>::zeros(e.ncols());
                for j in (0..3).filter(|&j| j != i) {
                    mean += &e.row(j);
                }
                mean /= 2.0;
                cos(e.row(i), mean.view())
            })
            .collect();
        let got = &record.votes[sample];
        for (id, s) in ids.iter().zip(&scores) {
            assert!(
                (got.scores[*id] - s).abs() < 1e-5,
                "sample {sample} {id}: {:?} vs {scores:?}",
                got.scores
            );
        }
        let best = (0..3).fold(0, |b, i| if scores[i] > scores[b] + 1e-6 { i } else { b });
        assert_eq!(got.winner, ids[best], "sample {sample}: scores {scores:?}");
        assert!(got.skipped.is_empty());
    }
    let s0 = &record.votes[0];
    assert!(s0.winner == "1" || s0.winner == "2", "{s0:?}");
    assert!(s0.scores["10"] < s0.scores["1"].min(s0.scores["2"]) - 1e-6, "{s0:?}");
    // Sample 2: only 1 and 2 vote (equal cosines: the lower id wins), 10 is listed as skipped.
    let s2 = &record.votes[2];
    assert_eq!((s2.winner.as_str(), s2.skipped.clone()), ("1", vec!["10".to_string()]));
    assert_eq!(s2.scores["1"], s2.scores["2"]);

    let out = v.run(&["1", "2", "10", "--clip", &clip_fixture()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("wins") && text.contains("sample 2: 10"), "{text}");
}

#[test]
fn paper_rule_scores_each_experiments_own_pair_and_needs_high_level_images() {
    let v = Votes::new();
    let imgs =
        [pattern(4, [250, 20, 20], 0), pattern(2, [10, 200, 250], 0), pattern(8, [120, 120, 0], 0)];
    v.add("1", &[(0, 3, Some(&imgs[0]), None)]);
    v.add("2", &[(0, 3, Some(&imgs[1]), None)]);
    let err = v.run(&["1", "2", "--rule", "paper", "--clip", &clip_fixture()]);
    assert!(!err.status.success());
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(msg.contains("brainscope recon") && msg.contains("--rule consensus"), "{msg}");
    assert!(!v.experiments.join("votes.json").exists(), "a failed vote wrote votes.json");

    v.add("1", &[(0, 3, Some(&imgs[0]), Some(&imgs[1]))]);
    v.add("2", &[(0, 3, Some(&imgs[1]), Some(&imgs[2]))]);
    v.add("3", &[(0, 3, Some(&imgs[2]), None)]);
    let record =
        v.vote_json(&["1", "2", "3", "--rule", "paper", "--clip", &clip_fixture(), "--json"]);
    let s = &record.votes[0];
    assert_eq!(s.skipped, ["3"], "3 has no high-level image");
    let mut expected = Vec::new();
    for id in ["1", "2"] {
        let e = embeds(&[v.file(id, 0, "lowlevel"), v.file(id, 0, "highlevel")]);
        let c = cos(e.row(0), e.row(1));
        assert!((s.scores[id] - c).abs() < 1e-5, "{id}: {} vs {c}", s.scores[id]);
        expected.push(c);
    }
    assert_eq!(s.winner, if expected[1] > expected[0] { "2" } else { "1" });
}

#[test]
fn two_experiments_tie_under_consensus_and_the_lowest_id_wins() {
    let v = Votes::new();
    let (a, b) = (pattern(4, [250, 20, 20], 0), pattern(2, [10, 200, 250], 0));
    v.add("92", &[(0, 1, Some(&a), None), (1, 2, Some(&b), None)]);
    v.add("100", &[(0, 1, Some(&b), None), (1, 2, Some(&a), None)]);
    let record = v.vote_json(&["100", "92", "--clip", &clip_fixture(), "--json"]);
    for s in &record.votes {
        assert_eq!(s.scores["92"], s.scores["100"], "cos(a, b) = cos(b, a)");
        assert_eq!(s.winner, "92", "ties go to the lowest id (92 < 100 numerically)");
    }
}

#[test]
fn bad_input_is_refused_with_the_fix_and_writes_nothing() {
    let v = Votes::new();
    let a = pattern(4, [250, 20, 20], 0);
    v.add("1", &[(0, 3, Some(&a), None)]);
    std::fs::create_dir_all(v.experiments.join("2")).unwrap();
    std::fs::write(v.experiments.join("2/experiment.toml"), "id = 2\n").unwrap();
    let clip = clip_fixture();
    let cases: [(&[&str], &[&str]); 5] = [
        (&["1", "--clip", &clip], &["at least 2 ids", "got 1 (1)"]),
        (&["1", "1", "--clip", &clip], &["at least 2 ids"]),
        (&["1", "5", "--clip", &clip], &["no experiment 5", "brainscope status"]),
        (
            &["1", "2", "--clip", &clip],
            &["2/recon/final-probe/samples.json", "brainscope eval 2 --split probe"],
        ),
        (&["1", "2"], &["--clip DIR", "weights/clip-vit-large-patch14", "weights/README.md"]),
    ];
    for (args, needles) in cases {
        let out = v.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
    }
    // A folder with samples.json but a file that is not an image.
    v.add("2", &[(0, 3, Some(&a), None)]);
    std::fs::write(v.file("2", 0, "lowlevel"), b"not a png").unwrap();
    let out = v.run(&["1", "2", "--clip", &clip]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sample-00-lowlevel.png"));
    assert!(!v.experiments.join("votes.json").exists(), "a failed vote wrote votes.json");

    let help = output_within(Command::new(BIN).args(["vote", "--help"]), COMMAND_LIMIT);
    let help = String::from_utf8_lossy(&help.stdout);
    for n in [
        "training images",
        "probe",
        "fair",
        "brainscope eval",
        "brainscope recon",
        "weights/README.md",
    ] {
        assert!(help.contains(n), "{n:?} not in vote --help:\n{help}");
    }
}
