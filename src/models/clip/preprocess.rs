//! CLIP image preprocessing as transformers' PIL `CLIPImageProcessor` (`CLIPImageProcessorPil`
//! in transformers 5), configured by `preprocessor_config.json`: convert to RGB, resize the short
//! side to `size.shortest_edge` with PIL's bicubic filter (the long side `int(s * long / short)`),
//! centre crop `crop_size` (zero padding when the image is smaller), rescale by 1/255, normalise
//! with `image_mean` / `image_std`.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use serde_json::Value;

use crate::imageio::{self, ImageIoError};

/// OpenAI CLIP's per-channel mean (transformers `OPENAI_CLIP_MEAN`).
pub const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP's per-channel std (transformers `OPENAI_CLIP_STD`).
pub const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// Errors of reading the preprocessing config or the images.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// `preprocessor_config.json` cannot be read or parsed.
    #[error("{path}: cannot parse the CLIP preprocessor config")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The config asks for something this port does not do.
    #[error("{path}: unsupported preprocessor config: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An image cannot be read.
    #[error(transparent)]
    Image(#[from] ImageIoError),
}

/// How images are resized before cropping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTo {
    /// The short side becomes this; the long side keeps the aspect ratio (truncated).
    ShortestEdge(u32),
    /// Exactly `height` x `width`.
    Exact {
        /// Rows.
        height: u32,
        /// Columns.
        width: u32,
    },
}

/// RGB8 pixels as transformers' `convert_to_rgb`: images with alpha are composited over opaque
/// white (`c * a + 255 * (1 - a)`), others converted directly.
pub fn to_rgb_over_white(img: &image::DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = a as u32;
        let over = |c: u8| ((c as u32 * a + 255 * (255 - a)) as f32 / 255.0).round() as u8;
        image::Rgb([over(r), over(g), over(b)])
    })
}

/// transformers' `CLIPImageProcessor` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipImageProcessor {
    /// Resize step (`None` when `do_resize` is false).
    pub resize: Option<ResizeTo>,
    /// Centre crop `(height, width)` (`None` when `do_center_crop` is false).
    pub crop: Option<(u32, u32)>,
    /// Rescale factor (`None` when `do_rescale` is false).
    pub rescale: Option<f32>,
    /// Mean and std (`None` when `do_normalize` is false).
    pub normalize: Option<([f32; 3], [f32; 3])>,
}

impl ClipImageProcessor {
    /// transformers' defaults for a model of `image_size` pixels (224 for ViT-L/14): short side
    /// and crop `image_size`, 1/255, OpenAI mean/std.
    pub fn openai(image_size: u32) -> Self {
        Self {
            resize: Some(ResizeTo::ShortestEdge(image_size)),
            crop: Some((image_size, image_size)),
            rescale: Some(1.0 / 255.0),
            normalize: Some((OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)),
        }
    }

    /// Read `dir/preprocessor_config.json` (or the SD layout's sibling
    /// `../feature_extractor/preprocessor_config.json`); when neither exists, the
    /// [`ClipImageProcessor::openai`] defaults for `image_size`.
    pub fn from_dir(dir: &Path, image_size: u32) -> Result<Self, PreprocessError> {
        let candidates = [
            dir.join("preprocessor_config.json"),
            dir.join("..").join("feature_extractor").join("preprocessor_config.json"),
        ];
        match candidates.iter().find(|p| p.is_file()) {
            Some(path) => Self::from_file(path, image_size),
            None => Ok(Self::openai(image_size)),
        }
    }

