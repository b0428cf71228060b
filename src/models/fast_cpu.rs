//! CPU (flex backend) fast paths for the operations that dominate the SD VAE and the low-level
//! model: convolution (stride 1 and 2, any zero padding, bias), GroupNorm (optionally fused with
//! SiLU), nearest 2x upsampling and the MLP's bias-free linear layers, for
//! inference *and* training.
//!
//! burn's flex convolution builds an im2col tile per 512 output pixels; here a stride-1
//! convolution is computed as `kh * kw` large GEMMs over *shifted views* of the zero-padded input
//! (no im2col buffer at all), each accumulating into the same output; a stride-2 convolution is
//! the stride-1 one over the four 2x2 phases of its input (space-to-depth, kernel rearranged to
//! match), and GroupNorm + SiLU is one multi-threaded pass instead of eight tensor ops.
//!
//! On an autodiff tensor (`device.autodiff()` on the CPU) each op is a custom burn-autodiff
//! operation ([`autodiff`]) whose forward is the same kernel and whose backward computes the
//! input, weight and bias gradients as the transposed shifted GEMMs ([`kernels`]); the
//! space-to-depth rearrangement of strided convolutions is plain burn ops, differentiated by
//! burn. Tests here and in `tests/it/fast_cpu_grad.rs` hold values and gradients to burn's
//! generic ops.
//!
//! With the `openblas` feature the convolution GEMMs run on the system OpenBLAS instead of the
//! `gemm` crate (see [`kernels`]); the results agree to f32 rounding.
//!
//! Every function falls back to plain burn ops when the fast path does not apply: another
//! backend (wgpu, cuda), another dtype, a mix of autodiff and plain tensors, a gradient
//! checkpointing strategy, or a convolution with dilation, groups, another stride or `Same`
//! padding. Set `BRAINSCOPE_FAST_CPU=0` to switch the fast paths off (benchmarks, bisecting).

pub mod attention;
mod autodiff;
mod kernels;
mod linear;

/// OpenBLAS's `cblas_sgemm` (the `openblas` feature), which the convolution GEMMs run on.
#[cfg(feature = "openblas")]
pub use kernels::blas;

use std::sync::OnceLock;

use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::ops::PadMode;

use autodiff::{AdTensor, contiguous, flex};
use kernels::{ConvGeometry, NormGeometry};

/// Whether the fast paths are on (`BRAINSCOPE_FAST_CPU=0` turns them off; read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("BRAINSCOPE_FAST_CPU").map(|v| v != "0").unwrap_or(true))
}

/// The f32 flex primitive of a tensor: plain (contiguous) or autodiff.
enum Prim {
    Plain(FlexTensor),
    Ad(AdTensor),
}

/// The primitive of `x` when a fast path may take it, else `None`.
fn prim<const D: usize>(x: &Tensor<D>) -> Option<Prim> {
    if !enabled() {
        return None;
    }
    if x.is_autodiff() {
        let p = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
        (p.primitive().dtype() == burn::tensor::DType::F32).then_some(Prim::Ad(p))
    } else {
        let p = x.clone().try_into_primitive::<Flex>().ok()?;
        (p.dtype() == burn::tensor::DType::F32).then(|| Prim::Plain(contiguous(&p)))
    }
}

fn slice(p: &FlexTensor) -> &[f32] {
    p.as_slice::<f32>().expect("contiguous f32 primitive")
}

/// Wrap a freshly computed buffer as a tensor on the flex backend.
fn from_vec<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(flex(data, &shape))
}

fn from_ad<const D: usize>(p: AdTensor) -> Tensor<D> {
    Tensor::from_primitive::<Autodiff<Flex>>(p)
}

/// `lin.forward(x)` for a bias-free linear layer, through the GEMMs of [`linear`] (OpenBLAS with
/// the `openblas` feature; with autodiff, the input and weight gradients too). `[m, k] -> [m, n]`.
pub fn linear(lin: &Linear, x: Tensor<2>) -> Tensor<2> {
    let [m, k] = x.dims();
    let weight = lin.weight.val(); // [k, n]
    let [_, n] = weight.dims();
    if lin.bias.is_some() || m == 0 || k == 0 || n == 0 {
        return lin.forward(x);
    }
    match (prim(&x), prim(&weight)) {
        (Some(Prim::Plain(xp)), Some(Prim::Plain(w))) => {
            from_vec(linear::forward(slice(&xp), slice(&w), m, k, n), [m, n])
        }
        (Some(Prim::Ad(xp)), Some(Prim::Ad(w))) => from_ad(autodiff::linear_no_bias(xp, w)),
        _ => lin.forward(x), // another backend or dtype, or autodiff mixed with plain
    }
}

