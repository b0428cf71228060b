//! Chart data: TensorBoard's debiased EMA smoothing and min/max downsampling per pixel column,
//! so a million-point history draws as fast as a thousand-point one.

/// Debiased exponential moving average, as TensorBoard smooths scalars:
/// `last = last * w + (1 - w) * v; smoothed = last / (1 - w^n)`. Non-finite values pass through
/// unsmoothed and do not disturb the average.
#[derive(Debug, Clone)]
pub struct Ema {
    weight: f64,
    last: f64,
    count: i32,
}

impl Ema {
    /// An empty average with smoothing weight `weight` (0 = none).
    pub fn new(weight: f64) -> Self {
        Self { weight: weight.clamp(0.0, 0.999), last: 0.0, count: 0 }
    }

    /// The weight in use.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// Forget every value pushed so far.
    pub fn reset(&mut self) {
        self.last = 0.0;
        self.count = 0;
    }

    /// Add one value; returns its smoothed value.
    pub fn push(&mut self, v: f64) -> f64 {
        if !v.is_finite() {
            return v;
        }
        self.last = self.last * self.weight + (1.0 - self.weight) * v;
        self.count = self.count.saturating_add(1);
        let debias = if self.weight == 0.0 { 1.0 } else { 1.0 - self.weight.powi(self.count) };
        self.last / debias
    }
}

/// Smooth a whole series (see [`Ema`]).
pub fn ema_debiased(values: &[f64], weight: f64) -> Vec<f64> {
    let mut ema = Ema::new(weight);
    values.iter().map(|&v| ema.push(v)).collect()
}

/// Reduce points (x ascending) to at most two per bucket (its min and its max, in x order),
/// with `buckets` equal-width buckets over `x_min..=x_max`. Points outside the range and
/// non-finite values are dropped. The envelope drawn from the result equals the one drawn
/// from the input at that resolution.
pub fn downsample_minmax(
    xs: impl Iterator<Item = f64>,
    ys: impl Iterator<Item = f64>,
    x_min: f64,
    x_max: f64,
    buckets: usize,
) -> Vec<(f64, f64)> {
    let buckets = buckets.max(1);
    let span = (x_max - x_min).max(f64::MIN_POSITIVE);
    let scale = buckets as f64 / span;
    let mut out = Vec::with_capacity(buckets * 2);
    let mut current: Option<(usize, (f64, f64), (f64, f64))> = None; // bucket, min, max
    let flush = |out: &mut Vec<(f64, f64)>, (_, lo, hi): (usize, (f64, f64), (f64, f64))| {
        if lo.0 <= hi.0 {
            out.push(lo);
            if hi != lo {
                out.push(hi);
            }
        } else {
            out.push(hi);
            out.push(lo);
        }
    };
    for (x, y) in xs.zip(ys) {
        if !x.is_finite() || !y.is_finite() || x < x_min || x > x_max {
            continue;
        }
        let b = (((x - x_min) * scale) as usize).min(buckets - 1);
        match &mut current {
            Some((cb, lo, hi)) if *cb == b => {
                if y < lo.1 {
                    *lo = (x, y);
                }
                if y > hi.1 {
                    *hi = (x, y);
                }
            }
            _ => {
                if let Some(c) = current.take() {
                    flush(&mut out, c);
                }
                current = Some((b, (x, y), (x, y)));
            }
        }
    }
    if let Some(c) = current {
        flush(&mut out, c);
    }
    out
}

/// Block size of the finest pyramid level: 2^BASE points.
const BASE: u32 = 5;

fn lower(a: f32, b: f32) -> bool {
    b < a || (a.is_nan() && !b.is_nan())
}

fn higher(a: f32, b: f32) -> bool {
    b > a || (a.is_nan() && !b.is_nan())
}

/// The smallest and largest value of a block of points, with their indices (NaN only when the
/// whole block is NaN). 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Extremes {
    lo_at: u32,
    lo: f32,
    hi_at: u32,
    hi: f32,
}

impl Extremes {
    fn one(i: u32, v: f32) -> Self {
        Self { lo_at: i, lo: v, hi_at: i, hi: v }
    }

    fn add(&mut self, other: Extremes) {
        if lower(self.lo, other.lo) {
            (self.lo_at, self.lo) = (other.lo_at, other.lo);
        }
        if higher(self.hi, other.hi) {
            (self.hi_at, self.hi) = (other.hi_at, other.hi);
        }
    }
}

/// Min/max pyramid over an append-only series: level `k` holds, for each block of
/// `2^(5+k)` consecutive points, its smallest and largest value and their indices. It keeps the
/// values itself (the series need not be stored: the smoothed loss is not), about one byte per
/// point over all levels. Appending is O(log n); [`candidates`](Self::candidates) returns
/// O(buckets) points whose min/max envelope equals the full series' at that resolution (up to
/// block boundaries), so drawing a live chart costs the same for a million points as for a
/// thousand.
#[derive(Debug, Default, Clone)]
pub struct MinMaxPyramid {
    len: usize,
    levels: Vec<Vec<Extremes>>,
}

impl MinMaxPyramid {
    /// Forget everything.
    pub fn clear(&mut self) {
        self.len = 0;
        self.levels.clear();
    }

