//! One-cycle learning-rate schedule, exactly as `torch.optim.lr_scheduler.OneCycleLR`
//! (two phases, cosine annealing, beta1 cycling for Adam).
//!
//! PyTorch semantics reproduced here:
//! - `initial_lr = max_lr / div_factor`, `min_lr = initial_lr / final_div_factor`.
//! - Phase 1 ends at step `pct_start * total_steps - 1` (a float), going from `initial_lr` to
//!   `max_lr` while beta1 goes from `max_momentum` to `base_momentum`; phase 2 ends at
//!   `total_steps - 1`, going to `min_lr` while beta1 returns to `max_momentum`.
//! - `anneal_cos(start, end, pct) = end + (start - end) / 2 * (cos(pi * pct) + 1)`.
//! - The value for optimizer step `k` (0-based) is PyTorch's `get_lr()` with `last_epoch = k`:
//!   construction performs step 0, and every `scheduler.step()` after `optimizer.step()` moves
//!   to the next. Asking past `total_steps` is an error, as in PyTorch.
//!
//! All arithmetic is in f64 like Python's floats, so the sequences match bit for bit where the
//! platform `cos` is the same (glibc for both here).

use serde::{Deserialize, Serialize};

/// Errors of the one-cycle schedule.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OneCycleError {
    /// A configuration PyTorch would also reject (or divide by zero on).
    #[error("invalid OneCycleLR config: {0}")]
    InvalidConfig(String),
    /// The schedule was stepped past its end, as PyTorch's `Tried to step N times`.
    #[error(
        "OneCycleLR stepped {step} times but total_steps is {total_steps}: compute total_steps as epochs x steps per epoch"
    )]
    PastEnd {
        /// The step that was asked for.
        step: usize,
        /// The schedule length.
        total_steps: usize,
    },
}

/// Configuration of [`OneCycleLr`], with PyTorch's defaults except `final_div_factor`
/// (the paper's 1000; PyTorch's default is 1e4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OneCycleConfig {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Number of optimizer steps in the whole run (epochs x steps per epoch).
    pub total_steps: usize,
    /// Fraction of the steps spent warming up (paper: 2 / epochs).
    pub pct_start: f64,
    /// `initial_lr = max_lr / div_factor`.
    pub div_factor: f64,
    /// `min_lr = initial_lr / final_div_factor`.
    pub final_div_factor: f64,
    /// Lowest beta1 (reached at the peak learning rate).
    pub base_momentum: f64,
    /// Highest beta1 (at the start and end).
    pub max_momentum: f64,
    /// Whether beta1 is cycled (PyTorch's `cycle_momentum`).
    pub cycle_momentum: bool,
}

impl OneCycleConfig {
    /// A schedule with the paper's fixed settings (div_factor 25, final_div_factor 1000, beta1
    /// cycled between 0.85 and 0.95) and the given peak, length and warm-up fraction.
    pub fn new(max_lr: f64, total_steps: usize, pct_start: f64) -> Self {
        Self {
            max_lr,
            total_steps,
            pct_start,
            div_factor: 25.0,
            final_div_factor: 1000.0,
            base_momentum: 0.85,
            max_momentum: 0.95,
            cycle_momentum: true,
        }
    }

    /// The paper's `pct_start = 2 / epochs`, with `total_steps = epochs * steps_per_epoch`.
    pub fn paper(max_lr: f64, epochs: usize, steps_per_epoch: usize) -> Self {
        Self::new(max_lr, epochs * steps_per_epoch, 2.0 / epochs as f64)
    }

    /// Check the configuration and build the schedule at step 0.
    pub fn init(&self) -> Result<OneCycleLr, OneCycleError> {
        let bad = |msg: String| Err(OneCycleError::InvalidConfig(msg));
        if self.total_steps == 0 {
            return bad("total_steps must be > 0".into());
        }
        if !(0.0..=1.0).contains(&self.pct_start) {
            return bad(format!("pct_start must be in [0, 1], got {}", self.pct_start));
        }
        if !(self.max_lr > 0.0) || !(self.div_factor > 0.0) || !(self.final_div_factor > 0.0) {
            return bad("max_lr, div_factor and final_div_factor must be > 0".into());
        }
        let sched = OneCycleLr { config: self.clone(), step: 0 };
        let [p1, p2] = sched.phases();
        // PyTorch divides by (end_step - start_step) of the phase in use: both must be non-zero.
        if p1.end_step == 0.0 || p2.end_step - p1.end_step == 0.0 {
            return bad(format!(
                "pct_start {} with total_steps {} gives an empty phase (PyTorch divides by zero here)",
                self.pct_start, self.total_steps
            ));
        }
        Ok(sched)
    }
}

/// One phase of the schedule (PyTorch's `_schedule_phases` entry, values resolved).
#[derive(Debug, Clone, Copy)]
struct Phase {
    end_step: f64,
    start_lr: f64,
    end_lr: f64,
    start_momentum: f64,
    end_momentum: f64,
}

/// The schedule's values at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycleValues {
    /// Learning rate for this optimizer step.
    pub lr: f64,
    /// Adam's beta1 for this optimizer step (`max_momentum` throughout if not cycled).
    pub beta1: f64,
}

/// Serialisable schedule state for checkpoints: the config and the next step to run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OneCycleState {
    /// The schedule's configuration.
    pub config: OneCycleConfig,
    /// PyTorch's `last_epoch`: the index of the optimizer step the current values are for.
    pub step: usize,
}

