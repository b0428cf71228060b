//! diffusers `DDIMScheduler` with eta = 0 (deterministic): predicted x0 (optionally clamped),
//! then the direction to x_{t-1}.

use burn::prelude::*;

use super::betas::ascending_timesteps;
use super::config::{Prediction, SchedulerConfig, Spacing, unsupported};
use super::{Schedule, SchedulerError};

/// The DDIM scheduler (eta 0).
#[derive(Debug, Clone)]
pub struct DdimScheduler {
    /// Betas, alphas and the config values shared with PNDM.
    pub schedule: Schedule,
    spacing: Spacing,
    steps_offset: i64,
    prediction: Prediction,
    clip_sample: Option<f32>,
    num_inference_steps: Option<usize>,
    timesteps: Vec<i64>,
}

impl DdimScheduler {
    /// Build from a scheduler config as `DDIMScheduler.from_config` does (DDIM defaults for absent
    /// keys: `set_alpha_to_one` true, `clip_sample` true with range 1, `leading` spacing), so a PNDM
    /// pipeline's config gives the DDIM that diffusers would build from it.
    pub fn from_config(
        config: &SchedulerConfig,
        origin: Option<std::path::PathBuf>,
    ) -> Result<Self, SchedulerError> {
        if config.thresholding.unwrap_or(false) {
            return Err(unsupported(
                &origin,
                "thresholding",
                "true",
                "false (dynamic thresholding is not ported)",
            ));
        }
        let rescale = config.rescale_betas_zero_snr.unwrap_or(false);
        let schedule =
            Schedule::new(config, config.set_alpha_to_one.unwrap_or(true), rescale, &origin)?;
        let range = config.clip_sample_range.unwrap_or(1.0) as f32;
        Ok(Self {
            schedule,
            spacing: config.spacing(&origin)?,
            steps_offset: config.steps_offset.unwrap_or(0),
            prediction: config.prediction(&origin, true)?,
            clip_sample: config.clip_sample.unwrap_or(true).then_some(range),
            num_inference_steps: None,
            timesteps: Vec::new(),
        })
    }

    /// diffusers `set_timesteps`: descending timesteps of the configured spacing.
    pub fn set_timesteps(&mut self, steps: usize) -> Result<(), SchedulerError> {
        let train = self.schedule.num_train_timesteps;
        if steps == 0 || steps > train {
            return Err(SchedulerError::Steps { steps, train });
        }
        let mut t = ascending_timesteps(self.spacing, train, steps, self.steps_offset);
        t.reverse();
        self.timesteps = t;
        self.num_inference_steps = Some(steps);
        Ok(())
    }

    /// The denoising timesteps of the last [`DdimScheduler::set_timesteps`].
    pub fn timesteps(&self) -> &[i64] {
        &self.timesteps
    }

    /// One deterministic DDIM step (eta 0) from `timestep` to `timestep - T // steps`.
    pub fn step(
        &mut self,
        model_output: Tensor<4>,
        timestep: i64,
        sample: Tensor<4>,
    ) -> Result<Tensor<4>, SchedulerError> {
        let steps = self.num_inference_steps.ok_or(SchedulerError::NotSet)?;
        let prev_timestep = timestep - (self.schedule.num_train_timesteps / steps) as i64;
        let a_t = self.schedule.alpha_cumprod(timestep);
        let a_prev = self.schedule.alpha_cumprod_prev(prev_timestep);
        let b_t = 1.0 - a_t;
        let (x0, eps) = match self.prediction {
            Prediction::Epsilon => (
                (sample - model_output.clone().mul_scalar(b_t.sqrt())).div_scalar(a_t.sqrt()),
                model_output,
            ),
            Prediction::Sample => {
                let eps =
                    (sample - model_output.clone().mul_scalar(a_t.sqrt())).div_scalar(b_t.sqrt());
                (model_output, eps)
            }
            Prediction::VPrediction => (
                sample.clone().mul_scalar(a_t.sqrt()) - model_output.clone().mul_scalar(b_t.sqrt()),
                model_output.mul_scalar(a_t.sqrt()) + sample.mul_scalar(b_t.sqrt()),
            ),
        };
        let x0 = match self.clip_sample {
            Some(r) => x0.clamp(-r, r),
            None => x0,
        };
        // std_dev_t = eta * sqrt(variance) = 0.
        let direction = eps.mul_scalar((1.0 - a_prev).sqrt());
        Ok(x0.mul_scalar(a_prev.sqrt()) + direction)
    }
}
