//! Procedural demo scenes in five categories, each drawn at a random position, scale and colour
//! over a gradient or textured background.
//!
//! The categories mirror the functional-localiser (floc) ROI classes of the Algonauts data, so the
//! simulated brain can have face-, body-, place- and word-selective vertices.

use super::canvas::{Canvas, Rgb};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// The generator's scene categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// An oval face with eyes, nose, mouth and hair.
    Faces,
    /// A stick figure in a random pose.
    Bodies,
    /// A whole-image outdoor view (sky, horizon, buildings) or a room in perspective.
    Places,
    /// Rows of letter-like glyphs on a light panel.
    Words,
    /// Plain geometric objects (disc, box, triangle).
    Objects,
}

impl Category {
    /// Every category, in a fixed order (the index order of selectivity vectors).
    pub const ALL: [Category; 5] =
        [Category::Faces, Category::Bodies, Category::Places, Category::Words, Category::Objects];

    /// Position of this category in [`Category::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as in the labels file.
    pub fn name(self) -> &'static str {
        match self {
            Category::Faces => "faces",
            Category::Bodies => "bodies",
            Category::Places => "places",
            Category::Words => "words",
            Category::Objects => "objects",
        }
    }
}

/// One drawn object: its category, centre (image units) and area as a fraction of the image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SceneObject {
    /// What was drawn.
    pub category: Category,
    /// Horizontal centre in `[0, 1]`.
    pub x: f32,
    /// Vertical centre in `[0, 1]` (0 = top).
    pub y: f32,
    /// Approximate area as a fraction of the image, in `(0, 1]`.
    pub area: f32,
}

/// A rendered scene and what is in it (the simulated brain's category vertices read `objects`).
#[derive(Debug, Clone)]
pub struct Scene {
    /// The image.
    pub canvas: Canvas,
    /// The scene's main category (what the labels file lists).
    pub category: Category,
    /// Every object drawn, the main one first.
    pub objects: Vec<SceneObject>,
}

/// Render one scene of `size x size` pixels. The main category is uniform over
/// [`Category::ALL`]; a third of the scenes get a smaller second object of another category.
pub fn render(size: usize, rng: &mut impl Rng) -> Scene {
    let category = Category::ALL[rng.random_range(0..Category::ALL.len())];
    let mut canvas = Canvas::new(size, [0.5; 3]);
    let mut objects = Vec::with_capacity(2);
    if category == Category::Places {
        objects.push(draw_place(&mut canvas, rng));
    } else {
        draw_background(&mut canvas, rng);
        let scale = rng.random_range(0.35..0.8);
        let (x, y) = (rng.random_range(0.25..0.75), rng.random_range(0.25..0.75));
        objects.push(draw_object(&mut canvas, category, (x, y), scale, rng));
    }
    if rng.random_bool(1.0 / 3.0) {
        let others: Vec<Category> =
            [Category::Faces, Category::Bodies, Category::Words, Category::Objects]
                .into_iter()
                .filter(|&c| c != category)
                .collect();
        let second = others[rng.random_range(0..others.len())];
        // Put it away from the main object when there is one.
        let main = objects[0];
        let (mut x, mut y) = (rng.random_range(0.15..0.85), rng.random_range(0.15..0.85));
        if category != Category::Places && (x - main.x).abs() < 0.25 && (y - main.y).abs() < 0.25 {
            x = 1.0 - x;
            y = 1.0 - y;
        }
        let scale = rng.random_range(0.18..0.32);
        objects.push(draw_object(&mut canvas, second, (x, y), scale, rng));
    }
    Scene { canvas, category, objects }
}

/// A random colour with each channel in `[lo, hi]`.
fn colour(rng: &mut impl Rng, lo: f32, hi: f32) -> Rgb {
    [rng.random_range(lo..hi), rng.random_range(lo..hi), rng.random_range(lo..hi)]
}

