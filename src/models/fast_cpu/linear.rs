//! Slice kernels of a bias-free linear layer, `y = x @ w` in burn's layout (`w` is `[k, n]`,
//! row-major), and its two backward products, as the GEMMs of [`super::kernels::gemm_acc`]
//! (OpenBLAS with the `openblas` feature, else the `gemm` crate burn itself uses).
//!
//! What this adds over burn's generic linear: with the `openblas` feature every product runs on
//! OpenBLAS, which handles the transposed operands natively and is 2-3x faster than the `gemm`
//! crate on the MLP's batch-16 forward (measured: `[16, 39548] @ [39548, 2048]` 46 ms against
//! 95 ms, `[16, 2048] @ [2048, 16384]` 15 ms against 45 ms); and the weight gradient, the
//! model's largest buffer (324 MB for the paper's input layer), is written into memory advised
//! to use transparent huge pages, so a fresh one each step costs 160 page faults instead of
//! 80,000. Hand-written streaming loops were tried first and lost to OpenBLAS on every shape.

use super::kernels::gemm_acc;
use crate::huge_pages::filled_buffer;

/// Forward: `x` `[m, k]` @ `w` `[k, n]` -> `[m, n]`.
pub(crate) fn forward(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert!(x.len() == m * k && w.len() == k * n);
    // SAFETY: x is [m, k], w is [k, n] and y is [m, n], all row-major (column stride 1); the
    // product (read_dst false) writes every element of y.
    unsafe {
        filled_buffer(m * n, |y| {
            gemm_acc((m, n, k), y, (1, n), false, x.as_ptr(), (1, k), w.as_ptr(), (1, n))
        })
    } // [m, n]
}

/// Input gradient: `dy` `[m, n]` @ `w^T` `[n, k]` -> `[m, k]`.
pub(crate) fn backward_input(dy: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert!(dy.len() == m * n && w.len() == k * n);
    // SAFETY: dy is [m, n] row-major; w^T is w ([k, n] row-major) read with (column, row)
    // strides (n, 1); dx is [m, k] row-major, every element written.
    unsafe {
        filled_buffer(m * k, |dx| {
            gemm_acc((m, k, n), dx, (1, k), false, dy.as_ptr(), (1, n), w.as_ptr(), (n, 1))
        })
    } // [m, k]
}

/// Weight gradient: `x^T` `[k, m]` @ `dy` `[m, n]` -> `[k, n]`.
pub(crate) fn backward_weight(x: &[f32], dy: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert!(x.len() == m * k && dy.len() == m * n);
    // SAFETY: x^T is x ([m, k] row-major) read with (column, row) strides (k, 1); dy is [m, n]
    // and dw [k, n], both row-major, every element of dw written.
    unsafe {
        filled_buffer(k * n, |dw| {
            gemm_acc((k, n, m), dw, (1, n), false, x.as_ptr(), (k, 1), dy.as_ptr(), (1, n))
        })
    } // [k, n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] =
                    (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum::<f64>() as f32;
            }
        }
        out
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0f32; a.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = a[r * cols + c];
            }
        }
        t
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "element {i}: {x} vs {y}");
        }
    }

    #[test]
    fn the_three_products_match_a_naive_matmul_on_odd_sizes() {
        for &(m, k, n) in &[(1, 1, 1), (3, 37, 29), (16, 130, 517), (64, 9, 1031), (5, 200, 16)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
            let w: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 89) as f32 - 44.0) / 44.0).collect();
            let dy: Vec<f32> = (0..m * n).map(|i| ((i * 29 % 97) as f32 - 48.0) / 48.0).collect();
            close(&forward(&x, &w, m, k, n), &naive(&x, &w, m, k, n));
            close(&backward_input(&dy, &w, m, k, n), &naive(&dy, &transpose(&w, k, n), m, n, k));
            close(&backward_weight(&x, &dy, m, k, n), &naive(&transpose(&x, m, k), &dy, k, m, n));
        }
    }
}
