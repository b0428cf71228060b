//! Reconstruction metrics: latent L1, PixCorr, SSIM, 2-way identification, CLIP cosine.
//!
//! The image metrics follow MindEye's `Reconstruction_Metrics` (the paper's code has none):
//!
//! - **Resize** first, as MindEye's `transforms.Resize(425, interpolation=BILINEAR)` on float
//!   tensors: the short side goes to 425, the long side to `int(425 * long / short)`, an image
//!   already that size is left alone. Bilinear here is the separable triangle filter whose support
//!   widens by the shrink factor when downsizing: torchvision's tensor path with
//!   `antialias=True`, its default since 0.17 (MindEye ran torchvision 0.15, whose tensor default
//!   was no antialiasing). The two agree exactly when enlarging (the case of MindEye's 256 px images
//!   and of every image under 425 px) and differ only when shrinking, where the antialiased result
//!   is the one that does not alias. The resampler is the `image` crate's `Triangle` filter on f32
//!   pixels (the same weights as PIL and torch's `_upsample_bilinear2d_aa`).
//! - **PixCorr**: Pearson r between the two flattened RGB images (`np.corrcoef(a, b)[0, 1]`, in
//!   f64, clipped to [-1, 1] as numpy does), averaged over pairs. A constant image has no
//!   correlation: the result is NaN, as numpy gives (and MindEye's mean would then be NaN too).
//! - **SSIM**: scikit-image >= 0.20 `structural_similarity(rgb2gray(a), rgb2gray(b),
//!   gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)`: grey
//!   `0.2125 R + 0.7154 G + 0.0721 B`; an 11-tap Gaussian (sigma 1.5, truncate 3.5, radius
//!   `int(3.5 * 1.5 + 0.5) = 5`) applied along rows then columns with scipy.ndimage's
//!   `mode='reflect'` (half-sample symmetric: `d c b a | a b c d | d c b a`); population
//!   covariances; `C1 = (0.01)^2`, `C2 = (0.03)^2`; the mean of the SSIM map without its 5 px
//!   border. Computed in f64. Images under 11 px on a side are refused, as scikit-image does.
//!   (The crop equals the filter radius, so the border mode never reaches the mean; it is kept
//!   exact anyway, for the SSIM map itself.)
//! - **2-way identification** (MindEye's `two_way_identification`): `r = corrcoef(real, pred)`
//!   restricted to the real-rows x pred-rows block; for each prediction column `j`, the number of
//!   real rows `i` with `r[i, j] < r[j, j]`; score = mean count / (N - 1).
//! - **CLIP cosine**: cosine similarity of matched embedding rows; **latent L1**: mean absolute
//!   difference of two latents.
//!
//! Images are `[3, H, W]` f32 arrays in [0, 1] ([`Image01`]); feature matrices are `[N, D]`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::prelude::*;
use image::imageops::FilterType;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

use crate::imageio::{ImageIoError, load_rgb};

/// An RGB image as `[3, H, W]` f32 values in [0, 1] (channel-major, as a torch tensor).
pub type Image01 = Array3<f32>;

/// `skimage.color.rgb2gray` weights (ITU-R BT.709 luma) for R, G, B.
pub const RGB2GRAY: [f64; 3] = [0.2125, 0.7154, 0.0721];

/// SSIM Gaussian window: sigma.
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM Gaussian window: truncation in sigmas (scikit-image sets 3.5 for an 11-tap window).
pub const SSIM_TRUNCATE: f64 = 3.5;
/// SSIM constants `K1`, `K2` (Wang et al. 2004), for `data_range = 1`.
pub const SSIM_K: (f64, f64) = (0.01, 0.03);

/// MindEye's resize before PixCorr and SSIM: the short side to this many pixels.
pub const MINDEYE_RESIZE: u32 = 425;

