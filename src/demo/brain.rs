//! The simulated brain: per-vertex ROI labels and response models, and the fMRI they produce.
//!
//! Each hemisphere's vertices are laid out in contiguous blocks, one per ROI (in the order of
//! [`ROI_CLASSES`]), then stream-only vertices, then unlabeled ones. Every vertex has a model:
//!
//! - **pRF** (V1v..hV4 and the early/midventral streams): a Gaussian receptive field over image
//!   position in the contralateral hemifield (ventral ROIs: upper field, dorsal: lower), its
//!   size growing with eccentricity and up the hierarchy V1 < V2 < V3 < hV4, weighting one
//!   feature map: luminance, red-green, blue-yellow or local contrast;
//! - **category** (floc ROIs, ventral/lateral/parietal streams): a response to the scene's objects,
//!   `sum selectivity[category] * sqrt(area) * broad Gaussian(object position)`, with the ROI's
//!   own category preferred (face ROIs to faces, ...);
//! - **none** (unlabeled vertices): noise only.
//!
//! The noiseless signal of each vertex is scaled to unit standard deviation over all images,
//! Gaussian noise of standard deviation `1 / snr` is added, and every vertex is z-scored over
//! all images (training and test together), like the challenge's preprocessed betas.

use super::scenes::{Category, SceneObject};
use crate::data::roi_table::ROI_CLASSES;
use ndarray::{Array2, ArrayView2, Axis, s};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use std::f32::consts::PI;

/// Side of the pooled feature grid the pRFs see (the image is box-averaged down to it).
pub const FEATURE_GRID: usize = 32;
/// Feature maps per grid cell: luminance, red-green, blue-yellow, local contrast.
pub const FEATURE_MAPS: usize = 4;

/// Which hemisphere; the left one sees the right half of the image and vice versa.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hemisphere {
    /// Left hemisphere (`lh`): right visual field.
    Left,
    /// Right hemisphere (`rh`): left visual field.
    Right,
}

impl Hemisphere {
    /// `lh` or `rh`, as in the file names.
    pub fn prefix(self) -> &'static str {
        match self {
            Hemisphere::Left => "lh",
            Hemisphere::Right => "rh",
        }
    }

    /// +1 for the right visual field (left hemisphere), -1 for the left.
    fn field_side(self) -> f32 {
        match self {
            Hemisphere::Left => 1.0,
            Hemisphere::Right => -1.0,
        }
    }
}

/// A Gaussian population receptive field over the pooled feature grid.
#[derive(Debug, Clone, Copy)]
struct Prf {
    /// Centre in image units.
    x: f32,
    y: f32,
    /// Standard deviation in image units.
    sigma: f32,
    /// Weight of each feature map (luminance, red-green, blue-yellow, contrast).
    maps: [f32; FEATURE_MAPS],
}

/// Category selectivity with a broad spatial tuning.
#[derive(Debug, Clone, Copy)]
struct CategoryTuning {
    /// Response per category, indexed by [`Category::index`].
    selectivity: [f32; 5],
    x: f32,
    y: f32,
    sigma: f32,
}

/// One vertex's response model: a weighted sum of a pRF and a category part (either optional).
#[derive(Debug, Clone, Copy, Default)]
struct VertexModel {
    prf: Option<(Prf, f32)>,
    category: Option<(CategoryTuning, f32)>,
}

/// How a block of vertices responds.
#[derive(Debug, Clone, Copy)]
enum Tuning {
    /// pRF at hierarchy level 0..=3 (V1..hV4); `Some(true)` upper field only, `Some(false)` lower.
    Prf { level: usize, ventral: Option<bool> },
    /// Category-selective for one category, with a weak large contrast pRF.
    Selective(Category),
    /// Mixed categories (ventral stream) with an optional preference.
    Mixed(Option<Category>),
    /// Object position regardless of category (parietal).
    Position,
    /// Noise only.
    Silent,
}

