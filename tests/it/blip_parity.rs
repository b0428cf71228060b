//! Parity of the burn BLIP with transformers' `BlipForConditionalGeneration` on a tiny random
//! model (tests/fixtures/make_blip_fixtures.py), loaded through the normal hub-folder code path:
//! vision last hidden state and decoder logits (<= 1e-4), `generate` ids for greedy and beam
//! search (several images, lengths, penalties, a prefix, beams finishing at different steps),
//! BERT WordPiece ids on the real uncased vocabulary, and loading errors.

use std::path::{Path, PathBuf};

use brainscope::dtype::Precision;
use brainscope::models::blip::{
    self, BlipError, BlipTokenizer, EarlyStopping, GenerateError, GenerateOptions,
};
use brainscope::models::weights::WeightsError;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::ArrayD;
use serde_json::Value;

const TOL: f32 = 1e-4;

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blip").join(name)
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

/// Max |a - b|, `a` (ours, maybe f16) compared in f32.
fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let f32 = burn::tensor::FloatDType::F32;
    (a.cast(f32) - b).abs().max().into_scalar::<f32>()
}

pub(crate) fn cases() -> Value {
    let text = std::fs::read_to_string(fixture("model/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids_of(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect())
        .collect()
}

#[test]
fn vision_and_decoder_logits_match_transformers() {
    check_logits_on(&brainscope::backend::default_device(), Precision::F32, TOL);
}

/// Vision last hidden state, decoder logits and their logsumexp on `device`, weights and pixels
/// in `precision`, within `tol` of transformers' f32 (also run by `gpu_parity` on the wgpu
/// device). The logsumexp is taken in f32, as generation reads the logits.
pub(crate) fn check_logits_on(device: &Device, precision: Precision, tol: f32) {
    let device = device.clone();
    let dir = fixture("model");
    let mut blip = blip::load_blip(&dir, &device).expect("load fixture BLIP");
    blip.model = brainscope::dtype::cast_module(blip.model, precision);
    let pixels =
        tensor::<4>(&dir.join("input_pixel_values.npy"), &device).cast(precision.float_dtype());
    let embeds = blip.image_embeds(pixels);
    let d_vis = max_abs_diff(
        embeds.clone(),
        tensor(&dir.join("expected_vision_last_hidden_state.npy"), &device),
    );

    let ids: ArrayD<i64> = ndarray_npy::read_npy(dir.join("input_ids.npy")).unwrap();
    let shape: [usize; 2] = ids.shape().try_into().unwrap();
    let ids =
        Tensor::<2, Int>::from_data(TensorData::new(ids.iter().copied().collect(), shape), &device);
    let logits = blip.model.text_decoder.forward(ids, embeds).cast(burn::tensor::FloatDType::F32); // [b, s, vocab]
    let cols: ArrayD<i64> = ndarray_npy::read_npy(dir.join("logit_columns.npy")).unwrap();
    let cols = Tensor::<1, Int>::from_data(
        TensorData::new(cols.iter().copied().collect::<Vec<_>>(), [cols.len()]),
        &device,
    );
    let d_cols = max_abs_diff(
        logits.clone().select(2, cols),
        tensor(&dir.join("expected_logits_columns.npy"), &device),
    );
    // logsumexp over the whole vocabulary: every logit takes part.
    let max = logits.clone().max_dim(2); // [b, s, 1]
    let lse = ((logits - max.clone()).exp().sum_dim(2).log() + max).squeeze_dim::<2>(2);
    let d_lse = max_abs_diff(lse, tensor(&dir.join("expected_logits_logsumexp.npy"), &device));
    println!("{precision:?}: vision {d_vis:.2e} logits {d_cols:.2e} logsumexp {d_lse:.2e}");
    assert!(d_vis <= tol, "vision last_hidden_state differs by {d_vis}");
    assert!(d_cols <= tol, "decoder logits differ by {d_cols}");
    assert!(d_lse <= tol, "decoder logsumexp differs by {d_lse}");
}

fn options_of(case: &Value) -> (GenerateOptions, Option<String>) {
    let get = |k: &str| case.get(k).filter(|v| !v.is_null());
    let prefix = get("prefix").and_then(Value::as_str).map(str::to_owned);
    let mut o = GenerateOptions { num_beams: 1, ..Default::default() };
    if let Some(b) = get("num_beams") {
        o.num_beams = b.as_u64().unwrap() as usize;
    }
    if let Some(m) = get("min_length") {
        o.min_length = m.as_u64().unwrap() as usize;
    }
    if let Some(p) = get("repetition_penalty") {
        o.repetition_penalty = p.as_f64().unwrap() as f32;
    }
    if let Some(p) = get("length_penalty") {
        o.length_penalty = p.as_f64().unwrap() as f32;
    }
    o.early_stopping = match get("early_stopping") {
        Some(Value::Bool(true)) => EarlyStopping::Stop,
        Some(Value::String(s)) if s == "never" => EarlyStopping::Never,
        _ => EarlyStopping::Heuristic,
    };
    let prompt_len = 1 + prefix.as_ref().map_or(0, |_| 3); // [DEC] a picture of
    o.max_length = match (get("max_length"), get("max_new_tokens")) {
        (_, Some(n)) => prompt_len + n.as_u64().unwrap() as usize,
        (Some(m), None) => m.as_u64().unwrap() as usize,
        // transformers >= 4.39 without either: 20 new tokens, capped at the positions (40).
        (None, None) => (prompt_len + 20).min(40),
    };
    (o, prefix)
}

/// Every `generate` case on the four fixture images at once (a batch), each image's ids equal to
/// transformers' `generate` on that image alone.
#[test]
fn generate_ids_equal_transformers_greedy_and_beam() {
    let device = brainscope::backend::default_device();
    let dir = fixture("model");
    let blip = blip::load_blip(&dir, &device).unwrap();
    let pixels = tensor::<4>(&dir.join("input_pixel_values.npy"), &device);
    let all = cases();
    let cases = all["generate"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut lengths = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (opts, prefix) = options_of(case);
        let want = ids_of(&case["ids"]);
        let got = blip.caption(pixels.clone(), prefix.as_deref(), &opts).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(&g.ids, w, "case '{name}', image {i}");
            assert_eq!(g.text, case["captions"][i].as_str().unwrap(), "case '{name}', image {i}");
            if opts.num_beams > 1 {
                lengths.insert(w.len());
            }
        }
    }
    // Beams ended at several lengths (the fixture's [SEP] bias makes sequences finish).
    assert!(lengths.len() >= 4, "beam lengths {lengths:?}");
}

#[test]
fn bad_generation_settings_are_errors() {
    let device = brainscope::backend::default_device();
    let dir = fixture("model");
    let blip = blip::load_blip(&dir, &device).unwrap();
    let pixels = tensor::<4>(&dir.join("input_pixel_values.npy"), &device);
    let zero = GenerateOptions { num_beams: 0, ..Default::default() };
    let err = blip.caption(pixels.clone(), None, &zero).unwrap_err();
    assert!(matches!(err, BlipError::Generate(GenerateError::ZeroBeams)), "{err}");
    let short = GenerateOptions { max_length: 4, ..Default::default() };
    let err = blip.caption(pixels.clone(), Some("a picture of"), &short).unwrap_err();
    assert!(err.to_string().contains("prefix"), "{err}");
    let long = GenerateOptions { max_length: 41, ..Default::default() };
    let err = blip.caption(pixels, None, &long).unwrap_err();
    assert!(err.to_string().contains("max_position_embeddings"), "{err}");
}

fn check_tokenizer(tok: &BlipTokenizer, source: &str) {
    let text = std::fs::read_to_string(fixture("tokenizer/tokens.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    for case in v["encode"].as_array().unwrap() {
        let t = case["text"].as_str().unwrap();
        let want: Vec<u32> =
            case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(tok.encode(t).unwrap(), want, "{source}: {t:?}");
    }
    for case in v["decode"].as_array().unwrap() {
        let ids: Vec<u32> =
            case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(tok.decode(&ids).unwrap(), case["text"].as_str().unwrap(), "{source}: {ids:?}");
    }
    assert_eq!(tok.token_to_id("[DEC]"), Some(30522));
    assert_eq!(tok.token_to_id("[ENC]"), Some(30523));
}

#[test]
fn wordpiece_ids_exact_from_vocab_txt_and_tokenizer_json() {
    check_tokenizer(&BlipTokenizer::from_dir(&fixture("model")).unwrap(), "vocab.txt");
    check_tokenizer(&BlipTokenizer::from_dir(&fixture("tokenizer")).unwrap(), "tokenizer.json");
}

/// The fixture folder with `drop` removed from model.safetensors (and, with `add`, a tensor of
/// that name added).
pub(crate) fn edited_folder(drop: Option<&str>, add: Option<&str>) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    crate::common::copy_dir(&fixture("model"), &dir);
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut kept: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(k, _)| Some(k.as_str()) != drop).collect();
    let extra = vec![0u8; 16];
    if let Some(name) = add {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &extra).unwrap();
        kept.push((name.to_string(), view));
    }
    safetensors::serialize_to_file(kept, &None, &dir.join("model.safetensors")).unwrap();
    tmp
}

