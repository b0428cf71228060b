//! A tiny anti-aliased RGB rasteriser for the demo scenes.
//!
//! Coordinates are in image units: `(0, 0)` is the top-left corner, `(1, 1)` the bottom-right,
//! so a scene looks the same at every `--size`. Shapes are drawn from signed distance functions
//! with a one-pixel soft edge, which keeps small images free of jaggies without supersampling.

/// An RGB colour with channels in `[0, 1]`.
pub type Rgb = [f32; 3];

/// An RGB image of `size x size` pixels, channels in `[0, 1]`, row-major.
#[derive(Debug, Clone)]
pub struct Canvas {
    size: usize,
    pixels: Vec<Rgb>, // [size * size]
}

impl Canvas {
    /// A square canvas filled with one colour.
    pub fn new(size: usize, fill: Rgb) -> Self {
        Self { size, pixels: vec![fill; size * size] }
    }

    /// Side length in pixels.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The pixel at column `x`, row `y`.
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.size + x]
    }

    /// Centre of pixel `i` along one axis, in image units.
    fn centre(&self, i: usize) -> f32 {
        (i as f32 + 0.5) / self.size as f32
    }

    /// Set every pixel from a function of its centre `(x, y)` in image units.
    pub fn fill_with(&mut self, f: impl Fn(f32, f32) -> Rgb) {
        for y in 0..self.size {
            let cy = self.centre(y);
            for x in 0..self.size {
                let cx = self.centre(x);
                self.pixels[y * self.size + x] = f(cx, cy);
            }
        }
    }

    /// Blend a colour over the pixels inside a shape given by its signed distance function
    /// (negative inside, in image units), within the bounding box `[x0, x1] x [y0, y1]`.
    /// `alpha` scales the opacity of the whole shape.
    pub fn draw_sdf(
        &mut self,
        bbox: [f32; 4],
        colour: Rgb,
        alpha: f32,
        sdf: impl Fn(f32, f32) -> f32,
    ) {
        let n = self.size as f32;
        let to_px = |v: f32| ((v * n).floor().max(0.0) as usize).min(self.size);
        let [x0, y0, x1, y1] = bbox;
        let (px0, px1) = (to_px(x0 - 1.0 / n), to_px(x1 + 1.0 / n + 1.0 / n));
        let (py0, py1) = (to_px(y0 - 1.0 / n), to_px(y1 + 1.0 / n + 1.0 / n));
        for py in py0..py1 {
            let cy = self.centre(py);
            for px in px0..px1 {
                let cx = self.centre(px);
                // Coverage: 1 inside, 0 outside, linear across one pixel at the edge.
                let coverage = (0.5 - sdf(cx, cy) * n).clamp(0.0, 1.0) * alpha;
                if coverage > 0.0 {
                    let p = &mut self.pixels[py * self.size + px];
                    for c in 0..3 {
                        p[c] += (colour[c] - p[c]) * coverage;
                    }
                }
            }
        }
    }

    /// A filled ellipse centred at `(cx, cy)` with radii `(rx, ry)`, rotated by `angle` radians.
    pub fn ellipse(&mut self, centre: (f32, f32), radii: (f32, f32), angle: f32, colour: Rgb) {
        let (cx, cy) = centre;
        let (rx, ry) = (radii.0.max(1e-4), radii.1.max(1e-4));
        let (s, c) = angle.sin_cos();
        let r = rx.max(ry);
        self.draw_sdf([cx - r, cy - r, cx + r, cy + r], colour, 1.0, |x, y| {
            let (dx, dy) = (x - cx, y - cy);
            let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
            // Approximate ellipse distance: normalised radius scaled back by the smaller radius.
            let k = ((u / rx).powi(2) + (v / ry).powi(2)).sqrt();
            (k - 1.0) * rx.min(ry)
        });
    }

    /// A line segment from `a` to `b` with round caps and total `width`.
    pub fn line(&mut self, a: (f32, f32), b: (f32, f32), width: f32, colour: Rgb) {
        let h = width / 2.0;
        let bbox = [a.0.min(b.0) - h, a.1.min(b.1) - h, a.0.max(b.0) + h, a.1.max(b.1) + h];
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = (dx * dx + dy * dy).max(1e-12);
        self.draw_sdf(bbox, colour, 1.0, |x, y| {
            let t = (((x - a.0) * dx + (y - a.1) * dy) / len2).clamp(0.0, 1.0);
            let (ex, ey) = (x - a.0 - t * dx, y - a.1 - t * dy);
            (ex * ex + ey * ey).sqrt() - h
        });
    }

    /// A filled convex polygon (vertices in either winding order).
    pub fn polygon(&mut self, points: &[(f32, f32)], colour: Rgb) {
        if points.len() < 3 {
            return;
        }
        let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for &(x, y) in points {
            bbox = [bbox[0].min(x), bbox[1].min(y), bbox[2].max(x), bbox[3].max(y)];
        }
        // Signed area gives the winding; edge normals then point outwards.
        let area: f32 = (0..points.len())
            .map(|i| {
                let (a, b) = (points[i], points[(i + 1) % points.len()]);
                a.0 * b.1 - b.0 * a.1
            })
            .sum();
        let sign = if area >= 0.0 { 1.0 } else { -1.0 };
        self.draw_sdf(bbox, colour, 1.0, |x, y| {
            let mut d = f32::MIN;
            for i in 0..points.len() {
                let (a, b) = (points[i], points[(i + 1) % points.len()]);
                let (ex, ey) = (b.0 - a.0, b.1 - a.1);
                let len = (ex * ex + ey * ey).sqrt().max(1e-9);
                // Outward normal distance of (x, y) from this edge's line.
                let dist = sign * ((x - a.0) * ey - (y - a.1) * ex) / len;
                d = d.max(dist);
            }
            d
        });
    }

    /// An axis-aligned rectangle `[x0, x1] x [y0, y1]`.
    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, colour: Rgb) {
        self.polygon(&[(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour);
    }

    /// The image as interleaved 8-bit RGB bytes (`[size, size, 3]`), ready for PNG encoding.
    pub fn to_rgb8(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .flat_map(|p| p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
            .collect()
    }

    /// The image quantised exactly as [`Canvas::to_rgb8`] writes it, back in `[0, 1]`.
    /// The simulated brain sees these values, so it responds to the pixels on disk.
    pub fn quantised(&self) -> Vec<Rgb> {
        self.pixels.iter().map(|p| p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() / 255.0)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipse_covers_its_centre_and_not_the_corners() {
        let mut c = Canvas::new(32, [0.0; 3]);
        c.ellipse((0.5, 0.5), (0.2, 0.1), 0.3, [1.0, 0.5, 0.0]);
        assert_eq!(c.pixel(16, 16), [1.0, 0.5, 0.0]);
        assert_eq!(c.pixel(0, 0), [0.0; 3]);
        assert_eq!(c.pixel(31, 31), [0.0; 3]);
    }

    #[test]
    fn polygon_winding_does_not_matter() {
        let tri = [(0.1, 0.9), (0.5, 0.1), (0.9, 0.9)];
        let mut a = Canvas::new(24, [0.0; 3]);
        let mut b = Canvas::new(24, [0.0; 3]);
        a.polygon(&tri, [1.0; 3]);
        b.polygon(&[tri[2], tri[1], tri[0]], [1.0; 3]);
        assert_eq!(a.to_rgb8(), b.to_rgb8());
        assert_eq!(a.pixel(12, 16), [1.0; 3]);
        assert_eq!(a.pixel(1, 1), [0.0; 3]);
    }

    #[test]
    fn line_has_its_width() {
        let mut c = Canvas::new(40, [0.0; 3]);
        c.line((0.1, 0.5), (0.9, 0.5), 0.1, [1.0; 3]);
        assert_eq!(c.pixel(20, 20), [1.0; 3]); // y centre 0.5125, inside
        assert_eq!(c.pixel(20, 10), [0.0; 3]); // y centre 0.2625, outside
    }
}