/// Linear interpolation between two colours.
fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// A background: a linear gradient, stripes, a checkerboard or smooth blotches.
fn draw_background(canvas: &mut Canvas, rng: &mut impl Rng) {
    let (a, b) = (colour(rng, 0.1, 0.9), colour(rng, 0.1, 0.9));
    let angle = rng.random_range(0.0..2.0 * PI);
    let (s, c) = angle.sin_cos();
    match rng.random_range(0..4) {
        0 => canvas
            .fill_with(|x, y| mix(a, b, ((x - 0.5) * c + (y - 0.5) * s + 0.5).clamp(0.0, 1.0))),
        1 => {
            let freq = rng.random_range(3.0..10.0);
            let b = mix(a, b, 0.5); // low-contrast stripes
            canvas.fill_with(|x, y| {
                let t = ((x * c + y * s) * freq * 2.0 * PI).sin() * 0.5 + 0.5;
                mix(a, b, t)
            });
        }
        2 => {
            let cells = rng.random_range(3..9) as f32;
            let b = mix(a, b, 0.4);
            canvas.fill_with(|x, y| {
                let even = ((x * cells).floor() + (y * cells).floor()) as i32 % 2 == 0;
                if even { a } else { b }
            });
        }
        _ => {
            // Smooth blotches: a 4x4 grid of random values, bilinearly interpolated.
            let grid: Vec<f32> = (0..16).map(|_| rng.random_range(0.0..1.0)).collect();
            canvas.fill_with(|x, y| {
                let (gx, gy) = (x * 3.0, y * 3.0);
                let (ix, iy) = ((gx.floor() as usize).min(2), (gy.floor() as usize).min(2));
                let (fx, fy) = (gx - ix as f32, gy - iy as f32);
                let v = |i: usize, j: usize| grid[j * 4 + i];
                let top = v(ix, iy) * (1.0 - fx) + v(ix + 1, iy) * fx;
                let bottom = v(ix, iy + 1) * (1.0 - fx) + v(ix + 1, iy + 1) * fx;
                mix(a, b, top * (1.0 - fy) + bottom * fy)
            });
        }
    }
}

/// Draw one non-place object of `category` centred at `centre` with extent `scale` (image units).
fn draw_object(
    canvas: &mut Canvas,
    category: Category,
    centre: (f32, f32),
    scale: f32,
    rng: &mut impl Rng,
) -> SceneObject {
    let area = match category {
        Category::Faces => draw_face(canvas, centre, scale, rng),
        Category::Bodies => draw_body(canvas, centre, scale, rng),
        Category::Words => draw_words(canvas, centre, scale, rng),
        Category::Objects | Category::Places => draw_shapes(canvas, centre, scale, rng),
    };
    SceneObject { category, x: centre.0, y: centre.1, area: area.clamp(1e-3, 1.0) }
}

/// An oval face; returns its area fraction.
fn draw_face(canvas: &mut Canvas, (cx, cy): (f32, f32), scale: f32, rng: &mut impl Rng) -> f32 {
    let skins: [Rgb; 4] =
        [[0.95, 0.8, 0.68], [0.85, 0.65, 0.5], [0.6, 0.42, 0.3], [0.4, 0.27, 0.18]];
    let skin = mix(skins[rng.random_range(0..skins.len())], colour(rng, 0.3, 0.9), 0.1);
    let hair = colour(rng, 0.0, 0.45);
    let (rx, ry) = (scale * 0.34, scale * 0.45);
    let tilt: f32 = rng.random_range(-0.3..0.3);
    let (s, c) = tilt.sin_cos();
    // A point given in the face's own frame (units of rx / ry), rotated into the image.
    let at = |u: f32, v: f32| (cx + u * rx * c - v * ry * s, cy + u * rx * s + v * ry * c);
    canvas.ellipse(at(0.0, -0.15), (rx * 1.1, ry * 0.95), tilt, hair);
    canvas.ellipse((cx, cy), (rx, ry), tilt, skin);
    let eye = [0.08, 0.06, 0.05];
    let white = [0.97, 0.97, 0.97];
    for side in [-0.4, 0.4] {
        canvas.ellipse(at(side, -0.15), (rx * 0.22, ry * 0.11), tilt, white);
        canvas.ellipse(at(side, -0.15), (rx * 0.11, ry * 0.1), tilt, eye);
    }
    canvas.line(at(0.0, -0.05), at(0.05, 0.2), scale * 0.03, mix(skin, eye, 0.4));
    let mouth = [0.6, 0.15, 0.15];
    let smile = rng.random_range(-0.08..0.12);
    canvas.line(at(-0.3, 0.45), at(0.0, 0.45 + smile), scale * 0.05, mouth);
    canvas.line(at(0.0, 0.45 + smile), at(0.3, 0.45), scale * 0.05, mouth);
    PI * rx * ry
}

