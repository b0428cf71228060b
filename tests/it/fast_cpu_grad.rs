//! Gradients of the CPU fast paths (`models::fast_cpu`, custom burn-autodiff ops on flex)
//! against burn's generic ops on the same autodiff device: convolutions (stride 1 and 2,
//! padding 0/1/2 and asymmetric, odd channels, non-square, batch 1 and 2, with and without
//! bias), GroupNorm with and without SiLU and affine, nearest 2x upsampling, and a chain of all
//! of them. Every input and parameter gradient must agree within 1e-4 relative (to the largest
//! reference magnitude).

use brainscope::models::fast_cpu;
use brainscope::models::vae::posterior::seeded_normal;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::{Gradients, TensorData};

const TOLERANCE: f32 = 1e-4;

fn device() -> Device {
    Device::flex().autodiff()
}

fn random<const D: usize>(shape: [usize; D], seed: u64, d: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    seeded_normal([1, 1, 1, n], seed, d).reshape(shape)
}

/// `max |fast - reference| / max |reference|`.
fn relative_error<const D: usize>(fast: Tensor<D>, reference: Tensor<D>) -> f32 {
    assert_eq!(fast.dims(), reference.dims());
    let scale = reference.clone().abs().max().into_scalar::<f32>().max(1e-12);
    (fast - reference).abs().max().into_scalar::<f32>() / scale
}

fn assert_close<const D: usize>(what: &str, fast: Option<Tensor<D>>, reference: Option<Tensor<D>>) {
    let (fast, reference) = (fast.expect(what), reference.expect(what));
    let err = relative_error(fast, reference);
    assert!(err <= TOLERANCE, "{what}: relative error {err}");
}

