//! One experiment's training history as the charts need it, kept small: per train record one
//! f32 loss and one f32 learning rate, the steps and epochs as runs (consecutive steps take no
//! room), and a min/max pyramid per chart series (loss, smoothed loss, learning rate) so a live
//! chart redraws in O(width). The smoothed loss lives only in its pyramid. The console holds a
//! history only for the experiments it draws; everything the table shows comes from the
//! registry's summary.

use crate::experiments::state::{MetricRecord, Split};
use crate::tui::chart::{Ema, MinMaxPyramid};

/// One validation record (per epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValPoint {
    /// 0-based epoch.
    pub epoch: usize,
    /// Global step at the end of the epoch.
    pub step: u64,
    /// Validation L1.
    pub l1: f64,
}

/// A chart series of the training history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Training loss per step.
    Loss,
    /// Debiased EMA of the training loss.
    Smoothed,
    /// Learning rate per step (NaN where not recorded).
    Lr,
}

/// The training and validation records of one experiment.
#[derive(Debug, Clone)]
pub struct History {
    loss: Vec<f32>,
    lr: Vec<f32>,
    has_lr: bool,
    /// `(first index, its step)` of each run of consecutive steps.
    step_runs: Vec<(u32, u64)>,
    /// `(first index, epoch)` wherever the epoch changes.
    epoch_runs: Vec<(u32, usize)>,
    val: Vec<ValPoint>,
    ema: Ema,
    /// Loss, smoothed loss, learning rate (in [`Series`] order).
    pyramids: [MinMaxPyramid; 3],
}

impl History {
    /// An empty history smoothed with EMA weight `smoothing`.
    pub fn new(smoothing: f64) -> Self {
        Self {
            loss: Vec::new(),
            lr: Vec::new(),
            has_lr: false,
            step_runs: Vec::new(),
            epoch_runs: Vec::new(),
            val: Vec::new(),
            ema: Ema::new(smoothing),
            pyramids: Default::default(),
        }
    }

    /// An empty history with room for `n` train points.
    pub fn with_capacity(smoothing: f64, n: usize) -> Self {
        let mut h = Self::new(smoothing);
        h.loss.reserve_exact(n);
        h.lr.reserve_exact(n);
        h.pyramids.iter_mut().for_each(|p| p.reserve(n));
        h
    }

    /// Forget every record (the file was replaced).
    pub fn clear(&mut self) {
        *self = Self::new(self.ema.weight());
    }

    /// Add one record (train records without a loss and val records without an L1 are
    /// ignored, as the summary ignores them).
    pub fn push(&mut self, r: &MetricRecord) {
        match r.split {
            Split::Train => {
                let Some(loss) = r.loss else { return };
                let i = self.loss.len() as u32;
                if i == 0 || self.step(i as usize - 1) + 1 != r.step {
                    self.step_runs.push((i, r.step));
                }
                if self.epoch_runs.last().is_none_or(|&(_, e)| e != r.epoch) {
                    self.epoch_runs.push((i, r.epoch));
                }
                let loss = loss as f32;
                let lr = r.lr.map_or(f32::NAN, |v| v as f32);
                self.has_lr |= r.lr.is_some();
                self.loss.push(loss);
                self.lr.push(lr);
                let smoothed = self.ema.push(f64::from(loss)) as f32;
                self.pyramids[0].push(loss);
                self.pyramids[1].push(smoothed);
                self.pyramids[2].push(lr);
            }
            Split::Val => {
                if let Some(l1) = r.l1 {
                    self.val.push(ValPoint { epoch: r.epoch, step: r.step, l1 });
                }
            }
        }
    }

