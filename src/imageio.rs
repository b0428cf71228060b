//! Image I/O: PNG/JPEG <-> tensors, resizing as the paper did (PIL's default bicubic, which is
//! Catmull-Rom with an antialiasing support when shrinking; `image`'s `CatmullRom` filter does the
//! same). Pixels map to [-1, 1] as `x / 127.5 - 1` (diffusers' `2 * (x / 255) - 1`).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops::FilterType;
use image::{ImageBuffer, Rgb, RgbImage};

/// Image reading / writing errors; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageIoError {
    /// The file cannot be opened or decoded.
    #[error("cannot read image {path}; expected a PNG or JPEG file")]
    Read {
        /// The image file.
        path: PathBuf,
        /// Decoder error.
        source: image::ImageError,
    },
    /// The file cannot be written.
    #[error("{path}: cannot write PNG ({message})")]
    Write {
        /// Target path.
        path: PathBuf,
        /// Encoder error.
        message: String,
    },
    /// The tensor is not `[B, 3, H, W]`.
    #[error("expected an image tensor [B, 3, H, W], got shape {0:?}")]
    BadShape(Vec<usize>),
}

/// Read an image file as RGB8, resized to `width` x `height` with bicubic (Catmull-Rom)
/// filtering when its size differs.
pub fn load_rgb(path: &Path, width: u32, height: u32) -> Result<RgbImage, ImageIoError> {
    let img =
        image::open(path).map_err(|source| ImageIoError::Read { path: path.into(), source })?;
    Ok(resize_rgb(img.to_rgb8(), width, height))
}

/// Resize RGB8 pixels to `width` x `height` with bicubic (Catmull-Rom, PIL's default) filtering
/// when the size differs.
pub fn resize_rgb(rgb: RgbImage, width: u32, height: u32) -> RgbImage {
    if rgb.width() == width && rgb.height() == height {
        return rgb;
    }
    image::imageops::resize(&rgb, width, height, FilterType::CatmullRom)
}

/// RGB8 pixels -> CHW f32 values in [-1, 1] (`3 * H * W` values).
pub fn rgb_to_chw(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0f32; 3 * h * w];
    for (x, y, px) in img.enumerate_pixels() {
        for c in 0..3 {
            out[c * h * w + y as usize * w + x as usize] = px[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

/// Load one image as a `[1, 3, height, width]` tensor in [-1, 1].
pub fn load_image_tensor(
    path: &Path,
    width: u32,
    height: u32,
    device: &Device,
) -> Result<Tensor<4>, ImageIoError> {
    load_batch(&[path.to_path_buf()], width, height, device)
}

/// Load several images into one `[B, 3, height, width]` tensor in [-1, 1].
pub fn load_batch(
    paths: &[PathBuf],
    width: u32,
    height: u32,
    device: &Device,
) -> Result<Tensor<4>, ImageIoError> {
    let mut data = Vec::with_capacity(paths.len() * 3 * (width * height) as usize);
    for p in paths {
        data.extend(rgb_to_chw(&load_rgb(p, width, height)?));
    }
    let shape = [paths.len(), 3, height as usize, width as usize];
    Ok(Tensor::from_data(TensorData::new(data, shape), device))
}

/// A `[B, 3, H, W]` tensor in [-1, 1] -> one RGB8 image per batch item (values clamped).
pub fn tensor_to_images(images: Tensor<4>) -> Result<Vec<RgbImage>, ImageIoError> {
    let [b, c, h, w] = images.dims();
    if c != 3 {
        return Err(ImageIoError::BadShape(vec![b, c, h, w]));
    }
    let values: Vec<f32> = images
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ImageIoError::Write { path: PathBuf::new(), message: format!("{e:?}") })?;
    let plane = h * w;
    Ok((0..b)
        .map(|i| {
            let base = i * 3 * plane;
            ImageBuffer::from_fn(w as u32, h as u32, |x, y| {
                let at = y as usize * w + x as usize;
                let px = |ch: usize| {
                    ((values[base + ch * plane + at] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
                };
                Rgb([px(0), px(1), px(2)])
            })
        })
        .collect())
}

/// Write a `[B, 3, H, W]` tensor in [-1, 1] as one PNG; a batch is laid out left to right.
pub fn save_png(images: Tensor<4>, path: &Path) -> Result<(), ImageIoError> {
    let tiles = tensor_to_images(images)?;
    let (w, h) = (tiles[0].width(), tiles[0].height());
    let mut canvas = RgbImage::new(w * tiles.len() as u32, h);
    for (i, tile) in tiles.iter().enumerate() {
        image::imageops::replace(&mut canvas, tile, (i as u32 * w) as i64, 0);
    }
    canvas
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| ImageIoError::Write { path: path.into(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jpeg_as_well_as_png() {
        // A smooth gradient survives JPEG compression within a few levels.
        let dir = std::env::temp_dir().join(format!("brainscope-imageio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img =
            RgbImage::from_fn(16, 8, |x, y| image::Rgb([(x * 16) as u8, (y * 32) as u8, 128]));
        let (png, jpg) = (dir.join("g.png"), dir.join("g.jpg"));
        img.save(&png).unwrap();
        img.save(&jpg).unwrap();
        let a = load_rgb(&png, 16, 8).unwrap();
        let b = load_rgb(&jpg, 16, 8).unwrap();
        assert_eq!(a, img);
        let worst = a
            .pixels()
            .zip(b.pixels())
            .flat_map(|(p, q)| (0..3).map(move |c| p[c].abs_diff(q[c])))
            .max();
        assert!(worst.unwrap() <= 12, "JPEG decoded too far from the original: {worst:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
