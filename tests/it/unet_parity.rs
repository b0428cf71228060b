//! Parity of the burn `UNet2DConditionModel` with diffusers on tiny random models
//! (tests/fixtures/make_unet_fixtures.py): an SD 1.x layout (1x1-conv projections, per-block head
//! counts 5/3/3, odd widths 15/27/33, three blocks, layers_per_block 2, cross_attention_dim 20,
//! batch 2, 12x20 latent) and an SD 2.x-style one (linear projections, two transformer layers,
//! sin|cos with freq_shift 1, 9x13 latent so the upsamplers follow the skips' sizes), with a shared
//! and with per-sample timesteps; plus the loader's errors.

use std::path::{Path, PathBuf};

use brainscope::dtype::Precision;
use brainscope::models::unet;
use brainscope::models::weights::WeightsError;
use burn::prelude::*;
use burn::tensor::{DType, FloatDType, TensorData};
use ndarray::ArrayD;

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unet").join(name)
}

fn npy<const D: usize>(dir: &Path, file: &str, device: &Device) -> Tensor<D> {
    let a: ArrayD<f32> = ndarray_npy::read_npy(dir.join(file)).expect("fixture npy");
    let shape: [usize; D] = a.shape().try_into().expect("rank");
    let data: Vec<f32> = a.iter().copied().collect();
    Tensor::from_data(TensorData::new(data, shape), (device, DType::F32))
}

fn floats(dir: &Path, file: &str) -> Vec<f32> {
    let a: ArrayD<f32> = ndarray_npy::read_npy(dir.join(file)).expect("fixture npy");
    a.iter().copied().collect()
}

/// Largest absolute difference, in f32 (`a` may be f16).
fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a.cast(FloatDType::F32) - b).abs().max().into_scalar::<f32>()
}

fn check_parity(name: &str) {
    check_parity_on(name, &brainscope::backend::default_device(), Precision::F32, TOL);
}

/// The UNet output of fixture `name` for a shared and for per-sample timesteps on `device`, with
/// weights and inputs in `precision`, within `tol` of diffusers' f32 (also run by `gpu_parity`).
pub(crate) fn check_parity_on(name: &str, device: &Device, precision: Precision, tol: f32) {
    let device = device.clone();
    let dir = fixture(name);
    let mut unet = unet::load_unet(&dir, &device).expect("load fixture UNet");
    unet.model = brainscope::dtype::cast_module(unet.model, precision);
    let latents: Tensor<4> =
        npy::<4>(&dir, "input_latents.npy", &device).cast(precision.float_dtype());
    let context: Tensor<3> =
        npy::<3>(&dir, "input_context.npy", &device).cast(precision.float_dtype());
    let t = floats(&dir, "timestep.npy");
    assert_eq!(t.len(), 1);
    let got = unet.model.forward(latents.clone(), t[0], context.clone());
    let want: Tensor<4> = npy(&dir, "expected_scalar.npy", &device);
    let scale = want.clone().abs().max().into_scalar::<f32>();
    let d_scalar = max_abs_diff(got, want);
    let ts = floats(&dir, "timesteps.npy");
    let got = unet.model.forward_timesteps(latents, &ts, context);
    let d_batch = max_abs_diff(got, npy(&dir, "expected_per_sample.npy", &device));
    println!("{name}: |out| max {scale:.3}, shared t {d_scalar:e}, per-sample t {d_batch:e}");
    assert!(scale > 0.1, "{name}: degenerate fixture output");
    assert!(d_scalar <= tol, "{name}: output (shared timestep) differs by {d_scalar}");
    assert!(d_batch <= tol, "{name}: output (per-sample timesteps) differs by {d_batch}");
}

#[test]
fn parity_sd1_layout_conv_projection_three_blocks() {
    check_parity("tiny_sd1");
}

#[test]
fn parity_sd2_layout_linear_projection_odd_latent() {
    check_parity("tiny_sd2_linear");
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    tmp
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn unsupported_block_type_names_the_block_and_the_file() {
    let device = brainscope::backend::default_device();
    let tmp = copy_fixture("tiny_sd1");
    edit_config(tmp.path(), |v| v["up_block_types"][1] = "AttnUpBlock2D".into());
    let err = unet::load_unet(tmp.path(), &device).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WeightsError::Unsupported { .. }), "{msg}");
    assert!(msg.contains("'AttnUpBlock2D'") && msg.contains("up_block_types[1]"), "{msg}");
    assert!(msg.contains(&tmp.path().join("config.json").display().to_string()), "{msg}");

    let tmp = copy_fixture("tiny_sd1");
    edit_config(tmp.path(), |v| v["addition_embed_type"] = "text_time".into());
    let msg = unet::load_unet(tmp.path(), &device).unwrap_err().to_string();
    assert!(msg.contains("addition_embed_type"), "{msg}");
}

#[test]
fn missing_and_mismatched_weights_are_reported() {
    let device = brainscope::backend::default_device();
    let err = unet::load_unet(Path::new("/nonexistent/unet"), &device).unwrap_err();
    assert!(matches!(err, WeightsError::MissingFolder { .. }), "{err}");
    assert!(err.to_string().contains("stable-diffusion-v1-5"), "{err}");

    let tmp = copy_fixture("tiny_sd1");
    std::fs::remove_file(tmp.path().join("diffusion_pytorch_model.safetensors")).unwrap();
    let err = unet::load_unet(tmp.path(), &device).unwrap_err();
    assert!(matches!(err, WeightsError::MissingFile { .. }), "{err}");

    // Linear projections declared over 1x1-conv weights: proj_in/proj_out have the wrong shape.
    let tmp = copy_fixture("tiny_sd1");
    edit_config(tmp.path(), |v| v["use_linear_projection"] = true.into());
    match unet::load_unet(tmp.path(), &device).unwrap_err() {
        WeightsError::Mismatch { mismatched, .. } => {
            assert!(mismatched.iter().any(|k| k.contains("proj_in")), "{mismatched:?}");
            assert!(mismatched.iter().any(|k| k.contains("proj_out")), "{mismatched:?}");
        }
        other => panic!("expected Mismatch, got {other}"),
    }
}
