//! Parity of the burn `AutoencoderKL` with diffusers on tiny random models
//! (tests/fixtures/make_vae_fixtures.py), loaded through the normal hub-folder loader, plus the
//! loader's errors on missing / mismatched weights.

use std::path::{Path, PathBuf};

use brainscope::dtype::Precision;
use brainscope::models::vae::{self, AutoencoderKLConfig};
use brainscope::models::weights::WeightsError;
use burn::prelude::*;
use burn::tensor::{DType, FloatDType, TensorData};
use ndarray::ArrayD;

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vae").join(name)
}

/// A fixture array as an f32 tensor (whatever the device's default float type).
fn npy(dir: &Path, file: &str, device: &Device) -> Tensor<4> {
    let a: ArrayD<f32> = ndarray_npy::read_npy(dir.join(file)).expect("fixture npy");
    let shape: [usize; 4] = a.shape().try_into().expect("rank 4");
    let data: Vec<f32> = a.iter().copied().collect();
    Tensor::from_data(TensorData::new(data, shape), (device, DType::F32))
}

/// Largest absolute difference, in f32 (`a` may be f16).
fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a.cast(FloatDType::F32) - b).abs().max().into_scalar::<f32>()
}

fn check_parity(name: &str) {
    check_parity_on(name, &brainscope::backend::default_device(), Precision::F32, TOL);
}

/// Encode (mean, mode, logvar) and decode of fixture `name` on `device` with weights and inputs
/// in `precision`, each within `tol` of diffusers' f32 (also run by `gpu_parity` on wgpu).
pub(crate) fn check_parity_on(name: &str, device: &Device, precision: Precision, tol: f32) {
    let device = device.clone();
    let dir = fixture(name);
    let mut vae = vae::load_vae(&dir, &device).expect("load fixture VAE");
    vae.model = brainscope::dtype::cast_module(vae.model, precision);
    let input = |file| npy(&dir, file, &device).cast(precision.float_dtype());
    let image = input("input_image.npy");
    let post = vae.model.encode(image);
    let d_mean = max_abs_diff(post.mean.clone(), npy(&dir, "expected_mean.npy", &device));
    let d_mode = max_abs_diff(post.mode(), npy(&dir, "expected_mean.npy", &device));
    let d_logvar = max_abs_diff(post.logvar.clone(), npy(&dir, "expected_logvar.npy", &device));
    let decoded = vae.model.decode(input("input_latent.npy"));
    let d_dec = max_abs_diff(decoded, npy(&dir, "expected_decoded.npy", &device));
    println!("{name}: mean {d_mean:e} logvar {d_logvar:e} decoded {d_dec:e}");
    assert!(d_mean <= tol, "{name}: encode mean differs by {d_mean}");
    assert!(d_mode <= tol, "{name}: encode mode differs by {d_mode}");
    assert!(d_logvar <= tol, "{name}: encode logvar differs by {d_logvar}");
    assert!(d_dec <= tol, "{name}: decode differs by {d_dec}");
}

#[test]
fn parity_two_blocks_layers_per_block_1() {
    check_parity("tiny_lpb1");
}

#[test]
fn parity_three_blocks_layers_per_block_2_non_square_batch_2() {
    check_parity("tiny_lpb2");
}

#[test]
fn sample_is_seeded_and_follows_mean_and_std() {
    let device = brainscope::backend::default_device();
    let dir = fixture("tiny_lpb1");
    let vae = vae::load_vae(&dir, &device).unwrap();
    let post = vae.model.encode(npy(&dir, "input_image.npy", &device));
    let a = post.sample(7);
    let b = post.sample(7);
    let c = post.sample(8);
    assert_eq!(max_abs_diff(a.clone(), b), 0.0, "same seed, same sample");
    assert!(max_abs_diff(a.clone(), c) > 1e-3, "different seeds, different samples");
    // (sample - mean) / std must be standard normal noise: mean ~0, var ~1 over 1024 values.
    let eps = (a - post.mean.clone()) / post.std();
    let m = eps.clone().mean().into_scalar::<f32>();
    let v = eps.powi_scalar(2).mean().into_scalar::<f32>();
    assert!(m.abs() < 0.15 && (v - 1.0).abs() < 0.2, "eps mean {m} var {v}");
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    tmp
}