/// One block of the vertex layout.
struct Block {
    /// `(class index in ROI_CLASSES, label)` or `None` for stream-only / unlabeled vertices.
    roi: Option<(usize, i32)>,
    /// Streams label (0 = none).
    stream: i32,
    /// Share of the hemisphere's vertices.
    fraction: f32,
    tuning: Tuning,
}

// Streams labels (see ROI_CLASSES "streams").
const EARLY: i32 = 1;
const MIDVENTRAL: i32 = 2;
const MIDLATERAL: i32 = 3;
const MIDPARIETAL: i32 = 4;
const VENTRAL: i32 = 5;
const LATERAL: i32 = 6;
const PARIETAL: i32 = 7;

/// The vertex layout: every ROI of [`ROI_CLASSES`] except streams, with its stream label and
/// tuning; then stream-only blocks. What is left over is unlabeled.
fn blocks() -> Vec<Block> {
    use Category::*;
    let roi = |class: &str, name: &str| {
        let (ci, (_, rois)) = ROI_CLASSES
            .iter()
            .enumerate()
            .find(|(_, (c, _))| *c == class)
            .expect("ROI class in table");
        let label = rois.iter().find(|(_, n)| *n == name).expect("ROI name in table").0;
        Some((ci, label))
    };
    let prf = |level, ventral| Tuning::Prf { level, ventral };
    let b = |roi, stream, fraction, tuning| Block { roi, stream, fraction, tuning };
    vec![
        b(roi("prf-visualrois", "V1v"), EARLY, 0.05, prf(0, Some(true))),
        b(roi("prf-visualrois", "V1d"), EARLY, 0.05, prf(0, Some(false))),
        b(roi("prf-visualrois", "V2v"), EARLY, 0.045, prf(1, Some(true))),
        b(roi("prf-visualrois", "V2d"), EARLY, 0.045, prf(1, Some(false))),
        b(roi("prf-visualrois", "V3v"), EARLY, 0.04, prf(2, Some(true))),
        b(roi("prf-visualrois", "V3d"), EARLY, 0.04, prf(2, Some(false))),
        b(roi("prf-visualrois", "hV4"), MIDVENTRAL, 0.035, prf(3, None)),
        b(roi("floc-bodies", "EBA"), LATERAL, 0.04, Tuning::Selective(Bodies)),
        b(roi("floc-bodies", "FBA-1"), VENTRAL, 0.012, Tuning::Selective(Bodies)),
        b(roi("floc-bodies", "FBA-2"), VENTRAL, 0.012, Tuning::Selective(Bodies)),
        b(roi("floc-bodies", "mTL-bodies"), VENTRAL, 0.006, Tuning::Selective(Bodies)),
        b(roi("floc-faces", "OFA"), MIDLATERAL, 0.02, Tuning::Selective(Faces)),
        b(roi("floc-faces", "FFA-1"), VENTRAL, 0.02, Tuning::Selective(Faces)),
        b(roi("floc-faces", "FFA-2"), VENTRAL, 0.018, Tuning::Selective(Faces)),
        b(roi("floc-faces", "mTL-faces"), VENTRAL, 0.008, Tuning::Selective(Faces)),
        b(roi("floc-faces", "aTL-faces"), VENTRAL, 0.008, Tuning::Selective(Faces)),
        b(roi("floc-places", "OPA"), MIDPARIETAL, 0.03, Tuning::Selective(Places)),
        b(roi("floc-places", "PPA"), VENTRAL, 0.03, Tuning::Selective(Places)),
        b(roi("floc-places", "RSC"), PARIETAL, 0.02, Tuning::Selective(Places)),
        b(roi("floc-words", "OWFA"), MIDVENTRAL, 0.015, Tuning::Selective(Words)),
        b(roi("floc-words", "VWFA-1"), VENTRAL, 0.02, Tuning::Selective(Words)),
        b(roi("floc-words", "VWFA-2"), VENTRAL, 0.015, Tuning::Selective(Words)),
        b(roi("floc-words", "mfs-words"), VENTRAL, 0.01, Tuning::Selective(Words)),
        b(roi("floc-words", "mTL-words"), VENTRAL, 0.008, Tuning::Selective(Words)),
        // Stream-only vertices (outside every prf/floc ROI).
        b(None, EARLY, 0.03, prf(1, None)),
        b(None, MIDVENTRAL, 0.03, prf(3, None)),
        b(None, MIDLATERAL, 0.03, Tuning::Mixed(Some(Objects))),
        b(None, MIDPARIETAL, 0.03, Tuning::Position),
        b(None, VENTRAL, 0.05, Tuning::Mixed(None)),
        b(None, LATERAL, 0.05, Tuning::Mixed(Some(Bodies))),
        b(None, PARIETAL, 0.06, Tuning::Position),
        // Unlabeled: the rest.
        b(None, 0, 0.0, Tuning::Silent),
    ]
}