/// Metric errors; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// An image array is not `[3, H, W]`.
    #[error("expected an RGB image array [3, H, W], got shape {0:?}")]
    NotRgb(Vec<usize>),
    /// Two inputs that must match in shape do not.
    #[error("{what}: shapes differ ({a:?} vs {b:?}); compare arrays of the same shape")]
    ShapeMismatch {
        /// Which metric was asked.
        what: &'static str,
        /// Shape of the first input.
        a: Vec<usize>,
        /// Shape of the second input.
        b: Vec<usize>,
    },
    /// An image smaller than the SSIM window.
    #[error(
        "SSIM needs images at least {win} x {win} pixels (its Gaussian window), got {width} x \
         {height}; resize them first (e.g. --resize 425)"
    )]
    TooSmall {
        /// Window size (11).
        win: usize,
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
    /// 2-way identification with fewer than two rows (no distractor).
    #[error(
        "2-way identification needs at least 2 samples (one true match and a distractor), got {0}"
    )]
    TooFewRows(usize),
    /// A `--resize` value that is neither a positive integer nor `none`.
    #[error("--resize {0:?}: expected a size in pixels for the short side (e.g. 425) or `none`")]
    BadResize(String),
    /// An image file cannot be read.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// A folder cannot be listed.
    #[error("{path}: cannot list the folder; give an existing folder of images")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The listing error.
        #[source]
        source: std::io::Error,
    },
    /// A folder holds no image (after the name filter).
    #[error("{path}: no images found{}; give a folder holding the PNG images", filter_note(.filter))]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
        /// The name filter in force.
        filter: Option<String>,
    },
    /// The two folders hold different numbers of images.
    #[error(
        "{targets} holds {n_targets} image(s) but {recons} holds {n_recons}; images are paired \
         by sorted file name, so both folders need the same count (use --target-match / \
         --recon-match to pick files in a mixed folder)"
    )]
    CountMismatch {
        /// Targets folder.
        targets: PathBuf,
        /// Images in it.
        n_targets: usize,
        /// Reconstructions folder.
        recons: PathBuf,
        /// Images in it.
        n_recons: usize,
    },
}

fn filter_note(filter: &Option<String>) -> String {
    filter.as_ref().map(|f| format!(" with {f:?} in the name")).unwrap_or_default()
}

/// How to resize images before PixCorr / SSIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Keep the (target's) size.
    None,
    /// Short side to this many pixels, bilinear (MindEye: 425).
    ShortSide(u32),
}

impl Default for Resize {
    fn default() -> Self {
        Resize::ShortSide(MINDEYE_RESIZE)
    }
}

impl FromStr for Resize {
    type Err = MetricsError;

    /// `none` or a positive number of pixels.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(Resize::None);
        }
        match s.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Resize::ShortSide(n)),
            _ => Err(MetricsError::BadResize(s.to_string())),
        }
    }
}

impl std::fmt::Display for Resize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resize::None => f.write_str("none"),
            Resize::ShortSide(n) => write!(f, "{n}"),
        }
    }
}

fn check_rgb(img: ArrayView3<f32>) -> Result<(usize, usize), MetricsError> {
    let s = img.shape();
    if s[0] != 3 {
        return Err(MetricsError::NotRgb(s.to_vec()));
    }
    Ok((s[1], s[2]))
}

// ---------------------------------------------------------------------------------------------
// Images in and out

/// RGB8 pixels -> `[3, H, W]` values `x / 255`.
pub fn image01_from_rgb(img: &image::RgbImage) -> Image01 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    Array3::from_shape_fn((3, h, w), |(c, y, x)| {
        img.get_pixel(x as u32, y as u32)[c] as f32 / 255.0
    })
}

/// Read an image file at its own size as `[3, H, W]` in [0, 1] (through [`crate::imageio`]).
pub fn load_image01(path: &Path) -> Result<Image01, MetricsError> {
    let (w, h) = image::image_dimensions(path)
        .map_err(|source| ImageIoError::Read { path: path.into(), source })?;
    Ok(image01_from_rgb(&load_rgb(path, w, h)?))
}

