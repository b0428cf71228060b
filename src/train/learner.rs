//! The model being trained with its optimizer and schedule: one seeded step, eval-mode
//! predictions and validation L1, and the model + optimizer files of a checkpoint.

use crate::models::lowlevel::{LowLevelConfig, LowLevelModel};
use crate::train::adamw::{AdamW, AdamWConfig};
use crate::train::dataset::Dataset;
use crate::train::error::TrainError;
use crate::train::onecycle::{OneCycleConfig, OneCycleLr};
use crate::train::plan::RunPlan;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use std::path::Path;

/// File names inside a checkpoint directory.
use super::checkpoint::MODEL_FILE;
const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Validation and reconstruction batch size (no gradients: larger than training batches).
const VAL_BATCH: usize = 64;

/// The model, its optimizer and schedule on the training device.
pub(crate) struct Learner {
    /// `None` only transiently inside [`Learner::step`] (the optimizer consumes the model).
    model: Option<LowLevelModel>,
    model_config: LowLevelConfig,
    optim: AdamW,
    schedule: OneCycleLr,
    /// Autodiff device (training).
    train_device: Device,
    /// Plain device (validation: no autodiff, so no dropout).
    pub device: Device,
    seed: u64,
    latent_shape: [usize; 3],
    input_width: usize,
}

impl Learner {
    /// Seeded initialisation of a fresh model and optimizer for `plan`: the experiment's
    /// `[model]` widths sized for the data's input width and latent shape.
    pub fn new(plan: &RunPlan, weight_decay: f64, device: &Device) -> Result<Self, TrainError> {
        let train_device = device.clone().autodiff();
        let model_config =
            LowLevelConfig::sized(plan.input_width, plan.model.clone(), plan.latent_shape)?;
        let model = model_config.init(&train_device, plan.seed);
        let optim = AdamWConfig { weight_decay, ..AdamWConfig::default() }.init();
        // The paper's warm-up is 2 epochs (pct_start = 2 / epochs); a warm-up filling the whole
        // run is invalid (PyTorch divides by zero), so runs under 3 epochs warm up for a third.
        let total_steps = plan.steps_per_epoch as usize * plan.epochs;
        let schedule = if plan.epochs >= 3 {
            OneCycleConfig::paper(plan.max_lr, plan.epochs, plan.steps_per_epoch as usize)
        } else {
            OneCycleConfig::new(plan.max_lr, total_steps, 1.0 / 3.0)
        };
        Ok(Self {
            model: Some(model),
            model_config,
            optim,
            schedule: schedule.init()?,
            train_device,
            device: device.clone(),
            seed: plan.seed,
            latent_shape: plan.latent_shape,
            input_width: plan.input_width,
        })
    }

    fn model(&self) -> &LowLevelModel {
        self.model.as_ref().expect("the model is only taken inside step")
    }

    /// One optimizer step on a batch of `b` rows; returns the batch's mean L1 and the learning
    /// rate used.
    pub fn step(
        &mut self,
        x: Vec<f32>,
        y: Vec<f32>,
        b: usize,
        step: u64,
    ) -> Result<(f64, f64), TrainError> {
        let values = self.schedule.values_at(step as usize)?;
        let [c, h, w] = self.latent_shape;
        let x =
            Tensor::<2>::from_data(TensorData::new(x, [b, self.input_width]), &self.train_device); // [b, voxels]
        let y = Tensor::<4>::from_data(TensorData::new(y, [b, c, h, w]), &self.train_device); // [b, c, h, w]
        // Dropout masks drawn on the host from the step's window of the dropout stream: the
        // same on every device, and a resumed run draws the ones an uninterrupted run drew.
        let model = self.model.take().expect("model present between steps");
        let pred = model.forward_train(x, &mut crate::rng::dropout_rng(self.seed, step)); // [b, c, h, w]
        let loss = (pred - y).abs().mean(); // [1]
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(model, grads, values.lr, values.beta1));
        Ok((loss_value, values.lr))
    }

    /// Eval-mode predictions for `rows`, in batches: `[rows, c*h*w]` flattened.
    pub fn predict(&self, data: &Dataset, rows: &[usize]) -> Result<Vec<f32>, TrainError> {
        let eval = self.model().valid();
        let mut out = Vec::with_capacity(rows.len() * data.latent_len());
        for chunk in rows.chunks(VAL_BATCH) {
            let (x, _) = data.batch(chunk);
            let x = Tensor::<2>::from_data(
                TensorData::new(x, [chunk.len(), self.input_width]),
                &self.device,
            ); // [b, voxels]
            let pred = eval.forward(x); // [b, c, h, w]
            out.extend(pred.into_data().try_into_vec::<f32>().map_err(|e| TrainError::Tensor {
                what: "validation predictions",
                message: format!("{e:?}"),
            })?);
        }
        Ok(out)
    }

    /// Mean absolute error over every latent element of the validation rows.
    pub fn val_l1(&self, data: &Dataset, rows: &[usize]) -> Result<f64, TrainError> {
        let pred = self.predict(data, rows)?;
        let l = data.latent_len();
        let mut sum = 0.0f64;
        for (i, &r) in rows.iter().enumerate() {
            let target = &data.latents[r * l..(r + 1) * l];
            sum += pred[i * l..(i + 1) * l]
                .iter()
                .zip(target)
                .map(|(p, t)| (p - t).abs() as f64)
                .sum::<f64>();
        }
        Ok(sum / (rows.len() * l) as f64)
    }

    /// Write the model and optimizer state into a checkpoint directory (the message of a
    /// failure becomes the checkpoint store's `Write` error, which names the directory).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        self.model().save(&dir.join(MODEL_FILE)).map_err(|e| crate::errors::chain(&e))?;
        self.optim.save(&dir.join(OPTIMIZER_FILE)).map_err(|e| crate::errors::chain(&e))
    }

    /// Restore the model and optimizer state from a verified checkpoint directory.
    pub fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let model =
            LowLevelModel::load(&self.model_config, &dir.join(MODEL_FILE), &self.train_device)?;
        self.optim = AdamW::load(&dir.join(OPTIMIZER_FILE), &model)?;
        self.model = Some(model);
        Ok(())
    }
}
