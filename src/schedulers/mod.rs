//! Diffusion schedulers ported from diffusers (no weights, so outside `models/`): [`PndmScheduler`]
//! (Stable Diffusion 1.5's default, `skip_prk_steps` and the full PRK warm-up) and
//! [`DdimScheduler`] (eta 0), both built from a pipeline's `scheduler/scheduler_config.json`, plus
//! the shared noise [`Schedule`] (`add_noise`) and img2img's timestep cut ([`img2img_start`]).
//!
//! Scalars follow diffusers' float32 tensors (betas, `alphas_cumprod`, the step coefficients), so
//! trajectories match PyTorch to float32 rounding.

pub mod betas;
pub mod config;
pub mod ddim;
pub mod pndm;

use std::path::{Path, PathBuf};

use burn::prelude::*;

pub use config::SchedulerConfig;
pub use ddim::DdimScheduler;
pub use pndm::PndmScheduler;

/// Scheduler configuration and use errors.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The config file cannot be read.
    #[error("cannot read the scheduler config {path}")]
    Read {
        /// `scheduler_config.json`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid JSON of the expected shape.
    #[error("{path} is not a diffusers scheduler config")]
    Parse {
        /// `scheduler_config.json`.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A config value this port does not implement.
    #[error("{origin}: unsupported {field} {value:?}; expected {expected}")]
    Unsupported {
        /// The config file (or "scheduler config").
        origin: String,
        /// The key.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is supported.
        expected: &'static str,
    },
    /// `num_train_timesteps` or the betas are unusable.
    #[error("{origin}: {reason}")]
    Invalid {
        /// The config file (or "scheduler config").
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// Inference steps outside 1..=num_train_timesteps.
    #[error(
        "steps must be between 1 and {train} (the scheduler's num_train_timesteps), got {steps}"
    )]
    Steps {
        /// Requested steps.
        steps: usize,
        /// `num_train_timesteps`.
        train: usize,
    },
    /// img2img strength outside (0, 1].
    #[error("strength must be in (0, 1], got {0}")]
    Strength(f64),
    /// The strength leaves no denoising step.
    #[error(
        "strength {strength} with {steps} steps leaves no denoising step (int({steps} * {strength}) = 0); raise --strength or --steps"
    )]
    NoSteps {
        /// Requested steps.
        steps: usize,
        /// Requested strength.
        strength: f64,
    },
    /// PNDM with its PRK warm-up needs at least 4 inference steps.
    #[error("PNDM with skip_prk_steps false needs at least 4 steps, got {steps}")]
    PrkSteps {
        /// Requested steps.
        steps: usize,
    },
    /// PLMS steps were asked for before the PRK warm-up ran (an img2img cut inside the warm-up).
    #[error(
        "PNDM's PLMS steps need the 12 PRK warm-up steps first (skip_prk_steps is false); use a strength of 1, skip_prk_steps true, or DDIM"
    )]
    PlmsBeforePrk,
    /// `step` before `set_timesteps`.
    #[error("set_timesteps must run before step")]
    NotSet,
}

/// Betas and cumulative alphas shared by the schedulers (float32, as diffusers' tensors).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// `num_train_timesteps`.
    pub num_train_timesteps: usize,
    /// `betas[t]`.
    pub betas: Vec<f32>,
    /// `alphas_cumprod[t] = prod_{s <= t} (1 - betas[s])`.
    pub alphas_cumprod: Vec<f32>,
    /// alpha_cumprod used past the last step (`1` when `set_alpha_to_one`, else `alphas_cumprod[0]`).
    pub final_alpha_cumprod: f32,
}

