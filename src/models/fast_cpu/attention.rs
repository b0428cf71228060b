//! Fused multi-head attention and GEGLU for inference on the CPU (flex) backend: the UNet's
//! transformer blocks and the VAE's mid-block attention.
//!
//! [`multi_head`] computes `softmax(Q K^T * scale) V` for every head straight from the
//! projections' token-major `[B, N, heads * dh]` buffers (a head is a column range, read and
//! written through GEMM strides: no head split / merge copies), in chunks of query rows: one
//! work unit is `(batch, head, rows)`, its scores `[rows, M]` live in a per-thread scratch
//! buffer (never the whole `[B * heads, N, M]`), units run in parallel on rayon and each GEMM is
//! single-threaded inside its unit. The softmax uses a vectorised `exp` ([`exp`], Cephes'
//! `expf`: within 2 ulp of `f32::exp` on the softmax range).
//!
//! [`geglu`] is diffusers' `hidden * gelu(gate)` (exact, erf-based GELU) in one pass, and
//! [`map_to_tokens`] / [`tokens_to_map`] are a `Transformer2DModel`'s 1x1-conv `proj_in` /
//! `proj_out` as one GEMM per image that reads and writes the other layout through strides
//! (no transposed copies), `proj_out` with the bias and the block's residual summed in.
//!
//! Both fall back to burn ops for other backends, dtypes and autodiff tensors, and when
//! `BRAINSCOPE_FAST_CPU=0` (see [`super`]).

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::gelu;
use rayon::prelude::*;

use super::{Prim, from_vec, prim, slice};

/// Scores held per work unit, in elements (a unit's rows = this / keys, clamped to
/// [`MIN_ROWS`]..=[`MAX_ROWS`]): 512 KiB, so a unit's scores stay in L2.
const SCORE_BUDGET: usize = 128 * 1024;
const MIN_ROWS: usize = 16;
const MAX_ROWS: usize = 256;

/// Multi-head scaled dot-product attention, no mask: `q` `[B, N, heads * dh]`, `k` and `v`
/// `[B, M, heads * dh]` (head `h` = columns `h * dh..(h + 1) * dh`, as the projections write
/// them) `-> [B, N, heads * dh]`, scale `dh^-0.5`. Equal to `merge_heads(sdpa(split_heads(q),
/// split_heads(k), split_heads(v)))`.
pub fn multi_head(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, n, inner] = q.dims();
    let [bk, m, inner_k] = k.dims();
    assert!(
        heads > 0 && inner.is_multiple_of(heads) && inner_k == inner && v.dims() == k.dims(),
        "attention shapes: q {:?}, k {:?}, v {:?}, {heads} heads",
        q.dims(),
        k.dims(),
        v.dims()
    );
    assert_eq!(b, bk, "attention batch: q {b}, k {bk}");
    if n * m * inner == 0 {
        return fallback(q, k, v, heads);
    }
    match (prim(&q), prim(&k), prim(&v)) {
        (Some(Prim::Plain(qp)), Some(Prim::Plain(kp)), Some(Prim::Plain(vp))) => {
            let g = Geometry { batch: b, heads, seq_q: n, seq_kv: m, head_dim: inner / heads };
            from_vec(attention_forward(slice(&qp), slice(&kp), slice(&vp), &g), [b, n, inner])
        }
        _ => fallback(q, k, v, heads),
    }
}

/// burn's ops: split heads, fused attention kernel, merge heads.
fn fallback(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    use crate::models::clip::attention::{merge_heads, scaled_dot_product, split_heads};
    let out = scaled_dot_product(
        split_heads(q, heads), // [B, heads, N, dh]
        split_heads(k, heads), // [B, heads, M, dh]
        split_heads(v, heads), // [B, heads, M, dh]
        None,
        false,
    ); // [B, heads, N, dh]
    merge_heads(out) // [B, N, heads * dh]
}