/// One hemisphere's simulated vertices: ROI labels per class and response models.
pub struct HemisphereBrain {
    /// Which hemisphere.
    pub hemisphere: Hemisphere,
    /// Label per vertex for each class of [`ROI_CLASSES`] (same order), 0 = none.
    pub labels: Vec<Vec<i32>>,
    models: Vec<VertexModel>,
}

impl HemisphereBrain {
    /// Lay out `vertices` vertices (at least one per ROI: call with `vertices >= MIN_VERTICES`)
    /// and draw each vertex's model from `rng`.
    pub fn new(hemisphere: Hemisphere, vertices: usize, rng: &mut impl Rng) -> Self {
        let blocks = blocks();
        let mut labels = vec![vec![0i32; vertices]; ROI_CLASSES.len()];
        let streams = ROI_CLASSES.iter().position(|(c, _)| *c == "streams").expect("streams class");
        let mut models = Vec::with_capacity(vertices);
        for block in &blocks {
            let n = if block.fraction > 0.0 {
                ((block.fraction * vertices as f32).round() as usize)
                    .max(1)
                    .min(vertices - models.len())
            } else {
                vertices - models.len()
            };
            for _ in 0..n {
                let v = models.len();
                if let Some((class, label)) = block.roi {
                    labels[class][v] = label;
                }
                labels[streams][v] = block.stream;
                models.push(draw_model(hemisphere, block.tuning, rng));
            }
        }
        Self { hemisphere, labels, models }
    }

    /// Number of vertices.
    pub fn vertices(&self) -> usize {
        self.models.len()
    }

    /// Simulate responses `[images, vertices]` (z-scored per vertex) to scenes with pooled
    /// `features` `[images, FEATURE_MAPS * FEATURE_GRID^2]` and `objects` per scene.
    pub fn respond(
        &self,
        features: ArrayView2<f32>,
        objects: &[Vec<SceneObject>],
        snr: f32,
        rng: &mut impl Rng,
    ) -> Array2<f32> {
        let n = features.nrows();
        let v = self.vertices();
        let cells = FEATURE_GRID * FEATURE_GRID;
        let mut out = Array2::<f32>::zeros((n, v)); // [images, vertices]
        // pRF drive in chunks of vertices: [images, features] x [features, chunk].
        const CHUNK: usize = 512;
        let mut weights = Array2::<f32>::zeros((CHUNK, FEATURE_MAPS * cells)); // [chunk, features]
        let mut cat = vec![0f32; n];
        for start in (0..v).step_by(CHUNK) {
            let end = (start + CHUNK).min(v);
            weights.fill(0.0);
            for (j, model) in self.models[start..end].iter().enumerate() {
                if let Some((prf, _)) = model.prf {
                    prf_weights(&prf, weights.row_mut(j).into_slice().expect("contiguous row"));
                }
            }
            let drive = features.dot(&weights.slice(s![..end - start, ..]).t()); // [images, chunk]
            for (j, model) in self.models[start..end].iter().enumerate() {
                let mut col = out.column_mut(start + j);
                if let Some((_, w)) = model.prf {
                    let d = drive.column(j);
                    let sd = std(d.iter().copied()).max(1e-12);
                    col.zip_mut_with(&d, |o, &x| *o += w * x / sd);
                }
                if let Some((tuning, w)) = model.category {
                    for (i, objs) in objects.iter().enumerate() {
                        cat[i] = category_drive(&tuning, objs);
                    }
                    let sd = std(cat.iter().copied()).max(1e-12);
                    for (o, &x) in col.iter_mut().zip(&cat) {
                        *o += w * x / sd;
                    }
                }
            }
        }
        // Noise at the set SNR (signal sd / noise sd), then z-score each vertex.
        let unit = Normal::new(0.0f32, 1.0).expect("valid normal");
        for mut col in out.axis_iter_mut(Axis(1)) {
            let sd = std(col.iter().copied());
            let noise = if sd > 1e-9 { sd / snr } else { 1.0 };
            for x in col.iter_mut() {
                *x += noise * unit.sample(rng);
            }
            let mean = col.mean().unwrap_or(0.0);
            let sd = std(col.iter().copied()).max(1e-12);
            col.mapv_inplace(|x| (x - mean) / sd);
        }
        out
    }
}

