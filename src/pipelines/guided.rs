//! The paper's guided reconstruction (`brainscope recon`): for each sample of an experiment's
//! `recon/final-<split>/` (the low-level images `brainscope eval` decodes from the experiment's
//! predicted latents), caption the blurry low-level image with BLIP, drop "blurry " from the
//! caption, and turn caption + low-level image into a clear image with SD img2img (the paper:
//! strength 0.75, guidance 6, 50 PNDM steps = 38 UNet calls from t = 741).
//!
//! Outputs beside the low-level images: `sample-XX-caption.txt`, `sample-XX-highlevel.png` and
//! `highlevel.json` (the settings, [`HighLevelSettings`]). Sample by sample, each file written to
//! a temporary name and renamed, so an interrupted run (Ctrl-C, a crash) keeps every finished
//! sample and the next run continues after them; a run with other settings is refused instead
//! of mixing images made two ways.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::experiments::state::{
    EvalSplit, HIGHLEVEL_SETTINGS, HighLevelSettings, RunPaths, caption_file_name, files, recon,
    recon_file_name, write_atomic,
};
use crate::imageio::{self, ImageIoError};
use crate::models::blip::{self, BlipError, GenerateOptions, Preprocess, preprocess};
use crate::models::unet::load_unet;
use crate::models::weights::WeightsError;
use crate::pipelines::img2img::{self, preprocess_image};
use crate::pipelines::{Img2ImgOptions, LatentMode, PipelineError, Randomness, SdPipeline};
use crate::schedulers::SchedulerKind;

/// The paper's caption clean-up: BLIP describes the low-level images as blurry; the seed code
/// removed `"blurry "` before prompting SD.
pub fn strip_blurry(caption: &str) -> String {
    caption.replace("blurry ", "").trim().to_string()
}

