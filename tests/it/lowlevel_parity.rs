//! The low-level model against the same structure built in PyTorch (tiny config, random
//! weights incl. norm affines; tests/fixtures/make_lowlevel_fixtures.py): the PyTorch state
//! dict loads by its own key names and the eval-mode outputs agree within 1e-4.
//! Also: the parameter-count formula against PyTorch's count at the tiny and the paper's size,
//! save/load round trip, seeded init and one training step through autodiff + AdamW.

use brainscope::models::lowlevel::{LowLevelConfig, LowLevelModel, LowLevelWidths};
use burn::prelude::*;
use burn::tensor::TensorData;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lowlevel");

#[derive(serde::Deserialize)]
struct Meta {
    v: usize,
    h: usize,
    n_blocks: usize,
    c: usize,
    s: usize,
    block_out: Vec<usize>,
    groups: usize,
    n_params: usize,
    output_shape: Vec<usize>,
}

fn meta() -> Meta {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/model.json")).unwrap()).unwrap()
}

fn tiny_config(m: &Meta) -> LowLevelConfig {
    LowLevelConfig::new(m.v)
        .with_widths(LowLevelWidths {
            hidden: m.h,
            blocks: m.n_blocks,
            proj_channels: m.c,
            upsampler_channels: m.block_out.clone(),
            ..LowLevelWidths::default()
        })
        .with_proj_size(m.s)
        .with_norm_groups(m.groups)
}

fn io(key: &str) -> TensorData {
    let bytes = std::fs::read(format!("{DIR}/model_io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(key).unwrap();
    let vals: Vec<f32> =
        t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    TensorData::new(vals, t.shape().to_vec())
}

fn max_abs_diff(a: TensorData, b: TensorData) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.try_to_vec::<f32>().unwrap(), b.try_to_vec::<f32>().unwrap());
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn param_count_formula_matches_pytorch() {
    let m = meta();
    assert_eq!(tiny_config(&m).num_params(), m.n_params);
    #[derive(serde::Deserialize)]
    struct Paper {
        n_params: usize,
    }
    let paper: Paper =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/paper_size.json")).unwrap())
            .unwrap();
    assert_eq!(LowLevelConfig::paper(39548).num_params(), paper.n_params);
    assert_eq!(paper.n_params, 138_188_228);
}

#[test]
fn output_shapes() {
    let m = meta();
    assert_eq!(tiny_config(&m).output_shape().to_vec(), m.output_shape[1..].to_vec());
    assert_eq!(LowLevelConfig::paper(39548).output_shape(), [4, 64, 64]);
    let demo = LowLevelConfig::for_latent(1000, [4, 16, 16]).unwrap();
    assert_eq!(demo.proj_size, 4);
    assert_eq!(demo.output_shape(), [4, 16, 16]);
    assert!(LowLevelConfig::for_latent(1000, [4, 18, 18]).is_err());
}

#[test]
fn pytorch_state_dict_loads_and_outputs_match() {
    check_outputs_on(&Device::flex(), 1e-4);
}

/// The PyTorch state dict loaded on `device`: features and output within `tol` of PyTorch's
/// eval-mode forward (also run by `gpu_parity` on the wgpu device).
pub(crate) fn check_outputs_on(device: &Device, tol: f32) {
    let m = meta();
    let device = device.clone();
    let model = LowLevelModel::load(
        &tiny_config(&m),
        std::path::Path::new(&format!("{DIR}/model.safetensors")),
        &device,
    )
    .unwrap();
    let x = Tensor::<2>::from_data(io("input"), &device);
    let err = max_abs_diff(model.forward_features(x.clone()).into_data(), io("features"));
    assert!(err <= tol, "features: max abs err {err}");
    let out = model.forward(x);
    assert_eq!(out.dims().to_vec(), m.output_shape);
    let err = max_abs_diff(out.into_data(), io("output"));
    assert!(err <= tol, "output: max abs err {err}");
}

#[test]
fn save_load_round_trip() {
    let m = meta();
    let device = Device::flex();
    let cfg = tiny_config(&m);
    let model = cfg.init(&device, 7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save(&path).unwrap();
    let back = LowLevelModel::load(&cfg, &path, &device).unwrap();
    let x = Tensor::<2>::from_data(io("input"), &device);
    let err = max_abs_diff(model.forward(x.clone()).into_data(), back.forward(x).into_data());
    assert_eq!(err, 0.0);
    // A file of another config is refused with a clear error.
    let other = cfg.clone().with_widths(LowLevelWidths { hidden: m.h + 1, ..cfg.widths.clone() });
    let e = brainscope::errors::chain(&LowLevelModel::load(&other, &path, &device).unwrap_err());
    assert!(e.contains("model.safetensors") && e.contains("another [model] config"), "{e}");
    assert!(LowLevelModel::load(&cfg, &dir.path().join("none.safetensors"), &device).is_err());
}

#[test]
fn init_is_seeded_and_xavier_bounded() {
    let m = meta();
    let device = Device::flex();
    let cfg = tiny_config(&m);
    let w =
        |seed| cfg.init(&device, seed).lin0.0.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let (a, b, c) = (w(1), w(1), w(2));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let up = |seed| {
        cfg.init(&device, seed)
            .upsampler
            .conv_out
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(up(1), up(1));
    assert_ne!(up(1), up(2));
    let bound = (6.0f32 / (m.v + m.h) as f32).sqrt();
    assert!(a.iter().all(|x| x.abs() <= bound));
    let spread = a.iter().fold(0.0f32, |acc, x| acc.max(x.abs()));
    assert!(spread > 0.8 * bound, "weights do not fill the Xavier range: {spread} vs {bound}");
}
