//! The slice kernels behind [`super`]: forward and backward of a stride-1 convolution as shifted
//! GEMMs, GroupNorm (+SiLU) and nearest 2x upsampling, on contiguous row-major f32 buffers.
//!
//! Nothing here knows about burn tensors; [`super`] extracts the buffers and
//! [`super::autodiff`] registers the backward steps.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::huge_pages::{filled_buffer, written_buffer};

const ZERO: MaybeUninit<f32> = MaybeUninit::new(0.0);

/// Sizes of one stride-1 convolution (dilation 1, one group, any zero padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    /// `[top, left, bottom, right]` zero padding.
    pub pad: [usize; 4],
}

impl ConvGeometry {
    /// The zero-padded input size `(Hp, Wp)`.
    pub fn padded(&self) -> (usize, usize) {
        (self.h + self.pad[0] + self.pad[2], self.w + self.pad[1] + self.pad[3])
    }

    /// The output size `(H', W')`.
    pub fn output_size(&self) -> (usize, usize) {
        let (hp, wp) = self.padded();
        (hp + 1 - self.kh, wp + 1 - self.kw)
    }

    fn plane(&self) -> usize {
        let (hp, wp) = self.padded();
        hp * wp
    }

    fn taps(&self) -> usize {
        self.kh * self.kw
    }

    /// Offset of tap `(i, j)`'s shifted view into the padded plane.
    fn tap_offset(&self, i: usize, j: usize) -> usize {
        i * self.padded().1 + j
    }

    /// Every kernel tap in order: `(tap index, offset of its shifted view)`.
    fn taps_with_offsets(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.kh)
            .flat_map(move |i| (0..self.kw).map(move |j| (i * self.kw + j, self.tap_offset(i, j))))
    }

    /// Elements after the last padded plane that the shifted views may read (the last tap's
    /// view starts `(kh - 1) * Wp + kw - 1` elements in).
    fn slack(&self) -> usize {
        (self.kh - 1) * self.padded().1 + self.kw
    }

    /// `[B, C, H, W]` (`C` = `channels`) -> zero-padded `[C, B, Hp, Wp]` plus [`Self::slack`]
    /// zeros: each channel's planes of the whole batch form one matrix row. Only the borders
    /// are zeroed; the interior is written once, by the copy.
    fn pad_batch(&self, input: &[f32], channels: usize) -> Vec<f32> {
        let (_, wp) = self.padded();
        let (plane, hw) = (self.plane(), self.h * self.w);
        let batch = input.len() / (channels * hw);
        let body = channels * batch * plane;
        let (top, left, w) = (self.pad[0], self.pad[1], self.w);
        // SAFETY: every row of every plane is written (zeros, or zeros around a copied input
        // row), and so is the slack.
        unsafe {
            written_buffer(body + self.slack(), |padded| {
                let (planes, slack) = padded.split_at_mut(body);
                slack.fill(ZERO);
                planes.par_chunks_mut(plane).enumerate().for_each(|(index, dst)| {
                    let (c, b) = (index / batch, index % batch);
                    let src = &input[(b * channels + c) * hw..][..hw];
                    for (y, row) in dst.chunks_exact_mut(wp).enumerate() {
                        match y.checked_sub(top).filter(|&sy| sy < self.h) {
                            Some(sy) => {
                                row[..left].fill(ZERO);
                                row[left..left + w].write_copy_of_slice(&src[sy * w..][..w]);
                                row[left + w..].fill(ZERO);
                            }
                            None => row.fill(ZERO),
                        }
                    }
                });
            })
        }
    }
}