    /// Points pushed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append the next value of the series.
    pub fn push(&mut self, v: f32) {
        let idx = self.len;
        self.len += 1;
        let e = Extremes::one(idx as u32, v);
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        for (k, level) in self.levels.iter_mut().enumerate() {
            let j = idx >> (BASE as usize + k);
            if j == level.len() {
                level.push(e);
            } else {
                level[j].add(e);
            }
        }
        // Grow a coarser level once the top one has two blocks.
        if let Some(top) = self.levels.last()
            && top.len() >= 2
        {
            let mut joined = top[0];
            joined.add(top[1]);
            self.levels.push(vec![joined]);
        }
    }

    /// Rebuild from a whole series.
    pub fn rebuild(&mut self, ys: impl Iterator<Item = f32>) {
        self.clear();
        ys.for_each(|v| self.push(v));
    }

    /// Make room for `n` points in the finest level (the coarser ones, half as big together,
    /// grow as points arrive).
    pub fn reserve(&mut self, n: usize) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].reserve_exact((n >> BASE) + 1);
    }

    /// Release spare capacity (after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        self.levels.iter_mut().for_each(Vec::shrink_to_fit);
    }

    /// Memory held, in bytes (capacity of every level).
    pub fn heap_bytes(&self) -> usize {
        self.levels.iter().map(|l| l.capacity() * std::mem::size_of::<Extremes>()).sum()
    }

    /// `(index, value)` points in ascending index order to downsample into `buckets` buckets
    /// instead of all points; `None` when the series is short enough to scan whole.
    pub fn candidates(&self, buckets: usize) -> Option<Vec<(usize, f32)>> {
        let per_bucket = self.len / (2 * buckets.max(1));
        let k = (0..self.levels.len())
            .rev()
            .find(|&k| (1usize << (BASE as usize + k)) <= per_bucket)?;
        let mut out = Vec::with_capacity(self.levels[k].len() * 2);
        for e in &self.levels[k] {
            let (a, b) = if e.lo_at <= e.hi_at {
                ((e.lo_at, e.lo), (e.hi_at, e.hi))
            } else {
                ((e.hi_at, e.hi), (e.lo_at, e.lo))
            };
            out.push((a.0 as usize, a.1));
            if b.0 != a.0 {
                out.push((b.0 as usize, b.1));
            }
        }
        Some(out)
    }
}

/// y bounds of several series with a little headroom; `(0, 1)` when empty.
pub fn y_bounds<'a>(series: impl Iterator<Item = &'a [(f64, f64)]>) -> [f64; 2] {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        for &(_, y) in s {
            lo = lo.min(y);
            hi = hi.max(y);
        }
    }
    if !lo.is_finite() || !hi.is_finite() {
        return [0.0, 1.0];
    }
    if (hi - lo).abs() < 1e-12 {
        let pad = if lo.abs() > 1e-12 { lo.abs() * 0.05 } else { 0.5 };
        return [lo - pad, hi + pad];
    }
    let pad = (hi - lo) * 0.05;
    [lo - pad, hi + pad]
}

/// Short number for axis labels and table cells: `0.0123`, `1.23e-5`, `123.4`.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_matches_tensorboard_formula() {
        // TensorBoard: first smoothed value equals the first value (debiased).
        let s = ema_debiased(&[1.0, 2.0, 3.0], 0.6);
        assert!((s[0] - 1.0).abs() < 1e-12);
        let last1 = 0.4 * 1.0;
        let last2 = last1 * 0.6 + 0.4 * 2.0;
        assert!((s[1] - last2 / (1.0 - 0.36)).abs() < 1e-12);
        assert_eq!(ema_debiased(&[5.0, 7.0], 0.0), vec![5.0, 7.0]);
    }

    #[test]
    fn downsample_keeps_extremes_per_bucket() {
        let n = 1_000_000;
        let xs = (0..n).map(|i| i as f64);
        let ys = (0..n).map(|i| {
            if i == 123_456 {
                10.0
            } else if i == 654_321 {
                -10.0
            } else {
                (i % 7) as f64
            }
        });
        let d = downsample_minmax(xs, ys, 0.0, (n - 1) as f64, 100);
        assert!(d.len() <= 200);
        assert!(d.contains(&(123_456.0, 10.0)));
        assert!(d.contains(&(654_321.0, -10.0)));
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0), "x stays ascending");
    }

    #[test]
    fn pyramid_candidates_keep_the_extremes() {
        let n = 300_000;
        let mut p = MinMaxPyramid::default();
        for i in 0..n {
            p.push(if i == 123_456 {
                100.0
            } else if i == 250_001 {
                -100.0
            } else if i % 1000 == 7 {
                f32::NAN // missing values never hide a real one
            } else {
                (i % 13) as f32
            });
        }
        let pts = p.candidates(100).expect("long series use the pyramid");
        assert!(pts.len() <= 8 * 100, "O(buckets) candidates, got {}", pts.len());
        assert!(pts.contains(&(123_456, 100.0)) && pts.contains(&(250_001, -100.0)));
        assert!(pts.iter().all(|(_, v)| !v.is_nan()));
        assert!(pts.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(p.heap_bytes() <= n * 2, "{} bytes for {n} points", p.heap_bytes());
        let mut short = MinMaxPyramid::default();
        short.rebuild((0..500).map(|i| i as f32));
        assert!(short.candidates(100).is_none(), "short series are scanned whole");
    }

    #[test]
    fn downsample_small_series_is_unchanged() {
        let pts = [(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)];
        let d = downsample_minmax(pts.iter().map(|p| p.0), pts.iter().map(|p| p.1), 0.0, 2.0, 100);
        assert_eq!(d, pts.to_vec());
    }
}