#[test]
fn missing_folder_and_file_name_the_fix() {
    let device = brainscope::backend::default_device();
    let err = vae::load_vae(Path::new("/nonexistent/vae"), &device).unwrap_err();
    assert!(matches!(err, WeightsError::MissingFolder { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/vae") && msg.contains("stabilityai/sd-vae-ft-mse"), "{msg}");

    let tmp = copy_fixture("tiny_lpb1");
    std::fs::remove_file(tmp.path().join("diffusion_pytorch_model.safetensors")).unwrap();
    let err = vae::load_vae(tmp.path(), &device).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WeightsError::MissingFile { .. }), "{msg}");
    assert!(
        msg.contains("diffusion_pytorch_model.safetensors") && msg.contains("runwayml"),
        "{msg}"
    );
}

#[test]
fn wrong_shapes_and_missing_tensors_are_reported() {
    let device = brainscope::backend::default_device();
    // The lpb2 weights under the lpb1 config: shapes and key sets differ.
    let tmp = copy_fixture("tiny_lpb1");
    std::fs::copy(
        fixture("tiny_lpb2").join("diffusion_pytorch_model.safetensors"),
        tmp.path().join("diffusion_pytorch_model.safetensors"),
    )
    .unwrap();
    let err = vae::load_vae(tmp.path(), &device).unwrap_err();
    let msg = err.to_string();
    match &err {
        WeightsError::Mismatch { mismatched, unused, .. } => {
            assert!(!mismatched.is_empty(), "{msg}");
            assert!(!unused.is_empty(), "{msg}");
        }
        other => panic!("expected Mismatch, got {other}"),
    }
    assert!(msg.contains("diffusion_pytorch_model.safetensors"), "{msg}");

    // The lpb1 weights under an lpb2-shaped config: tensors are missing.
    let tmp = copy_fixture("tiny_lpb1");
    let mut cfg: AutoencoderKLConfig =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("config.json")).unwrap())
            .unwrap();
    cfg.layers_per_block = 2;
    std::fs::write(tmp.path().join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    match vae::load_vae(tmp.path(), &device).unwrap_err() {
        WeightsError::Mismatch { missing, .. } => {
            assert!(missing.iter().any(|k| k.contains("resnets.1")), "{missing:?}")
        }
        other => panic!("expected Mismatch, got {other}"),
    }
}

#[test]
fn unsupported_block_type_is_an_error() {
    let device = brainscope::backend::default_device();
    let tmp = copy_fixture("tiny_lpb1");
    let text = std::fs::read_to_string(tmp.path().join("config.json")).unwrap();
    std::fs::write(
        tmp.path().join("config.json"),
        text.replacen("DownEncoderBlock2D", "AttnDownEncoderBlock2D", 1),
    )
    .unwrap();
    let err = vae::load_vae(tmp.path(), &device).unwrap_err();
    assert!(matches!(err, WeightsError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("AttnDownEncoderBlock2D"), "{err}");
}

#[test]
fn save_then_load_round_trips_in_diffusers_layout() {
    let device = brainscope::backend::default_device();
    let src = vae::load_vae(&fixture("tiny_lpb1"), &device).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    vae::save_vae(&src.model, &src.config, tmp.path()).unwrap();
    // Same key set as the diffusers file.
    let keys = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut k: Vec<String> = st.names().into_iter().map(String::from).collect();
        k.sort();
        k
    };
    let file = "diffusion_pytorch_model.safetensors";
    assert_eq!(keys(&tmp.path().join(file)), keys(&fixture("tiny_lpb1").join(file)));
    let back = vae::load_vae(tmp.path(), &device).unwrap();
    let z = npy(&fixture("tiny_lpb1"), "input_latent.npy", &device);
    assert_eq!(max_abs_diff(src.model.decode(z.clone()), back.model.decode(z)), 0.0);
}

#[test]
fn legacy_attention_key_names_load() {
    // Early diffusers uploads name the mid-block attention query/key/value/proj_attn.
    let device = brainscope::backend::default_device();
    let tmp = copy_fixture("tiny_lpb1");
    let file = tmp.path().join("diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let renamed: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            let k = k
                .replace(".to_q.", ".query.")
                .replace(".to_k.", ".key.")
                .replace(".to_v.", ".value.")
                .replace(".to_out.0.", ".proj_attn.");
            (k, v)
        })
        .collect();
    assert!(renamed.iter().any(|(k, _)| k.contains(".proj_attn.")));
    safetensors::serialize_to_file(renamed, &None, &file).unwrap();
    let vae = vae::load_vae(tmp.path(), &device).expect("legacy names load");
    let dir = fixture("tiny_lpb1");
    let decoded = vae.model.decode(npy(&dir, "input_latent.npy", &device));
    assert!(max_abs_diff(decoded, npy(&dir, "expected_decoded.npy", &device)) <= TOL);
}
