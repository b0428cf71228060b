//! The slice kernels behind [`super`]: forward and backward of a stride-1 convolution as shifted
//! GEMMs, GroupNorm (+SiLU) and nearest 2x upsampling, on contiguous row-major f32 buffers.
//!
//! Nothing here knows about burn tensors; [`super`] extracts the buffers and
//! [`super::autodiff`] registers the backward steps.

use rayon::prelude::*;

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

    /// Columns of the "wide" output `[C_out, H', Wp]` (the last `kw - 1` of each row unused).
    fn wide(&self) -> usize {
        self.output_size().0 * self.padded().1
    }

    fn taps(&self) -> usize {
        self.kh * self.kw
    }

    /// Offset of tap `(i, j)`'s shifted view into the padded plane.
    fn tap_offset(&self, i: usize, j: usize) -> usize {
        i * self.padded().1 + j
    }

    /// `[C_in, H, W]` -> zero-padded `[C_in, Hp, Wp]` plus `kw` slack elements (the last tap's
    /// view runs up to `kw - 1` elements past the last plane).
    fn pad_input(&self, input: &[f32]) -> Vec<f32> {
        let (_, wp) = self.padded();
        let plane = self.plane();
        let mut padded = vec![0.0f32; self.c_in * plane + self.kw];
        padded[..self.c_in * plane].par_chunks_mut(plane).enumerate().for_each(|(c, dst)| {
            let src = &input[c * self.h * self.w..(c + 1) * self.h * self.w];
            for (y, row) in src.chunks_exact(self.w).enumerate() {
                let start = (y + self.pad[0]) * wp + self.pad[1];
                dst[start..start + self.w].copy_from_slice(row);
            }
        });
        padded
    }
}