/// Smallest vertex count per hemisphere that gives every ROI at least one vertex.
pub const MIN_VERTICES: usize = 100;

/// Population standard deviation.
fn std(values: impl Iterator<Item = f32> + Clone) -> f32 {
    let (mut n, mut sum) = (0usize, 0f64);
    for x in values.clone() {
        n += 1;
        sum += x as f64;
    }
    if n == 0 {
        return 0.0;
    }
    let mean = sum / n as f64;
    let var = values.map(|x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    var.sqrt() as f32
}

/// Fill one pRF's weights over the feature vector (`[FEATURE_MAPS, grid, grid]` flattened).
fn prf_weights(prf: &Prf, out: &mut [f32]) {
    let cells = FEATURE_GRID * FEATURE_GRID;
    let mut gauss = vec![0f32; cells];
    let mut total = 0.0;
    for gy in 0..FEATURE_GRID {
        let y = (gy as f32 + 0.5) / FEATURE_GRID as f32;
        for gx in 0..FEATURE_GRID {
            let x = (gx as f32 + 0.5) / FEATURE_GRID as f32;
            let d2 = (x - prf.x).powi(2) + (y - prf.y).powi(2);
            let g = (-d2 / (2.0 * prf.sigma * prf.sigma)).exp();
            gauss[gy * FEATURE_GRID + gx] = g;
            total += g;
        }
    }
    for (m, &w) in prf.maps.iter().enumerate() {
        if w != 0.0 {
            for (o, g) in out[m * cells..(m + 1) * cells].iter_mut().zip(&gauss) {
                *o = w * g / total.max(1e-12);
            }
        }
    }
}

/// A category vertex's drive from a scene's objects.
fn category_drive(t: &CategoryTuning, objects: &[SceneObject]) -> f32 {
    objects
        .iter()
        .map(|o| {
            let d2 = (o.x - t.x).powi(2) + (o.y - t.y).powi(2);
            t.selectivity[o.category.index()]
                * o.area.sqrt()
                * (-d2 / (2.0 * t.sigma * t.sigma)).exp()
        })
        .sum()
}

/// A pRF centre in the hemisphere's contralateral field: `(x, y, eccentricity)`.
fn prf_centre(
    h: Hemisphere,
    ventral: Option<bool>,
    max_ecc: f32,
    rng: &mut impl Rng,
) -> (f32, f32, f32) {
    // Eccentricity biased towards the centre (cortical magnification).
    let ecc = max_ecc * rng.random_range(0.0f32..1.0).powf(1.5);
    let angle = match ventral {
        Some(true) => rng.random_range(-PI / 2.0..0.0), // upper field (y < 0.5)
        Some(false) => rng.random_range(0.0..PI / 2.0), // lower field
        None => rng.random_range(-PI / 2.0..PI / 2.0),
    };
    // A little ipsilateral spill across the vertical meridian.
    let x = 0.5 + h.field_side() * (ecc * angle.cos() - 0.03);
    let y = 0.5 + ecc * angle.sin();
    (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0), ecc)
}

