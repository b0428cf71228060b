//! The training data held in memory: the masked fMRI of every training row and the target
//! latents from the latent cache (built on first use, shared with `brainscope latents`).

use crate::data::algonauts::Subject;
use crate::data::roi::{MaskMode, RoiSet, VoxelMask};
use crate::experiments::config::{CONFIG_FILE, ExperimentConfig};
use crate::latents::{LatentCache, LatentJob, ensure_latent_cache};
use crate::train::error::TrainError;
use crate::train::trainer::Log;
use burn::prelude::*;
use std::path::{Path, PathBuf};

/// Masked fMRI rows and target latents, row-major.
pub(crate) struct Dataset {
    /// `[n, width]` row-major.
    pub fmri: Vec<f32>,
    /// Model input width (voxels after masking).
    pub width: usize,
    /// `[n, c*h*w]` row-major.
    pub latents: Vec<f32>,
    /// `[c, h, w]` of one latent.
    pub latent_shape: [usize; 3],
    /// Stimulus image of each row.
    pub images: Vec<PathBuf>,
    /// The latent cache file the latents came from (the probe file is written beside it).
    pub latent_cache: PathBuf,
}

impl Dataset {
    /// Values in one latent.
    pub fn latent_len(&self) -> usize {
        self.latent_shape.iter().product()
    }

    /// Gather rows into `([b, width], [b, c*h*w])` buffers.
    pub fn batch(&self, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let (w, l) = (self.width, self.latent_len());
        let mut x = Vec::with_capacity(rows.len() * w);
        let mut y = Vec::with_capacity(rows.len() * l);
        for &r in rows {
            x.extend_from_slice(&self.fmri[r * w..(r + 1) * w]);
            y.extend_from_slice(&self.latents[r * l..(r + 1) * l]);
        }
        (x, y)
    }

    /// Load the experiment's data: masked fMRI of every training row and the latent cache of
    /// its images (the same cache `brainscope latents` writes by default: training then test
    /// images, posterior mode). `experiment_dir` names the experiment.toml in ROI errors.
    pub fn load(
        config: &ExperimentConfig,
        experiment_dir: &Path,
        data_root: &Path,
        vae_dir: &Path,
        device: &Device,
        log: &Log,
        progress: bool,
    ) -> Result<Self, TrainError> {
        let subject = Subject::open(data_root, &config.data.subject)?;
        // Both parse: ExperimentConfig::load validated them.
        let set = RoiSet::parse(&config.data.roi_set)?;
        let mode: MaskMode = config.data.mask_mode.parse().unwrap_or_default();
        let mask = VoxelMask::build(&subject.roi_atlas()?, &set, mode).map_err(|source| {
            TrainError::Roi {
                config: experiment_dir.join(CONFIG_FILE),
                roi_set: config.data.roi_set.clone(),
                source,
            }
        })?;
        let n = subject.n_train();
        let rows: Vec<usize> = (0..n).collect();
        log.line(&format!(
            "loading fMRI: {n} rows x {} voxels ({set}, {mode})",
            mask.input_width()
        ));
        let width = mask.input_width();
        let fmri = subject.load_fmri(&mask, &rows)?.into_raw_vec_and_offset().0;

        let job = LatentJob::for_subject(&subject, vae_dir, progress);
        log.line(&format!("latent cache {} (VAE {})", job.out.display(), vae_dir.display()));
        let built = ensure_latent_cache(&job, device)?;
        if let Some(reason) = &built.rebuilt_because {
            log.line(&format!("latent cache rebuilt: {reason}"));
        }
        let cache = LatentCache::open(&built.path)?;
        let latent_shape = cache.shape();
        let latents = cache.rows(&rows)?.into_raw_vec_and_offset().0;
        Ok(Self {
            fmri,
            width,
            latents,
            latent_shape,
            images: subject.train_images().to_vec(),
            latent_cache: built.path.clone(),
        })
    }
}
