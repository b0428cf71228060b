//! CLIP image embeddings of in-memory images, as `eval` and `vote` compare them: each image
//! preprocessed as `CLIPImageProcessor` (the folder's `preprocessor_config.json`), embedded by
//! the vision tower and its projection, and L2-normalised (transformers' `image_embeds`).

use crate::imageio;
use crate::models::clip::preprocess::to_rgb_over_white;
use crate::models::clip::{Clip, ClipError, ClipImageProcessor, l2_normalize};
use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use ndarray::Array2;
use std::path::Path;

/// Images per CLIP forward pass.
pub const CLIP_BATCH: usize = 8;

/// A CLIP folder's vision tower with its preprocessing.
pub struct ClipImages {
    /// The loaded model (vision tower).
    pub clip: Clip,
    processor: ClipImageProcessor,
    device: Device,
}

impl ClipImages {
    /// Load the vision tower of the CLIP folder `dir` (a full `CLIPModel` or a
    /// `CLIPVisionModelWithProjection`); text is not needed.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ClipError> {
        let clip =
            crate::models::clip::load_clip(dir, crate::models::clip::ClipParts::Vision, device)?;
        let processor = clip.image_processor()?;
        Ok(Self { clip, processor, device: device.clone() })
    }

    /// L2-normalised image embeddings `[n, projection_dim]` of `images` (RGB, any size), in
    /// batches of [`CLIP_BATCH`]; `done` is called with the images finished after each batch.
    pub fn embed(
        &self,
        images: &[RgbImage],
        mut done: impl FnMut(usize),
    ) -> Result<Array2<f32>, ClipError> {
        let mut rows: Vec<f32> = Vec::new();
        let mut dim = 0;
        for chunk in images.chunks(CLIP_BATCH) {
            let mut data = Vec::new();
            let mut shape = (0, 0);
            for img in chunk {
                let (rw, rh) = self.processor.resized_size(img.width(), img.height());
                shape = self.processor.output_size(img.width(), img.height());
                let resized = imageio::resize_rgb(img.clone(), rw, rh);
                data.extend(self.processor.pixel_values_of_resized(&resized));
            }
            let (h, w) = (shape.0 as usize, shape.1 as usize);
            let pixels =
                Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), 3, h, w]), &self.device); // [b, 3, S, S]
            let embeds = l2_normalize(self.clip.get_image_features(pixels)?); // [b, d]
            dim = embeds.dims()[1];
            rows.extend(
                embeds
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 after convert"),
            );
            done(chunk.len());
        }
        Ok(Array2::from_shape_vec((images.len(), dim), rows).expect("rows x dim"))
    }
}

/// Read an image file as RGB (alpha composited over white, as transformers' `convert_to_rgb`).
pub fn read_rgb(path: &Path) -> Result<RgbImage, imageio::ImageIoError> {
    let img = image::open(path)
        .map_err(|source| imageio::ImageIoError::Read { path: path.into(), source })?;
    Ok(to_rgb_over_white(&img))
}