impl Schedule {
    fn new(
        config: &SchedulerConfig,
        set_alpha_to_one: bool,
        rescale_zero_snr: bool,
        origin: &Option<PathBuf>,
    ) -> Result<Self, SchedulerError> {
        let name = || {
            origin.as_ref().map_or_else(|| "scheduler config".into(), |p| p.display().to_string())
        };
        let train = config.num_train_timesteps.unwrap_or(1000);
        let (start, end) = (config.beta_start.unwrap_or(0.0001), config.beta_end.unwrap_or(0.02));
        let mut betas = if let Some(b) = &config.trained_betas {
            b.iter().map(|&x| x as f32).collect()
        } else {
            match config.beta_schedule.as_deref().unwrap_or("linear") {
                "linear" => betas::linspace_f32(start as f32, end as f32, train),
                "scaled_linear" => {
                    betas::linspace_f32(start.sqrt() as f32, end.sqrt() as f32, train)
                        .into_iter()
                        .map(|b| b.powi(2))
                        .collect()
                }
                "squaredcos_cap_v2" => betas::squaredcos_cap_v2(train),
                other => {
                    return Err(config::unsupported(
                        origin,
                        "beta_schedule",
                        other,
                        "linear, scaled_linear or squaredcos_cap_v2",
                    ));
                }
            }
        };
        if train == 0 || betas.len() != train {
            return Err(SchedulerError::Invalid {
                origin: name(),
                reason: format!("{} betas for num_train_timesteps {train}", betas.len()),
            });
        }
        if rescale_zero_snr {
            betas = betas::rescale_zero_terminal_snr(&betas);
        }
        let alphas_cumprod = betas::alphas_cumprod(&betas);
        let final_alpha_cumprod = if set_alpha_to_one { 1.0 } else { alphas_cumprod[0] };
        Ok(Self { num_train_timesteps: train, betas, alphas_cumprod, final_alpha_cumprod })
    }

    /// `alphas_cumprod[t]` (t clamped into range, as a tensor index would fail instead).
    pub fn alpha_cumprod(&self, t: i64) -> f32 {
        self.alphas_cumprod[t.clamp(0, self.num_train_timesteps as i64 - 1) as usize]
    }

    /// `alphas_cumprod[t]`, or the final alpha for `t < 0`.
    pub fn alpha_cumprod_prev(&self, t: i64) -> f32 {
        if t >= 0 { self.alpha_cumprod(t) } else { self.final_alpha_cumprod }
    }

    /// diffusers `add_noise`: `sqrt(a_t) * x0 + sqrt(1 - a_t) * noise` at timestep `t`.
    pub fn add_noise(&self, original: Tensor<4>, noise: Tensor<4>, t: i64) -> Tensor<4> {
        let a = self.alpha_cumprod(t);
        original.mul_scalar(a.sqrt()) + noise.mul_scalar((1.0 - a).sqrt())
    }
}

/// Which scheduler to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchedulerKind {
    /// `PNDMScheduler` (SD 1.5's default).
    Pndm,
    /// `DDIMScheduler.from_config(the pipeline's scheduler config)`, eta 0.
    Ddim,
}

/// A PNDM or DDIM scheduler behind one interface.
#[derive(Debug, Clone)]
pub enum Scheduler {
    /// PNDM (boxed: its multistep state is the larger).
    Pndm(Box<PndmScheduler>),
    /// DDIM.
    Ddim(DdimScheduler),
}

impl Scheduler {
    /// Build `kind` from a scheduler config (`origin` names the file in errors).
    pub fn from_config(
        kind: SchedulerKind,
        config: &SchedulerConfig,
        origin: Option<PathBuf>,
    ) -> Result<Self, SchedulerError> {
        Ok(match kind {
            SchedulerKind::Pndm => {
                Self::Pndm(Box::new(PndmScheduler::from_config(config, origin)?))
            }
            SchedulerKind::Ddim => Self::Ddim(DdimScheduler::from_config(config, origin)?),
        })
    }

    /// Read `path` (a `scheduler_config.json`) and build `kind` from it.
    pub fn from_file(kind: SchedulerKind, path: &Path) -> Result<Self, SchedulerError> {
        Self::from_config(kind, &SchedulerConfig::from_file(path)?, Some(path.into()))
    }

    /// The noise schedule.
    pub fn schedule(&self) -> &Schedule {
        match self {
            Self::Pndm(s) => &s.schedule,
            Self::Ddim(s) => &s.schedule,
        }
    }