#[test]
fn missing_and_unexpected_tensors_are_named_tied_copies_tolerated() {
    let device = brainscope::backend::default_device();
    let tmp = edited_folder(Some("text_decoder.cls.predictions.bias"), None);
    let err = blip::load_blip(&tmp.path().join("model"), &device).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, BlipError::Weights(WeightsError::Mismatch { missing, .. })
            if missing.iter().any(|m| m.contains("cls.predictions.bias"))),
        "{msg}"
    );
    assert!(msg.contains("model.safetensors") && msg.contains("blip-image-captioning"), "{msg}");

    let tmp = edited_folder(None, Some("text_decoder.bert.pooler.dense.bias"));
    let err = blip::load_blip(&tmp.path().join("model"), &device).unwrap_err().to_string();
    assert!(err.contains("unexpected") && err.contains("pooler"), "{err}");

    // The decoder bias some checkpoints store beside its tied twin is not an error.
    let tmp = edited_folder(None, Some("text_decoder.cls.predictions.decoder.bias"));
    blip::load_blip(&tmp.path().join("model"), &device).unwrap();
}

#[test]
fn bin_only_folder_gets_the_conversion_command() {
    let device = brainscope::backend::default_device();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    crate::common::copy_dir(&fixture("model"), &dir);
    std::fs::rename(dir.join("model.safetensors"), dir.join("pytorch_model.bin")).unwrap();
    let err = blip::load_blip(&dir, &device).unwrap_err().to_string();
    assert!(err.contains("pytorch_model.bin") && err.contains("save_file"), "{err}");
    assert!(err.contains("clone()"), "{err}");
}
