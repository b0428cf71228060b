//! Inference fast paths on the flex CPU backend for the three operations that dominate the SD VAE
//! and the low-level upsampler: stride-1 convolution, GroupNorm (optionally fused with SiLU) and
//! nearest 2x upsampling.
//!
//! burn's flex convolution builds an im2col tile per 512 output pixels; here a stride-1 convolution
//! is computed as `kh * kw` large GEMMs over *shifted views* of the zero-padded input (no im2col
//! buffer at all), each accumulating into the same output, and GroupNorm + SiLU is one
//! multi-threaded pass instead of eight single-threaded tensor ops.
//!
//! Every function falls back to plain burn ops when the fast path does not apply: a tensor that
//! tracks gradients (training), another backend (wgpu, cuda), another dtype, or a convolution with
//! stride, dilation or groups. Results agree with the burn ops to float rounding (tests below).
//! Set `BRAINSCOPE_FAST_CPU=0` to switch the fast paths off (for benchmarks and bisecting).

use std::sync::OnceLock;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::silu;
use rayon::prelude::*;

/// Whether the fast paths are on (`BRAINSCOPE_FAST_CPU=0` turns them off; read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("BRAINSCOPE_FAST_CPU").map(|v| v != "0").unwrap_or(true))
}

/// The contiguous f32 flex primitive of `x`, or `None` when the fast path does not apply.
fn flex_f32<const D: usize>(x: &Tensor<D>) -> Option<FlexTensor> {
    if !enabled() || x.is_autodiff() {
        return None;
    }
    let p = x.clone().try_into_primitive::<Flex>().ok()?;
    if p.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    Some(if p.as_slice::<f32>().is_some() { p } else { p.to_contiguous() })
}

/// Wrap a freshly computed buffer as a tensor on the flex backend.
fn from_vec<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(data, shape)))
}

/// `conv.forward(x)`, through shifted GEMMs when the convolution has stride 1, dilation 1, one
/// group and symmetric padding. `[B, C_in, H, W] -> [B, C_out, H', W']`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (top, left) = match conv.padding {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            (top, left)
        }
        _ => return conv.forward(x), // `Same` or asymmetric padding
    };
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    if !plain {
        return conv.forward(x);
    }
    let [_, _, h, w] = x.dims();
    let (Some(xp), Some(wp)) = (flex_f32(&x), flex_f32(&conv.weight.val())) else {
        return conv.forward(x);
    };
    let bias = match &conv.bias {
        Some(b) => match flex_f32(&b.val()) {
            Some(p) => Some(p),
            None => return conv.forward(x),
        },
        None => None,
    };
    let [b, c_in, _, _] = x.dims();
    let [c_out, _, kh, kw] = conv.weight.dims();
    let geometry = ConvGeometry { c_in, c_out, h, w, kh, kw, pad_h: top, pad_w: left };
    let input = xp.as_slice::<f32>().expect("contiguous input");
    let weight = wp.as_slice::<f32>().expect("contiguous weight");
    let bias = bias.as_ref().map(|p| p.as_slice::<f32>().expect("contiguous bias"));
    let (ho, wo) = geometry.output_size();
    let mut out = vec![0.0f32; b * c_out * ho * wo];
    for (src, dst) in input.chunks_exact(c_in * h * w).zip(out.chunks_exact_mut(c_out * ho * wo)) {
        shifted_gemm_conv(src, weight, bias, &geometry, dst);
    }
    from_vec(out, [b, c_out, ho, wo])
}

/// Sizes of one stride-1 convolution.
#[derive(Debug, Clone, Copy)]
struct ConvGeometry {
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    pad_h: usize,
    pad_w: usize,
}

impl ConvGeometry {
    fn padded(&self) -> (usize, usize) {
        (self.h + 2 * self.pad_h, self.w + 2 * self.pad_w)
    }

    fn output_size(&self) -> (usize, usize) {
        let (hp, wp) = self.padded();
        (hp + 1 - self.kh, wp + 1 - self.kw)
    }
}