/// `conv.forward(x)`, through shifted GEMMs when the convolution has stride 1 or 2, dilation 1,
/// one group and explicit (or no) padding. `[B, C_in, H, W] -> [B, C_out, H', W']`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let pad = match conv.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        _ => return conv.forward(x), // `Same`
    };
    if !enabled() || conv.dilation != [1, 1] || conv.groups != 1 {
        return conv.forward(x);
    }
    let bias = conv.bias.as_ref().map(|b| b.val());
    let fast = match conv.stride {
        [1, 1] => conv_stride1(x.clone(), conv.weight.val(), bias, pad),
        [2, 2] => conv_stride2(x.clone(), conv.weight.val(), bias, pad),
        _ => None,
    };
    fast.unwrap_or_else(|| conv.forward(x))
}

/// A stride-1 convolution with `pad` = `[top, left, bottom, right]`, or `None` when the tensors
/// cannot take the fast path. `[B, C_in, H, W] -> [B, C_out, H', W']`.
fn conv_stride1(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    pad: [usize; 4],
) -> Option<Tensor<4>> {
    let [b, c_in, h, w] = x.dims();
    let [c_out, _, kh, kw] = weight.dims();
    let geometry = ConvGeometry { c_in, c_out, h, w, kh, kw, pad };
    let (hp, wp) = geometry.padded();
    if hp < kh || wp < kw || b * c_in * h * w == 0 {
        return None;
    }
    let bias = match bias {
        Some(t) => Some(prim(&t)?),
        None => None,
    };
    let (ho, wo) = geometry.output_size();
    match (prim(&x)?, prim(&weight)?, bias) {
        (Prim::Plain(x), Prim::Plain(w), None) => {
            let out = kernels::conv_forward(slice(&x), slice(&w), None, &geometry);
            Some(from_vec(out, [b, c_out, ho, wo]))
        }
        (Prim::Plain(x), Prim::Plain(w), Some(Prim::Plain(bias))) => {
            let out = kernels::conv_forward(slice(&x), slice(&w), Some(slice(&bias)), &geometry);
            Some(from_vec(out, [b, c_out, ho, wo]))
        }
        (Prim::Ad(x), Prim::Ad(w), None) => Some(from_ad(autodiff::conv2d(x, w, None, geometry))),
        (Prim::Ad(x), Prim::Ad(w), Some(Prim::Ad(bias))) => {
            Some(from_ad(autodiff::conv2d(x, w, Some(bias), geometry)))
        }
        _ => None, // autodiff mixed with plain tensors
    }
}

/// A stride-2 convolution as the stride-1 one over the input's 2x2 phases: with the input
/// zero-padded to even `[B, C, 2h, 2w]`, channel `4c + 2a + b` of the phases holds
/// `x[c, 2y + a, 2x + b]`, and the kernel (zero-padded to even size) is split the same way, so
/// `out[y, x] = Σ W[:, c, 2p + a, 2q + b] x[c, 2(y + p) + a, 2(x + q) + b]` is a stride-1,
/// unpadded convolution with `ceil(k / 2)` taps per side. `[B, C_in, H, W] -> [B, C_out, H', W']`.
fn conv_stride2(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    [top, left, bottom, right]: [usize; 4],
) -> Option<Tensor<4>> {
    let [b, c, h, w] = x.dims();
    let [c_out, _, kh, kw] = weight.dims();
    let (hp, wp) = (h + top + bottom, w + left + right);
    if hp < kh || wp < kw {
        return None;
    }
    let (ho, wo) = ((hp - kh) / 2 + 1, (wp - kw) / 2 + 1);
    let (h2, w2) = (hp.div_ceil(2), wp.div_ceil(2));
    let (k2h, k2w) = (kh.div_ceil(2), kw.div_ceil(2));
    let phases = x
        .pad((left, right + 2 * w2 - wp, top, bottom + 2 * h2 - hp), PadMode::Constant(0.0)) // [B, C, 2h2, 2w2]
        .reshape([b, c, h2, 2, w2, 2])
        .permute([0, 1, 3, 5, 2, 4]) // [B, C, 2, 2, h2, w2]
        .reshape([b, 4 * c, h2, w2]);
    let weight = weight
        .pad((0, 2 * k2w - kw, 0, 2 * k2h - kh), PadMode::Constant(0.0)) // [C_out, C, 2k2h, 2k2w]
        .reshape([c_out, c, k2h, 2, k2w, 2])
        .permute([0, 1, 3, 5, 2, 4]) // [C_out, C, 2, 2, k2h, k2w]
        .reshape([c_out, 4 * c, k2h, k2w]);
    let out = conv_stride1(phases, weight, bias, [0; 4])?; // [B, C_out, h2 - k2h + 1, w2 - k2w + 1]
    let [_, _, h1, w1] = out.dims();
    Some(if (h1, w1) == (ho, wo) { out } else { out.slice([0..b, 0..c_out, 0..ho, 0..wo]) })
}