/// diffusers' GEGLU activation: `x` `[.., 2 * hidden]` (hidden states, then gates) ->
/// `x[.., :hidden] * gelu(x[.., hidden:])` `[.., hidden]`, GELU exact (erf).
pub fn geglu(x: Tensor<3>) -> Tensor<3> {
    let [b, n, two_hidden] = x.dims();
    assert!(two_hidden.is_multiple_of(2), "GEGLU input width {two_hidden} is odd");
    let hidden = two_hidden / 2;
    match prim(&x) {
        Some(Prim::Plain(p)) if b * n * hidden > 0 => {
            from_vec(geglu_forward(slice(&p), hidden), [b, n, hidden])
        }
        _ => {
            let [h, gate]: [Tensor<3>; 2] =
                x.chunk(2, 2).try_into().expect("chunk of an even width in two"); // [B, N, hidden] each
            h * gelu(gate)
        }
    }
}

/// A 1x1, stride-1, unpadded, ungrouped convolution's `([C_out, C_in] weight, bias)` buffers,
/// when the fast path takes it.
fn pointwise(
    conv: &Conv2d,
) -> Option<(burn::backend::flex::FlexTensor, Option<burn::backend::flex::FlexTensor>)> {
    let [_, _, kh, kw] = conv.weight.dims();
    let plain = (kh, kw) == (1, 1)
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(
            conv.padding,
            burn::nn::PaddingConfig2d::Valid | burn::nn::PaddingConfig2d::Explicit(0, 0, 0, 0)
        );
    if !plain {
        return None;
    }
    let Prim::Plain(w) = prim(&conv.weight.val())? else { return None };
    let bias = match &conv.bias {
        Some(b) => match prim(&b.val())? {
            Prim::Plain(b) => Some(b),
            Prim::Ad(_) => return None,
        },
        None => None,
    };
    Some((w, bias))
}

