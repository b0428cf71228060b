//! diffusers `PNDMScheduler`: pseudo numerical methods for diffusion models. With
//! `skip_prk_steps` (Stable Diffusion) only the linear multistep (PLMS) part runs, and its
//! warm-up repeats the second timestep: `[981, 961, 961, 941, ...]` for 50 steps. The step
//! counter knows nothing of where the pipeline started, so after img2img's cut
//! (`timesteps[t_start..]`) the warm-up runs one step out of phase — reproduced as diffusers does.

use burn::prelude::*;

use super::betas::ascending_timesteps;
use super::config::{Prediction, SchedulerConfig, Spacing};
use super::{Schedule, SchedulerError};

/// The PNDM scheduler and its multistep state.
#[derive(Debug, Clone)]
pub struct PndmScheduler {
    /// Betas, alphas and the config values shared with DDIM.
    pub schedule: Schedule,
    skip_prk_steps: bool,
    spacing: Spacing,
    steps_offset: i64,
    prediction: Prediction,
    num_inference_steps: Option<usize>,
    prk_timesteps: Vec<i64>,
    timesteps: Vec<i64>,
    counter: usize,
    ets: Vec<Tensor<4>>,
    cur_sample: Option<Tensor<4>>,
    cur_model_output: Option<Tensor<4>>,
}

impl PndmScheduler {
    /// Build from a scheduler config (PNDM defaults for absent keys: `set_alpha_to_one` false,
    /// `skip_prk_steps` false, `leading` spacing).
    pub fn from_config(
        config: &SchedulerConfig,
        origin: Option<std::path::PathBuf>,
    ) -> Result<Self, SchedulerError> {
        let schedule =
            Schedule::new(config, config.set_alpha_to_one.unwrap_or(false), false, &origin)?;
        Ok(Self {
            schedule,
            skip_prk_steps: config.skip_prk_steps.unwrap_or(false),
            spacing: config.spacing(&origin)?,
            steps_offset: config.steps_offset.unwrap_or(0),
            prediction: config.prediction(&origin, false)?,
            num_inference_steps: None,
            prk_timesteps: Vec::new(),
            timesteps: Vec::new(),
            counter: 0,
            ets: Vec::new(),
            cur_sample: None,
            cur_model_output: None,
        })
    }

    /// diffusers `set_timesteps`: the PRK timesteps (unless skipped), then the PLMS ones, in
    /// denoising order; resets the multistep state.
    pub fn set_timesteps(&mut self, steps: usize) -> Result<(), SchedulerError> {
        let train = self.schedule.num_train_timesteps;
        if steps == 0 || steps > train {
            return Err(SchedulerError::Steps { steps, train });
        }
        let t = ascending_timesteps(self.spacing, train, steps, self.steps_offset);
        let n = t.len();
        if self.skip_prk_steps {
            self.prk_timesteps = Vec::new();
            // concat(t[:-1], t[-2:-1], t[-1:])[::-1]
            let mut plms: Vec<i64> = t[..n - 1].to_vec();
            if n >= 2 {
                plms.push(t[n - 2]);
            }
            plms.push(t[n - 1]);
            plms.reverse();
            self.timesteps = plms;
        } else {
            if n < 4 {
                return Err(SchedulerError::PrkSteps { steps });
            }
            // repeat(t[-4:], 2) + tile([0, T // steps // 2], 4), then [:-1].repeat(2)[1:-1][::-1]
            let half = (train / steps / 2) as i64;
            let prk: Vec<i64> = t[n - 4..].iter().flat_map(|&x| [x, x + half]).collect::<Vec<_>>();
            let rep: Vec<i64> = prk[..prk.len() - 1].iter().flat_map(|&x| [x, x]).collect();
            let mut prk = rep[1..rep.len() - 1].to_vec();
            prk.reverse();
            let mut plms: Vec<i64> = t[..n - 3].to_vec();
            plms.reverse();
            self.prk_timesteps = prk.clone();
            self.timesteps = prk.into_iter().chain(plms).collect();
        }
        self.num_inference_steps = Some(steps);
        self.ets.clear();
        self.counter = 0;
        self.cur_sample = None;
        self.cur_model_output = None;
        Ok(())
    }

    /// The denoising timesteps of the last [`PndmScheduler::set_timesteps`].
    pub fn timesteps(&self) -> &[i64] {
        &self.timesteps
    }