/// A stick figure in a random pose; returns its (bounding) area fraction.
fn draw_body(canvas: &mut Canvas, (cx, cy): (f32, f32), scale: f32, rng: &mut impl Rng) -> f32 {
    let cloth = colour(rng, 0.05, 0.95);
    let skin = [0.85, 0.65, 0.5];
    let h = scale; // total height
    let w = h * 0.07; // limb width
    let neck = (cx, cy - h * 0.28);
    let hip = (cx + rng.random_range(-0.05..0.05) * h, cy + h * 0.1);
    let limb = |from: (f32, f32), angle: f32, len: f32| {
        (from.0 + angle.sin() * len, from.1 + angle.cos() * len)
    };
    for side in [-1.0f32, 1.0] {
        // Legs hang downwards (angle 0 = straight down), arms anywhere from down to raised.
        let leg = limb(hip, side * rng.random_range(0.1..0.6), h * 0.4);
        canvas.line(hip, leg, w, mix(cloth, [0.1; 3], 0.5));
        let elbow = limb(neck, side * rng.random_range(0.3..2.6), h * 0.2);
        let hand = limb(elbow, side * rng.random_range(0.2..2.8), h * 0.18);
        canvas.line(neck, elbow, w, cloth);
        canvas.line(elbow, hand, w * 0.8, skin);
    }
    canvas.line(neck, hip, w * 1.8, cloth);
    canvas.ellipse((neck.0, neck.1 - h * 0.1), (h * 0.09, h * 0.1), 0.0, skin);
    h * h * 0.4
}

/// Rows of letter-like glyphs on a light panel; returns the panel's area fraction.
fn draw_words(canvas: &mut Canvas, (cx, cy): (f32, f32), scale: f32, rng: &mut impl Rng) -> f32 {
    let rows = rng.random_range(1..=3);
    let glyphs = rng.random_range(3..=6);
    let gw = scale / (glyphs as f32 + 1.0);
    let gh = gw * 1.4;
    let (pw, ph) = (gw * (glyphs as f32 + 1.0), gh * 1.5 * rows as f32 + gh * 0.5);
    let panel = colour(rng, 0.8, 1.0);
    let ink = colour(rng, 0.0, 0.3);
    canvas.rect(cx - pw / 2.0, cy - ph / 2.0, cx + pw / 2.0, cy + ph / 2.0, panel);
    // Glyphs are 1-3 strokes between points of a 3x3 grid in the glyph's box.
    let stroke = gw * 0.16;
    for r in 0..rows {
        let y0 = cy - ph / 2.0 + gh * 0.5 + r as f32 * gh * 1.5;
        for g in 0..glyphs {
            let x0 = cx - pw / 2.0 + gw * 0.5 + g as f32 * gw;
            let point =
                |k: usize| (x0 + gw * 0.35 * (k % 3) as f32, y0 + gh * 0.5 * (k / 3) as f32);
            for _ in 0..rng.random_range(1..=3) {
                let (a, b) = (rng.random_range(0..9), rng.random_range(0..9));
                if a != b {
                    canvas.line(point(a), point(b), stroke, ink);
                }
            }
        }
    }
    pw * ph
}