/// A pRF at hierarchy `level` (0 = V1 .. 3 = hV4).
fn draw_prf(h: Hemisphere, level: usize, ventral: Option<bool>, rng: &mut impl Rng) -> Prf {
    const BASE: [f32; 4] = [0.025, 0.04, 0.055, 0.08];
    const SLOPE: [f32; 4] = [0.08, 0.12, 0.18, 0.25];
    // Chance of luminance, red-green, blue-yellow, contrast as the preferred map.
    const PREF: [[f32; 4]; 4] = [
        [0.4, 0.2, 0.15, 0.25],
        [0.4, 0.2, 0.15, 0.25],
        [0.35, 0.2, 0.2, 0.25],
        [0.2, 0.3, 0.25, 0.25],
    ];
    let level = level.min(3);
    let (x, y, ecc) = prf_centre(h, ventral, 0.6, rng);
    let sigma = (BASE[level] + SLOPE[level] * ecc) * rng.random_range(0.8..1.25);
    let mut pick = rng.random_range(0.0f32..1.0);
    let mut preferred = 3;
    for (m, p) in PREF[level].iter().enumerate() {
        if pick < *p {
            preferred = m;
            break;
        }
        pick -= p;
    }
    let mut maps = [0.0; FEATURE_MAPS];
    // Luminance cells are mostly ON, colour-opponent cells either sign.
    let sign = if preferred == 0 {
        if rng.random_bool(0.8) { 1.0 } else { -1.0 }
    } else if rng.random_bool(0.5) {
        1.0
    } else {
        -1.0
    };
    maps[preferred] = sign;
    if preferred != 0 {
        maps[0] += 0.25;
    }
    Prf { x, y, sigma, maps }
}

/// A broad spatial tuning for a category vertex, near the fovea in the contralateral field.
fn category_tuning(
    h: Hemisphere,
    selectivity: [f32; 5],
    sigma: f32,
    rng: &mut impl Rng,
) -> CategoryTuning {
    let (x, y, _) = prf_centre(h, None, 0.3, rng);
    CategoryTuning { selectivity, x, y, sigma: sigma * rng.random_range(0.8..1.25) }
}

/// Draw a vertex model for a block's tuning.
fn draw_model(h: Hemisphere, tuning: Tuning, rng: &mut impl Rng) -> VertexModel {
    let large_contrast = |rng: &mut _| {
        let mut prf = draw_prf(h, 3, None, rng);
        prf.sigma *= 2.0;
        prf.maps = [0.2, 0.0, 0.0, 1.0];
        prf
    };
    match tuning {
        Tuning::Prf { level, ventral } => {
            VertexModel { prf: Some((draw_prf(h, level, ventral, rng), 1.0)), category: None }
        }
        Tuning::Selective(pref) => {
            let mut sel = [0.0; 5];
            for s in sel.iter_mut() {
                *s = rng.random_range(0.0..0.3);
            }
            sel[pref.index()] = 1.0;
            VertexModel {
                prf: Some((large_contrast(rng), 0.3)),
                category: Some((category_tuning(h, sel, 0.4, rng), 1.0)),
            }
        }
        Tuning::Mixed(pref) => {
            let mut sel = [0.0; 5];
            for s in sel.iter_mut() {
                *s = rng.random_range(0.0..1.0);
            }
            if let Some(p) = pref {
                sel[p.index()] = 1.0;
            }
            VertexModel {
                prf: Some((large_contrast(rng), 0.5)),
                category: Some((category_tuning(h, sel, 0.4, rng), 1.0)),
            }
        }
        Tuning::Position => {
            let (x, y, _) = prf_centre(h, None, 0.5, rng);
            let t =
                CategoryTuning { selectivity: [1.0; 5], x, y, sigma: rng.random_range(0.15..0.3) };
            VertexModel { prf: None, category: Some((t, 1.0)) }
        }
        Tuning::Silent => VertexModel::default(),
    }
}