/// A convolution with seeded weights and bias on the autodiff device.
fn conv(ci: usize, co: usize, k: usize, stride: usize, pad: [usize; 4], bias: bool) -> Conv2d {
    let d = device();
    let [t, l, b, r] = pad;
    let mut c = Conv2dConfig::new([ci, co], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
        .with_bias(bias)
        .with_initializer(Initializer::Zeros)
        .init(&d);
    let seed = (ci * 1000 + co * 100 + k * 10 + stride) as u64;
    c.weight = Param::from_tensor(random([co, ci, k, k], seed, &d).mul_scalar(0.3));
    if bias {
        c.bias = Some(Param::from_tensor(random([co], seed + 1, &d)));
    }
    c
}

/// Gradients of `sum(f(x) * r)` for a fixed random `r`: `(x.grad, grads)`.
fn backward(x: &Tensor<4>, y: Tensor<4>, seed: u64) -> (Option<Tensor<4>>, Gradients) {
    let r = random(y.dims(), seed, &y.device());
    let grads = (y * r).sum().backward();
    (x.grad(&grads), grads)
}

#[test]
fn conv_gradients_match_burn() {
    let d = device();
    // (c_in, c_out, kernel, stride, [top, left, bottom, right], h, w, batch, bias)
    let cases = [
        (3, 5, 3, 1, [1, 1, 1, 1], 7, 9, 2, true),
        (5, 3, 1, 1, [0, 0, 0, 0], 6, 5, 2, true),
        (4, 7, 3, 1, [0, 0, 0, 0], 8, 6, 1, false),
        (2, 3, 5, 1, [2, 2, 2, 2], 7, 6, 1, true),
        (7, 9, 3, 1, [1, 1, 1, 1], 16, 12, 2, true),
        (3, 4, 3, 2, [0, 0, 1, 1], 9, 11, 2, true), // diffusers Downsample2D
        (6, 5, 3, 2, [1, 1, 1, 1], 8, 8, 2, false),
        (3, 3, 3, 1, [0, 1, 2, 0], 5, 7, 2, true), // asymmetric
    ];
    for (i, (ci, co, k, s, pad, h, w, b, bias)) in cases.into_iter().enumerate() {
        let case = format!("conv {ci}->{co} k{k} s{s} {pad:?} {h}x{w} b{b}");
        let conv = conv(ci, co, k, s, pad, bias);
        let x = random([b, ci, h, w], 50 + i as u64, &d).require_grad();
        let fast = fast_cpu::conv2d(&conv, x.clone());
        let reference = conv.forward(x.clone());
        let err = relative_error(fast.clone().inner(), reference.clone().inner());
        assert!(err <= TOLERANCE, "{case} forward: relative error {err}");
        let (dx_fast, g_fast) = backward(&x, fast, 7);
        let (dx_ref, g_ref) = backward(&x, reference, 7);
        assert_close(&format!("{case} input grad"), dx_fast, dx_ref);
        let w = conv.weight.val();
        assert_close(&format!("{case} weight grad"), w.grad(&g_fast), w.grad(&g_ref));
        if let Some(bias) = &conv.bias {
            let bias = bias.val();
            assert_close(&format!("{case} bias grad"), bias.grad(&g_fast), bias.grad(&g_ref));
        }
    }
}

fn norm(groups: usize, channels: usize, affine: bool, seed: u64) -> GroupNorm {
    let d = device();
    let mut n =
        GroupNormConfig::new(groups, channels).with_epsilon(1e-6).with_affine(affine).init(&d);
    if affine {
        n.gamma =
            Some(Param::from_tensor(random([channels], seed, &d).mul_scalar(0.5).add_scalar(1.0)));
        n.beta = Some(Param::from_tensor(random([channels], seed + 1, &d).mul_scalar(0.5)));
    }
    n
}

#[test]
fn group_norm_gradients_match_burn() {
    let d = device();
    // (groups, channels, h, w, batch, silu, affine)
    let cases = [
        (3, 9, 5, 7, 2, true, true),
        (4, 8, 4, 6, 2, false, true),
        (1, 5, 3, 3, 2, true, false),
        (5, 5, 6, 2, 1, true, true), // one channel per group
        (2, 6, 16, 16, 2, true, true),
    ];
    for (i, (groups, c, h, w, b, then_silu, affine)) in cases.into_iter().enumerate() {
        let case = format!("group norm {groups}x{c} {h}x{w} b{b} silu {then_silu} affine {affine}");
        let norm = norm(groups, c, affine, 90 + i as u64);
        let x =
            random([b, c, h, w], 70 + i as u64, &d).mul_scalar(2.0).add_scalar(0.7).require_grad();
        let fast = fast_cpu::group_norm(&norm, x.clone(), then_silu);
        let reference = norm.forward(x.clone());
        let reference = if then_silu { silu(reference) } else { reference };
        let err = relative_error(fast.clone().inner(), reference.clone().inner());
        assert!(err <= TOLERANCE, "{case} forward: relative error {err}");
        let (dx_fast, g_fast) = backward(&x, fast, 8);
        let (dx_ref, g_ref) = backward(&x, reference, 8);
        assert_close(&format!("{case} input grad"), dx_fast, dx_ref);
        if let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) {
            let (gamma, beta) = (gamma.val(), beta.val());
            assert_close(&format!("{case} gamma grad"), gamma.grad(&g_fast), gamma.grad(&g_ref));
            assert_close(&format!("{case} beta grad"), beta.grad(&g_fast), beta.grad(&g_ref));
        }
    }
}

#[test]
fn upsample_gradient_matches_burn() {
    let d = device();
    let x = random([2, 3, 5, 4], 11, &d).require_grad();
    let [b, c, h, w] = x.dims();
    let fast = fast_cpu::upsample_nearest2x(x.clone());
    let reference = x.clone().reshape([b, c, h, 1, w, 1]).expand([b, c, h, 2, w, 2]).reshape([
        b,
        c,
        2 * h,
        2 * w,
    ]);
    assert_eq!(relative_error(fast.clone().inner(), reference.clone().inner()), 0.0);
    let (dx_fast, _) = backward(&x, fast, 9);
    let (dx_ref, _) = backward(&x, reference, 9);
    assert_close("upsample input grad", dx_fast, dx_ref);
}