/// One to three plain shapes (disc, box, triangle) in saturated colours; returns their area.
fn draw_shapes(canvas: &mut Canvas, (cx, cy): (f32, f32), scale: f32, rng: &mut impl Rng) -> f32 {
    let count = rng.random_range(1..=3);
    let mut area = 0.0;
    for i in 0..count {
        let r = scale * if i == 0 { 0.4 } else { 0.22 };
        let (x, y) = if i == 0 {
            (cx, cy)
        } else {
            let a = rng.random_range(0.0..2.0 * PI);
            (cx + a.cos() * scale * 0.45, cy + a.sin() * scale * 0.45)
        };
        // Saturated: one channel high, one low, one random.
        let mut col = [rng.random_range(0.0..1.0); 3];
        let hi = rng.random_range(0..3);
        let lo = (hi + rng.random_range(1..3)) % 3;
        col[hi] = rng.random_range(0.8..1.0);
        col[lo] = rng.random_range(0.0..0.2);
        match rng.random_range(0..3) {
            0 => {
                canvas.ellipse((x, y), (r, r), 0.0, col);
                area += PI * r * r;
            }
            1 => {
                let rot = rng.random_range(0.0..PI / 2.0);
                let pts: Vec<(f32, f32)> = (0..4)
                    .map(|k| {
                        let a = rot + k as f32 * PI / 2.0;
                        (x + a.cos() * r, y + a.sin() * r)
                    })
                    .collect();
                canvas.polygon(&pts, col);
                area += 2.0 * r * r;
            }
            _ => {
                let rot = rng.random_range(0.0..2.0 * PI);
                let pts: Vec<(f32, f32)> = (0..3)
                    .map(|k| {
                        let a = rot + k as f32 * 2.0 * PI / 3.0;
                        (x + a.cos() * r, y + a.sin() * r)
                    })
                    .collect();
                canvas.polygon(&pts, col);
                area += 1.3 * r * r;
            }
        }
        // A highlight gives the shape some shading.
        canvas.ellipse(
            (x - r * 0.3, y - r * 0.3),
            (r * 0.2, r * 0.2),
            0.0,
            mix(col, [1.0; 3], 0.5),
        );
    }
    area
}

