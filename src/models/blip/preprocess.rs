//! BLIP image preprocessing. [`Preprocess::Hf`] is transformers' `BlipImageProcessor` configured by
//! `preprocessor_config.json`: convert to RGB, PIL bicubic resize to `size` (height x width,
//! 384 x 384; an integer `size` is a square), no crop, x `rescale_factor` (1/255), normalise with
//! `image_mean` / `image_std` (OpenAI CLIP's). [`Preprocess::Seed`] reproduces what the paper's
//! code fed BLIP-large: the image resized to `image_size` with the same bicubic filter and its raw
//! 0-255 values, without rescaling or normalisation (the processor was bypassed), so that the
//! paper's captions can be reproduced.
//!
//! Both run on [`ClipImageProcessor`]'s code (same resize, rescale and normalisation steps).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde_json::Value;

use crate::models::clip::preprocess::{ClipImageProcessor, PreprocessError, ResizeTo};

/// Which pixels BLIP is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Preprocess {
    /// transformers' `BlipImageProcessor` (`preprocessor_config.json`).
    #[default]
    Hf,
    /// The paper's: bicubic resize to the model's size, raw 0-255 values, no normalisation.
    Seed,
}

/// The processor of a BLIP folder for the given mode; `image_size` is the vision config's.
pub fn processor(
    dir: &Path,
    image_size: u32,
    mode: Preprocess,
) -> Result<ClipImageProcessor, PreprocessError> {
    let square = ResizeTo::Exact { height: image_size, width: image_size };
    match mode {
        Preprocess::Seed => Ok(ClipImageProcessor {
            resize: Some(square),
            crop: None,
            rescale: None,
            normalize: None,
        }),
        Preprocess::Hf => {
            let path = dir.join("preprocessor_config.json");
            if !path.is_file() {
                let mut p = ClipImageProcessor::openai(image_size);
                p.resize = Some(square);
                p.crop = None;
                return Ok(p);
            }
            from_file(&path, image_size)
        }
    }
}

fn from_file(path: &Path, image_size: u32) -> Result<ClipImageProcessor, PreprocessError> {
    let parse = |source| PreprocessError::Parse { path: path.into(), source };
    let text = std::fs::read_to_string(path).map_err(|e| parse(serde_json::Error::io(e)))?;
    let v: Value = serde_json::from_str(&text).map_err(parse)?;
    let unsupported = |reason: String| PreprocessError::Unsupported { path: path.into(), reason };
    let mut p = ClipImageProcessor::from_json(&v).map_err(unsupported)?;
    // BlipImageProcessor: `size` is {height, width} (an integer: a square), never a crop.
    p.crop = None;
    if p.resize.is_some() {
        p.resize = Some(match v.get("size") {
            None => ResizeTo::Exact { height: image_size, width: image_size },
            Some(Value::Number(n)) => {
                let n = n.as_u64().unwrap_or(image_size as u64) as u32;
                ResizeTo::Exact { height: n, width: n }
            }
            Some(_) => match p.resize {
                Some(r @ ResizeTo::Exact { .. }) => r,
                _ => return Err(unsupported("size must be {height, width} for BLIP".into())),
            },
        });
    }
    if p.output_size(1, 1) != (image_size, image_size) && p.resize.is_some() {
        return Err(unsupported(format!(
            "size {:?} differs from the vision config's image_size {image_size}",
            p.output_size(1, 1)
        )));
    }
    Ok(p)
}

/// Load and preprocess images into `pixel_values` `[n, 3, S, S]`.
pub fn load_pixel_values(
    processor: &ClipImageProcessor,
    paths: &[PathBuf],
    device: &Device,
) -> Result<Tensor<4>, PreprocessError> {
    processor.load_batch(paths, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_size_is_a_square_and_nothing_is_cropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("preprocessor_config.json");
        std::fs::write(&path, r#"{"size": 384, "resample": 3, "do_normalize": true}"#).unwrap();
        let p = processor(dir.path(), 384, Preprocess::Hf).unwrap();
        assert_eq!(p.resize, Some(ResizeTo::Exact { height: 384, width: 384 }));
        assert_eq!(p.crop, None);
        assert_eq!(p.output_size(640, 480), (384, 384));
        let seed = processor(dir.path(), 384, Preprocess::Seed).unwrap();
        assert_eq!((seed.rescale, seed.normalize), (None, None));
        let err = processor(dir.path(), 40, Preprocess::Hf).unwrap_err();
        assert!(err.to_string().contains("image_size 40"), "{err}");
    }
}