/// Pool an image's pixels (`[size * size]` RGB in `[0, 1]`) into the feature vector the pRFs
/// see: `[FEATURE_MAPS, FEATURE_GRID, FEATURE_GRID]` flattened (box average per cell).
pub fn features(pixels: &[[f32; 3]], size: usize, out: &mut [f32]) {
    let cells = FEATURE_GRID * FEATURE_GRID;
    out.fill(0.0);
    let lum: Vec<f32> = pixels.iter().map(|p| (p[0] + p[1] + p[2]) / 3.0).collect();
    let mut counts = vec![0f32; cells];
    for y in 0..size {
        let gy = y * FEATURE_GRID / size;
        for x in 0..size {
            let gx = x * FEATURE_GRID / size;
            let cell = gy * FEATURE_GRID + gx;
            let p = pixels[y * size + x];
            let l = lum[y * size + x];
            // Local contrast: distance from the mean of the 3x3 neighbourhood.
            let (mut sum, mut k) = (0.0, 0.0);
            for ny in y.saturating_sub(1)..(y + 2).min(size) {
                for nx in x.saturating_sub(1)..(x + 2).min(size) {
                    sum += lum[ny * size + nx];
                    k += 1.0;
                }
            }
            out[cell] += l;
            out[cells + cell] += p[0] - p[1];
            out[2 * cells + cell] += p[2] - (p[0] + p[1]) / 2.0;
            out[3 * cells + cell] += (l - sum / k).abs() * 4.0;
            counts[cell] += 1.0;
        }
    }
    for m in 0..FEATURE_MAPS {
        for (o, c) in out[m * cells..(m + 1) * cells].iter_mut().zip(&counts) {
            *o /= c.max(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn left_hemisphere_prfs_sit_in_the_right_visual_field() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for (ventral, upper) in [(Some(true), true), (Some(false), false)] {
            for _ in 0..50 {
                let prf = draw_prf(Hemisphere::Left, 0, ventral, &mut rng);
                assert!(prf.x > 0.45, "{prf:?}");
                assert!(if upper { prf.y <= 0.5 } else { prf.y >= 0.5 }, "{prf:?}");
            }
        }
    }

    #[test]
    fn every_roi_gets_vertices_and_fractions_leave_room_for_unlabeled() {
        let total: f32 = blocks().iter().map(|b| b.fraction).sum();
        assert!(total < 0.95, "blocks take {total} of the vertices");
        let brain =
            HemisphereBrain::new(Hemisphere::Left, MIN_VERTICES, &mut ChaCha8Rng::seed_from_u64(1));
        for (ci, (class, rois)) in ROI_CLASSES.iter().enumerate() {
            for (label, name) in rois.iter() {
                assert!(brain.labels[ci].contains(label), "{class} {name} has no vertex");
            }
        }
        let streams = ROI_CLASSES.len() - 1;
        assert!(brain.labels[streams].contains(&0), "no unlabeled vertex");
    }

    #[test]
    fn prf_vertices_follow_their_receptive_field() {
        // A pRF on the right half: a bright patch there drives it, one on the left does not.
        let prf = Prf { x: 0.75, y: 0.5, sigma: 0.05, maps: [1.0, 0.0, 0.0, 0.0] };
        let mut w = vec![0f32; FEATURE_MAPS * FEATURE_GRID * FEATURE_GRID];
        prf_weights(&prf, &mut w);
        let size = 32;
        let mut f = vec![0f32; w.len()];
        let mut drive = |bright_x: usize| {
            let mut px = vec![[0.0f32; 3]; size * size];
            for y in 12..20 {
                for x in bright_x..bright_x + 8 {
                    px[y * size + x] = [1.0; 3];
                }
            }
            features(&px, size, &mut f);
            f.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>()
        };
        assert!(drive(20) > 0.5 && drive(4) < 0.01, "{} {}", drive(20), drive(4));
    }
}