/// `dst = (read_dst ? dst : 0) + lhs @ rhs` with explicit (column, row) strides, on rayon.
///
/// # Safety
/// Every `(row, col)` addressed through the strides must lie inside the buffers the pointers
/// come from, and `dst`'s addressed elements must not overlap each other or `lhs` / `rhs`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_acc(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    (dst_cs, dst_rs): (usize, usize),
    read_dst: bool,
    lhs: *const f32,
    (lhs_cs, lhs_rs): (usize, usize),
    rhs: *const f32,
    (rhs_cs, rhs_rs): (usize, usize),
) {
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

/// Forward convolution of a batch: `input` `[B, C_in, H, W]`, `weight` `[C_out, C_in, kh, kw]`,
/// `bias` `[C_out]` -> `[B, C_out, H', W']`.
///
/// With the input zero-padded to `[C_in, Hp, Wp]` and the output computed over the padded width
/// (`[C_out, H', Wp]`, the last `kw - 1` columns of each row are discarded), tap `(i, j)` of the
/// kernel reads the padded input as a `[C_in, H' * Wp]` matrix starting at offset `i * Wp + j`,
/// so the whole convolution is `kh * kw` GEMMs `W[:, :, i, j] @ shifted` summed into one output.
pub(crate) fn conv_forward(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
) -> Vec<f32> {
    let batch = input.len() / (g.c_in * g.h * g.w);
    let (ho, wo) = g.output_size();
    let mut out = vec![0.0f32; batch * g.c_out * ho * wo];
    for (src, dst) in
        input.chunks_exact(g.c_in * g.h * g.w).zip(out.chunks_exact_mut(g.c_out * ho * wo))
    {
        conv_forward_item(src, weight, bias, g, dst);
    }
    out
}

fn conv_forward_item(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    out: &mut [f32],
) {
    let (_, wp) = g.padded();
    let (ho, wo) = g.output_size();
    let (plane, n, taps) = (g.plane(), g.wide(), g.taps());
    let padded = g.pad_input(input); // [C_in, Hp, Wp] + slack
    let mut wide = vec![0.0f32; g.c_out * n]; // [C_out, H', Wp]
    for i in 0..g.kh {
        for j in 0..g.kw {
            let tap = i * g.kw + j;
            // SAFETY: dst is [c_out, n] row-major; lhs reads weight[co, ci, i, j] at
            // co * c_in * taps + ci * taps + tap (< weight.len()); rhs reads
            // padded[ci * plane + i * wp + j + col] for col < n, whose largest index is
            // (c_in - 1) * plane + (kh - 1) * wp + (kw - 1) + ho * wp - 1
            // = c_in * plane + kw - 2 < padded.len().
            unsafe {
                gemm_acc(
                    (g.c_out, n, g.c_in),
                    wide.as_mut_ptr(),
                    (1, n),
                    tap > 0, // accumulate after the first tap
                    weight.as_ptr().add(tap),
                    (taps, g.c_in * taps),
                    padded.as_ptr().add(g.tap_offset(i, j)),
                    (1, plane),
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
/// (`[C_out, H' * Wp]`, zero in the discarded columns): the input gradient of tap `(i, j)` is
/// `W[:, :, i, j]^T @ G` accumulated into the padded input gradient at the tap's offset, and the
/// weight gradient of the tap is `G @ shifted^T`. No im2col buffer is built.
pub(crate) fn conv_backward(
    input: &[f32],
    weight: &[f32],
    grad: &[f32],
    g: &ConvGeometry,
    need: [bool; 3],
) -> ConvGrads {
    let item_in = g.c_in * g.h * g.w;
    let batch = input.len() / item_in;
    let (hp, wp) = g.padded();
    let (ho, wo) = g.output_size();
    let (plane, n, taps) = (g.plane(), g.wide(), g.taps());
    let mut grads = ConvGrads {
        input: need[0].then(|| vec![0.0f32; batch * item_in]),
        weight: need[1].then(|| vec![0.0f32; weight.len()]),
        bias: need[2].then(|| vec![0.0f32; g.c_out]),
    };
    let mut wide = vec![0.0f32; g.c_out * n]; // [C_out, H', Wp]
    let mut padded_grad = vec![0.0f32; if need[0] { g.c_in * plane + g.kw } else { 0 }];
    for b in 0..batch {
        let grad_item = &grad[b * g.c_out * ho * wo..(b + 1) * g.c_out * ho * wo];
        wide.par_chunks_mut(n).zip(grad_item.par_chunks(ho * wo)).for_each(|(dst, src)| {
            for (dst_row, src_row) in dst.chunks_exact_mut(wp).zip(src.chunks_exact(wo)) {
                dst_row[..wo].copy_from_slice(src_row);
            }
        });
        if let Some(db) = grads.bias.as_mut() {
            let sums: Vec<f32> = grad_item.par_chunks(ho * wo).map(|c| c.iter().sum()).collect();
            db.iter_mut().zip(sums).for_each(|(d, s)| *d += s);
        }
        if let Some(dw) = grads.weight.as_mut() {
            let padded = g.pad_input(&input[b * item_in..(b + 1) * item_in]);
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let tap = i * g.kw + j;
                    // SAFETY: dst addresses dw[co, ci, i, j] = co * c_in * taps + ci * taps + tap;
                    // lhs is wide [c_out, n]; rhs element (col, ci) reads
                    // padded[ci * plane + offset + col], at most c_in * plane + kw - 2.
                    unsafe {
                        gemm_acc(
                            (g.c_out, g.c_in, n),
                            dw.as_mut_ptr().add(tap),
                            (taps, g.c_in * taps),
                            b > 0,
                            wide.as_ptr(),
                            (1, n),
                            padded.as_ptr().add(g.tap_offset(i, j)),
                            (plane, 1),
                        );
                    }
                }
            }
        }
        if let Some(dx) = grads.input.as_mut() {
            padded_grad.fill(0.0);
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let tap = i * g.kw + j;
                    // SAFETY: dst element (ci, col) is padded_grad[ci * plane + offset + col]
                    // (at most c_in * plane + kw - 2, and rows of n <= plane never overlap);
                    // lhs element (ci, co) reads weight[co, ci, i, j]; rhs is wide [c_out, n].
                    unsafe {
                        gemm_acc(
                            (g.c_in, n, g.c_out),
                            padded_grad.as_mut_ptr().add(g.tap_offset(i, j)),
                            (1, plane),
                            true,
                            weight.as_ptr().add(tap),
                            (g.c_in * taps, taps),
                            wide.as_ptr(),
                            (1, n),
                        );
                    }
                }
            }
            // Crop the padding: [C_in, Hp, Wp] -> [C_in, H, W].
            let dst = &mut dx[b * item_in..(b + 1) * item_in];
            let src = &padded_grad[..g.c_in * plane];
            dst.par_chunks_mut(g.h * g.w).zip(src.par_chunks(hp * wp)).for_each(|(d, s)| {
                for (y, row) in d.chunks_exact_mut(g.w).enumerate() {
                    let start = (y + g.pad[0]) * wp + g.pad[1];
                    row.copy_from_slice(&s[start..start + g.w]);
                }
            });
        }
    }
    grads
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
    let mut out = vec![0.0f32; input.len()];
    out.par_chunks_mut(per_group).zip(input.par_chunks(per_group)).enumerate().for_each(
        |(index, (dst, src))| {
            let (mean, inv_std) = group_stats(src, g.epsilon);
            let first = (index % g.groups) * cpg;
            for (k, (d, s)) in
                dst.chunks_exact_mut(g.spatial).zip(src.chunks_exact(g.spatial)).enumerate()
            {
                let (gamma, beta) = g.affine(affine, first + k);
                // y = (x - mean) * inv_std * gamma + beta = x * scale + shift
                let scale = (inv_std * gamma as f64) as f32;
                let shift = (beta as f64 - mean * inv_std * gamma as f64) as f32;
                for (d, s) in d.iter_mut().zip(s) {
                    let y = s * scale + shift;
                    *d = if g.silu { y * sigmoid(y) } else { y };
                }
            }
        },
    );
    out
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
    let mut out = vec![0.0f32; input.len() * 4];
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
    out
}

/// Backward of [`upsample2x_forward`]: each input pixel gets the sum of its 2x2 block.
pub(crate) fn upsample2x_backward(grad: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut dx = vec![0.0f32; grad.len() / 4];
    dx.par_chunks_mut(h * w).zip(grad.par_chunks(4 * h * w)).for_each(|(dst, src)| {
        for (row, pair) in dst.chunks_exact_mut(w).zip(src.chunks_exact(4 * w)) {
            let (top, bottom) = pair.split_at(2 * w);
            for (x, d) in row.iter_mut().enumerate() {
                *d = top[2 * x] + top[2 * x + 1] + bottom[2 * x] + bottom[2 * x + 1];
            }
        }
    });
    dx
}