/// OneCycleLR as PyTorch computes it. Built by [`OneCycleConfig::init`].
#[derive(Debug, Clone, PartialEq)]
pub struct OneCycleLr {
    config: OneCycleConfig,
    step: usize,
}

impl OneCycleLr {
    fn phases(&self) -> [Phase; 2] {
        let c = &self.config;
        let initial_lr = c.max_lr / c.div_factor;
        let min_lr = initial_lr / c.final_div_factor;
        [
            Phase {
                end_step: c.pct_start * c.total_steps as f64 - 1.0,
                start_lr: initial_lr,
                end_lr: c.max_lr,
                start_momentum: c.max_momentum,
                end_momentum: c.base_momentum,
            },
            Phase {
                end_step: c.total_steps as f64 - 1.0,
                start_lr: c.max_lr,
                end_lr: min_lr,
                start_momentum: c.base_momentum,
                end_momentum: c.max_momentum,
            },
        ]
    }

    /// PyTorch's `_annealing_cos`.
    fn anneal_cos(start: f64, end: f64, pct: f64) -> f64 {
        let cos_out = (std::f64::consts::PI * pct).cos() + 1.0;
        end + (start - end) / 2.0 * cos_out
    }

    /// Values at any step `k` (PyTorch's `get_lr()` with `last_epoch = k`).
    pub fn values_at(&self, step: usize) -> Result<OneCycleValues, OneCycleError> {
        let total_steps = self.config.total_steps;
        if step > total_steps {
            return Err(OneCycleError::PastEnd { step, total_steps });
        }
        let phases = self.phases();
        let mut start_step = 0.0f64;
        for (i, phase) in phases.iter().enumerate() {
            if step as f64 <= phase.end_step || i == phases.len() - 1 {
                let pct = (step as f64 - start_step) / (phase.end_step - start_step);
                let lr = Self::anneal_cos(phase.start_lr, phase.end_lr, pct);
                let beta1 = if self.config.cycle_momentum {
                    Self::anneal_cos(phase.start_momentum, phase.end_momentum, pct)
                } else {
                    self.config.max_momentum
                };
                return Ok(OneCycleValues { lr, beta1 });
            }
            start_step = phase.end_step;
        }
        unreachable!("the last phase always matches")
    }

    /// Values for the current optimizer step.
    pub fn current(&self) -> Result<OneCycleValues, OneCycleError> {
        self.values_at(self.step)
    }

    /// Advance to the next optimizer step (PyTorch's `scheduler.step()`), returning its values.
    pub fn step(&mut self) -> Result<OneCycleValues, OneCycleError> {
        let next = self.values_at(self.step + 1)?;
        self.step += 1;
        Ok(next)
    }

    /// Index of the current optimizer step (PyTorch's `last_epoch`).
    pub fn step_index(&self) -> usize {
        self.step
    }

    /// The schedule's configuration.
    pub fn config(&self) -> &OneCycleConfig {
        &self.config
    }

    /// State for a checkpoint.
    pub fn state(&self) -> OneCycleState {
        OneCycleState { config: self.config.clone(), step: self.step }
    }

    /// Rebuild the schedule from a checkpoint's state.
    pub fn from_state(state: OneCycleState) -> Result<Self, OneCycleError> {
        let mut sched = state.config.init()?;
        if state.step > state.config.total_steps {
            return Err(OneCycleError::PastEnd {
                step: state.step,
                total_steps: state.config.total_steps,
            });
        }
        sched.step = state.step;
        Ok(sched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_initial_lr_and_max_momentum() {
        let s = OneCycleConfig::new(5e-4, 100, 0.3).init().unwrap();
        let v = s.current().unwrap();
        assert!((v.lr - 5e-4 / 25.0).abs() < 1e-18);
        assert!((v.beta1 - 0.95).abs() < 1e-15);
    }

    #[test]
    fn peaks_at_end_of_warmup_and_ends_at_min_lr() {
        let s = OneCycleConfig::new(1.0, 11, 10.0 / 11.0 * 0.5).init().unwrap();
        // phase 1 ends at 0.4545..*11 - 1 = 4.0
        let peak = s.values_at(4).unwrap();
        assert!((peak.lr - 1.0).abs() < 1e-15);
        assert!((peak.beta1 - 0.85).abs() < 1e-15);
        let end = s.values_at(10).unwrap();
        assert!((end.lr - 1.0 / 25.0 / 1000.0).abs() < 1e-15);
        assert!((end.beta1 - 0.95).abs() < 1e-15);
    }

    #[test]
    fn past_end_is_an_error() {
        let mut s = OneCycleConfig::new(1.0, 3, 0.5).init().unwrap();
        for _ in 0..3 {
            s.step().unwrap();
        }
        assert_eq!(s.step(), Err(OneCycleError::PastEnd { step: 4, total_steps: 3 }));
    }

    #[test]
    fn empty_phase_is_rejected() {
        // pct_start * total - 1 == 0 makes PyTorch divide by zero.
        assert!(OneCycleConfig::new(1.0, 10, 0.1).init().is_err());
        assert!(OneCycleConfig::new(1.0, 10, 1.5).init().is_err());
    }

    #[test]
    fn state_round_trips() {
        let mut s = OneCycleConfig::paper(5e-4, 10, 7).init().unwrap();
        for _ in 0..13 {
            s.step().unwrap();
        }
        let json = serde_json::to_string(&s.state()).unwrap();
        let back = OneCycleLr::from_state(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.current().unwrap(), s.current().unwrap());
    }
}