    /// diffusers `scheduler.order` (1 for both).
    pub fn order(&self) -> usize {
        1
    }

    /// diffusers `set_timesteps(steps)`.
    pub fn set_timesteps(&mut self, steps: usize) -> Result<(), SchedulerError> {
        match self {
            Self::Pndm(s) => s.set_timesteps(steps),
            Self::Ddim(s) => s.set_timesteps(steps),
        }
    }

    /// The timesteps of the last `set_timesteps`, in denoising order.
    pub fn timesteps(&self) -> &[i64] {
        match self {
            Self::Pndm(s) => s.timesteps(),
            Self::Ddim(s) => s.timesteps(),
        }
    }

    /// One denoising step: the sample at the step before `timestep`.
    pub fn step(
        &mut self,
        model_output: Tensor<4>,
        timestep: i64,
        sample: Tensor<4>,
    ) -> Result<Tensor<4>, SchedulerError> {
        match self {
            Self::Pndm(s) => s.step(model_output, timestep, sample),
            Self::Ddim(s) => s.step(model_output, timestep, sample),
        }
    }

    /// `add_noise` of the schedule.
    pub fn add_noise(&self, original: Tensor<4>, noise: Tensor<4>, t: i64) -> Tensor<4> {
        self.schedule().add_noise(original, noise, t)
    }

    /// img2img: `set_timesteps(steps)`, then the timesteps the pipeline runs,
    /// `timesteps[t_start * order..]` (see [`img2img_start`]).
    pub fn set_img2img_timesteps(
        &mut self,
        steps: usize,
        strength: f64,
    ) -> Result<Vec<i64>, SchedulerError> {
        let t_start = img2img_start(steps, strength)?;
        self.set_timesteps(steps)?;
        Ok(self.timesteps()[t_start * self.order()..].to_vec())
    }
}

/// img2img's first kept step: `t_start = steps - min(int(steps * strength), steps)`; errors for a
/// strength outside (0, 1], zero steps, or a strength that leaves no step.
pub fn img2img_start(steps: usize, strength: f64) -> Result<usize, SchedulerError> {
    if !(strength > 0.0 && strength <= 1.0) {
        return Err(SchedulerError::Strength(strength));
    }
    if steps == 0 {
        return Err(SchedulerError::Steps { steps, train: 1000 });
    }
    let init = ((steps as f64 * strength) as usize).min(steps);
    if init == 0 {
        return Err(SchedulerError::NoSteps { steps, strength });
    }
    Ok(steps - init)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd15() -> SchedulerConfig {
        serde_json::from_str(
            r#"{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
                "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
                "trained_betas": null}"#,
        )
        .unwrap()
    }

    #[test]
    fn sd15_img2img_runs_38_calls_from_741() {
        let mut s = Scheduler::from_config(SchedulerKind::Pndm, &sd15(), None).unwrap();
        s.set_timesteps(50).unwrap();
        assert_eq!(&s.timesteps()[..4], &[981, 961, 961, 941]);
        let t = s.set_img2img_timesteps(50, 0.75).unwrap();
        assert_eq!((t.len(), t[0], t[1], t[37]), (38, 741, 721, 1));
        let mut d = Scheduler::from_config(SchedulerKind::Ddim, &sd15(), None).unwrap();
        let t = d.set_img2img_timesteps(50, 0.75).unwrap();
        assert_eq!((t.len(), t[0], t[36]), (37, 721, 1));
    }

    #[test]
    fn bad_strength_and_steps() {
        assert!(matches!(img2img_start(50, 0.0), Err(SchedulerError::Strength(_))));
        assert!(matches!(img2img_start(50, 1.5), Err(SchedulerError::Strength(_))));
        assert!(matches!(img2img_start(50, f64::NAN), Err(SchedulerError::Strength(_))));
        assert!(matches!(img2img_start(0, 0.5), Err(SchedulerError::Steps { .. })));
        assert!(matches!(img2img_start(3, 0.2), Err(SchedulerError::NoSteps { .. })));
        assert_eq!(img2img_start(50, 1.0).unwrap(), 0);
    }
}