    /// Release spare capacity (after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        self.loss.shrink_to_fit();
        self.lr.shrink_to_fit();
        self.step_runs.shrink_to_fit();
        self.epoch_runs.shrink_to_fit();
        self.val.shrink_to_fit();
        self.pyramids.iter_mut().for_each(MinMaxPyramid::shrink_to_fit);
    }

    /// Number of train points.
    pub fn len(&self) -> usize {
        self.loss.len()
    }

    /// Whether there is no train point.
    pub fn is_empty(&self) -> bool {
        self.loss.is_empty()
    }

    /// Global step of train point `i`.
    pub fn step(&self, i: usize) -> u64 {
        let run = self.step_runs.partition_point(|&(first, _)| first as usize <= i) - 1;
        let (first, step) = self.step_runs[run];
        step + (i - first as usize) as u64
    }

    /// Training loss of point `i`.
    pub fn loss(&self, i: usize) -> f64 {
        f64::from(self.loss[i])
    }

    /// Learning rate of point `i`, when recorded.
    pub fn lr(&self, i: usize) -> Option<f64> {
        let v = self.lr[i];
        (!v.is_nan()).then_some(f64::from(v))
    }

    /// Whether any train point recorded a learning rate.
    pub fn has_lr(&self) -> bool {
        self.has_lr
    }

    /// Validation records in file order.
    pub fn val(&self) -> &[ValPoint] {
        &self.val
    }

    /// The EMA weight in use.
    pub fn smoothing(&self) -> f64 {
        self.ema.weight()
    }

    /// Change the EMA weight and recompute the smoothed series' pyramid; whether it changed.
    pub fn set_smoothing(&mut self, weight: f64) -> bool {
        if (self.ema.weight() - weight).abs() < 1e-12 {
            return false;
        }
        self.ema = Ema::new(weight);
        let ema = &mut self.ema;
        self.pyramids[1].rebuild(self.loss.iter().map(|&l| ema.push(f64::from(l)) as f32));
        true
    }

    /// The values of a whole series in order (what the pyramid indexes), for short histories
    /// drawn point by point; the smoothed loss is recomputed on the way.
    pub fn values(&self, series: Series) -> Box<dyn Iterator<Item = f64> + '_> {
        match series {
            Series::Loss => Box::new(self.loss.iter().map(|&v| f64::from(v))),
            Series::Lr => Box::new(self.lr.iter().map(|&v| f64::from(v))),
            Series::Smoothed => {
                let mut ema = Ema::new(self.ema.weight());
                Box::new(self.loss.iter().map(move |&l| f64::from(ema.push(f64::from(l)) as f32)))
            }
        }
    }

    /// The global step of every train point, in order.
    pub fn steps(&self) -> impl Iterator<Item = u64> + '_ {
        let ends = self.step_runs.iter().skip(1).map(|&(i, _)| i as usize).chain([self.len()]);
        self.step_runs.iter().zip(ends).flat_map(|(&(first, step), end)| {
            (0..(end - first as usize) as u64).map(move |k| step + k)
        })
    }

    /// The min/max pyramid of a series.
    pub fn pyramid(&self, series: Series) -> &MinMaxPyramid {
        &self.pyramids[series as usize]
    }

    /// Steps per epoch from the records: the last step of epoch 0 once epoch 1 has begun.
    pub fn steps_per_epoch(&self) -> Option<f64> {
        match self.epoch_runs.as_slice() {
            [(_, 0), (next, _), ..] => Some(self.step(*next as usize - 1) as f64),
            _ => None, // epoch 0 still running (its length is unknown), or not recorded
        }
    }

    /// Memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.loss.capacity() * 4
            + self.lr.capacity() * 4
            + self.step_runs.capacity() * 16
            + self.epoch_runs.capacity() * 16
            + self.val.capacity() * std::mem::size_of::<ValPoint>()
            + self.pyramids.iter().map(MinMaxPyramid::heap_bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(step: u64, epoch: usize, loss: f64, lr: Option<f64>) -> MetricRecord {
        MetricRecord { t: step, epoch, step, split: Split::Train, loss: Some(loss), l1: None, lr }
    }

    #[test]
    fn steps_epochs_and_values_come_back() {
        let mut h = History::new(0.6);
        // Steps 1..=10 in epoch 0, 11..=20 in epoch 1, then a jump (a resumed run) to 100.
        for s in 1..=20 {
            h.push(&train(s, ((s - 1) / 10) as usize, 1.0 / s as f64, Some(1e-4)));
        }
        h.push(&train(100, 2, 0.01, None));
        h.push(&MetricRecord {
            split: Split::Val,
            loss: None,
            l1: Some(0.5),
            ..train(20, 1, 0.0, None)
        });
        assert_eq!(h.len(), 21);
        assert_eq!((h.step(0), h.step(9), h.step(19), h.step(20)), (1, 10, 20, 100));
        assert_eq!(h.steps_per_epoch(), Some(10.0));
        assert_eq!(h.lr(0), Some(1e-4f32 as f64));
        assert_eq!(h.lr(20), None);
        assert!((h.loss(2) - 1.0 / 3.0).abs() < 1e-7);
        assert_eq!(h.val(), &[ValPoint { epoch: 1, step: 20, l1: 0.5 }]);
        let smoothed: Vec<f64> = h.values(Series::Smoothed).collect();
        assert_eq!(smoothed[0], h.loss(0), "the debiased EMA starts at the first value");
        let steps: Vec<u64> = h.steps().collect();
        assert_eq!(steps, (0..21).map(|i| h.step(i)).collect::<Vec<_>>());
        assert!(h.heap_bytes() > 0);
    }

    #[test]
    fn memory_is_about_ten_bytes_a_point() {
        let mut h = History::new(0.6);
        let n = 200_000;
        for s in 1..=n {
            h.push(&train(s, (s / 1000) as usize, (s as f64).sin(), Some(1e-4)));
        }
        h.shrink_to_fit();
        let per_point = h.heap_bytes() as f64 / n as f64;
        assert!(per_point <= 12.0, "{per_point:.1} bytes per point");
    }
}