    /// Parse one `preprocessor_config.json` (old integer `size`/`crop_size` too); missing fields
    /// take transformers' defaults.
    pub fn from_file(path: &Path, image_size: u32) -> Result<Self, PreprocessError> {
        let text = std::fs::read_to_string(path).map_err(|e| PreprocessError::Parse {
            path: path.into(),
            source: serde_json::Error::io(e),
        })?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|source| PreprocessError::Parse { path: path.into(), source })?;
        Self::from_json(&v)
            .map_err(|reason| PreprocessError::Unsupported { path: path.into(), reason })
            .map(|mut p| {
                if v.get("size").is_none() {
                    p.resize = p.resize.map(|_| ResizeTo::ShortestEdge(image_size));
                }
                if v.get("crop_size").is_none() {
                    p.crop = p.crop.map(|_| (image_size, image_size));
                }
                p
            })
    }

    /// Parse a `preprocessor_config.json` value. `Err` holds the reason.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let flag = |key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(true);
        let dim = |x: &Value, key: &str| -> Result<u32, String> {
            x.get(key)
                .and_then(Value::as_u64)
                .map(|n| n as u32)
                .ok_or_else(|| format!("'{key}' missing or not an integer"))
        };
        if let Some(r) = v.get("resample").and_then(Value::as_u64)
            && r != 3
        {
            return Err(format!("resample {r} (only 3, PIL bicubic, is implemented)"));
        }
        let resize = match v.get("size") {
            None => ResizeTo::ShortestEdge(224),
            Some(Value::Number(n)) => ResizeTo::ShortestEdge(n.as_u64().unwrap_or(224) as u32),
            Some(s) if s.get("shortest_edge").is_some() => {
                if s.get("longest_edge").is_some_and(|l| !l.is_null()) {
                    return Err("size.longest_edge is not supported".into());
                }
                ResizeTo::ShortestEdge(dim(s, "shortest_edge")?)
            }
            Some(s) => ResizeTo::Exact { height: dim(s, "height")?, width: dim(s, "width")? },
        };
        let crop = match v.get("crop_size") {
            None => (224, 224),
            Some(Value::Number(n)) => {
                let n = n.as_u64().unwrap_or(224) as u32;
                (n, n)
            }
            Some(c) => (dim(c, "height")?, dim(c, "width")?),
        };
        let triple = |key: &str, default: [f32; 3]| -> Result<[f32; 3], String> {
            match v.get(key) {
                None => Ok(default),
                Some(Value::Array(a)) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, x) in out.iter_mut().zip(a) {
                        *o =
                            x.as_f64().ok_or_else(|| format!("'{key}' holds a non-number"))? as f32;
                    }
                    Ok(out)
                }
                Some(Value::Number(n)) => Ok([n.as_f64().unwrap_or(0.0) as f32; 3]),
                Some(other) => Err(format!("'{key}' must be 3 numbers, got {other}")),
            }
        };
        let mean = triple("image_mean", OPENAI_CLIP_MEAN)?;
        let std = triple("image_std", OPENAI_CLIP_STD)?;
        if std.contains(&0.0) {
            return Err("image_std holds a zero".into());
        }
        let factor = v.get("rescale_factor").and_then(Value::as_f64).unwrap_or(1.0 / 255.0) as f32;
        Ok(Self {
            resize: flag("do_resize").then_some(resize),
            crop: flag("do_center_crop").then_some(crop),
            rescale: flag("do_rescale").then_some(factor),
            normalize: flag("do_normalize").then_some((mean, std)),
        })
    }

    /// The size an image of `width` x `height` is resized to, as `(width, height)` (transformers'
    /// `get_resize_output_image_size` with `default_to_square=False`).
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        match self.resize {
            None => (width, height),
            Some(ResizeTo::Exact { height: h, width: w }) => (w, h),
            Some(ResizeTo::ShortestEdge(s)) => {
                let (short, long) = if width <= height { (width, height) } else { (height, width) };
                let new_long = (s as f64 * long as f64 / short as f64) as u32;
                if width <= height { (s, new_long) } else { (new_long, s) }
            }
        }
    }

    /// The `(height, width)` of the pixel values produced for an image of `width` x `height`.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        let (w, h) = self.resized_size(width, height);
        self.crop.unwrap_or((h, w))
    }

    /// Crop, rescale and normalise an already resized image (see [`Self::resized_size`]) into
    /// CHW values (`3 * out_h * out_w`).
    pub fn pixel_values_of_resized(&self, img: &RgbImage) -> Vec<f32> {
        let (w, h) = (img.width() as i64, img.height() as i64);
        let (ch, cw) = self.crop.map(|(a, b)| (a as i64, b as i64)).unwrap_or((h, w));
        // Python floor division, as transformers' `center_crop` (negative when padding).
        let top = (h - ch).div_euclid(2);
        let left = (w - cw).div_euclid(2);
        let scale = self.rescale.unwrap_or(1.0);
        let (mean, std) = self.normalize.unwrap_or(([0.0; 3], [1.0; 3]));
        let plane = (ch * cw) as usize;
        let mut out = vec![0f32; 3 * plane];
        for y in 0..ch {
            for x in 0..cw {
                let (sy, sx) = (y + top, x + left);
                let px = if (0..h).contains(&sy) && (0..w).contains(&sx) {
                    img.get_pixel(sx as u32, sy as u32).0
                } else {
                    [0, 0, 0] // zero padding of an image smaller than the crop
                };
                let at = (y * cw + x) as usize;
                for c in 0..3 {
                    out[c * plane + at] = (px[c] as f32 * scale - mean[c]) / std[c];
                }
            }
        }
        out
    }

    /// Load and preprocess one image file (PNG or JPEG) into CHW values: RGB as transformers'
    /// `convert_to_rgb` (alpha composited over white), resized with the repository's
    /// PIL-compatible bicubic ([`imageio::resize_rgb`]).
    pub fn load_pixel_values(&self, path: &Path) -> Result<Vec<f32>, PreprocessError> {
        let img =
            image::open(path).map_err(|source| ImageIoError::Read { path: path.into(), source })?;
        let rgb = to_rgb_over_white(&img);
        let (rw, rh) = self.resized_size(rgb.width(), rgb.height());
        Ok(self.pixel_values_of_resized(&imageio::resize_rgb(rgb, rw, rh)))
    }

    /// Load several images into `pixel_values` `[n, 3, H, W]` (H, W = the crop size).
    pub fn load_batch(
        &self,
        paths: &[PathBuf],
        device: &Device,
    ) -> Result<Tensor<4>, PreprocessError> {
        let mut data = Vec::new();
        let mut shape = None;
        for p in paths {
            let (w, h) = image::image_dimensions(p)
                .map_err(|source| ImageIoError::Read { path: p.clone(), source })?;
            let (oh, ow) = self.output_size(w, h);
            if shape.is_some_and(|s| s != (oh, ow)) {
                // Only without a centre crop can sizes differ; a batch needs one size.
                return Err(PreprocessError::Unsupported {
                    path: p.clone(),
                    reason: "images of different sizes without do_center_crop cannot be batched"
                        .into(),
                });
            }
            shape = Some((oh, ow));
            data.extend(self.load_pixel_values(p)?);
        }
        let (h, w) = shape.unwrap_or((0, 0));
        Ok(Tensor::from_data(
            TensorData::new(data, [paths.len(), 3, h as usize, w as usize]),
            device,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resize_keeps_aspect_with_truncation() {
        let p = ClipImageProcessor::openai(224);
        assert_eq!(p.resized_size(640, 480), (298, 224)); // int(224 * 640 / 480) = 298
        assert_eq!(p.resized_size(37, 45), (224, 272)); // int(224 * 45 / 37) = 272.4
        assert_eq!(p.resized_size(100, 100), (224, 224));
        assert_eq!(p.output_size(640, 480), (224, 224));
    }

    #[test]
    fn parses_old_and_new_configs() {
        let old = json!({"size": 224, "crop_size": 224, "resample": 3, "do_center_crop": true,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]});
        let p = ClipImageProcessor::from_json(&old).unwrap();
        assert_eq!(p.resize, Some(ResizeTo::ShortestEdge(224)));
        assert_eq!(p.crop, Some((224, 224)));
        assert_eq!(p.normalize, Some(([0.5; 3], [0.5; 3])));
        let new = json!({"size": {"shortest_edge": 30}, "crop_size": {"height": 30, "width": 28},
            "do_normalize": false});
        let p = ClipImageProcessor::from_json(&new).unwrap();
        assert_eq!(
            (p.resize, p.crop, p.normalize),
            (Some(ResizeTo::ShortestEdge(30)), Some((30, 28)), None)
        );
        let err = ClipImageProcessor::from_json(&json!({"resample": 2})).unwrap_err();
        assert!(err.contains("resample 2"), "{err}");
    }

    #[test]
    fn centre_crop_floors_and_pads_with_zero() {
        let p =
            ClipImageProcessor { resize: None, crop: Some((2, 3)), rescale: None, normalize: None };
        // 5 wide, 3 high: top = (3-2)//2 = 0, left = (5-3)//2 = 1.
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(10 * y + x) as u8, 0, 0]));
        let v = p.pixel_values_of_resized(&img);
        assert_eq!(&v[..6], &[1.0, 2.0, 3.0, 11.0, 12.0, 13.0]);
        // 1 x 1 image into a 2 x 3 crop: top = (1-2)//2 = -1, left = (1-3)//2 = -1.
        let img = RgbImage::from_pixel(1, 1, image::Rgb([7, 0, 0]));
        let v = p.pixel_values_of_resized(&img);
        assert_eq!(&v[..6], &[0.0, 0.0, 0.0, 0.0, 7.0, 0.0]);
    }
}
