//! AdamW against `torch.optim.AdamW` driven by `OneCycleLR`, with two parameter groups
//! (weight decay on the Linear weight; none on its bias and the LayerNorm), over several steps
//! with fixed gradients (tests/fixtures/lowlevel/adamw.*, from make_lowlevel_fixtures.py).
//! Also: the optimizer state saves, reloads, and continues to the same values.

use brainscope::train::adamw::{AdamW, AdamWConfig, AdamWError};
use brainscope::train::onecycle::OneCycleConfig;
use burn::module::{Module, Param, ParamId};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lowlevel");
const NAMES: [&str; 4] = ["lin.weight", "lin.bias", "norm.gamma", "norm.beta"];

#[derive(Module, Debug)]
struct Small {
    lin: Linear,
    norm: LayerNorm,
}

#[derive(serde::Deserialize)]
struct Meta {
    steps: usize,
    lr: Vec<f64>,
    beta1: Vec<f64>,
}

struct Fixture {
    bytes: Vec<u8>,
    meta: Meta,
}

impl Fixture {
    fn load() -> Self {
        let bytes = std::fs::read(format!("{DIR}/adamw.safetensors")).unwrap();
        let meta =
            serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/adamw.json")).unwrap())
                .unwrap();
        Self { bytes, meta }
    }

    fn data(&self, key: &str) -> TensorData {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        let vals: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        TensorData::new(vals, t.shape().to_vec())
    }

    fn t1(&self, key: &str, device: &Device) -> Tensor<1> {
        Tensor::from_data(self.data(key), device)
    }

    fn t2(&self, key: &str, device: &Device) -> Tensor<2> {
        Tensor::from_data(self.data(key), device)
    }
}

/// A trainable parameter: tracked by autodiff when the device has it.
fn param<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    let t = if t.device().is_autodiff() { t.require_grad() } else { t };
    Param::initialized(ParamId::new(), t)
}

fn model(fx: &Fixture, device: &Device) -> Small {
    let mut lin = LinearConfig::new(6, 5).init(device);
    lin.weight = param(fx.t2("init.lin.weight", device));
    lin.bias = Some(param(fx.t1("init.lin.bias", device)));
    let mut norm = LayerNormConfig::new(5).init(device);
    norm.gamma = param(fx.t1("init.norm.gamma", device));
    norm.beta = Some(param(fx.t1("init.norm.beta", device)));
    Small { lin, norm }
}

fn grads(fx: &Fixture, m: &Small, k: usize) -> GradientsParams {
    let dev = Device::flex();
    let mut g = GradientsParams::new();
    g.register(m.lin.weight.id, fx.t2(&format!("grad.{k}.lin.weight"), &dev));
    g.register(m.lin.bias.as_ref().unwrap().id, fx.t1(&format!("grad.{k}.lin.bias"), &dev));
    g.register(m.norm.gamma.id, fx.t1(&format!("grad.{k}.norm.gamma"), &dev));
    g.register(m.norm.beta.as_ref().unwrap().id, fx.t1(&format!("grad.{k}.norm.beta"), &dev));
    g
}

fn values(m: &Small) -> [Vec<f32>; 4] {
    let v1 = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    [
        m.lin.weight.val().into_data().try_to_vec::<f32>().unwrap(),
        v1(m.lin.bias.as_ref().unwrap().val()),
        v1(m.norm.gamma.val()),
        v1(m.norm.beta.as_ref().unwrap().val()),
    ]
}

fn assert_close(m: &Small, fx: &Fixture, k: usize) {
    for (name, got) in NAMES.iter().zip(values(m)) {
        let want = fx.data(&format!("after.{k}.{name}")).try_to_vec::<f32>().unwrap();
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err <= 1e-6, "step {k} {name}: max abs err {err}");
    }
}

#[test]
fn steps_match_pytorch_with_both_groups() {
    let fx = Fixture::load();
    let device = Device::flex().autodiff();
    let mut m = model(&fx, &device);
    let mut opt = AdamWConfig::default().init();
    let mut sched = OneCycleConfig::new(1e-2, fx.meta.steps, 0.4).init().unwrap();
    for k in 0..fx.meta.steps {
        let v = if k == 0 { sched.current().unwrap() } else { sched.step().unwrap() };
        // The schedule and the fixture's recorded torch values agree.
        assert!((v.lr - fx.meta.lr[k]).abs() <= 1e-12 * v.lr.abs());
        assert!((v.beta1 - fx.meta.beta1[k]).abs() <= 1e-12);
        let g = grads(&fx, &m, k);
        m = opt.step(m, g, v.lr, v.beta1);
        assert_close(&m, &fx, k);
    }
    assert_eq!(opt.step_count(), fx.meta.steps as u64);
    // Still trainable after the update.
    assert!(m.lin.weight.val().is_require_grad());
}

#[test]
fn saved_state_resumes_identically() {
    let fx = Fixture::load();
    let device = Device::flex().autodiff();
    let mut m = model(&fx, &device);
    let mut opt = AdamWConfig::default().init();
    for k in 0..2 {
        let g = grads(&fx, &m, k);
        m = opt.step(m, g, fx.meta.lr[k], fx.meta.beta1[k]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    opt.save(&path).unwrap();
    let mut opt = AdamW::load(&path, &m).unwrap();
    assert_eq!(opt.step_count(), 2);
    for k in 2..fx.meta.steps {
        let g = grads(&fx, &m, k);
        m = opt.step(m, g, fx.meta.lr[k], fx.meta.beta1[k]);
        assert_close(&m, &fx, k);
    }
}

#[test]
fn bad_state_files_are_refused() {
    let fx = Fixture::load();
    let device = Device::flex();
    let mut m = model(&fx, &device);
    let mut opt = AdamWConfig::default().init();
    let g = grads(&fx, &m, 0);
    m = opt.step(m, g, 1e-3, 0.9);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.safetensors");
    opt.save(&path).unwrap();

    // Cut short.
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    assert!(matches!(AdamW::load(&cut, &m), Err(AdamWError::Corrupt { .. })));

    // Another model.
    #[derive(Module, Debug)]
    struct Other {
        lin: Linear,
    }
    let other = Other { lin: LinearConfig::new(3, 5).init(&device) };
    let err = AdamW::load(&path, &other).unwrap_err();
    assert!(matches!(err, AdamWError::Mismatch { .. }), "{err}");

    // Missing file.
    assert!(matches!(AdamW::load(&dir.path().join("none"), &m), Err(AdamWError::Io { .. })));
}
