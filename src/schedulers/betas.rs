//! Noise schedules: betas -> `alphas_cumprod` as diffusers builds them (float32 tensors; torch's
//! CPU `cumprod` accumulates float32 in double), and the timestep spacings as numpy computes them.

use super::config::Spacing;

/// `torch.linspace(start, end, n, dtype=float32)`: the first half counted up from `start`, the
/// second down from `end`, in float32.
pub fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| if i < half { start + step * i as f32 } else { end - step * (n - 1 - i) as f32 })
        .collect()
}

/// diffusers `betas_for_alpha_bar` (cosine, max_beta 0.999) in Python floats, then float32.
pub fn squaredcos_cap_v2(n: usize) -> Vec<f32> {
    let alpha_bar = |t: f64| ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos().powi(2);
    (0..n)
        .map(|i| {
            let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999) as f32
        })
        .collect()
}

/// `torch.cumprod(1 - betas)` in float32 (double accumulator, as torch on the CPU).
pub fn alphas_cumprod(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|&b| {
            acc *= (1.0f32 - b) as f64;
            acc as f32
        })
        .collect()
}

/// diffusers `rescale_zero_terminal_snr` (Lin et al. 2023, algorithm 1) on float32 betas.
pub fn rescale_zero_terminal_snr(betas: &[f32]) -> Vec<f32> {
    let sqrt: Vec<f32> = alphas_cumprod(betas).iter().map(|a| a.sqrt()).collect();
    let (first, last) = (sqrt[0], sqrt[sqrt.len() - 1]);
    let scale = first / (first - last);
    let bar: Vec<f32> = sqrt.iter().map(|s| ((s - last) * scale).powi(2)).collect();
    let mut alphas = vec![bar[0]];
    alphas.extend(bar.windows(2).map(|w| w[1] / w[0]));
    alphas.iter().map(|a| 1.0 - a).collect()
}

/// `np.linspace(start, stop, num)` in float64 (the last value exactly `stop`).
fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// `np.arange(start, stop, step)` in float64.
fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil().max(0.0) as usize;
    (0..len).map(|i| start + i as f64 * step).collect()
}

/// The ascending inference timesteps of a spacing, before the PNDM / DDIM specific ordering:
/// `leading` = `arange(steps) * (T // steps) + offset`, `trailing` =
/// `round(arange(T, 0, -T / steps))[::-1] - 1`, `linspace` = `round(linspace(0, T - 1, steps))`
/// (numpy rounds half to even).
pub fn ascending_timesteps(spacing: Spacing, train: usize, steps: usize, offset: i64) -> Vec<i64> {
    match spacing {
        Spacing::Leading => {
            let ratio = (train / steps) as i64;
            (0..steps as i64).map(|i| i * ratio + offset).collect()
        }
        Spacing::Trailing => {
            let ratio = train as f64 / steps as f64;
            let mut t: Vec<i64> = np_arange(train as f64, 0.0, -ratio)
                .into_iter()
                .map(|x| x.round_ties_even() as i64 - 1)
                .collect();
            t.reverse();
            t
        }
        Spacing::Linspace => np_linspace(0.0, (train - 1) as f64, steps)
            .into_iter()
            .map(|x| x.round_ties_even() as i64)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd15_leading_and_trailing() {
        let t = ascending_timesteps(Spacing::Leading, 1000, 50, 1);
        assert_eq!((t[0], t[49], t.len()), (1, 981, 50));
        let t = ascending_timesteps(Spacing::Trailing, 1000, 30, 0);
        assert_eq!((t[0], t[29], t.len()), (32, 999, 30));
        let t = ascending_timesteps(Spacing::Linspace, 1000, 4, 0);
        assert_eq!(t, vec![0, 333, 666, 999]);
    }
}
