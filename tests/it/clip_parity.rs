//! Parity of the burn CLIP with transformers on tiny random models, the tokenizer on OpenAI's real
//! BPE vocabulary, and `CLIPImageProcessor` preprocessing (tests/fixtures/make_clip_fixtures.py),
//! all loaded through the normal hub-folder code path; plus `brainscope embed` and its errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use brainscope::dtype::Precision;
use brainscope::models::clip::{
    self, ClipError, ClipParts, ClipTokenizer, ClipTokens, tokenizer::SpecialTokens,
};
use brainscope::models::weights::WeightsError;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::ArrayD;
use serde_json::Value;

const TOL: f32 = 1e-4;
/// PNG -> pixel_values: the resize is PIL-compatible bicubic, not bit-identical to PIL's integer
/// arithmetic (one grey level is 1 / (255 * std) ~ 0.015 after normalisation).
const PIXEL_TOL: f32 = 2e-2;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip").join(name)
}

fn npy_f32(path: &Path) -> ArrayD<f32> {
    ndarray_npy::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tensor<const D: usize>(path: &Path, device: &Device) -> Tensor<D> {
    let a = npy_f32(path);
    let shape: [usize; D] = a.shape().try_into().expect("rank");
    // f32 whatever the device's default float type (the f16 GPU tests cast the inputs).
    let data = TensorData::new(a.iter().copied().collect::<Vec<_>>(), shape);
    Tensor::from_data(data, (device, burn::tensor::DType::F32))
}

fn int_tensor(path: &Path, device: &Device) -> Tensor<2, Int> {
    let a: ArrayD<i64> = ndarray_npy::read_npy(path).unwrap();
    let shape: [usize; 2] = a.shape().try_into().unwrap();
    Tensor::from_data(TensorData::new(a.iter().copied().collect::<Vec<_>>(), shape), device)
}

/// Max |a - b|, `a` (ours, maybe f16) compared in f32.
fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let f32 = burn::tensor::FloatDType::F32;
    (a.cast(f32) - b).abs().max().into_scalar::<f32>()
}

fn check_parity(name: &str) {
    check_parity_on(name, &brainscope::backend::default_device(), Precision::F32, TOL);
}

/// Vision and text towers of fixture `name` on `device`, weights and pixels in `precision`, every
/// output within `tol` of transformers' f32 (also run by `gpu_parity` on the wgpu device).
pub(crate) fn check_parity_on(name: &str, device: &Device, precision: Precision, tol: f32) {
    let device = device.clone();
    let dir = fixture(name);
    let mut clip = clip::load_clip(&dir, ClipParts::All, &device).expect("load fixture CLIP");
    clip.model = brainscope::dtype::cast_module(clip.model, precision);
    let pixels =
        tensor::<4>(&dir.join("input_pixel_values.npy"), &device).cast(precision.float_dtype());
    let vision = clip.vision_model().unwrap().forward(pixels.clone());
    let d_vlast = max_abs_diff(
        vision.last_hidden_state,
        tensor(&dir.join("expected_vision_last_hidden_state.npy"), &device),
    );
    let d_vpool = max_abs_diff(
        vision.pooler_output,
        tensor(&dir.join("expected_vision_pooler_output.npy"), &device),
    );
    let d_img = max_abs_diff(
        clip.get_image_features(pixels).unwrap(),
        tensor(&dir.join("expected_image_features.npy"), &device),
    );
    let ids = int_tensor(&dir.join("input_ids.npy"), &device);
    let mask = int_tensor(&dir.join("attention_mask.npy"), &device);
    let d_txt = max_abs_diff(
        clip.get_text_features(ids.clone(), Some(mask.clone())).unwrap(),
        tensor(&dir.join("expected_text_features.npy"), &device),
    );
    let text = clip.text_model().unwrap();
    let d_last = max_abs_diff(
        text.forward(ids.clone(), None).last_hidden_state,
        tensor(&dir.join("expected_last_hidden_state.npy"), &device),
    );
    let d_last_masked = max_abs_diff(
        text.forward(ids, Some(mask)).last_hidden_state,
        tensor(&dir.join("expected_last_hidden_state_masked.npy"), &device),
    );
    println!(
        "{name} ({precision:?}): vision last {d_vlast:e} pooled {d_vpool:e} image features {d_img:e}; text features {d_txt:e} last_hidden_state {d_last:e} (masked {d_last_masked:e})"
    );
    assert!(d_vlast <= tol, "{name}: vision last_hidden_state differs by {d_vlast}");
    assert!(d_vpool <= tol, "{name}: vision pooler_output differs by {d_vpool}");
    assert!(d_img <= tol, "{name}: image features differ by {d_img}");
    assert!(d_txt <= tol, "{name}: text features differ by {d_txt}");
    assert!(d_last <= tol, "{name}: text last_hidden_state differs by {d_last}");
    assert!(d_last_masked <= tol, "{name}: masked last_hidden_state differs by {d_last_masked}");
}

