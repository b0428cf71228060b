//! The demo is learnable: closed-form ridge regression from the demo fMRI (read back by the real
//! Algonauts reader) to the demo images' pixels predicts held-out images clearly better than
//! the mean training image.
//!
//! Setup: 400 training + 100 held-out images (the demo's test split), 32x32 px, lh 600 + rh 660
//! vertices, default SNR 1. Targets: images box-downsampled to 8x8 RGB (192 values in [0, 1]).
//! Model: kernel (dual) ridge on centred data, `W = X^T (X X^T + lambda I)^-1 Y`, solved with a
//! hand-written Cholesky factorisation.
//! Metric and margin: mean squared pixel error over the held-out images must be at most 0.5x
//! that of predicting the mean training image (measured: 0.26x); the mean per-image pixel
//! correlation (Pearson over the 192 values of each image, after subtracting the mean image)
//! must be at least 0.6 (measured: 0.79). Control: the same ridge on training fMRI rows
//! shuffled against their images must NOT beat 0.9x the baseline, so the fit comes from the
//! simulated brain's link to the images and not from the regression itself.

use brainscope::data::algonauts::Subject;
use brainscope::data::roi::{MaskMode, VoxelMask};
use brainscope::demo::{DemoConfig, generate_with_progress};
use indicatif::ProgressBar;
use ndarray::{Array2, Axis};
use std::path::Path;

const GRID: usize = 8;

/// Read images and box-average them to `GRID x GRID` RGB: `[images, GRID * GRID * 3]` in [0, 1].
fn pixel_targets(paths: &[impl AsRef<Path>]) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((paths.len(), GRID * GRID * 3));
    for (i, p) in paths.iter().enumerate() {
        let img = image::open(p.as_ref()).expect("demo image readable").to_rgb8();
        let (w, h) = img.dimensions();
        let mut count = vec![0f64; GRID * GRID];
        for (x, y, px) in img.enumerate_pixels() {
            let cell = (y as usize * GRID / h as usize) * GRID + x as usize * GRID / w as usize;
            for c in 0..3 {
                out[[i, cell * 3 + c]] += px[c] as f64 / 255.0;
            }
            count[cell] += 1.0;
        }
        for cell in 0..GRID * GRID {
            for c in 0..3 {
                out[[i, cell * 3 + c]] /= count[cell];
            }
        }
    }
    out
}

/// Lower-triangular `L` with `L L^T = a` (a symmetric positive definite).
fn cholesky(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        assert!(d > 0.0, "matrix not positive definite at {j}");
        let d = d.sqrt();
        l[[j, j]] = d;
        for i in j + 1..n {
            let mut v = a[[i, j]];
            for k in 0..j {
                v -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = v / d;
        }
    }
    l
}

/// Solve `L L^T x = b` for every column of `b`.
fn cholesky_solve(l: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    let n = l.nrows();
    let mut x = b.clone();
    for mut col in x.axis_iter_mut(Axis(1)) {
        for i in 0..n {
            let mut v = col[i];
            for k in 0..i {
                v -= l[[i, k]] * col[k];
            }
            col[i] = v / l[[i, i]];
        }
        for i in (0..n).rev() {
            let mut v = col[i];
            for k in i + 1..n {
                v -= l[[k, i]] * col[k];
            }
            col[i] = v / l[[i, i]];
        }
    }
    x
}

/// Ridge from `x_train` to `y_train` (dual form), predicting `y` for `x_test`.
fn ridge_predict(
    x_train: &Array2<f64>,
    y_train: &Array2<f64>,
    x_test: &Array2<f64>,
    lambda: f64,
) -> Array2<f64> {
    let x_mean = x_train.mean_axis(Axis(0)).unwrap();
    let y_mean = y_train.mean_axis(Axis(0)).unwrap();
    let xc = x_train - &x_mean; // [n, V]
    let yc = y_train - &y_mean; // [n, P]
    let mut k = xc.dot(&xc.t()); // [n, n]
    for i in 0..k.nrows() {
        k[[i, i]] += lambda;
    }
    let alpha = cholesky_solve(&cholesky(&k), &yc); // [n, P]
    let xt = x_test - &x_mean; // [m, V]
    xt.dot(&xc.t()).dot(&alpha) + &y_mean // [m, P]
}