/// A `[B, 3, H, W]` tensor in [-1, 1] (the VAE decoder's output) -> one [`Image01`] per item,
/// `(x / 2 + 0.5)` clamped to [0, 1] as diffusers' image post-processing does.
pub fn images01_from_tensor(images: Tensor<4>) -> Result<Vec<Image01>, MetricsError> {
    let [b, c, h, w] = images.dims();
    if c != 3 {
        return Err(MetricsError::NotRgb(vec![b, c, h, w]));
    }
    let values =
        images.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 after convert");
    let all = Array3::from_shape_vec((b * 3, h, w), values).expect("shape from dims");
    Ok((0..b)
        .map(|i| {
            all.slice(ndarray::s![i * 3..i * 3 + 3, .., ..])
                .mapv(|v| (v / 2.0 + 0.5).clamp(0.0, 1.0))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Resize

/// torchvision `Resize(short)`'s output size `(width, height)` for a `width` x `height` image:
/// the short side becomes `short`, the long side `int(short * long / short_side)`.
pub fn short_side_size(width: u32, height: u32, short: u32) -> (u32, u32) {
    // torchvision `_compute_resized_output_size`: integer truncation of a float ratio.
    let long_of = |s: u32, l: u32| (short as f64 * l as f64 / s as f64) as u32;
    if width <= height { (short, long_of(width, height)) } else { (long_of(height, width), short) }
}

/// Resize a `[3, H, W]` image to `width` x `height`, bilinear with antialiasing when shrinking
/// (torchvision's tensor `Resize(..., BILINEAR, antialias=True)`); the same size is a copy.
pub fn resize_bilinear(
    img: ArrayView3<f32>,
    width: u32,
    height: u32,
) -> Result<Image01, MetricsError> {
    let (h, w) = check_rgb(img)?;
    if (w as u32, h as u32) == (width, height) {
        return Ok(img.to_owned());
    }
    // [H, W, 3] interleaved for the `image` crate's resampler (f32 subpixels, no quantisation).
    let hwc: Vec<f32> = img.permuted_axes([1, 2, 0]).iter().copied().collect();
    let buf = image::Rgb32FImage::from_raw(w as u32, h as u32, hwc).expect("w * h * 3 values");
    let out = image::imageops::resize(&buf, width, height, FilterType::Triangle);
    let (ow, oh) = (width as usize, height as usize);
    let hwc = ndarray::ArrayView3::from_shape((oh, ow, 3), out.as_raw()).expect("resized buffer");
    Ok(hwc.permuted_axes([2, 0, 1]).as_standard_layout().into_owned()) // [3, height, width]
}

/// Apply a [`Resize`] to one image.
pub fn apply_resize(img: ArrayView3<f32>, resize: Resize) -> Result<Image01, MetricsError> {
    let (h, w) = check_rgb(img)?;
    match resize {
        Resize::None => Ok(img.to_owned()),
        Resize::ShortSide(s) => {
            let (nw, nh) = short_side_size(w as u32, h as u32, s);
            resize_bilinear(img, nw, nh)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PixCorr

/// Pearson r of two equal-length vectors as `np.corrcoef(a, b)[0, 1]` (f64, clipped to
/// [-1, 1]); NaN when either is constant.
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    // numpy divides the covariance by each standard deviation; 0 / 0 is NaN, and NaN survives
    // the clip (np.clip keeps NaN).
    let r = sab / saa.sqrt() / sbb.sqrt();
    if r.is_nan() { r } else { r.clamp(-1.0, 1.0) }
}

/// PixCorr of one pair: Pearson r over the flattened RGB images (already resized).
pub fn pixcorr(target: ArrayView3<f32>, recon: ArrayView3<f32>) -> Result<f64, MetricsError> {
    same_shape("PixCorr", target.shape(), recon.shape())?;
    check_rgb(target)?;
    let a = target.as_standard_layout();
    let b = recon.as_standard_layout();
    Ok(pearson(a.as_slice().expect("standard layout"), b.as_slice().expect("standard layout")))
}

fn same_shape(what: &'static str, a: &[usize], b: &[usize]) -> Result<(), MetricsError> {
    if a != b {
        return Err(MetricsError::ShapeMismatch { what, a: a.to_vec(), b: b.to_vec() });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SSIM

/// `skimage.color.rgb2gray`: `[3, H, W]` -> `[H, W]` grey in f64.
pub fn rgb2gray(img: ArrayView3<f32>) -> Result<Array2<f64>, MetricsError> {
    let (h, w) = check_rgb(img)?;
    Ok(Array2::from_shape_fn((h, w), |(y, x)| {
        (0..3).map(|c| img[[c, y, x]] as f64 * RGB2GRAY[c]).sum()
    }))
}

/// scipy.ndimage's 1-D Gaussian kernel: radius `int(truncate * sigma + 0.5)`, normalised.
pub fn gaussian_kernel(sigma: f64, truncate: f64) -> Vec<f64> {
    let radius = (truncate * sigma + 0.5) as i64;
    let k: Vec<f64> =
        (-radius..=radius).map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp()).collect();
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// scipy.ndimage `mode='reflect'` index: half-sample symmetric (`d c b a | a b c d | d c b a`),
/// periodic with period `2n` for any distance outside.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// Separable correlation with `kernel` along rows then columns, `reflect` borders, as
/// `scipy.ndimage.gaussian_filter` (axis 0 first, then axis 1).
fn gaussian_filter(img: ArrayView2<f64>, kernel: &[f64]) -> Array2<f64> {
    let (h, w) = img.dim();
    let r = (kernel.len() / 2) as isize;
    let mut tmp = Array2::<f64>::zeros((h, w)); // [H, W] filtered along axis 0
    for y in 0..h {
        for (k, &wk) in kernel.iter().enumerate() {
            let src = img.row(reflect(y as isize + k as isize - r, h));
            tmp.row_mut(y).scaled_add(wk, &src);
        }
    }
    let mut out = Array2::<f64>::zeros((h, w)); // [H, W] then along axis 1
    for (row_in, mut row_out) in tmp.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        for x in 0..w {
            row_out[x] = kernel
                .iter()
                .enumerate()
                .map(|(k, &wk)| wk * row_in[reflect(x as isize + k as isize - r, w)])
                .sum();
        }
    }
    out
}

/// SSIM of two grey images (values in [0, 1]), as scikit-image's `structural_similarity` with
/// `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0`.
pub fn ssim_gray(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Result<f64, MetricsError> {
    same_shape("SSIM", a.shape(), b.shape())?;
    let kernel = gaussian_kernel(SSIM_SIGMA, SSIM_TRUNCATE);
    let win = kernel.len(); // 11
    let (h, w) = a.dim();
    if h < win || w < win {
        return Err(MetricsError::TooSmall { win, width: w, height: h });
    }
    let f = |x: ArrayView2<f64>| gaussian_filter(x, &kernel);
    let ux = f(a);
    let uy = f(b);
    let uxx = f((&a * &a).view());
    let uyy = f((&b * &b).view());
    let uxy = f((&a * &b).view());
    let (c1, c2) = (SSIM_K.0 * SSIM_K.0, SSIM_K.1 * SSIM_K.1); // data_range = 1
    let pad = (win - 1) / 2;
    let mut sum = 0.0;
    for y in pad..h - pad {
        for x in pad..w - pad {
            let (mx, my) = (ux[[y, x]], uy[[y, x]]);
            let vx = uxx[[y, x]] - mx * mx; // population covariances (cov_norm = 1)
            let vy = uyy[[y, x]] - my * my;
            let vxy = uxy[[y, x]] - mx * my;
            let (a1, a2) = (2.0 * mx * my + c1, 2.0 * vxy + c2);
            let (b1, b2) = (mx * mx + my * my + c1, vx + vy + c2);
            sum += (a1 * a2) / (b1 * b2);
        }
    }
    Ok(sum / ((h - 2 * pad) * (w - 2 * pad)) as f64)
}

/// SSIM of two RGB images (already resized): [`rgb2gray`] then [`ssim_gray`].
pub fn ssim(target: ArrayView3<f32>, recon: ArrayView3<f32>) -> Result<f64, MetricsError> {
    same_shape("SSIM", target.shape(), recon.shape())?;
    ssim_gray(rgb2gray(target)?.view(), rgb2gray(recon)?.view())
}

// ---------------------------------------------------------------------------------------------
// One pair, as `brainscope metrics` and `eval` score it

/// PixCorr and SSIM of one target / reconstruction pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairScore {
    /// Pearson r over RGB pixels (NaN when an image is constant).
    pub pixcorr: f64,
    /// Grey SSIM.
    pub ssim: f64,
}

/// Score one pair: the target is resized per `resize`; the reconstruction is resized straight
/// to the target's final size (the same bilinear filter), so pairs whose sizes or aspect ratios
/// differ are still compared pixel for pixel in the target's frame.
pub fn score_pair(
    target: ArrayView3<f32>,
    recon: ArrayView3<f32>,
    resize: Resize,
) -> Result<PairScore, MetricsError> {
    let t = apply_resize(target, resize)?; // [3, H', W']
    let (_, h, w) = t.dim();
    let r = resize_bilinear(recon, w as u32, h as u32)?; // [3, H', W']
    Ok(PairScore { pixcorr: pixcorr(t.view(), r.view())?, ssim: ssim(t.view(), r.view())? })
}

/// Mean as numpy's `np.mean`: NaN when any value is NaN or the list is empty.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

// ---------------------------------------------------------------------------------------------
// Feature-space metrics

/// Row-wise standardisation for Pearson r: each row minus its mean, divided by its norm (f64).
fn standardise_rows(x: ArrayView2<f32>) -> Array2<f64> {
    let mut z = x.mapv(|v| v as f64);
    for mut row in z.axis_iter_mut(Axis(0)) {
        let m = row.mean().unwrap_or(f64::NAN);
        row.mapv_inplace(|v| v - m);
        let norm = row.dot(&row).sqrt();
        row.mapv_inplace(|v| v / norm);
    }
    z
}

/// MindEye's 2-way identification, per prediction: `counts[j]` = how many real rows `i` have
/// `r[i, j] < r[j, j]`, where `r[i, j]` is the Pearson r of real row `i` and predicted row `j`.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoWay {
    /// Distractors beaten by each prediction (MindEye's `success_cnt`).
    pub counts: Vec<usize>,
    /// `mean(counts) / (N - 1)` (MindEye's `perf`): 0.5 is chance, 1 perfect.
    pub score: f64,
}

/// 2-way identification of predicted feature rows `pred` `[N, D]` against the real rows
/// `real` `[N, D]` (row `i` of each is the same stimulus), as MindEye's
/// `two_way_identification`: `np.corrcoef(real, pred)[:N, N:]`, `success = r < diag(r)`
/// (broadcast per column), `mean(sum(success, 0)) / (N - 1)`. A NaN correlation (a constant
/// row) never counts as a success, as numpy's comparison gives.
pub fn two_way_identification(
    real: ArrayView2<f32>,
    pred: ArrayView2<f32>,
) -> Result<TwoWay, MetricsError> {
    same_shape("2-way identification", real.shape(), pred.shape())?;
    let n = real.nrows();
    if n < 2 {
        return Err(MetricsError::TooFewRows(n));
    }
    let zr = standardise_rows(real); // [N, D]
    let zp = standardise_rows(pred); // [N, D]
    let r = zr.dot(&zp.t()).mapv(|v| if v.is_nan() { v } else { v.clamp(-1.0, 1.0) }); // [N, N]
    let counts: Vec<usize> =
        (0..n).map(|j| (0..n).filter(|&i| r[[i, j]] < r[[j, j]]).count()).collect();
    let score = counts.iter().sum::<usize>() as f64 / n as f64 / (n - 1) as f64;
    Ok(TwoWay { counts, score })
}

/// Cosine similarity of matched rows: `cos(a[i], b[i])` for each `i` (`[N, D]` each); NaN for a
/// zero row.
pub fn cosine_similarity_rows(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
) -> Result<Vec<f64>, MetricsError> {
    same_shape("CLIP cosine similarity", a.shape(), b.shape())?;
    Ok(a.axis_iter(Axis(0))
        .zip(b.axis_iter(Axis(0)))
        .map(|(x, y)| {
            let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
            for (&p, &q) in x.iter().zip(y.iter()) {
                let (p, q) = (p as f64, q as f64);
                xy += p * q;
                xx += p * p;
                yy += q * q;
            }
            xy / (xx.sqrt() * yy.sqrt())
        })
        .collect())
}

/// Latent L1: mean absolute difference of two latents of the same length (the training loss's
/// `F.l1_loss`, in f64).
pub fn latent_l1(a: &[f32], b: &[f32]) -> Result<f64, MetricsError> {
    same_shape("latent L1", &[a.len()], &[b.len()])?;
    Ok(a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).abs()).sum::<f64>() / a.len() as f64)
}

// ---------------------------------------------------------------------------------------------
// Folders

/// The images of a folder, sorted by file name: every regular file whose name does not start
/// with `.` and, when `name_match` is given, contains it. Sub-folders are skipped; a file that is
/// not an image fails later, when it is read.
pub fn list_images(dir: &Path, name_match: Option<&str>) -> Result<Vec<PathBuf>, MetricsError> {
    let folder = |source| MetricsError::Folder { path: dir.into(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(folder)? {
        let entry = entry.map_err(folder)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name_match.is_none_or(|m| name.contains(m)) {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(MetricsError::EmptyFolder {
            path: dir.into(),
            filter: name_match.map(str::to_string),
        });
    }
    Ok(files)
}

/// Pair two folders' images by sorted file name (`i`-th target with `i`-th reconstruction).
pub fn pair_folders(
    targets: &Path,
    recons: &Path,
    target_match: Option<&str>,
    recon_match: Option<&str>,
) -> Result<Vec<(PathBuf, PathBuf)>, MetricsError> {
    let t = list_images(targets, target_match)?;
    let r = list_images(recons, recon_match)?;
    if t.len() != r.len() {
        return Err(MetricsError::CountMismatch {
            targets: targets.into(),
            n_targets: t.len(),
            recons: recons.into(),
            n_recons: r.len(),
        });
    }
    Ok(t.into_iter().zip(r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    fn ramp(h: usize, w: usize) -> Image01 {
        Array3::from_shape_fn((3, h, w), |(c, y, x)| ((c * 7 + y * 3 + x * 5) % 17) as f32 / 16.0)
    }

    #[test]
    fn reflect_is_half_sample_symmetric() {
        // d c b a | a b c d | d c b a
        let idx: Vec<usize> = (-4..8).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
        assert_eq!(reflect(-3, 1), 0);
        assert_eq!(reflect(9, 4), 1); // periodic beyond one reflection
    }

    #[test]
    fn gaussian_window_is_eleven_taps_normalised() {
        let k = gaussian_kernel(SSIM_SIGMA, SSIM_TRUNCATE);
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!((k[5] / k[4] - (0.5f64 / 2.25).exp()).abs() < 1e-12);
    }

    #[test]
    fn pixcorr_identity_negation_and_constant() {
        let a = ramp(12, 13);
        assert!((pixcorr(a.view(), a.view()).unwrap() - 1.0).abs() < 1e-12);
        let neg = a.mapv(|v| 1.0 - v);
        assert!((pixcorr(a.view(), neg.view()).unwrap() + 1.0).abs() < 1e-12);
        // A constant image has no correlation: NaN, as np.corrcoef gives.
        let flat = Array3::from_elem((3, 12, 13), 0.5f32);
        assert!(pixcorr(a.view(), flat.view()).unwrap().is_nan());
        assert!(mean(&[0.5, f64::NAN]).is_nan());
        let other = ramp(12, 14);
        assert!(matches!(
            pixcorr(a.view(), other.view()),
            Err(MetricsError::ShapeMismatch { what: "PixCorr", .. })
        ));
    }

    #[test]
    fn ssim_identity_constant_and_small() {
        let a = ramp(20, 23);
        assert!((ssim(a.view(), a.view()).unwrap() - 1.0).abs() < 1e-12);
        // Two equal constant images: SSIM 1 (the constants keep 0/0 away).
        let c = Array3::from_elem((3, 20, 23), 0.25f32);
        assert!((ssim(c.view(), c.view()).unwrap() - 1.0).abs() < 1e-12);
        assert!(ssim(a.view(), c.view()).unwrap() < 0.5);
        let small = ramp(10, 30);
        let e = ssim(small.view(), small.view()).unwrap_err();
        assert!(matches!(e, MetricsError::TooSmall { win: 11, width: 30, height: 10 }), "{e}");
        assert!(e.to_string().contains("--resize"));
    }

    #[test]
    fn resize_sizes_as_torchvision() {
        assert_eq!(short_side_size(64, 64, 425), (425, 425));
        assert_eq!(short_side_size(37, 29, 425), (542, 425)); // int(425 * 37 / 29) = 542
        assert_eq!(short_side_size(29, 37, 425), (425, 542));
        assert_eq!(short_side_size(29, 41, 425), (425, 600)); // 600.86 truncates, as int() does
        assert_eq!(short_side_size(512, 512, 425), (425, 425));
        let a = ramp(5, 7);
        assert_eq!(apply_resize(a.view(), Resize::None).unwrap(), a);
        // Already 425 on the short side: unchanged, as torchvision skips the resample.
        let b = ramp(425, 430);
        assert_eq!(apply_resize(b.view(), Resize::ShortSide(425)).unwrap(), b);
        let up = apply_resize(a.view(), Resize::ShortSide(10)).unwrap();
        assert_eq!(up.dim(), (3, 10, 14));
        // Constant images stay constant through the filter (weights sum to 1).
        let c = Array3::from_elem((3, 9, 9), 0.3f32);
        let d = resize_bilinear(c.view(), 4, 17).unwrap();
        assert!(d.iter().all(|&v| (v - 0.3).abs() < 1e-6));
    }

    #[test]
    fn resize_parses() {
        assert_eq!("none".parse::<Resize>().unwrap(), Resize::None);
        assert_eq!("425".parse::<Resize>().unwrap(), Resize::ShortSide(425));
        assert!("0".parse::<Resize>().is_err());
        assert!("big".parse::<Resize>().unwrap_err().to_string().contains("none"));
    }

    #[test]
    fn two_way_counts_by_column() {
        // Three samples; prediction 0 matches real 0 best, prediction 2 is closer to real 1
        // than to its own real row.
        let real = array![[1.0f32, 0.0, 0.0, 0.2], [0.0, 1.0, 0.0, 0.1], [0.0, 0.0, 1.0, 0.3]];
        let pred = array![[0.9f32, 0.1, 0.0, 0.2], [0.1, 0.8, 0.2, 0.0], [0.1, 0.9, 0.6, 0.0]];
        let t = two_way_identification(real.view(), pred.view()).unwrap();
        assert_eq!(t.counts, [2, 2, 1]);
        assert!((t.score - 5.0 / 6.0).abs() < 1e-12);
        let one = Array2::<f32>::zeros((1, 4));
        assert!(matches!(
            two_way_identification(one.view(), one.view()),
            Err(MetricsError::TooFewRows(1))
        ));
    }

    #[test]
    fn cosine_and_l1() {
        let a = array![[1.0f32, 0.0], [1.0, 1.0], [0.0, 0.0]];
        let b = array![[2.0f32, 0.0], [-1.0, -1.0], [1.0, 0.0]];
        let c = cosine_similarity_rows(a.view(), b.view()).unwrap();
        assert!((c[0] - 1.0).abs() < 1e-12 && (c[1] + 1.0).abs() < 1e-12 && c[2].is_nan());
        assert!(
            (latent_l1(&[1.0, -2.0, 0.5], &[0.0, 1.0, 0.5]).unwrap() - 4.0 / 3.0).abs() < 1e-12
        );
        assert!(latent_l1(&[1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn tensor_images_map_to_unit_range() {
        let device = crate::backend::default_device();
        let t = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(vec![-1.0f32, 0.0, 1.0, 3.0, -3.0, 0.5], [2, 3, 1, 1]),
            &device,
        );
        let imgs = images01_from_tensor(t).unwrap();
        assert_eq!(imgs.len(), 2);
        assert_eq!(imgs[0].iter().copied().collect::<Vec<_>>(), [0.0, 0.5, 1.0]);
        assert_eq!(imgs[1].iter().copied().collect::<Vec<_>>(), [1.0, 0.0, 0.75]);
    }
}