#[test]
fn parity_quick_gelu_eos_2_argmax_pooling() {
    check_parity("quick_gelu");
}

#[test]
fn parity_gelu_first_eos_pooling() {
    check_parity("gelu");
}

/// The committed cases: `(text, unpadded ids, padded ids, attention mask)`.
fn token_cases() -> Vec<(String, Vec<u32>, Vec<u32>, Vec<u32>)> {
    let text = std::fs::read_to_string(fixture("tokenizer/tokens.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    };
    cases
        .iter()
        .map(|c| {
            (
                c["text"].as_str().unwrap().to_owned(),
                ids(&c["input_ids"]),
                ids(&c["padded"]),
                ids(&c["attention_mask"]),
            )
        })
        .collect()
}

fn check_tokenizer(tok: &ClipTokenizer, source: &str) {
    let cases = token_cases();
    assert!(cases.iter().any(|c| c.1.len() == 77), "a case is truncated to 77");
    for (text, ids, padded, mask) in cases {
        let ClipTokens { ids: got, padded: got_padded, attention_mask } =
            tok.encode(&text).unwrap();
        assert_eq!(got, ids, "{source}: ids of {text:?}");
        assert_eq!(got_padded, padded, "{source}: padded ids of {text:?}");
        assert_eq!(attention_mask, mask, "{source}: attention mask of {text:?}");
    }
    assert_eq!((tok.bos_id, tok.eos_id, tok.pad_id), (49406, 49407, 49407));
}

#[test]
fn tokenizer_ids_exact_from_tokenizer_json() {
    let path = fixture("tokenizer/tokenizer.json");
    let tok = ClipTokenizer::from_tokenizer_json(&path, 77, &SpecialTokens::default()).unwrap();
    check_tokenizer(&tok, "tokenizer.json");
}

#[test]
fn tokenizer_ids_exact_from_vocab_and_merges_alone() {
    // SD v1.5's tokenizer/ folder: vocab.json + merges.txt (+ settings), no tokenizer.json.
    let tmp = tempfile::tempdir().unwrap();
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json"] {
        std::fs::copy(fixture("tokenizer").join(f), tmp.path().join(f)).unwrap();
    }
    let tok = ClipTokenizer::from_dir(tmp.path(), 77).unwrap();
    check_tokenizer(&tok, "vocab.json + merges.txt");
}

#[test]
fn tokenizer_folder_without_files_says_what_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let err = ClipTokenizer::from_dir(tmp.path(), 77).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("tokenizer.json") && msg.contains("vocab.json + merges.txt"), "{msg}");
    assert!(msg.contains("openai/clip-vit-large-patch14"), "{msg}");
}

#[test]
fn png_to_pixel_values_matches_clip_image_processor() {
    let device = brainscope::backend::default_device();
    let images: Vec<PathBuf> = ["landscape_rgba.png", "portrait_rgb.png", "small_gray.png"]
        .iter()
        .map(|n| fixture("images").join(n))
        .collect();
    for name in ["quick_gelu", "gelu"] {
        let dir = fixture(name);
        let clip = clip::load_clip(&dir, ClipParts::Vision, &device).unwrap();
        let processor = clip.image_processor().unwrap();
        let got = processor.load_batch(&images, &device).unwrap();
        let want = tensor::<4>(&dir.join("expected_png_pixel_values.npy"), &device);
        let d = max_abs_diff(got.clone(), want.clone());
        let mean = (got - want).abs().mean().into_scalar::<f32>();
        println!("{name}: PNG -> pixel_values max {d:e}, mean {mean:e}");
        assert!(d <= PIXEL_TOL, "{name}: pixel values differ by {d}");
    }
}