/// One batch item: `input` `[C_in, H, W]`, `weight` `[C_out, C_in, kh, kw]` -> `out`
/// `[C_out, H', W']`.
///
/// With the input zero-padded to `[C_in, Hp, Wp]` and the output computed over the padded width
/// (`[C_out, H', Wp]`, the last `kw - 1` columns of each row are discarded), tap `(i, j)` of the
/// kernel reads the padded input as a `[C_in, H' * Wp]` matrix starting at offset `i * Wp + j`,
/// so the whole convolution is `kh * kw` GEMMs `W[:, :, i, j] @ shifted` summed into one output.
fn shifted_gemm_conv(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    out: &mut [f32],
) {
    let (hp, wp) = g.padded();
    let (ho, wo) = g.output_size();
    let plane = hp * wp;
    // [C_in, Hp, Wp] plus slack: the last tap's view runs up to kw - 1 elements past the end.
    let mut padded = vec![0.0f32; g.c_in * plane + g.kw];
    padded[..g.c_in * plane].par_chunks_mut(plane).enumerate().for_each(|(c, dst)| {
        let src = &input[c * g.h * g.w..(c + 1) * g.h * g.w];
        for (y, row) in src.chunks_exact(g.w).enumerate() {
            let start = (y + g.pad_h) * wp + g.pad_w;
            dst[start..start + g.w].copy_from_slice(row);
        }
    });
    let n = ho * wp; // columns of the wide output
    let mut wide = vec![0.0f32; g.c_out * n]; // [C_out, H', Wp]
    let taps = g.kh * g.kw;
    for i in 0..g.kh {
        for j in 0..g.kw {
            let tap = i * g.kw + j;
            // SAFETY: dst is [c_out, n] row-major; lhs reads weight[co, ci, i, j] at
            // co * c_in * taps + ci * taps + tap (< weight.len()); rhs reads
            // padded[ci * plane + i * wp + j + col] for col < n, whose largest index is
            // (c_in - 1) * plane + (kh - 1) * wp + (kw - 1) + ho * wp - 1
            // = c_in * plane + kw - 2 < padded.len().
            unsafe {
                gemm::gemm(
                    g.c_out,
                    n,
                    g.c_in,
                    wide.as_mut_ptr(),
                    1,
                    n as isize,
                    tap > 0, // accumulate after the first tap
                    weight.as_ptr().add(tap),
                    taps as isize,
                    (g.c_in * taps) as isize,
                    padded.as_ptr().add(i * wp + j),
                    1,
                    plane as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                );
            }
        }
    }
    // Drop the wide columns and add the bias: [C_out, H', Wp] -> [C_out, H', W'].
    out.par_chunks_mut(ho * wo).enumerate().for_each(|(co, dst)| {
        let bias = bias.map_or(0.0, |b| b[co]);
        let src = &wide[co * n..(co + 1) * n];
        for (dst_row, src_row) in dst.chunks_exact_mut(wo).zip(src.chunks_exact(wp)) {
            for (d, s) in dst_row.iter_mut().zip(&src_row[..wo]) {
                *d = s + bias;
            }
        }
    });
}