/// A whole-image place: an outdoor view with a horizon, or a room in perspective.
fn draw_place(canvas: &mut Canvas, rng: &mut impl Rng) -> SceneObject {
    let horizon = rng.random_range(0.3..0.7);
    if rng.random_bool(0.5) {
        // Outdoor: sky gradient, ground, buildings or trees along the horizon, maybe a sun.
        let sky_top = mix([0.2, 0.4, 0.9], colour(rng, 0.2, 1.0), 0.3);
        let sky_low = mix([0.8, 0.85, 1.0], colour(rng, 0.5, 1.0), 0.3);
        let ground = mix([0.3, 0.55, 0.2], colour(rng, 0.2, 0.6), 0.4);
        canvas.fill_with(|_, y| {
            if y < horizon {
                mix(sky_top, sky_low, y / horizon)
            } else {
                mix(ground, [0.1; 3], (y - horizon) * 0.8)
            }
        });
        if rng.random_bool(0.5) {
            canvas.ellipse(
                (rng.random_range(0.1..0.9), horizon * 0.35),
                (0.07, 0.07),
                0.0,
                [1.0, 0.9, 0.5],
            );
        }
        let mut x = rng.random_range(-0.1..0.1);
        while x < 1.0 {
            let w = rng.random_range(0.08..0.2);
            if rng.random_bool(0.6) {
                let h = rng.random_range(0.1..0.35);
                let wall = colour(rng, 0.3, 0.8);
                canvas.rect(x, horizon - h, x + w, horizon + 0.01, wall);
                let window = mix(wall, [0.1, 0.1, 0.2], 0.7);
                for k in 0..3 {
                    let wy = horizon - h + h * (0.15 + 0.28 * k as f32);
                    canvas.rect(x + w * 0.2, wy, x + w * 0.45, wy + h * 0.12, window);
                    canvas.rect(x + w * 0.55, wy, x + w * 0.8, wy + h * 0.12, window);
                }
            } else {
                let h = rng.random_range(0.08..0.2);
                let tree = mix([0.1, 0.4, 0.1], colour(rng, 0.0, 0.5), 0.3);
                canvas.line(
                    (x + w / 2.0, horizon),
                    (x + w / 2.0, horizon - h * 0.4),
                    w * 0.15,
                    [0.35, 0.22, 0.1],
                );
                canvas.polygon(
                    &[
                        (x, horizon - h * 0.3),
                        (x + w / 2.0, horizon - h * 1.3),
                        (x + w, horizon - h * 0.3),
                    ],
                    tree,
                );
            }
            x += w + rng.random_range(0.0..0.1);
        }
    } else {
        // Room: back wall, floor, ceiling and side walls meeting at a vanishing box.
        let (bx0, bx1) = (rng.random_range(0.2..0.4), rng.random_range(0.6..0.8));
        let (by0, by1) =
            (horizon - rng.random_range(0.15..0.25), horizon + rng.random_range(0.05..0.15));
        let wall = colour(rng, 0.4, 0.95);
        let floor = colour(rng, 0.15, 0.6);
        canvas.fill_with(|_, _| mix(wall, [0.0; 3], 0.2));
        canvas.polygon(&[(0.0, 1.0), (bx0, by1), (bx1, by1), (1.0, 1.0)], floor);
        canvas.polygon(&[(0.0, 0.0), (bx0, by0), (bx1, by0), (1.0, 0.0)], mix(wall, [1.0; 3], 0.3));
        canvas.rect(bx0, by0, bx1, by1, wall);
        let edge = mix(wall, [0.0; 3], 0.5);
        for (a, b) in [
            ((0.0, 0.0), (bx0, by0)),
            ((1.0, 0.0), (bx1, by0)),
            ((0.0, 1.0), (bx0, by1)),
            ((1.0, 1.0), (bx1, by1)),
        ] {
            canvas.line(a, b, 0.01, edge);
        }
        // A door or a window on the back wall.
        let (dw, dx) = ((bx1 - bx0) * 0.25, rng.random_range(0.1..0.6));
        let x = bx0 + (bx1 - bx0) * dx;
        if rng.random_bool(0.5) {
            canvas.rect(x, by0 + (by1 - by0) * 0.3, x + dw, by1, colour(rng, 0.1, 0.5));
        } else {
            canvas.rect(
                x,
                by0 + (by1 - by0) * 0.15,
                x + dw * 1.5,
                by0 + (by1 - by0) * 0.55,
                [0.6, 0.8, 1.0],
            );
        }
    }
    SceneObject { category: Category::Places, x: 0.5, y: horizon, area: 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn every_category_appears_and_objects_lie_in_the_image() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen = [0usize; 5];
        for _ in 0..100 {
            let scene = render(24, &mut rng);
            assert_eq!(scene.objects[0].category, scene.category);
            for o in &scene.objects {
                assert!((0.0..=1.0).contains(&o.x) && (0.0..=1.0).contains(&o.y), "{o:?}");
                assert!(o.area > 0.0 && o.area <= 1.0, "{o:?}");
            }
            seen[scene.category.index()] += 1;
        }
        assert!(seen.iter().all(|&n| n >= 8), "categories too unbalanced: {seen:?}");
    }

    #[test]
    fn scenes_are_not_blank() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            let px = render(32, &mut rng).canvas.to_rgb8();
            let (min, max) = (px.iter().min().unwrap(), px.iter().max().unwrap());
            assert!(max - min > 40, "scene with almost no contrast");
        }
    }
}