/// `norm.forward(x)`, followed by SiLU when `then_silu`, in one multi-threaded pass over each
/// group. `[B, C, H, W] -> [B, C, H, W]`.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>, then_silu: bool) -> Tensor<4> {
    let fallback = |x: Tensor<4>| {
        let y = norm.forward(x);
        if then_silu { silu(y) } else { y }
    };
    let shape = x.dims();
    let [_, c, h, w] = shape;
    let geometry = NormGeometry {
        channels: c,
        spatial: h * w,
        groups: norm.num_groups,
        epsilon: norm.epsilon,
        silu: then_silu,
    };
    if norm.num_groups == 0 || c % norm.num_groups != 0 || h * w == 0 {
        return fallback(x);
    }
    let Some(xp) = prim(&x) else { return fallback(x) };
    let affine = match (&norm.gamma, &norm.beta) {
        (Some(g), Some(b)) => match (prim(&g.val()), prim(&b.val())) {
            (Some(g), Some(b)) => Some((g, b)),
            _ => return fallback(x),
        },
        (None, None) => None,
        _ => return fallback(x),
    };
    match (xp, affine) {
        (Prim::Plain(x), None) => {
            from_vec(kernels::group_norm_forward(slice(&x), None, &geometry), shape)
        }
        (Prim::Plain(x), Some((Prim::Plain(g), Prim::Plain(b)))) => {
            let affine = Some((slice(&g), slice(&b)));
            from_vec(kernels::group_norm_forward(slice(&x), affine, &geometry), shape)
        }
        (Prim::Ad(x), None) => from_ad(autodiff::group_norm(x, None, geometry, shape)),
        (Prim::Ad(x), Some((Prim::Ad(g), Prim::Ad(b)))) => {
            from_ad(autodiff::group_norm(x, Some((g, b)), geometry, shape))
        }
        _ => fallback(x), // autodiff mixed with plain tensors
    }
}