/// `norm.forward(x)`, followed by SiLU when `then_silu`, in one multi-threaded pass over each
/// group. `[B, C, H, W] -> [B, C, H, W]`.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>, then_silu: bool) -> Tensor<4> {
    let fallback = |x: Tensor<4>| {
        let y = norm.forward(x);
        if then_silu { silu(y) } else { y }
    };
    let Some(xp) = flex_f32(&x) else { return fallback(x) };
    let affine = match (&norm.gamma, &norm.beta) {
        (Some(g), Some(b)) => match (flex_f32(&g.val()), flex_f32(&b.val())) {
            (Some(g), Some(b)) => Some((g, b)),
            _ => return fallback(x),
        },
        _ => None,
    };
    let [b, c, h, w] = x.dims();
    let groups = norm.num_groups;
    let per_group = (c / groups) * h * w;
    let input = xp.as_slice::<f32>().expect("contiguous input");
    let affine = affine
        .as_ref()
        .map(|(g, b)| (g.as_slice::<f32>().expect("gamma"), b.as_slice::<f32>().expect("beta")));
    let eps = norm.epsilon;
    let mut out = vec![0.0f32; b * c * h * w];
    out.par_chunks_mut(per_group).zip(input.par_chunks(per_group)).enumerate().for_each(
        |(index, (dst, src))| {
            let (mean, var) = mean_and_variance(src);
            let inv_std = 1.0 / (var + eps).sqrt();
            let first_channel = (index % groups) * (c / groups);
            for (k, (d, s)) in dst.chunks_exact_mut(h * w).zip(src.chunks_exact(h * w)).enumerate()
            {
                let (gamma, beta) = affine
                    .map_or((1.0, 0.0), |(g, b)| (g[first_channel + k], b[first_channel + k]));
                // y = (x - mean) * inv_std * gamma + beta = x * scale + shift
                let scale = (inv_std * gamma as f64) as f32;
                let shift = (beta as f64 - mean * inv_std * gamma as f64) as f32;
                for (d, s) in d.iter_mut().zip(s) {
                    let y = s * scale + shift;
                    *d = if then_silu { y / (1.0 + (-y).exp()) } else { y };
                }
            }
        },
    );
    from_vec(out, [b, c, h, w])
}

/// Mean and (biased) variance of `values`, accumulated in f64 over f32 partial sums.
fn mean_and_variance(values: &[f32]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let sum: f64 = values.chunks(1024).map(|c| c.iter().sum::<f32>() as f64).sum();
    let mean = sum / n;
    let m = mean as f32;
    let squares: f64 =
        values.chunks(1024).map(|c| c.iter().map(|v| (v - m) * (v - m)).sum::<f32>() as f64).sum();
    (mean, squares / n)
}

/// Nearest-neighbour x2 upsampling (`F.interpolate(scale_factor=2.0, mode="nearest")`).
/// `[B, C, H, W] -> [B, C, 2H, 2W]`.
pub fn upsample_nearest2x(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let Some(xp) = flex_f32(&x) else {
        return x
            .reshape([b, c, h, 1, w, 1]) // [B, C, H, 1, W, 1]
            .expand([b, c, h, 2, w, 2]) // [B, C, H, 2, W, 2]
            .reshape([b, c, 2 * h, 2 * w]);
    };
    let input = xp.as_slice::<f32>().expect("contiguous input");
    let mut out = vec![0.0f32; b * c * 4 * h * w];
    out.par_chunks_mut(4 * h * w).zip(input.par_chunks(h * w)).for_each(|(dst, src)| {
        for (pair, row) in dst.chunks_exact_mut(4 * w).zip(src.chunks_exact(w)) {
            let (top, bottom) = pair.split_at_mut(2 * w);
            for (d, s) in top.chunks_exact_mut(2).zip(row) {
                d[0] = *s;
                d[1] = *s;
            }
            bottom.copy_from_slice(top);
        }
    });
    from_vec(out, [b, c, 2 * h, 2 * w])
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
    fn strided_conv_falls_back_to_burn() {
        let d = device();
        let conv = seeded_params(conv(3, 4, 3).with_stride([2, 2]).init(&d), &d);
        let x = random([1, 3, 9, 9], &d);
        assert_eq!(max_abs_diff(conv2d(&conv, x.clone()), conv.forward(x)), 0.0);
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
    fn autodiff_tensors_take_the_burn_path() {
        let d = device().autodiff();
        let conv = conv(2, 2, 3).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&d);
        let x = random([1, 2, 4, 4], &d).require_grad();
        let y = conv2d(&conv, x.clone());
        assert!(y.is_autodiff());
        let grads = y.sum().backward();
        assert!(x.grad(&grads).is_some(), "gradient must flow through the fallback");
    }
}