    /// One denoising step (diffusers `step`: PRK while the counter is in the PRK part, else PLMS).
    pub fn step(
        &mut self,
        model_output: Tensor<4>,
        timestep: i64,
        sample: Tensor<4>,
    ) -> Result<Tensor<4>, SchedulerError> {
        let steps = self.num_inference_steps.ok_or(SchedulerError::NotSet)?;
        if self.counter < self.prk_timesteps.len() && !self.skip_prk_steps {
            Ok(self.step_prk(model_output, timestep, sample, steps))
        } else {
            self.step_plms(model_output, timestep, sample, steps)
        }
    }

    fn step_prk(
        &mut self,
        model_output: Tensor<4>,
        timestep: i64,
        sample: Tensor<4>,
        steps: usize,
    ) -> Tensor<4> {
        let train = self.schedule.num_train_timesteps;
        let diff_to_prev = if self.counter % 2 == 1 { 0 } else { (train / steps / 2) as i64 };
        let prev_timestep = timestep - diff_to_prev;
        let timestep = self.prk_timesteps[self.counter / 4 * 4];
        let add = |acc: &Option<Tensor<4>>, x: Tensor<4>| match acc {
            Some(a) => a.clone() + x,
            None => x,
        };
        let mut output = model_output.clone();
        match self.counter % 4 {
            0 => {
                self.cur_model_output =
                    Some(add(&self.cur_model_output, model_output.clone().mul_scalar(1.0 / 6.0)));
                self.ets.push(model_output);
                self.cur_sample = Some(sample.clone());
            }
            1 | 2 => {
                self.cur_model_output =
                    Some(add(&self.cur_model_output, model_output.mul_scalar(1.0 / 3.0)));
            }
            _ => {
                output = add(&self.cur_model_output, model_output.mul_scalar(1.0 / 6.0));
                self.cur_model_output = None;
            }
        }
        let cur = self.cur_sample.clone().unwrap_or(sample);
        let prev = self.prev_sample(cur, timestep, prev_timestep, output);
        self.counter += 1;
        prev
    }

    fn step_plms(
        &mut self,
        model_output: Tensor<4>,
        timestep: i64,
        sample: Tensor<4>,
        steps: usize,
    ) -> Result<Tensor<4>, SchedulerError> {
        if !self.skip_prk_steps && self.ets.len() < 3 {
            return Err(SchedulerError::PlmsBeforePrk);
        }
        let ratio = (self.schedule.num_train_timesteps / steps) as i64;
        let (mut timestep, mut prev_timestep) = (timestep, timestep - ratio);
        if self.counter != 1 {
            let keep = self.ets.len().saturating_sub(3);
            self.ets.drain(..keep);
            self.ets.push(model_output.clone());
        } else {
            prev_timestep = timestep;
            timestep += ratio;
        }
        let mut sample = sample;
        let n = self.ets.len();
        let e = |k: usize| self.ets[n - k].clone();
        let output = if n == 1 && self.counter == 0 {
            self.cur_sample = Some(sample.clone());
            model_output
        } else if n == 1 && self.counter == 1 {
            sample = self.cur_sample.take().unwrap_or(sample);
            (model_output + e(1)).div_scalar(2.0)
        } else if n == 2 {
            (e(1).mul_scalar(3.0) - e(2)).div_scalar(2.0)
        } else if n == 3 {
            (e(1).mul_scalar(23.0) - e(2).mul_scalar(16.0) + e(3).mul_scalar(5.0)).div_scalar(12.0)
        } else {
            (e(1).mul_scalar(55.0) - e(2).mul_scalar(59.0) + e(3).mul_scalar(37.0)
                - e(4).mul_scalar(9.0))
            .mul_scalar((1.0f64 / 24.0) as f32)
        };
        let prev = self.prev_sample(sample, timestep, prev_timestep, output);
        self.counter += 1;
        Ok(prev)
    }

    /// PNDM formula (9): x_{t-δ} from x_t and the (combined) model output, float32 scalars.
    fn prev_sample(
        &self,
        sample: Tensor<4>,
        timestep: i64,
        prev_timestep: i64,
        model_output: Tensor<4>,
    ) -> Tensor<4> {
        let a_t = self.schedule.alpha_cumprod(timestep);
        let a_prev = self.schedule.alpha_cumprod_prev(prev_timestep);
        let (b_t, b_prev) = (1.0 - a_t, 1.0 - a_prev);
        let model_output = match self.prediction {
            Prediction::VPrediction => {
                model_output.mul_scalar(a_t.sqrt()) + sample.clone().mul_scalar(b_t.sqrt())
            }
            _ => model_output,
        };
        let sample_coeff = (a_prev / a_t).sqrt();
        let denom = a_t * b_prev.sqrt() + (a_t * b_t * a_prev).sqrt();
        sample.mul_scalar(sample_coeff) - model_output.mul_scalar(a_prev - a_t).div_scalar(denom)
    }
}