/// A tower-only folder (as SD's `text_encoder/` or an `image_encoder/`) made from a fixture: its
/// config.json is the fixture's `<tower>_config` with `model_type`, the weights the full file.
fn tower_folder(name: &str, tower: &str, projection_dim: Option<u64>) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    crate::common::copy_dir(&fixture(name), &dir);
    let full: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut sub = full[format!("{tower}_config")].clone();
    sub["model_type"] = format!("clip_{tower}_model").into();
    if let Some(d) = projection_dim {
        sub["projection_dim"] = d.into();
    }
    std::fs::write(dir.join("config.json"), sub.to_string()).unwrap();
    crate::common::copy_dir(&fixture("tokenizer"), &tmp.path().join("tokenizer"));
    tmp
}

#[test]
fn text_only_folder_gives_last_hidden_state_and_projection() {
    let device = brainscope::backend::default_device();
    let tmp = tower_folder("gelu", "text", Some(6));
    let dir = tmp.path().join("model");
    let clip = clip::load_clip(&dir, ClipParts::Text, &device).unwrap();
    assert!(clip.model.vision_model.is_none());
    let ids = int_tensor(&dir.join("input_ids.npy"), &device);
    let last = clip.text_model().unwrap().forward(ids.clone(), None).last_hidden_state;
    let d = max_abs_diff(last, tensor(&dir.join("expected_last_hidden_state.npy"), &device));
    assert!(d <= TOL, "text-only last_hidden_state differs by {d}");
    let feats = clip.get_text_features(ids, None).unwrap();
    let d = max_abs_diff(feats, tensor(&dir.join("expected_text_features.npy"), &device));
    assert!(d <= TOL, "text-only projection differs by {d}");
    // The tokenizer is found in the sibling tokenizer/ folder (SD layout).
    assert_eq!(clip.tokenizer().unwrap().encode("a photo of a cat").unwrap().ids.len(), 7);
    // Images from a text-only folder: a clear error.
    let err = clip::load_clip(&dir, ClipParts::Vision, &device).unwrap_err();
    assert!(matches!(err, ClipError::NoVisionTower { .. }), "{err}");
    assert!(err.to_string().contains("text model only"), "{err}");
}

/// Rewrite a tower folder's weights as transformers 5's `CLIP{Text,Vision}ModelWithProjection
/// .save_pretrained` does: only that tower's tensors, without the `<tower>_model.` prefix.
fn strip_tower_prefix(dir: &Path, tower: &str) {
    let file = dir.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let prefix = format!("{tower}_model.");
    let projection = if tower == "text" { "text_projection." } else { "visual_projection." };
    let kept: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter_map(|(k, v)| match k.strip_prefix(&prefix) {
            Some(rest) => Some((rest.to_string(), v)),
            None => k.starts_with(projection).then_some((k, v)),
        })
        .collect();
    assert!(kept.iter().all(|(k, _)| !k.contains("_model.")), "prefix left in {kept:?}");
    safetensors::serialize_to_file(kept, &None, &file).unwrap();
}

#[test]
fn unprefixed_tower_files_of_transformers_5_load_and_match() {
    let device = brainscope::backend::default_device();
    let tmp = tower_folder("gelu", "text", Some(6));
    let dir = tmp.path().join("model");
    strip_tower_prefix(&dir, "text");
    let clip = clip::load_clip(&dir, ClipParts::Text, &device).unwrap();
    let ids = int_tensor(&dir.join("input_ids.npy"), &device);
    let last = clip.text_model().unwrap().forward(ids.clone(), None).last_hidden_state;
    let d = max_abs_diff(last, tensor(&dir.join("expected_last_hidden_state.npy"), &device));
    assert!(d <= TOL, "unprefixed text tower last_hidden_state differs by {d}");
    let feats = clip.get_text_features(ids, None).unwrap();
    let d = max_abs_diff(feats, tensor(&dir.join("expected_text_features.npy"), &device));
    assert!(d <= TOL, "unprefixed text projection differs by {d}");

    let tmp = tower_folder("quick_gelu", "vision", Some(10));
    let dir = tmp.path().join("model");
    strip_tower_prefix(&dir, "vision");
    let clip = clip::load_clip(&dir, ClipParts::Vision, &device).unwrap();
    let feats =
        clip.get_image_features(tensor(&dir.join("input_pixel_values.npy"), &device)).unwrap();
    let d = max_abs_diff(feats, tensor(&dir.join("expected_image_features.npy"), &device));
    assert!(d <= TOL, "unprefixed vision tower features differ by {d}");
}

