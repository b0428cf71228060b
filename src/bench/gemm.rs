//! The machine's f32 GEMM rate through the `gemm` crate (the kernels burn flex runs on) and,
//! with the `openblas` feature, through OpenBLAS (what `models::fast_cpu` then runs its
//! convolutions on), for `bench train` to put the training step beside.

use std::time::Instant;

/// Best-of-`repeats` GFLOP/s of an `n x n x n` f32 GEMM (`2 n^3` flops) on all rayon threads,
/// after one untimed run.
pub fn gemm_gflops(n: usize, repeats: usize) -> f64 {
    gflops(n, repeats, false)
}

/// As [`gemm_gflops`] through OpenBLAS's `cblas_sgemm`; `None` without the `openblas` feature.
pub fn openblas_gflops(n: usize, repeats: usize) -> Option<f64> {
    cfg!(feature = "openblas").then(|| gflops(n, repeats, true))
}

fn gflops(n: usize, repeats: usize, blas: bool) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5).collect();
    let mut c = vec![0.0f32; n * n];
    let mut once = || {
        let start = Instant::now();
        #[cfg(feature = "openblas")]
        if blas {
            let problem = crate::models::fast_cpu::blas::Problem {
                mnk: (n, n, n),
                dst: (1, n),
                lhs: (1, n),
                rhs: (1, n),
            };
            // SAFETY: as below; the layout is one cblas_sgemm accepts.
            let done = unsafe {
                crate::models::fast_cpu::blas::sgemm(
                    &problem,
                    c.as_mut_ptr(),
                    true,
                    a.as_ptr(),
                    b.as_ptr(),
                )
            };
            assert!(done, "a square row-major product goes to OpenBLAS");
            return start.elapsed().as_secs_f64();
        }
        #[cfg(not(feature = "openblas"))]
        let _ = blas;
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