/// The bias-free linear layer (odd sizes, 1 to 65 rows): output, input and weight gradients,
/// with the input tracked or not.
#[test]
fn linear_gradients_match_burn() {
    let d = device();
    for (i, &(m, k, n)) in
        [(1, 7, 5), (5, 37, 29), (16, 130, 517), (64, 9, 33), (65, 11, 6)].iter().enumerate()
    {
        let mut lin = LinearConfig::new(k, n).with_bias(false).init(&d);
        lin.weight = Param::from_tensor(random([k, n], 40 + i as u64, &d));
        for track_input in [true, false] {
            let x = random([m, k], 50 + i as u64, &d);
            let x = if track_input { x.require_grad() } else { x };
            let fast = fast_cpu::linear(&lin, x.clone());
            let reference = lin.forward(x.clone());
            let err = relative_error(fast.clone().inner(), reference.clone().inner());
            assert!(err <= TOLERANCE, "case {i}: output relative error {err}");
            let r = random([m, n], 60 + i as u64, &d);
            let g_fast = (fast * r.clone()).sum().backward();
            let g_ref = (reference * r).sum().backward();
            let what = format!("case {i} ({m}x{k} @ {k}x{n}) weight grad");
            assert_close(&what, lin.weight.val().grad(&g_fast), lin.weight.val().grad(&g_ref));
            if track_input {
                assert_close(&format!("case {i} input grad"), x.grad(&g_fast), x.grad(&g_ref));
            } else {
                assert!(x.grad(&g_fast).is_none(), "an untracked input gets no gradient");
            }
        }
    }
}

/// GroupNorm + SiLU -> conv -> upsample -> conv -> stride-2 conv, as a resnet/upsampler chain:
/// gradients flow through every custom op into every parameter.
#[test]
fn chained_ops_gradients_match_burn() {
    let d = device();
    let n = norm(3, 6, true, 3);
    let c1 = conv(6, 9, 3, 1, [1, 1, 1, 1], true);
    let c2 = conv(9, 5, 3, 1, [1, 1, 1, 1], false);
    let c3 = conv(5, 4, 3, 2, [0, 0, 1, 1], true);
    let x = random([2, 6, 5, 7], 21, &d).require_grad();
    let fast = {
        let h = fast_cpu::conv2d(&c1, fast_cpu::group_norm(&n, x.clone(), true));
        let h = fast_cpu::conv2d(&c2, fast_cpu::upsample_nearest2x(h));
        fast_cpu::conv2d(&c3, h)
    };
    let reference = {
        let h = c1.forward(silu(n.forward(x.clone())));
        let [b, c, hh, ww] = h.dims();
        let h = h.reshape([b, c, hh, 1, ww, 1]).expand([b, c, hh, 2, ww, 2]).reshape([
            b,
            c,
            2 * hh,
            2 * ww,
        ]);
        c3.forward(c2.forward(h))
    };
    let (dx_fast, g_fast) = backward(&x, fast, 10);
    let (dx_ref, g_ref) = backward(&x, reference, 10);
    assert_close("chain input grad", dx_fast, dx_ref);
    let params: Vec<(&str, Tensor<4>)> = vec![
        ("c1.weight", c1.weight.val()),
        ("c2.weight", c2.weight.val()),
        ("c3.weight", c3.weight.val()),
    ];
    for (name, p) in params {
        assert_close(name, p.grad(&g_fast), p.grad(&g_ref));
    }
    let vectors: Vec<(&str, Tensor<1>)> = vec![
        ("c1.bias", c1.bias.as_ref().unwrap().val()),
        ("c3.bias", c3.bias.as_ref().unwrap().val()),
        ("norm.gamma", n.gamma.as_ref().unwrap().val()),
        ("norm.beta", n.beta.as_ref().unwrap().val()),
    ];
    for (name, p) in vectors {
        assert_close(name, p.grad(&g_fast), p.grad(&g_ref));
    }
}

const LOWLEVEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lowlevel");

/// tests/fixtures/lowlevel/grad.json (make_lowlevel_fixtures.py `grad`).
#[derive(serde::Deserialize)]
struct GradMeta {
    v: usize,
    h: usize,
    n_blocks: usize,
    c: usize,
    s: usize,
    block_out: Vec<usize>,
    groups: usize,
    loss: f32,
    n_params: usize,
}

/// Every tensor of a safetensors file as `(shape, values)` by key.
fn read_safetensors(path: &std::path::Path) -> std::collections::BTreeMap<String, TensorData> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(key, t)| {
            let vals: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (key, TensorData::new(vals, t.shape().to_vec()))
        })
        .collect()
}

/// Replaces every parameter by its gradient (zeros where it has none, so the comparison names
/// the parameter).
struct ToGradients<'a>(&'a Gradients);

impl burn::module::ModuleMapper for ToGradients<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.grad(self.0).unwrap_or_else(|| t.zeros_like().inner()))
    }
}

/// The whole low-level model (MLP, GroupNorm, the VAE-decoder upsampler with its resnets,
/// attention and upsamplers) on the autodiff CPU device, one L1 loss on a fixed batch, against
/// PyTorch autograd: the loss and every parameter's gradient within 1e-4 relative.
#[test]
fn lowlevel_model_gradients_match_pytorch() {
    use brainscope::models::lowlevel::{LowLevelConfig, LowLevelModel, LowLevelWidths};
    let meta: GradMeta =
        serde_json::from_str(&std::fs::read_to_string(format!("{LOWLEVEL}/grad.json")).unwrap())
            .unwrap();
    let config = LowLevelConfig::new(meta.v)
        .with_widths(LowLevelWidths {
            hidden: meta.h,
            blocks: meta.n_blocks,
            proj_channels: meta.c,
            upsampler_channels: meta.block_out.clone(),
            dropout_in: 0.0,
            dropout_block: 0.0,
        })
        .with_proj_size(meta.s)
        .with_norm_groups(meta.groups);
    let d = device();
    let path = std::path::PathBuf::from(format!("{LOWLEVEL}/grad_model.safetensors"));
    let model = LowLevelModel::load(&config, &path, &d).unwrap();
    let io = read_safetensors(&std::path::PathBuf::from(format!("{LOWLEVEL}/grad_io.safetensors")));
    let x = Tensor::<2>::from_data(io["input"].clone(), &d);
    let target = Tensor::<4>::from_data(io["target"].clone(), &d);
    let loss = (model.forward(x) - target).abs().mean(); // L1, mean over every element
    let value = loss.clone().into_scalar::<f32>();
    assert!((value - meta.loss).abs() <= 1e-4 * meta.loss.abs(), "loss {value} vs {}", meta.loss);
    let grads = loss.backward();
    let gradient_model = model.map(&mut ToGradients(&grads));
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("grads.safetensors");
    gradient_model.save(&saved).unwrap(); // PyTorch layout and keys
    let ours = read_safetensors(&saved);
    let reference: std::collections::BTreeMap<String, TensorData> = io
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("grad.").map(|name| (name.to_string(), v.clone())))
        .collect();
    assert_eq!(reference.len(), meta.n_params);
    assert_eq!(ours.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>());
    for (key, expected) in &reference {
        let got = &ours[key];
        assert_eq!(got.shape(), expected.shape(), "{key}");
        let (got, expected) = (
            got.clone().try_to_vec::<f32>().unwrap(),
            expected.clone().try_to_vec::<f32>().unwrap(),
        );
        // Relative to the largest reference magnitude, floored at 1e-4: the attention's key
        // bias has an exactly-zero gradient (softmax ignores a shift shared by all keys), which
        // both sides give as rounding noise of order 1e-9.
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-4);
        let err = got.iter().zip(&expected).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        assert!(err <= TOLERANCE, "gradient of {key}: relative error {err} (scale {scale})");
    }
}