#[test]
fn vision_only_folder_asked_for_text_says_so() {
    let device = brainscope::backend::default_device();
    let tmp = tower_folder("quick_gelu", "vision", Some(10));
    let dir = tmp.path().join("model");
    let clip = clip::load_clip(&dir, ClipParts::All, &device).unwrap();
    let feats =
        clip.get_image_features(tensor(&dir.join("input_pixel_values.npy"), &device)).unwrap();
    let d = max_abs_diff(feats, tensor(&dir.join("expected_image_features.npy"), &device));
    assert!(d <= TOL, "vision-only features differ by {d}");
    let err = clip::load_clip(&dir, ClipParts::Text, &device).unwrap_err();
    assert!(matches!(err, ClipError::NoTextTower { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("vision model only") && msg.contains(&dir.display().to_string()), "{msg}");
}

#[test]
fn wrong_projection_width_is_a_shape_mismatch() {
    let device = brainscope::backend::default_device();
    // The saved text_config says projection_dim 512; the file's text_projection is [6, 10].
    let tmp = tower_folder("gelu", "text", None);
    let err = clip::load_clip(&tmp.path().join("model"), ClipParts::Text, &device).unwrap_err();
    match &err {
        ClipError::Weights(WeightsError::Mismatch { mismatched, .. }) => {
            assert!(mismatched.iter().any(|m| m.contains("text_projection")), "{err}");
        }
        other => panic!("expected a mismatch, got {other}"),
    }
}

/// The fixture folder with `drop` removed from model.safetensors.
fn folder_without_tensor(name: &str, drop: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    crate::common::copy_dir(&fixture(name), &dir);
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(k, _)| k != drop).collect();
    assert!(kept.len() + 1 == st.len(), "{drop} is in the fixture");
    safetensors::serialize_to_file(kept, &None, &dir.join("model.safetensors")).unwrap();
    crate::common::copy_dir(&fixture("tokenizer"), &tmp.path().join("tokenizer"));
    tmp
}

#[test]
fn missing_tensor_is_named() {
    let device = brainscope::backend::default_device();
    let tmp = folder_without_tensor("gelu", "text_model.final_layer_norm.weight");
    let err = clip::load_clip(&tmp.path().join("model"), ClipParts::All, &device).unwrap_err();
    let msg = err.to_string();
    match &err {
        ClipError::Weights(WeightsError::Mismatch { missing, .. }) => {
            assert!(missing.iter().any(|m| m.contains("final_layer_norm")), "{msg}");
        }
        other => panic!("expected missing tensors, got {other}"),
    }
    assert!(msg.contains("model.safetensors") && msg.contains("missing"), "{msg}");
    // The vision tower alone does not need it.
    clip::load_clip(&tmp.path().join("model"), ClipParts::Vision, &device).unwrap();
}

// ---- brainscope embed ----

fn brainscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_brainscope"))
}

fn png_paths() -> Vec<PathBuf> {
    ["landscape_rgba.png", "portrait_rgb.png", "small_gray.png"]
        .iter()
        .map(|n| fixture("images").join(n))
        .collect()
}

