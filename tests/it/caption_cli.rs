//! `brainscope caption` on a demo reconstruction PNG with the tiny fixture BLIP (ids equal to
//! transformers' `generate` on the PIL-preprocessed image, both preprocessings, greedy and beams),
//! its JSON contract, and bad input through the CLI: clear errors, non-zero exit, nothing printed.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use brainscope::models::blip::preprocess::{self, Preprocess};
use serde_json::Value;

use super::blip_parity::{cases, edited_folder, fixture};
use crate::common::copy_dir;

fn brainscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_brainscope"))
}

fn demo_png() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/experiments/92/recon/epoch-001/sample-00-lowlevel.png")
}

fn caption_json(extra: &[&str]) -> Value {
    let out = brainscope()
        .arg("caption")
        .arg("--blip")
        .arg(fixture("model"))
        .arg(demo_png())
        .arg(demo_png())
        .args(extra)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn caption_demo_png_matches_transformers_generate() {
    let all = cases();
    for want in all["png"].as_array().unwrap() {
        let mode = want["preprocess"].as_str().unwrap();
        let beams = want["num_beams"].as_u64().unwrap().to_string();
        let got = caption_json(&["--preprocess", mode, "--beams", &beams]);
        let rows = got.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        for row in rows {
            // Exactly the three keys of the contract.
            assert_eq!(row.as_object().unwrap().len(), 3, "{row}");
            assert_eq!(row["image"].as_str().unwrap(), demo_png().display().to_string());
            assert_eq!(row["ids"], want["ids"], "{mode}, {beams} beam(s)");
            assert_eq!(row["caption"], want["caption"], "{mode}, {beams} beam(s)");
        }
    }
}

#[test]
fn png_pixel_values_match_blip_image_processor_and_seed() {
    let device = brainscope::backend::default_device();
    for (mode, name, tol) in [
        // PIL-compatible bicubic, not bit-identical to PIL's integer arithmetic: one grey
        // level is 1 / (255 * std) ~ 0.015 after normalisation, 1.0 raw.
        (Preprocess::Hf, "hf", 2e-2),
        (Preprocess::Seed, "seed", 1.01),
    ] {
        let p = preprocess::processor(&fixture("model"), 40, mode).unwrap();
        let got = preprocess::load_pixel_values(&p, &[demo_png()], &device).unwrap();
        let want: ndarray::ArrayD<f32> = ndarray_npy::read_npy(
            fixture("model").join(format!("expected_png_pixel_values_{name}.npy")),
        )
        .unwrap();
        assert_eq!(got.dims().to_vec(), want.shape().to_vec());
        let got: Vec<f32> = got.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        let d = got.iter().zip(want.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d <= tol, "{name}: pixel values differ by {d}");
    }
}

#[test]
fn caption_plain_output_and_prefix() {
    let out = brainscope()
        .args(["caption", "--prefix", "a picture of", "--max-new-tokens", "4", "--blip"])
        .arg(fixture("model"))
        .arg(demo_png())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().next().unwrap();
    let want = format!("{}: a picture of", demo_png().display());
    assert!(line.starts_with(&want), "{line}");
    assert_eq!(text.lines().count(), 1);

    let v = caption_json(&["--prefix", "a picture of", "--max-new-tokens", "4"]);
    let ids = v[0]["ids"].as_array().unwrap();
    assert_eq!(&ids[..4], &[30522, 1037, 3861, 1997].map(Value::from), "{v}");
    assert!(ids.len() <= 8);
}

fn caption_fails(args: &[&std::ffi::OsStr]) -> String {
    let out = brainscope().arg("caption").args(args).output().unwrap();
    assert!(!out.status.success(), "expected failure for {args:?}");
    assert!(out.stdout.is_empty(), "nothing printed on error");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn caption_bad_input_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("model");
    let png = demo_png();
    let os = |s: &str| std::ffi::OsString::from(s);
    let blip = os("--blip");

    // Unreadable image (named), even after a good one.
    let fake = tmp.path().join("notes.png");
    std::fs::write(&fake, "not a png").unwrap();
    let err = caption_fails(&[&blip, model.as_os_str(), png.as_os_str(), fake.as_os_str()]);
    assert!(err.contains("notes.png") && err.contains("cannot read image"), "{err}");

    // --beams 0.
    let err = caption_fails(&[&blip, model.as_os_str(), png.as_os_str(), &os("--beams"), &os("0")]);
    assert!(err.contains("--beams must be at least 1"), "{err}");

    // A prefix longer than the maximum length.
    let err = caption_fails(&[
        &blip,
        model.as_os_str(),
        png.as_os_str(),
        &os("--prefix"),
        &os("a picture of two dogs"),
        &os("--max-length"),
        &os("5"),
    ]);
    assert!(err.contains("prefix") && err.contains("max_length is 5"), "{err}");

    // Longer than the decoder's positions.
    let err =
        caption_fails(&[&blip, model.as_os_str(), png.as_os_str(), &os("--max-length"), &os("99")]);
    assert!(err.contains("max_position_embeddings"), "{err}");

    // No such folder.
    let missing = tmp.path().join("blip-image-captioning-large");
    let err = caption_fails(&[&blip, missing.as_os_str(), png.as_os_str()]);
    assert!(err.contains("does not exist") && err.contains("Salesforce/blip"), "{err}");

    // pytorch_model.bin only: the conversion command.
    let bin = tmp.path().join("bin");
    copy_dir(&model, &bin);
    std::fs::rename(bin.join("model.safetensors"), bin.join("pytorch_model.bin")).unwrap();
    let err = caption_fails(&[&blip, bin.as_os_str(), png.as_os_str()]);
    assert!(err.contains("pytorch_model.bin") && err.contains("save_file"), "{err}");

    // A missing tensor: the loader names it and the file.
    let cut = edited_folder(Some("vision_model.post_layernorm.weight"), None);
    let dir = cut.path().join("model");
    let err = caption_fails(&[&blip, dir.as_os_str(), png.as_os_str()]);
    assert!(err.contains("post_layernorm") && err.contains("model.safetensors"), "{err}");

    // No tokenizer files.
    let notok = tmp.path().join("notok");
    copy_dir(&model, &notok);
    std::fs::remove_file(notok.join("vocab.txt")).unwrap();
    let err = caption_fails(&[&blip, notok.as_os_str(), png.as_os_str()]);
    assert!(err.contains("vocab.txt") && err.contains("tokenizer.json"), "{err}");
}