/// Nearest-neighbour x2 upsampling (`F.interpolate(scale_factor=2.0, mode="nearest")`).
/// `[B, C, H, W] -> [B, C, 2H, 2W]`.
pub fn upsample_nearest2x(x: Tensor<4>) -> Tensor<4> {
    let shape = x.dims();
    let [b, c, h, w] = shape;
    match prim(&x) {
        Some(Prim::Plain(p)) => {
            from_vec(kernels::upsample2x_forward(slice(&p), h, w), [b, c, 2 * h, 2 * w])
        }
        Some(Prim::Ad(p)) => from_ad(autodiff::upsample_nearest2x(p, shape)),
        None => x
            .reshape([b, c, h, 1, w, 1]) // [B, C, H, 1, W, 1]
            .expand([b, c, h, 2, w, 2]) // [B, C, H, 2, W, 2]
            .reshape([b, c, 2 * h, 2 * w]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{GroupNormConfig, Initializer};

    fn device() -> Device {
        crate::backend::default_device()
    }

    fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).abs().max().into_scalar::<f32>()
    }

    /// Seeded noise that leaves burn's global generator alone (other tests seed it).
    fn random(shape: [usize; 4], d: &Device) -> Tensor<4> {
        let seed = shape.iter().fold(17u64, |acc, &s| acc * 31 + s as u64);
        crate::models::vae::posterior::seeded_normal(shape, seed, d)
    }

    /// A convolution whose weights come from [`random`] (burn's initialiser is never run).
    fn conv(ci: usize, co: usize, k: usize) -> Conv2dConfig {
        Conv2dConfig::new([ci, co], [k, k]).with_initializer(Initializer::Zeros)
    }

    fn seeded_params(mut c: Conv2d, d: &Device) -> Conv2d {
        let [co, ci, kh, kw] = c.weight.dims();
        c.weight = Param::from_tensor(random([co, ci, kh, kw], d).mul_scalar(0.3));
        if c.bias.is_some() {
            c.bias = Some(Param::from_tensor(random([1, 1, 1, co], d).reshape([co])));
        }
        c
    }

    #[test]
    fn shifted_gemm_conv_matches_burn_conv() {
        let d = device();
        // (c_in, c_out, kernel, padding, h, w, batch, bias)
        for (ci, co, k, p, h, w, b, bias) in [
            (3, 8, 3, 1, 9, 13, 2, true),
            (16, 4, 3, 1, 16, 16, 1, true),
            (5, 7, 1, 0, 6, 11, 2, true),
            (4, 6, 3, 0, 8, 5, 1, false),
            (2, 3, 5, 2, 7, 7, 1, true),
        ] {
            let conv = conv(ci, co, k)
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(bias)
                .init(&d);
            let conv = seeded_params(conv, &d);
            let x = random([b, ci, h, w], &d);
            let fast = conv2d(&conv, x.clone());
            let reference = conv.forward(x);
            let err = max_abs_diff(fast, reference);
            assert!(err < 1e-4, "conv {ci}->{co} k{k} p{p} {h}x{w}: max abs err {err}");
        }
    }

    #[test]
    fn strided_and_asymmetric_convs_match_burn_conv() {
        let d = device();
        // (c_in, c_out, kernel, stride, [top, left, bottom, right], h, w, batch)
        for (ci, co, k, s, pad, h, w, b) in [
            (3, 4, 3, 2, [0, 0, 1, 1], 9, 9, 1), // diffusers Downsample2D, odd size
            (5, 3, 3, 2, [0, 0, 1, 1], 8, 12, 2),
            (2, 6, 3, 2, [1, 1, 1, 1], 7, 10, 2),
            (4, 2, 4, 2, [0, 0, 0, 0], 9, 8, 1), // even kernel
            (3, 5, 3, 1, [0, 1, 2, 0], 6, 7, 1),
        ] {
            let [t, l, bo, r] = pad;
            let conv = conv(ci, co, k)
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(t, l, bo, r))
                .init(&d);
            let conv = seeded_params(conv, &d);
            let x = random([b, ci, h, w], &d);
            let err = max_abs_diff(conv2d(&conv, x.clone()), conv.forward(x));
            assert!(err < 1e-4, "conv {ci}->{co} k{k} s{s} {pad:?} {h}x{w}: max abs err {err}");
        }
    }

    #[test]
    fn fused_group_norm_matches_burn_group_norm_and_silu() {
        let d = device();
        let mut norm = GroupNormConfig::new(4, 8).with_epsilon(1e-6).init(&d);
        // Non-trivial affine parameters, so a mix-up of channels would show.
        norm.gamma = Some(Param::from_tensor(
            random([1, 1, 2, 4], &d).reshape([8]).mul_scalar(0.5).add_scalar(1.0),
        ));
        norm.beta = Some(Param::from_tensor(random([1, 1, 4, 2], &d).reshape([8]).mul_scalar(0.5)));
        let x = random([2, 8, 5, 7], &d).mul_scalar(3.0).add_scalar(1.5);
        let plain = max_abs_diff(group_norm(&norm, x.clone(), false), norm.forward(x.clone()));
        assert!(plain < 1e-5, "group norm max abs err {plain}");
        let fused = max_abs_diff(group_norm(&norm, x.clone(), true), silu(norm.forward(x)));
        assert!(fused < 1e-5, "group norm + silu max abs err {fused}");
    }

    #[test]
    fn upsample_matches_the_broadcast_reference() {
        let d = device();
        let x = random([2, 3, 4, 5], &d);
        let [b, c, h, w] = x.dims();
        let reference = x.clone().reshape([b, c, h, 1, w, 1]).expand([b, c, h, 2, w, 2]).reshape([
            b,
            c,
            2 * h,
            2 * w,
        ]);
        assert_eq!(max_abs_diff(upsample_nearest2x(x), reference), 0.0);
    }

    #[test]
    fn autodiff_tensors_take_the_fast_path_and_track_gradients() {
        let d = device().autodiff();
        let conv = conv(2, 2, 3).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&d);
        let x = random([1, 2, 4, 4], &d).require_grad();
        let y = upsample_nearest2x(conv2d(&conv, x.clone()));
        assert!(y.is_autodiff() && y.is_tracked());
        let grads = y.sum().backward();
        assert!(x.grad(&grads).is_some(), "gradient must flow to the input");
        assert!(conv.weight.val().grad(&grads).is_some(), "and to the weight");
        // Without require_grad anywhere the op is untracked but still autodiff.
        let frozen = conv2d(&conv.clone().no_grad(), random([1, 2, 4, 4], &d));
        assert!(frozen.is_autodiff() && !frozen.is_tracked());
    }
}