fn rows_of(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

fn max_row_diff(a: &[Vec<f32>], b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.len(), b.shape()[0]);
    let flat: Vec<f32> = a.iter().flatten().copied().collect();
    assert_eq!(flat.len(), b.len());
    flat.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn embed_json_matches_transformers() {
    for name in ["quick_gelu", "gelu"] {
        let dir = fixture(name);
        let inputs: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("inputs.json")).unwrap())
                .unwrap();
        let mut cmd = brainscope();
        cmd.arg("embed").arg("--clip").arg(&dir).args(png_paths()).arg("--json");
        let texts: Vec<String> = inputs["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().into())
            .collect();
        for t in &texts {
            cmd.arg("--text").arg(t);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let img = rows_of(&json["image_embeds"]);
        let txt = rows_of(&json["text_embeds"]);
        let d_txt = max_row_diff(&txt, &npy_f32(&dir.join("expected_text_embeds.npy")));
        // Image embeddings come through PNG preprocessing (pixel values within PIXEL_TOL).
        let d_img = max_row_diff(&img, &npy_f32(&dir.join("expected_png_image_embeds.npy")));
        println!("{name}: embed --json text {d_txt:e} image {d_img:e}");
        assert!(d_txt <= TOL, "{name}: text_embeds differ by {d_txt}");
        assert!(d_img <= 2e-2, "{name}: image_embeds differ by {d_img}");
        for row in img.iter().chain(&txt) {
            let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "normalised: {norm}");
        }
        let ids: Vec<Vec<u64>> = json["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect())
            .collect();
        let cases = token_cases();
        for (t, got) in texts.iter().zip(&ids) {
            let want = &cases.iter().find(|c| &c.0 == t).unwrap().1;
            assert_eq!(got.iter().map(|&x| x as u32).collect::<Vec<_>>(), *want, "{t:?}");
        }
    }
}

#[test]
fn embed_unnormalized_npy_and_text_only() {
    let dir = fixture("gelu");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("emb.npy");
    brainscope()
        .arg("embed")
        .arg("--clip")
        .arg(&dir)
        .args(png_paths())
        .arg("--unnormalized")
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let got = npy_f32(&out);
    assert_eq!(got.shape(), &[3, 6]);
    let want = npy_f32(&dir.join("expected_png_image_embeds.npy"));
    let norms: Vec<f32> =
        got.outer_iter().map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt()).collect();
    assert!(norms.iter().all(|n| (n - 1.0).abs() > 1e-3), "raw projections: {norms:?}");
    for (i, r) in got.outer_iter().enumerate() {
        for (j, x) in r.iter().enumerate() {
            let d = (x / norms[i] - want[[i, j]]).abs();
            assert!(d <= 2e-2, "row {i}: normalised raw projection differs by {d}");
        }
    }
    // Text only: no image_embeds key; texts -> -o writes the text embeddings.
    let assert = brainscope()
        .args(["embed", "--clip"])
        .arg(&dir)
        .args(["--text", "a photo of a cat", "--json"])
        .assert()
        .success();
    let json: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert!(json.get("image_embeds").is_none(), "{json}");
    assert_eq!(json["input_ids"], serde_json::json!([[49406, 320, 1125, 539, 320, 2368, 49407]]));
    let out = tmp.path().join("text.npy");
    brainscope()
        .args(["embed", "--clip"])
        .arg(&dir)
        .args(["--text", "a", "--text", "b", "-o"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(npy_f32(&out).shape(), &[2, 6]);
}

/// Run `embed` expecting failure: exit code non-zero, stderr returned, `out` not written.
fn embed_fails(args: &[&std::ffi::OsStr], out: &Path) -> String {
    let output = brainscope().arg("embed").args(args).arg("-o").arg(out).output().unwrap();
    assert!(!output.status.success(), "expected failure");
    assert!(!out.exists(), "nothing written on error");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn embed_bad_input_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.npy");
    let gelu = fixture("gelu");
    let os = |s: &str| std::ffi::OsString::from(s);

    // Not an image.
    let fake = tmp.path().join("notes.png");
    std::fs::write(&fake, "not a png").unwrap();
    let err = embed_fails(
        &[os("--clip").as_os_str(), gelu.as_os_str(), png_paths()[0].as_os_str(), fake.as_os_str()],
        &out,
    );
    assert!(err.contains("notes.png") && err.contains("cannot read image"), "{err}");

    // Nothing to embed.
    let err = embed_fails(&[os("--clip").as_os_str(), gelu.as_os_str()], &out);
    assert!(err.contains("nothing to embed"), "{err}");

    // A vision-only folder asked for text.
    let vision = tower_folder("quick_gelu", "vision", Some(10));
    let vdir = vision.path().join("model");
    let err = embed_fails(
        &[
            os("--clip").as_os_str(),
            vdir.as_os_str(),
            os("--text").as_os_str(),
            os("a cat").as_os_str(),
        ],
        &out,
    );
    assert!(err.contains("vision model only"), "{err}");

    // Missing tensors.
    let broken = folder_without_tensor("gelu", "visual_projection.weight");
    let bdir = broken.path().join("model");
    let err = embed_fails(
        &[os("--clip").as_os_str(), bdir.as_os_str(), png_paths()[1].as_os_str()],
        &out,
    );
    assert!(err.contains("missing tensor") && err.contains("visual_projection"), "{err}");

    // Missing folder.
    let err = embed_fails(
        &[
            os("--clip").as_os_str(),
            os("/nonexistent/clip").as_os_str(),
            png_paths()[1].as_os_str(),
        ],
        &out,
    );
    assert!(
        err.contains("/nonexistent/clip") && err.contains("openai/clip-vit-large-patch14"),
        "{err}"
    );

    // --json and -o together.
    let output = brainscope()
        .args(["embed", "--clip"])
        .arg(&gelu)
        .args(["--text", "a", "--json", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success() && !out.exists());
}

#[test]
fn embed_help_says_what_the_folder_holds_and_where_to_get_it() {
    let output = brainscope().args(["embed", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "tokenizer.json",
        "openai/clip-vit-large-patch14",
        "weights/clip-vit-large-patch14",
        "--unnormalized",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}