/// Why a guided reconstruction could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuidedError {
    /// No final low-level reconstructions to start from.
    #[error(
        "{dir} holds no low-level reconstructions ({index} is missing); run `brainscope eval {id} \
         --split {split}` first (it decodes them from the last checkpoint)"
    )]
    NoLowLevel {
        /// `recon/final-<split>/`.
        dir: PathBuf,
        /// Its `samples.json`.
        index: PathBuf,
        /// Experiment id.
        id: String,
        /// Split name.
        split: &'static str,
    },
    /// `samples.json` could not be read.
    #[error("{path}: unreadable reconstruction index ({reason}); run `brainscope eval` again")]
    BadIndex {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An earlier run made this folder's high-level images with other settings.
    #[error(
        "{path}: the high-level images there were made with other settings ({diff}); run with \
         the same settings to continue, or add --restart to remake them all"
    )]
    OtherSettings {
        /// `highlevel.json`.
        path: PathBuf,
        /// The settings that differ, `key: old -> new`.
        diff: String,
    },
    /// The BLIP model.
    #[error("BLIP")]
    Blip(#[from] BlipError),
    /// The SD pipeline (parts, text encoder, VAE, scheduler, image).
    #[error("Stable Diffusion pipeline")]
    Pipeline(#[from] PipelineError),
    /// The UNet's weights.
    #[error("Stable Diffusion UNet")]
    Unet(#[from] WeightsError),
    /// Writing an image.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// Reading or writing a file.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What to reconstruct and how.
#[derive(Debug, Clone)]
pub struct GuidedRequest {
    /// `experiments/<id>/`.
    pub experiment_dir: PathBuf,
    /// Experiment id (for messages).
    pub id: String,
    /// Which final folder.
    pub split: EvalSplit,
    /// Only the first N samples.
    pub limit: Option<usize>,
    /// SD 1.x hub pipeline folder.
    pub sd: PathBuf,
    /// BLIP captioning hub folder.
    pub blip: PathBuf,
    /// BLIP's pixels: `hf` (BlipImageProcessor) or `seed` (the paper's raw 0-255).
    pub blip_preprocess: Preprocess,
    /// img2img strength in (0, 1].
    pub strength: f64,
    /// Classifier-free guidance scale.
    pub guidance: f64,
    /// Scheduler steps before the strength cut.
    pub steps: usize,
    /// PNDM (the paper's) or DDIM.
    pub scheduler: SchedulerKind,
    /// Posterior sample (diffusers' default) or mode.
    pub latent_mode: LatentMode,
    /// Base seed: sample `i` of dataset row `r` uses `seed + r` (the same image for the same
    /// row, whatever the order or `--limit`).
    pub seed: u64,
    /// Remake every high-level image (drops the earlier ones first).
    pub restart: bool,
    /// Float precision of every model (`--dtype`; f16 only on a GPU device set up for it).
    pub precision: crate::dtype::Precision,
    /// Where the models run.
    pub device: Device,
}

/// One sample's result, reported as it finishes.
#[derive(Debug, Clone)]
pub struct GuidedSample {
    /// Sample index in the final folder.
    pub sample: usize,
    /// Dataset row.
    pub row: usize,
    /// The prompt SD got (the caption without "blurry ").
    pub caption: String,
    /// Whether it was already there from an earlier run.
    pub reused: bool,
}

/// The samples of `recon/final-<split>/samples.json`: `(sample, row)` in sample order, and the
/// checkpoint step.
fn read_index(dir: &Path) -> Result<(Vec<(usize, usize)>, u64), GuidedError> {
    let path = dir.join(files::RECON_INDEX);
    let bad = |reason: String| GuidedError::BadIndex { path: path.clone(), reason };
    let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    let index: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let step = index["step"].as_u64().ok_or_else(|| bad("no \"step\"".into()))?;
    let samples = index["samples"].as_array().ok_or_else(|| bad("no \"samples\" list".into()))?;
    let mut out = Vec::new();
    for s in samples {
        match (s["sample"].as_u64(), s["row"].as_u64()) {
            (Some(i), Some(r)) => out.push((i as usize, r as usize)),
            _ => return Err(bad(format!("sample entry without sample/row: {s}"))),
        }
    }
    out.sort_unstable();
    Ok((out, step))
}

/// `key: old -> new` for every differing setting.
fn settings_diff(old: &HighLevelSettings, new: &HighLevelSettings) -> String {
    let (a, b) = (serde_json::to_value(old).unwrap(), serde_json::to_value(new).unwrap());
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    b.iter()
        .filter(|(k, v)| a.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {} -> {v}", a.get(k).map_or("-".into(), |x| x.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Write `bytes` to `path` through a temporary file and a rename.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), GuidedError> {
    write_atomic(path, bytes).map_err(|source| GuidedError::Io {
        action: "write",
        path: path.into(),
        source,
    })
}

/// Caption and img2img every sample of the final folder not done yet; `on_sample(done, total,
/// sample)` after each.
pub fn guided_reconstruction(
    request: &GuidedRequest,
    on_sample: &mut dyn FnMut(usize, usize, &GuidedSample),
) -> Result<Vec<GuidedSample>, GuidedError> {
    let paths = RunPaths::new(&request.experiment_dir);
    let dir = paths.recon_final(request.split);
    let index = dir.join(files::RECON_INDEX);
    if !index.is_file() {
        return Err(GuidedError::NoLowLevel {
            dir,
            index,
            id: request.id.clone(),
            split: request.split.name(),
        });
    }
    let (mut samples, step) = read_index(&dir)?;
    if let Some(limit) = request.limit {
        samples.truncate(limit);
    }
    let settings = HighLevelSettings {
        sd: request.sd.display().to_string(),
        blip: request.blip.display().to_string(),
        blip_preprocess: format!("{:?}", request.blip_preprocess).to_lowercase(),
        strength: request.strength,
        guidance: request.guidance,
        steps: request.steps,
        scheduler: format!("{:?}", request.scheduler).to_lowercase(),
        latent_mode: format!("{:?}", request.latent_mode).to_lowercase(),
        seed: request.seed,
        step,
        dtype: format!("{:?}", request.precision).to_lowercase(),
    };
    let settings_path = dir.join(HIGHLEVEL_SETTINGS);
    let high = |i: usize| dir.join(recon_file_name(i, recon::HIGHLEVEL));
    let caption_path = |i: usize| dir.join(caption_file_name(i));
    if request.restart {
        for &(i, _) in &samples {
            for p in [high(i), caption_path(i)] {
                if p.exists() {
                    std::fs::remove_file(&p).map_err(|source| GuidedError::Io {
                        action: "remove",
                        path: p.clone(),
                        source,
                    })?;
                }
            }
        }
    } else if let Ok(bytes) = std::fs::read(&settings_path) {
        let old: Option<HighLevelSettings> = serde_json::from_slice(&bytes).ok();
        let any_done = samples.iter().any(|&(i, _)| high(i).is_file());
        if let Some(old) = old.filter(|o| o != &settings && any_done) {
            return Err(GuidedError::OtherSettings {
                path: settings_path,
                diff: settings_diff(&old, &settings),
            });
        }
    }
    // Every model before the first write: a missing part fails fast, with nothing written.
    let device = &request.device;
    crate::pipelines::sd::check_layout(&request.sd)?;
    let mut blip = blip::load_blip(&request.blip, device)?;
    blip.model = crate::dtype::cast_module(blip.model, request.precision);
    let processor = preprocess::processor(
        &request.blip,
        blip.config.vision_config.image_size as u32,
        request.blip_preprocess,
    )
    .map_err(BlipError::from)?;
    let sd = crate::dtype::cast_pipeline(SdPipeline::load(&request.sd, device)?, request.precision);
    let unet = crate::dtype::cast_module(
        load_unet(&request.sd.join("unet"), device)?.model,
        request.precision,
    );
    write_file(&settings_path, &serde_json::to_vec_pretty(&settings).expect("json"))?;

    let options = |prompt: String| Img2ImgOptions {
        prompt,
        negative_prompt: String::new(),
        strength: request.strength,
        guidance_scale: request.guidance,
        steps: request.steps,
        scheduler: request.scheduler,
        latent_mode: request.latent_mode,
    };
    let total = samples.len();
    let mut done = Vec::new();
    for (k, &(i, row)) in samples.iter().enumerate() {
        let low = dir.join(recon_file_name(i, recon::LOWLEVEL));
        let result = if high(i).is_file() && caption_path(i).is_file() {
            let caption = std::fs::read_to_string(caption_path(i)).unwrap_or_default();
            GuidedSample { sample: i, row, caption: caption.trim().to_string(), reused: true }
        } else {
            let pixels =
                preprocess::load_pixel_values(&processor, std::slice::from_ref(&low), device)
                    .map_err(BlipError::from)?; // [1, 3, S, S]
            let raw = blip.caption(pixels, None, &GenerateOptions::default())?;
            let caption = strip_blurry(&raw[0].text);
            let image = preprocess_image(&low, sd.vae_scale_factor() as u32, device)?; // [1,3,H,W]
            let randomness = Randomness {
                seed: request.seed.wrapping_add(row as u64),
                noise: None,
                posterior_noise: None,
            };
            let out = img2img::img2img(
                &sd,
                &unet,
                image,
                &options(caption.clone()),
                &randomness,
                &mut |_, _| {},
            )?; // [1, 3, H, W] in [0, 1]
            let tmp = dir.join(format!(".tmp-{}", recon_file_name(i, recon::HIGHLEVEL)));
            imageio::save_png(crate::dtype::to_f32(out).mul_scalar(2.0).sub_scalar(1.0), &tmp)?;
            write_file(&caption_path(i), format!("{caption}\n").as_bytes())?;
            std::fs::rename(&tmp, high(i)).map_err(|source| GuidedError::Io {
                action: "write",
                path: high(i),
                source,
            })?;
            GuidedSample { sample: i, row, caption, reused: false }
        };
        on_sample(k + 1, total, &result);
        done.push(result);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blurry_is_removed_as_the_seed_code_did() {
        assert_eq!(strip_blurry("a blurry photo of a blurry dog"), "a photo of a dog");
        assert_eq!(strip_blurry("a cat on a mat"), "a cat on a mat");
    }

    #[test]
    fn settings_diff_names_each_changed_key() {
        let a = HighLevelSettings {
            sd: "sd".into(),
            blip: "blip".into(),
            blip_preprocess: "hf".into(),
            strength: 0.75,
            guidance: 6.0,
            steps: 50,
            scheduler: "pndm".into(),
            latent_mode: "sample".into(),
            seed: 0,
            step: 10,
            dtype: "f32".into(),
        };
        let b = HighLevelSettings { strength: 0.5, seed: 3, ..a.clone() };
        let mut without_dtype = serde_json::to_value(&a).unwrap().as_object().unwrap().clone();
        without_dtype.remove("dtype");
        let read: HighLevelSettings = serde_json::from_value(without_dtype.into()).unwrap();
        assert_eq!(read, a, "a highlevel.json from before dtype was recorded reads as f32");
        let d = settings_diff(&a, &b);
        assert!(d.contains("strength: 0.75 -> 0.5") && d.contains("seed: 0 -> 3"), "{d}");
        assert!(!d.contains("guidance"), "{d}");
    }
}
