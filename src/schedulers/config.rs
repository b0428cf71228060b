//! `scheduler/scheduler_config.json` of a diffusers pipeline, read the way
//! `PNDMScheduler.from_config` / `DDIMScheduler.from_config` read it: unknown keys ignored,
//! missing keys take the defaults of the scheduler being built (the two differ in
//! `set_alpha_to_one` and `clip_sample`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SchedulerError;

/// The scheduler fields both diffusers schedulers understand. `None` = absent from the file
/// (the scheduler's own default applies).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SchedulerConfig {
    /// The scheduler class the pipeline was saved with (`PNDMScheduler` for SD 1.5).
    #[serde(rename = "_class_name", default)]
    pub class_name: Option<String>,
    /// Training timesteps (1000).
    #[serde(default)]
    pub num_train_timesteps: Option<usize>,
    /// First beta (0.0001 by default; SD 1.x: 0.00085).
    #[serde(default)]
    pub beta_start: Option<f64>,
    /// Last beta (0.02 by default; SD 1.x: 0.012).
    #[serde(default)]
    pub beta_end: Option<f64>,
    /// `linear`, `scaled_linear` or `squaredcos_cap_v2`.
    #[serde(default)]
    pub beta_schedule: Option<String>,
    /// Explicit betas (overrides the schedule).
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
    /// PNDM: plain PLMS steps without the Runge-Kutta warm-up (true for SD).
    #[serde(default)]
    pub skip_prk_steps: Option<bool>,
    /// Use alpha_cumprod = 1 past the last step (PNDM default false, DDIM default true).
    #[serde(default)]
    pub set_alpha_to_one: Option<bool>,
    /// `epsilon` or `v_prediction` (DDIM also `sample`).
    #[serde(default)]
    pub prediction_type: Option<String>,
    /// `leading`, `trailing` or `linspace`.
    #[serde(default)]
    pub timestep_spacing: Option<String>,
    /// Added to every `leading` timestep (SD 1.x: 1).
    #[serde(default)]
    pub steps_offset: Option<i64>,
    /// DDIM: clamp the predicted x0 to `[-clip_sample_range, clip_sample_range]` (default true).
    #[serde(default)]
    pub clip_sample: Option<bool>,
    /// DDIM: the clamp range (1.0).
    #[serde(default)]
    pub clip_sample_range: Option<f64>,
    /// DDIM dynamic thresholding (unsupported; must be false).
    #[serde(default)]
    pub thresholding: Option<bool>,
    /// DDIM zero-terminal-SNR rescaling of the betas.
    #[serde(default)]
    pub rescale_betas_zero_snr: Option<bool>,
}

/// How the inference timesteps are spread over the training ones (diffusers' `timestep_spacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    /// `arange(steps) * (T // steps) + steps_offset`.
    Leading,
    /// `round(arange(T, 0, -T / steps)) - 1`.
    Trailing,
    /// `round(linspace(0, T - 1, steps))`.
    Linspace,
}

/// The model's output type (diffusers' `prediction_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// The noise.
    Epsilon,
    /// `v = sqrt(a) * eps - sqrt(1 - a) * x0`.
    VPrediction,
    /// The clean sample x0 (DDIM only).
    Sample,
}

impl SchedulerConfig {
    /// Read `path` (a `scheduler_config.json`).
    pub fn from_file(path: &Path) -> Result<Self, SchedulerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SchedulerError::Read { path: path.into(), source })?;
        serde_json::from_str(&text)
            .map_err(|source| SchedulerError::Parse { path: path.into(), source })
    }

    pub(crate) fn spacing(&self, origin: &Option<PathBuf>) -> Result<Spacing, SchedulerError> {
        match self.timestep_spacing.as_deref().unwrap_or("leading") {
            "leading" => Ok(Spacing::Leading),
            "trailing" => Ok(Spacing::Trailing),
            "linspace" => Ok(Spacing::Linspace),
            other => {
                Err(unsupported(origin, "timestep_spacing", other, "leading, trailing or linspace"))
            }
        }
    }

    pub(crate) fn prediction(
        &self,
        origin: &Option<PathBuf>,
        allow_sample: bool,
    ) -> Result<Prediction, SchedulerError> {
        match self.prediction_type.as_deref().unwrap_or("epsilon") {
            "epsilon" => Ok(Prediction::Epsilon),
            "v_prediction" => Ok(Prediction::VPrediction),
            "sample" if allow_sample => Ok(Prediction::Sample),
            other => Err(unsupported(
                origin,
                "prediction_type",
                other,
                if allow_sample {
                    "epsilon, v_prediction or sample"
                } else {
                    "epsilon or v_prediction"
                },
            )),
        }
    }
}

pub(crate) fn unsupported(
    origin: &Option<PathBuf>,
    field: &'static str,
    value: &str,
    expected: &'static str,
) -> SchedulerError {
    SchedulerError::Unsupported {
        origin: origin
            .as_ref()
            .map_or_else(|| "scheduler config".into(), |p| p.display().to_string()),
        field,
        value: value.into(),
        expected,
    }
}