/// `dst = (read_dst ? dst : 0) + lhs @ rhs` with explicit (column, row) strides.
///
/// With the `openblas` feature, a product whose three matrices each have a unit stride (every
/// call in this file: the kernels are laid out for it) goes to OpenBLAS's `cblas_sgemm`, which
/// is faster than the `gemm` crate on these shapes; anything else, and every product without
/// the feature, runs on the `gemm` crate on rayon.
///
/// # Safety
/// Every `(row, col)` addressed through the strides must lie inside the buffers the pointers
/// come from, and `dst`'s addressed elements must not overlap each other or `lhs` / `rhs`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_acc(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    (dst_cs, dst_rs): (usize, usize),
    read_dst: bool,
    lhs: *const f32,
    (lhs_cs, lhs_rs): (usize, usize),
    rhs: *const f32,
    (rhs_cs, rhs_rs): (usize, usize),
) {
    #[cfg(feature = "openblas")]
    {
        let problem = blas::Problem {
            mnk: (m, n, k),
            dst: (dst_cs, dst_rs),
            lhs: (lhs_cs, lhs_rs),
            rhs: (rhs_cs, rhs_rs),
        };
        // SAFETY: forwarded from the caller.
        if unsafe { blas::sgemm(&problem, dst, read_dst, lhs, rhs) } {
            return;
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            read_dst,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

/// OpenBLAS's `cblas_sgemm` (Debian `libopenblas-dev`), behind the `openblas` feature.
#[cfg(feature = "openblas")]
pub mod blas {
    use std::ffi::c_int;

    const ROW_MAJOR: c_int = 101;
    const NO_TRANS: c_int = 111;
    const TRANS: c_int = 112;

    #[link(name = "openblas")]
    unsafe extern "C" {
        fn cblas_sgemm(
            layout: c_int,
            trans_a: c_int,
            trans_b: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const f32,
            lda: c_int,
            b: *const f32,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
    }

    /// Sizes and (column, row) strides of `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]`.
    #[derive(Debug, Clone, Copy)]
    pub struct Problem {
        /// `(m, n, k)`.
        pub mnk: (usize, usize, usize),
        /// (column, row) strides of `dst`.
        pub dst: (usize, usize),
        /// (column, row) strides of `lhs`.
        pub lhs: (usize, usize),
        /// (column, row) strides of `rhs`.
        pub rhs: (usize, usize),
    }

    impl Problem {
        /// The same product transposed: `dst^T[n, m] = rhs^T[n, k] @ lhs^T[k, m]`.
        fn transposed(self) -> Self {
            let (m, n, k) = self.mnk;
            let flip = |(cs, rs): (usize, usize)| (rs, cs);
            Self { mnk: (n, m, k), dst: flip(self.dst), lhs: flip(self.rhs), rhs: flip(self.lhs) }
        }
    }

    /// The BLAS transpose flag and leading dimension of a `rows x cols` operand of a row-major
    /// product, or `None` when it has no unit stride.
    fn operand((cs, rs): (usize, usize), rows: usize, cols: usize) -> Option<(c_int, c_int)> {
        let ld = if cs == 1 && rs >= cols.max(1) {
            (NO_TRANS, rs)
        } else if rs == 1 && cs >= rows.max(1) {
            (TRANS, cs)
        } else {
            return None;
        };
        Some((ld.0, c_int::try_from(ld.1).ok()?))
    }

    /// `dst = (read_dst ? dst : 0) + lhs @ rhs` through `cblas_sgemm` when the layout allows
    /// (each matrix has a unit stride); `false` (nothing done) otherwise.
    ///
    /// # Safety
    /// Every element addressed through the strides must lie inside the buffers the pointers
    /// come from, and `dst`'s elements must not overlap each other or `lhs` / `rhs`.
    pub unsafe fn sgemm(
        problem: &Problem,
        dst: *mut f32,
        read_dst: bool,
        lhs: *const f32,
        rhs: *const f32,
    ) -> bool {
        // A column-major destination is the transposed product with a row-major one.
        let (p, lhs, rhs) = if problem.dst.0 == 1 {
            (*problem, lhs, rhs)
        } else {
            (problem.transposed(), rhs, lhs)
        };
        let (m, n, k) = p.mnk;
        if p.dst.0 != 1 || p.dst.1 < n.max(1) || m == 0 || n == 0 {
            return false;
        }
        let (Some((ta, lda)), Some((tb, ldb)), Ok(ldc)) =
            (operand(p.lhs, m, k), operand(p.rhs, k, n), c_int::try_from(p.dst.1))
        else {
            return false;
        };
        let (Ok(mi), Ok(ni), Ok(ki)) = (c_int::try_from(m), c_int::try_from(n), c_int::try_from(k))
        else {
            return false;
        };
        let beta = if read_dst { 1.0 } else { 0.0 };
        // SAFETY: the layout was checked above; the buffers are the caller's.
        unsafe {
            cblas_sgemm(ROW_MAJOR, ta, tb, mi, ni, ki, 1.0, lhs, lda, rhs, ldb, beta, dst, ldc);
        }
        true
    }
}

/// `[C_out, C_in, kh, kw]` -> `[kh * kw, C_out, C_in]`: one contiguous matrix per tap, so every
/// GEMM operand has a unit stride.
fn weight_per_tap(weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let taps = g.taps();
    // SAFETY: tap t's matrix takes every taps-th weight from t, so all values are written.
    unsafe {
        written_buffer(weight.len(), |out| {
            for (tap, dst) in out.chunks_exact_mut(g.c_out * g.c_in).enumerate() {
                for (d, s) in dst.iter_mut().zip(weight.iter().skip(tap).step_by(taps)) {
                    d.write(*s);
                }
            }
        })
    }
}

/// Forward convolution of a batch: `input` `[B, C_in, H, W]`, `weight` `[C_out, C_in, kh, kw]`,
/// `bias` `[C_out]` -> `[B, C_out, H', W']`.
///
/// With the input zero-padded to `[C_in, B, Hp, Wp]` (one row of `B * Hp * Wp` values per
/// channel) and the output computed "wide" over the same grid (`[C_out, B, Hp, Wp]`; only the
/// `H' x W'` corner of each plane is kept), tap `(i, j)` of the kernel reads the padded input as
/// a `[C_in, B * Hp * Wp]` matrix starting at offset `i * Wp + j`, so the whole convolution is
/// `kh * kw` GEMMs `W[:, :, i, j] @ shifted`, over the whole batch at once, summed into one
/// output. A kept output pixel only reads its own image's plane.
pub(crate) fn conv_forward(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
) -> Vec<f32> {
    let batch = input.len() / (g.c_in * g.h * g.w);
    let (_, wp) = g.padded();
    let (ho, wo) = g.output_size();
    let plane = g.plane();
    let cols = batch * plane;
    let padded = g.pad_batch(input, g.c_in); // [C_in, B, Hp, Wp] + slack
    let per_tap = weight_per_tap(weight, g); // [taps, C_out, C_in]
    // SAFETY: the first tap's GEMM (no accumulation) writes all of [c_out, cols].
    let wide = unsafe {
        filled_buffer(g.c_out * cols, |wide| {
            for (tap, offset) in g.taps_with_offsets() {
                // SAFETY: dst is [c_out, cols] row-major; lhs is per_tap[tap] [c_out, c_in]
                // row-major; rhs reads padded[ci * cols + offset + col] for col < cols (offset
                // = i * wp + j for tap (i, j)), whose largest index is (c_in - 1) * cols +
                // (kh - 1) * wp + (kw - 1) + cols - 1 < c_in * cols + slack = padded.len().
                gemm_acc(
                    (g.c_out, cols, g.c_in),
                    wide,
                    (1, cols),
                    tap > 0, // accumulate after the first tap
                    per_tap.as_ptr().add(tap * g.c_out * g.c_in),
                    (1, g.c_in),
                    padded.as_ptr().add(offset),
                    (1, cols),
                );
            }
        })
    }; // [C_out, B, Hp, Wp]
    // Keep each plane's corner and add the bias: [C_out, B, Hp, Wp] -> [B, C_out, H', W'].
    // SAFETY: each output plane is written row by row, wo values from each of ho rows.
    unsafe {
        written_buffer(batch * g.c_out * ho * wo, |out| {
            out.par_chunks_mut(ho * wo).enumerate().for_each(|(index, dst)| {
                let (b, co) = (index / g.c_out, index % g.c_out);
                let bias = bias.map_or(0.0, |bias| bias[co]);
                let src = &wide[co * cols + b * plane..][..plane];
                for (dst_row, src_row) in dst.chunks_exact_mut(wo).zip(src.chunks_exact(wp)) {
                    for (d, s) in dst_row.iter_mut().zip(&src_row[..wo]) {
                        d.write(s + bias);
                    }
                }
            })
        })
    }
}

/// Gradients of a convolution, each computed only when asked for.
#[derive(Debug, Default)]
pub(crate) struct ConvGrads {
    /// `[B, C_in, H, W]`.
    pub input: Option<Vec<f32>>,
    /// `[C_out, C_in, kh, kw]`.
    pub weight: Option<Vec<f32>>,
    /// `[C_out]`.
    pub bias: Option<Vec<f32>>,
}

/// Backward of [`conv_forward`]: `grad` `[B, C_out, H', W']` -> the gradients of the input, the
/// weight and the bias (`need` = which of them, in that order).
///
/// Both are the forward's shifted GEMMs transposed, with the output gradient laid out wide
/// (`[C_out, B * Hp * Wp]`, zero outside each plane's `H' x W'` corner): the input gradient of
/// tap `(i, j)` is `W[:, :, i, j]^T @ G` accumulated into the padded input gradient at the
/// tap's offset, and the weight gradient of the tap is `G @ shifted^T`, each one GEMM over the
/// whole batch. No im2col buffer is built.
pub(crate) fn conv_backward(
    input: &[f32],
    weight: &[f32],
    grad: &[f32],
    g: &ConvGeometry,
    need: [bool; 3],
) -> ConvGrads {
    let item_in = g.c_in * g.h * g.w;
    let batch = input.len() / item_in;
    let (_, wp) = g.padded();
    let (ho, wo) = g.output_size();
    let (plane, taps) = (g.plane(), g.taps());
    let cols = batch * plane;
    let mn = g.c_out * g.c_in;
    let per_tap = weight_per_tap(weight, g); // [taps, C_out, C_in]
    // SAFETY: every row of every plane is written: the gradient row and zeros after it in the
    // first ho rows, zeros in the rest.
    let wide = unsafe {
        written_buffer(g.c_out * cols, |wide| {
            wide.par_chunks_mut(plane).enumerate().for_each(|(index, dst)| {
                let (co, b) = (index / batch, index % batch);
                let src = &grad[(b * g.c_out + co) * ho * wo..][..ho * wo];
                let (kept, below) = dst.split_at_mut(ho * wp);
                for (dst_row, src_row) in kept.chunks_exact_mut(wp).zip(src.chunks_exact(wo)) {
                    dst_row[..wo].write_copy_of_slice(src_row);
                    dst_row[wo..].fill(ZERO);
                }
                below.fill(ZERO);
            })
        })
    }; // [C_out, B, Hp, Wp], zero outside each plane's H' x W' corner
    let bias = need[2].then(|| {
        let sums: Vec<f32> = grad.par_chunks(ho * wo).map(|c| c.iter().sum()).collect(); // [B, C_out]
        let mut db = vec![0.0f32; g.c_out];
        for item in sums.chunks_exact(g.c_out) {
            db.iter_mut().zip(item).for_each(|(d, s)| *d += s);
        }
        db
    });
    let weight_grad = need[1].then(|| {
        let padded = g.pad_batch(input, g.c_in); // [C_in, B, Hp, Wp] + slack
        // SAFETY: each tap's GEMM (no accumulation) writes all of its [c_out, c_in] matrix.
        let dw = unsafe {
            filled_buffer(weight.len(), |dw| {
                for (tap, offset) in g.taps_with_offsets() {
                    // SAFETY: dst is dw[tap], [c_out, c_in] row-major; lhs is wide
                    // [c_out, cols]; rhs element (col, ci) reads
                    // padded[ci * cols + offset + col], below c_in * cols + slack.
                    gemm_acc(
                        (g.c_out, g.c_in, cols),
                        dw.add(tap * mn),
                        (1, g.c_in),
                        false,
                        wide.as_ptr(),
                        (1, cols),
                        padded.as_ptr().add(offset),
                        (cols, 1),
                    );
                }
            })
        }; // [taps, C_out, C_in]
        // [taps, C_out, C_in] -> [C_out, C_in, kh, kw].
        // SAFETY: tap t fills every taps-th value from t, so all values are written.
        unsafe {
            written_buffer(dw.len(), |out| {
                for (tap, src) in dw.chunks_exact(mn).enumerate() {
                    for (d, s) in out.iter_mut().skip(tap).step_by(taps).zip(src) {
                        d.write(*s);
                    }
                }
            })
        }
    });
    let input_grad = need[0].then(|| {
        let body = g.c_in * cols;
        // SAFETY: the slack is zeroed first; tap (0, 0) has offset 0, so its GEMM (no
        // accumulation) writes all of [0, c_in * cols); the later taps accumulate inside
        // [0, c_in * cols + slack), all written by then.
        let padded_grad = unsafe {
            filled_buffer(body + g.slack(), |padded_grad| {
                std::ptr::write_bytes(padded_grad.add(body), 0, g.slack()); // 0.0f32 is all zero bits
                for (tap, offset) in g.taps_with_offsets() {
                    // SAFETY: dst element (ci, col) is padded_grad[ci * cols + offset +
                    // col], below c_in * cols + slack, and rows of cols values never
                    // overlap; lhs element (ci, co) reads per_tap[tap][co, ci]; rhs is
                    // wide [c_out, cols].
                    gemm_acc(
                        (g.c_in, cols, g.c_out),
                        padded_grad.add(offset),
                        (1, cols),
                        tap > 0, // accumulate after the first tap
                        per_tap.as_ptr().add(tap * mn),
                        (g.c_in, 1),
                        wide.as_ptr(),
                        (1, cols),
                    );
                }
            })
        }; // [C_in, B, Hp, Wp] + slack
        // Crop the padding: [C_in, B, Hp, Wp] -> [B, C_in, H, W].
        // SAFETY: each input-gradient plane is written row by row, w values from each of h rows.
        unsafe {
            written_buffer(batch * item_in, |dx| {
                dx.par_chunks_mut(g.h * g.w).enumerate().for_each(|(index, d)| {
                    let (b, ci) = (index / g.c_in, index % g.c_in);
                    let s = &padded_grad[ci * cols + b * plane..][..plane];
                    for (y, row) in d.chunks_exact_mut(g.w).enumerate() {
                        let start = (y + g.pad[0]) * wp + g.pad[1];
                        row.write_copy_of_slice(&s[start..start + g.w]);
                    }
                })
            })
        }
    });
    ConvGrads { input: input_grad, weight: weight_grad, bias }
}

/// Sizes of one GroupNorm call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NormGeometry {
    pub channels: usize,
    /// `H * W`.
    pub spatial: usize,
    pub groups: usize,
    pub epsilon: f64,
    /// SiLU applied after the affine map.
    pub silu: bool,
}

impl NormGeometry {
    fn per_group(&self) -> usize {
        (self.channels / self.groups) * self.spatial
    }

    /// `(gamma, beta)` of channel `c`.
    fn affine(&self, affine: Option<(&[f32], &[f32])>, c: usize) -> (f32, f32) {
        affine.map_or((1.0, 0.0), |(g, b)| (g[c], b[c]))
    }
}

/// Mean and inverse standard deviation of one group (biased variance, f64 accumulation over
/// f32 partial sums).
fn group_stats(values: &[f32], epsilon: f64) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let sum: f64 = values.chunks(1024).map(|c| c.iter().sum::<f32>() as f64).sum();
    let mean = sum / n;
    let m = mean as f32;
    let squares: f64 =
        values.chunks(1024).map(|c| c.iter().map(|v| (v - m) * (v - m)).sum::<f32>() as f64).sum();
    (mean, 1.0 / (squares / n + epsilon).sqrt())
}

fn sigmoid(y: f32) -> f32 {
    1.0 / (1.0 + (-y).exp())
}

/// GroupNorm (then SiLU when `g.silu`) of `input` `[B, C, H, W]` with optional affine
/// `(gamma, beta)` `[C]`, in one multi-threaded pass per group.
pub(crate) fn group_norm_forward(
    input: &[f32],
    affine: Option<(&[f32], &[f32])>,
    g: &NormGeometry,
) -> Vec<f32> {
    let per_group = g.per_group();
    let cpg = g.channels / g.groups;
    // SAFETY: every value of every group is written, one per input value.
    unsafe {
        written_buffer(input.len(), |out| {
            out.par_chunks_mut(per_group).zip(input.par_chunks(per_group)).enumerate().for_each(
                |(index, (dst, src))| {
                    let (mean, inv_std) = group_stats(src, g.epsilon);
                    let first = (index % g.groups) * cpg;
                    let channels = dst.chunks_exact_mut(g.spatial).zip(src.chunks_exact(g.spatial));
                    for (k, (d, s)) in channels.enumerate() {
                        let (gamma, beta) = g.affine(affine, first + k);
                        // y = (x - mean) * inv_std * gamma + beta = x * scale + shift
                        let scale = (inv_std * gamma as f64) as f32;
                        let shift = (beta as f64 - mean * inv_std * gamma as f64) as f32;
                        for (d, s) in d.iter_mut().zip(s) {
                            let y = s * scale + shift;
                            d.write(if g.silu { y * sigmoid(y) } else { y });
                        }
                    }
                },
            )
        })
    }
}

/// Gradients of a GroupNorm: input `[B, C, H, W]` and, with an affine, gamma and beta `[C]`.
#[derive(Debug)]
pub(crate) struct NormGrads {
    pub input: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// Backward of [`group_norm_forward`] for the output gradient `grad` (statistics recomputed).
///
/// Per group with `x̂ = (x - mean) * inv_std` and `dy` the gradient before SiLU:
/// `dgamma = Σ dy x̂`, `dbeta = Σ dy`, `dx = inv_std (dy γ - mean(dy γ) - x̂ mean(dy γ x̂))`.
pub(crate) fn group_norm_backward(
    input: &[f32],
    affine: Option<(&[f32], &[f32])>,
    grad: &[f32],
    g: &NormGeometry,
) -> NormGrads {
    let per_group = g.per_group();
    let cpg = g.channels / g.groups;
    let mut dx = vec![0.0f32; input.len()];
    // Per (batch, group): the channel sums Σ dy and Σ dy x̂ of its channels.
    let partial: Vec<(usize, Vec<f64>, Vec<f64>)> = dx
        .par_chunks_mut(per_group)
        .zip(input.par_chunks(per_group).zip(grad.par_chunks(per_group)))
        .enumerate()
        .map(|(index, (dst, (src, dz)))| {
            let (mean, inv_std) = group_stats(src, g.epsilon);
            let first = (index % g.groups) * cpg;
            let mut sum_dy = vec![0.0f64; cpg];
            let mut sum_dy_xhat = vec![0.0f64; cpg];
            let chunks = dst
                .chunks_exact_mut(g.spatial)
                .zip(src.chunks_exact(g.spatial).zip(dz.chunks_exact(g.spatial)));
            for (k, (d, (s, z))) in chunks.enumerate() {
                let (gamma, beta) = g.affine(affine, first + k);
                let (mut a, mut b) = (0.0f64, 0.0f64);
                for (d, (s, z)) in d.iter_mut().zip(s.iter().zip(z)) {
                    let xhat = ((*s as f64 - mean) * inv_std) as f32;
                    let dy = if g.silu {
                        let y = xhat * gamma + beta;
                        let sg = sigmoid(y);
                        z * sg * (1.0 + y * (1.0 - sg))
                    } else {
                        *z
                    };
                    *d = dy; // kept for the second pass
                    a += dy as f64;
                    b += (dy * xhat) as f64;
                }
                sum_dy[k] = a;
                sum_dy_xhat[k] = b;
            }
            let n = per_group as f64;
            let (mut m1, mut m2) = (0.0f64, 0.0f64);
            for k in 0..cpg {
                let gamma = g.affine(affine, first + k).0 as f64;
                m1 += gamma * sum_dy[k];
                m2 += gamma * sum_dy_xhat[k];
            }
            let (m1, m2) = ((m1 / n) as f32, (m2 / n) as f32);
            for (k, (d, s)) in
                dst.chunks_exact_mut(g.spatial).zip(src.chunks_exact(g.spatial)).enumerate()
            {
                let gamma = g.affine(affine, first + k).0;
                for (d, s) in d.iter_mut().zip(s) {
                    let xhat = ((*s as f64 - mean) * inv_std) as f32;
                    *d = inv_std as f32 * (*d * gamma - m1 - xhat * m2);
                }
            }
            (first, sum_dy, sum_dy_xhat)
        })
        .collect();
    let mut gamma = vec![0.0f64; g.channels];
    let mut beta = vec![0.0f64; g.channels];
    for (first, sum_dy, sum_dy_xhat) in partial {
        for k in 0..cpg {
            beta[first + k] += sum_dy[k];
            gamma[first + k] += sum_dy_xhat[k];
        }
    }
    NormGrads {
        input: dx,
        gamma: gamma.into_iter().map(|v| v as f32).collect(),
        beta: beta.into_iter().map(|v| v as f32).collect(),
    }
}

/// Nearest-neighbour x2 upsampling of `[B*C, H, W]` planes -> `[B*C, 2H, 2W]`.
pub(crate) fn upsample2x_forward(input: &[f32], h: usize, w: usize) -> Vec<f32> {
    // SAFETY: each output row pair is written whole: every value of the top row twice over
    // its two columns, and the bottom row the same.
    unsafe {
        written_buffer(input.len() * 4, |out| {
            out.par_chunks_mut(4 * h * w).zip(input.par_chunks(h * w)).for_each(|(dst, src)| {
                for (pair, row) in dst.chunks_exact_mut(4 * w).zip(src.chunks_exact(w)) {
                    let (top, bottom) = pair.split_at_mut(2 * w);
                    for ((t, b), s) in
                        top.chunks_exact_mut(2).zip(bottom.chunks_exact_mut(2)).zip(row)
                    {
                        t.fill(MaybeUninit::new(*s));
                        b.fill(MaybeUninit::new(*s));
                    }
                }
            })
        })
    }
}

/// Backward of [`upsample2x_forward`]: each input pixel gets the sum of its 2x2 block.
pub(crate) fn upsample2x_backward(grad: &[f32], h: usize, w: usize) -> Vec<f32> {
    // SAFETY: every input pixel of every plane gets its block's sum.
    unsafe {
        written_buffer(grad.len() / 4, |dx| {
            dx.par_chunks_mut(h * w).zip(grad.par_chunks(4 * h * w)).for_each(|(dst, src)| {
                for (row, pair) in dst.chunks_exact_mut(w).zip(src.chunks_exact(4 * w)) {
                    let (top, bottom) = pair.split_at(2 * w);
                    for (x, d) in row.iter_mut().enumerate() {
                        d.write(top[2 * x] + top[2 * x + 1] + bottom[2 * x] + bottom[2 * x + 1]);
                    }
                }
            })
        })
    }
}
