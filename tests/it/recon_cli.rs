//! `brainscope recon` (BLIP caption -> SD img2img per sample) through the binary, with the tiny
//! random fixture models standing in for BLIP-large and SD 1.5 (plumbing, not image quality):
//! outputs per sample, resume, settings guard, --restart, `vote --rule paper` on the result, and
//! bad input.

use crate::common::{BIN, COMMAND_LIMIT, output_within};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel).display().to_string()
}

/// A 32 px image whose colours depend on `seed`.
fn image(seed: u32) -> RgbImage {
    RgbImage::from_fn(32, 32, |x, y| {
        Rgb([(x * 8 + seed * 40) as u8, (y * 8) as u8, ((x + y) * 4 + seed * 90) as u8])
    })
}

struct Project {
    _tmp: tempfile::TempDir,
    experiments: PathBuf,
}

impl Project {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let experiments = tmp.path().join("experiments");
        std::fs::create_dir_all(&experiments).unwrap();
        Self { _tmp: tmp, experiments }
    }

    /// Experiment `id` with `n` final probe low-level images (the files `eval` writes).
    fn add(&self, id: &str, n: usize) {
        let dir = self.experiments.join(id);
        let fin = dir.join("recon/final-probe");
        std::fs::create_dir_all(&fin).unwrap();
        std::fs::write(dir.join("experiment.toml"), experiment_toml(id)).unwrap();
        let mut index = Vec::new();
        for s in 0..n {
            image(s as u32).save(fin.join(format!("sample-{s:02}-target.png"))).unwrap();
            let low = image(s as u32 + id.len() as u32 + id.as_bytes()[0] as u32);
            low.save(fin.join(format!("sample-{s:02}-lowlevel.png"))).unwrap();
            index.push(serde_json::json!({"sample": s, "row": 10 + s, "image": "x.png"}));
        }
        let v = serde_json::json!({"split": "probe", "epoch": 0, "step": 7, "samples": index});
        std::fs::write(fin.join("samples.json"), v.to_string()).unwrap();
    }

    fn fin(&self, id: &str) -> PathBuf {
        self.experiments.join(id).join("recon/final-probe")
    }

    fn recon(&self, id: &str, extra: &[&str]) -> Output {
        let sd = fixture("sd/pipeline");
        let blip = fixture("blip/model");
        output_within(
            Command::new(BIN)
                .args(["recon", id, "--sd", &sd, "--blip", &blip, "--steps", "4", "--json"])
                .args(extra)
                .arg("--dir")
                .arg(&self.experiments),
            COMMAND_LIMIT,
        )
    }
}

/// The repository's experiment 92 (demo data) under another id: recon only reads its folder.
fn experiment_toml(id: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/92/experiment.toml");
    let text = std::fs::read_to_string(repo).unwrap();
    text.replacen("id = 92\n", &format!("id = {id}\n"), 1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn recon_captions_and_img2imgs_each_sample_and_resumes() {
    let p = Project::new();
    p.add("92", 3);
    let out = p.recon("92", &["--limit", "2"]);
    assert!(out.status.success(), "recon failed: {}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one line per sample");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(
            (l["sample"].as_u64(), l["row"].as_u64()),
            (Some(i as u64), Some(10 + i as u64))
        );
        assert_eq!(l["reused"], false);
        let caption =
            std::fs::read_to_string(p.fin("92").join(format!("sample-{i:02}-caption.txt")))
                .unwrap();
        assert_eq!(caption.trim(), l["caption"].as_str().unwrap());
        assert!(!caption.contains("blurry "), "the seed code's clean-up: {caption}");
        let high = image::open(p.fin("92").join(format!("sample-{i:02}-highlevel.png"))).unwrap();
        assert_eq!((high.width(), high.height()), (32, 32), "img2img keeps the size");
    }
    assert!(!p.fin("92").join("sample-02-highlevel.png").exists(), "--limit 2 stops there");
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.fin("92").join("highlevel.json")).unwrap())
            .unwrap();
    assert_eq!((settings["strength"].as_f64(), settings["step"].as_u64()), (Some(0.75), Some(7)));

    // Same settings: the two done are kept, the third is made.
    let before = std::fs::read(p.fin("92").join("sample-00-highlevel.png")).unwrap();
    let out = p.recon("92", &[]);
    assert!(out.status.success(), "resume failed: {}", stderr(&out));
    let reused: Vec<bool> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["reused"] == true)
        .collect();
    assert_eq!(reused, vec![true, true, false]);
    assert_eq!(std::fs::read(p.fin("92").join("sample-00-highlevel.png")).unwrap(), before);

    // Other settings are refused, naming the change; nothing is touched.
    let out = p.recon("92", &["--strength", "0.5"]);
    assert!(!out.status.success());
    let msg = stderr(&out);
    assert!(msg.contains("strength: 0.75 -> 0.5") && msg.contains("--restart"), "{msg}");
    assert_eq!(std::fs::read(p.fin("92").join("sample-00-highlevel.png")).unwrap(), before);

    // --restart remakes them with the new settings; the same seed + row gives the same image.
    let out = p.recon("92", &["--strength", "0.5", "--restart", "--limit", "1"]);
    assert!(out.status.success(), "restart failed: {}", stderr(&out));
    let again = std::fs::read(p.fin("92").join("sample-00-highlevel.png")).unwrap();
    assert_ne!(again, before, "strength 0.5 gives another image");
}

#[test]
fn vote_paper_rule_runs_on_recon_outputs() {
    let p = Project::new();
    p.add("92", 2);
    p.add("94", 2);
    for id in ["92", "94"] {
        let out = p.recon(id, &[]);
        assert!(out.status.success(), "recon {id}: {}", stderr(&out));
    }
    let clip = fixture("clip/gelu");
    let out = output_within(
        Command::new(BIN)
            .args(["vote", "92", "94", "--rule", "paper", "--clip", &clip, "--json"])
            .arg("--dir")
            .arg(&p.experiments),
        COMMAND_LIMIT,
    );
    assert!(out.status.success(), "vote: {}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["rule"], "paper");
    assert_eq!(record["votes"].as_array().unwrap().len(), 2);
    assert!(p.experiments.join("votes.json").is_file());
}

#[test]
fn recon_bad_input_names_the_fix_and_writes_nothing() {
    let p = Project::new();
    // No final folder yet: say that eval makes it.
    std::fs::create_dir_all(p.experiments.join("92")).unwrap();
    std::fs::write(p.experiments.join("92/experiment.toml"), experiment_toml("92")).unwrap();
    let out = p.recon("92", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("brainscope eval 92 --split probe"), "{}", stderr(&out));

    // A pipeline folder without its UNet names the part; nothing is written.
    p.add("94", 1);
    let broken = p._tmp.path().join("sd");
    crate::common::copy_dir(Path::new(&fixture("sd/pipeline")), &broken);
    std::fs::remove_dir_all(broken.join("unet")).unwrap();
    let out = output_within(
        Command::new(BIN)
            .args(["recon", "94", "--blip", &fixture("blip/model")])
            .arg("--sd")
            .arg(&broken)
            .arg("--dir")
            .arg(&p.experiments),
        COMMAND_LIMIT,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unet"), "{}", stderr(&out));
    assert!(!p.fin("94").join("highlevel.json").exists(), "nothing written");
    assert!(!p.fin("94").join("sample-00-highlevel.png").exists());

    // Strength outside (0, 1].
    let out = p.recon("94", &["--strength", "1.5"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("strength"), "{}", stderr(&out));
}