fn mse(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a - b).mapv(|v| v * v).mean().unwrap()
}

/// Mean over images of the Pearson correlation of predicted and true pixels, both taken
/// relative to the mean training image (so the shared mean image earns nothing).
fn mean_pixel_correlation(
    pred: &Array2<f64>,
    truth: &Array2<f64>,
    mean_image: &ndarray::Array1<f64>,
) -> f64 {
    let mut total = 0.0;
    for (p, t) in pred.rows().into_iter().zip(truth.rows()) {
        let p = &p - mean_image;
        let t = &t - mean_image;
        let (pm, tm) = (p.mean().unwrap(), t.mean().unwrap());
        let (p, t) = (p - pm, t - tm);
        total += p.dot(&t) / (p.dot(&p).sqrt() * t.dot(&t).sqrt()).max(1e-12);
    }
    total / pred.nrows() as f64
}

#[test]
fn ridge_from_demo_fmri_beats_the_mean_image_on_held_out_images() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let config = DemoConfig {
        seed: 11,
        train_images: 400,
        test_images: 100,
        image_size: 32,
        lh_vertices: 600,
        rh_vertices: 660,
        ..DemoConfig::default()
    };
    generate_with_progress(&config, &out, &ProgressBar::hidden()).unwrap();

    let subject = Subject::open(&out, "subj01").unwrap();
    let mask = VoxelMask::all(subject.lh_vertices(), subject.rh_vertices(), MaskMode::Zero);
    let train_rows: Vec<usize> = (0..subject.n_train()).collect();
    let x_train = subject.load_fmri(&mask, &train_rows).unwrap().mapv(f64::from);
    let test = subject.test().expect("demo has a test split");
    let test_rows: Vec<usize> = (0..test.images.len()).collect();
    let x_test = subject.load_test_fmri(&mask, &test_rows, &mut |_, _| {}).unwrap().mapv(f64::from);
    assert_eq!(x_train.dim(), (400, 1260));
    assert_eq!(x_test.dim(), (100, 1260));

    let y_train = pixel_targets(subject.train_images());
    let y_test = pixel_targets(&test.images);
    let mean_image = y_train.mean_axis(Axis(0)).unwrap();
    let baseline = mse(&(Array2::zeros(y_test.raw_dim()) + &mean_image), &y_test);

    // lambda relative to the kernel's diagonal (about the vertex count for z-scored data).
    let lambda = 0.5 * x_train.ncols() as f64;
    let pred = ridge_predict(&x_train, &y_train, &x_test, lambda);
    let model = mse(&pred, &y_test);
    let corr = mean_pixel_correlation(&pred, &y_test, &mean_image);
    eprintln!(
        "held-out MSE: ridge {model:.5}, mean image {baseline:.5} (ratio {:.3}); pixel correlation {corr:.3}",
        model / baseline
    );
    assert!(
        model <= 0.5 * baseline,
        "ridge MSE {model:.5} is not <= 0.5 x mean-image MSE {baseline:.5}"
    );
    assert!(corr >= 0.6, "mean per-image pixel correlation {corr:.3} < 0.6");

    // Control: break the fMRI-image pairing (rotate rows by half) and the fit must fail.
    let n = x_train.nrows();
    let shuffled = Array2::from_shape_fn(x_train.raw_dim(), |(i, j)| x_train[[(i + n / 2) % n, j]]);
    let control = mse(&ridge_predict(&shuffled, &y_train, &x_test, lambda), &y_test);
    eprintln!("control (unpaired rows): MSE {control:.5} (ratio {:.3})", control / baseline);
    assert!(
        control > 0.9 * baseline,
        "unpaired fMRI still predicts images: MSE {control:.5} vs {baseline:.5}"
    );
}