/// `proj_in` as a 1x1 conv straight to tokens: `x` `[B, C, H, W]` -> `[B, H*W, C_out]`
/// (`conv(x).reshape([B, C_out, HW]).swap_dims(1, 2)`), or `None` when the fast path does not
/// apply (the caller uses burn's ops).
pub fn map_to_tokens(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<3>> {
    let [b, c, h, w] = x.dims();
    let (weight, bias) = pointwise(conv)?;
    let Prim::Plain(xp) = prim(x)? else { return None };
    let c_out = conv.weight.dims()[0];
    let hw = h * w;
    if b * c * hw * c_out == 0 {
        return None;
    }
    let (xs, ws) = (slice(&xp), slice(&weight));
    let mut out = vec![0.0f32; b * hw * c_out];
    if let Some(bias) = &bias {
        let bias = slice(bias);
        out.par_chunks_mut(c_out).for_each(|row| row.copy_from_slice(bias));
    }
    for (src, dst) in xs.chunks_exact(c * hw).zip(out.chunks_exact_mut(hw * c_out)) {
        // SAFETY: dst [HW, C_out] row-major; lhs = src^T [HW, C] (src is [C, HW]); rhs =
        // W^T [C, C_out] (W is [C_out, C]); every index lies inside the slices.
        unsafe {
            gemm::gemm(
                hw,
                c_out,
                c,
                dst.as_mut_ptr(),
                1,
                c_out as isize,
                bias.is_some(),
                src.as_ptr(),
                hw as isize,
                1,
                ws.as_ptr(),
                c as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
    }
    Some(from_vec(out, [b, hw, c_out]))
}

/// `proj_out` as a 1x1 conv from tokens, plus the residual: `tokens` `[B, H*W, C_in]`,
/// `residual` `[B, C_out, H, W]` -> `conv(tokens.swap_dims(1, 2).reshape([B, C_in, H, W])) +
/// residual`, or `None` when the fast path does not apply.
pub fn tokens_to_map(conv: &Conv2d, tokens: &Tensor<3>, residual: &Tensor<4>) -> Option<Tensor<4>> {
    let [b, hw, c_in] = tokens.dims();
    let shape = residual.dims();
    let [rb, c_out, h, w] = shape;
    if rb != b || h * w != hw || conv.weight.dims()[..2] != [c_out, c_in] || b * hw * c_in == 0 {
        return None;
    }
    let (weight, bias) = pointwise(conv)?;
    let (Prim::Plain(tp), Prim::Plain(rp)) = (prim(tokens)?, prim(residual)?) else {
        return None;
    };
    let (ts, ws) = (slice(&tp), slice(&weight));
    let mut out = slice(&rp).to_vec(); // [B, C_out, HW]: the residual, then + bias + W @ tokens^T
    if let Some(bias) = &bias {
        let bias = slice(bias);
        out.par_chunks_mut(hw).enumerate().for_each(|(i, row)| {
            let v = bias[i % c_out];
            row.iter_mut().for_each(|x| *x += v);
        });
    }
    for (src, dst) in ts.chunks_exact(hw * c_in).zip(out.chunks_exact_mut(c_out * hw)) {
        // SAFETY: dst [C_out, HW] row-major; lhs = W [C_out, C_in]; rhs = src^T [C_in, HW]
        // (src is [HW, C_in]); every index lies inside the slices.
        unsafe {
            gemm::gemm(
                c_out,
                hw,
                c_in,
                dst.as_mut_ptr(),
                1,
                hw as isize,
                true,
                ws.as_ptr(),
                1,
                c_in as isize,
                src.as_ptr(),
                c_in as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
    }
    Some(from_vec(out, shape))
}

/// Sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub heads: usize,
    pub seq_q: usize,
    pub seq_kv: usize,
    pub head_dim: usize,
}

/// A raw output pointer shared by the work units, which write disjoint `(rows, head columns)`
/// blocks of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the units never write the same element (disjoint row ranges or column ranges), and
// the buffer outlives the parallel loop that uses the pointer.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `q` `[B, N, H * dh]`, `k`/`v` `[B, M, H * dh]` row-major -> `[B, N, H * dh]`.
pub(crate) fn attention_forward(q: &[f32], k: &[f32], v: &[f32], g: &Geometry) -> Vec<f32> {
    let Geometry { batch, heads, seq_q: n, seq_kv: m, head_dim: dh } = *g;
    let inner = heads * dh;
    assert_eq!(q.len(), batch * n * inner, "attention: q buffer");
    assert_eq!(k.len(), batch * m * inner, "attention: k buffer");
    assert_eq!(v.len(), batch * m * inner, "attention: v buffer");
    let scale = 1.0 / (dh as f32).sqrt();
    let rows = (SCORE_BUDGET / m).clamp(MIN_ROWS, MAX_ROWS).min(n);
    let chunks = n.div_ceil(rows);
    let mut out = vec![0.0f32; batch * n * inner];
    let dst = OutPtr(out.as_mut_ptr());
    (0..batch * heads * chunks).into_par_iter().for_each_init(
        || (vec![0.0f32; rows * m], vec![0.0f32; rows]),
        |(scores, inv_sum), unit| {
            let (bh, chunk) = (unit / chunks, unit % chunks);
            let (b, h) = (bh / heads, bh % heads);
            let r0 = chunk * rows;
            let len = rows.min(n - r0);
            let scores = &mut scores[..len * m];
            // SAFETY: every pointer below addresses rows `b * N + r0..+len` (queries, output)
            // or `b * M..+M` (keys, values) at columns `h * dh..+dh`, inside the buffers whose
            // lengths are asserted above; `scores` is this unit's own `[len, M]` scratch.
            unsafe {
                let q0 = q.as_ptr().add((b * n + r0) * inner + h * dh);
                let k0 = k.as_ptr().add(b * m * inner + h * dh);
                let v0 = v.as_ptr().add(b * m * inner + h * dh);
                // scores [len, M] = scale * Q [len, dh] @ K^T [dh, M]
                gemm::gemm(
                    len,
                    m,
                    dh,
                    scores.as_mut_ptr(),
                    1,
                    m as isize,
                    false,
                    q0,
                    1,
                    inner as isize,
                    k0,
                    inner as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                softmax_rows(scores, m, &mut inv_sum[..len]);
                // out [len, dh] = P [len, M] @ V [M, dh], unnormalised
                let o0 = dst.get().add((b * n + r0) * inner + h * dh);
                gemm::gemm(
                    len,
                    dh,
                    m,
                    o0,
                    1,
                    inner as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    m as isize,
                    v0,
                    1,
                    inner as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                for (i, &s) in inv_sum[..len].iter().enumerate() {
                    let row = std::slice::from_raw_parts_mut(o0.add(i * inner), dh);
                    row.iter_mut().for_each(|x| *x *= s);
                }
            }
        },
    );
    out
}

/// Row-wise `exp(x - max)` in place over `scores` `[rows, m]`; `inv_sum[i]` = 1 / row `i`'s
/// sum (the normalisation is applied to the much smaller output instead).
fn softmax_rows(scores: &mut [f32], m: usize, inv_sum: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { softmax_rows_avx2(scores, m, inv_sum) };
        return;
    }
    softmax_rows_generic(scores, m, inv_sum);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_rows_avx2(scores: &mut [f32], m: usize, inv_sum: &mut [f32]) {
    softmax_rows_generic(scores, m, inv_sum);
}

#[inline(always)]
fn softmax_rows_generic(scores: &mut [f32], m: usize, inv_sum: &mut [f32]) {
    for (row, inv) in scores.chunks_exact_mut(m).zip(inv_sum.iter_mut()) {
        let max = lanes(row, f32::NEG_INFINITY, |a, x| if x > a { x } else { a }, |a, b| a.max(b));
        row.iter_mut().for_each(|x| *x = exp(*x - max));
        *inv = 1.0 / lanes(row, 0.0, |a, x| a + x, |a, b| a + b);
    }
}

/// A reduction over 8 independent lanes (so the compiler vectorises it), then across them.
#[inline(always)]
fn lanes(
    xs: &[f32],
    init: f32,
    step: impl Fn(f32, f32) -> f32,
    join: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut acc = [init; 8];
    let mut it = xs.chunks_exact(8);
    for c in &mut it {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = step(*a, x);
        }
    }
    let tail = it.remainder().iter().fold(init, |a, &x| step(a, x));
    acc.into_iter().fold(tail, join)
}

/// `e^x` for f32 (Cephes `expf`): `x = n ln2 + r`, `|r| <= ln2 / 2`, a degree-7 polynomial
/// for `e^r`, `2^n` from the exponent bits. Inputs are clamped to `[-87, 88]` (results from
/// `1.6e-38` to `1.6e38`); branch-free so that loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC; // round(x / ln2)
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((ni + 127) as u32) << 23)
}

/// `erf(x)` (Abramowitz & Stegun 7.1.26, absolute error <= 1.5e-7), branch-free.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    if x < 0.0 { -y } else { y }
}

/// `[rows, 2 * hidden]` -> `[rows, hidden]`: `x[:, :hidden] * gelu(x[:, hidden:])`.
fn geglu_forward(x: &[f32], hidden: usize) -> Vec<f32> {
    let rows = x.len() / (2 * hidden);
    let mut out = vec![0.0f32; rows * hidden];
    out.par_chunks_mut(hidden).zip(x.par_chunks(2 * hidden)).for_each(|(dst, src)| {
        let (h, gate) = src.split_at(hidden);
        geglu_row(dst, h, gate);
    });
    out
}

fn geglu_row(dst: &mut [f32], h: &[f32], gate: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { geglu_row_avx2(dst, h, gate) };
        return;
    }
    geglu_row_generic(dst, h, gate);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn geglu_row_avx2(dst: &mut [f32], h: &[f32], gate: &[f32]) {
    geglu_row_generic(dst, h, gate);
}

#[inline(always)]
fn geglu_row_generic(dst: &mut [f32], h: &[f32], gate: &[f32]) {
    for ((d, &x), &g) in dst.iter_mut().zip(h).zip(gate) {
        *d = x * 0.5 * g * (1.0 + erf(g * std::f32::consts::FRAC_1_SQRT_2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(shape: [usize; 3], seed: u64) -> Tensor<3> {
        let d = crate::backend::default_device();
        let [a, b, c] = shape;
        crate::models::vae::posterior::seeded_normal([a, b, c, 1], seed, &d).squeeze_dim(3)
    }

    fn max_abs_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn exp_and_erf_match_std() {
        let mut worst_exp = 0.0f32;
        for i in 0..=20_000 {
            let x = -87.0 + 95.0 * i as f32 / 20_000.0;
            let (got, want) = (exp(x), x.exp());
            worst_exp = worst_exp.max(((got - want) / want).abs());
        }
        assert!(worst_exp < 4e-7, "exp relative error {worst_exp}");
        // erf against its series near 0 and its known values.
        for (x, want) in
            [(0.0f32, 0.0f32), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3)]
        {
            assert!((erf(x) - want).abs() < 5e-7, "erf({x}) = {} vs {want}", erf(x));
        }
    }

    #[test]
    fn fused_attention_matches_burn_attention() {
        // (batch, heads, queries, keys, head width): self- and cross-attention shapes, rows not
        // a multiple of the chunk, keys below and above the score budget's row count.
        for (b, heads, n, m, dh) in
            [(2, 3, 37, 37, 5), (1, 2, 300, 11, 8), (2, 1, 20, 700, 3), (1, 4, 600, 600, 4)]
        {
            let q = random([b, n, heads * dh], 1).mul_scalar(2.0);
            let k = random([b, m, heads * dh], 2);
            let v = random([b, m, heads * dh], 3);
            let fast = multi_head(q.clone(), k.clone(), v.clone(), heads);
            let reference = fallback(q, k, v, heads);
            let err = max_abs_diff(fast, reference);
            assert!(err < 1e-5, "attention b{b} h{heads} {n}x{m} dh{dh}: max abs err {err}");
        }
    }

    #[test]
    fn pointwise_projections_match_burn_conv() {
        use burn::nn::conv::Conv2dConfig;
        let d = crate::backend::default_device();
        for bias in [true, false] {
            let conv_in = Conv2dConfig::new([5, 7], [1, 1]).with_bias(bias).init(&d);
            let x = random([2, 5, 12], 5).reshape([2, 5, 3, 4]);
            let want = conv_in.forward(x.clone()).reshape([2, 7, 12]).swap_dims(1, 2);
            let err = max_abs_diff(map_to_tokens(&conv_in, &x).unwrap(), want);
            assert!(err < 1e-5, "proj_in (bias {bias}) max abs err {err}");
            let conv_out = Conv2dConfig::new([7, 5], [1, 1]).with_bias(bias).init(&d);
            let tokens = random([2, 12, 7], 6);
            let residual = random([2, 5, 12], 7).reshape([2, 5, 3, 4]);
            let map = tokens.clone().swap_dims(1, 2).reshape([2, 7, 3, 4]);
            let want = (conv_out.forward(map) + residual.clone()).reshape([2, 5, 12]);
            let got = tokens_to_map(&conv_out, &tokens, &residual).unwrap().reshape([2, 5, 12]);
            let err = max_abs_diff(got, want);
            assert!(err < 1e-5, "proj_out (bias {bias}) max abs err {err}");
        }
        let strided = Conv2dConfig::new([5, 7], [1, 1]).with_stride([2, 2]).init(&d);
        assert!(map_to_tokens(&strided, &random([1, 5, 16], 8).reshape([1, 5, 4, 4])).is_none());
    }

    #[test]
    fn fused_geglu_matches_burn_gelu() {
        let x = random([2, 9, 2 * 13], 4).mul_scalar(3.0);
        let [h, gate]: [Tensor<3>; 2] = x.clone().chunk(2, 2).try_into().unwrap();
        let err = max_abs_diff(geglu(x), h * gelu(gate));
        assert!(err < 1e-5, "GEGLU max abs err {err}");
    }
}
