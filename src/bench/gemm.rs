//! The machine's f32 GEMM rate through the `gemm` crate (the kernels burn flex and
//! `models::fast_cpu` run on), for `bench train` to put the training step beside.

use std::time::Instant;

/// Best-of-`repeats` GFLOP/s of an `n x n x n` f32 GEMM (`2 n^3` flops) on all rayon threads,
/// after one untimed run.
pub fn gemm_gflops(n: usize, repeats: usize) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5).collect();
    let mut c = vec![0.0f32; n * n];
    let mut once = || {
        let start = Instant::now();
        // SAFETY: a, b and c are n x n row-major (column stride 1, row stride n).
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
        start.elapsed().as_secs_f64()
    };
    once();
    let best = (0..repeats.max(1)).map(|_| once()).fold(f64::INFINITY, f64::min);
    2.0 * (n as f64).powi(3) / best / 1e9
}
