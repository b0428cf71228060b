//! The latent cache: every image of a dataset encoded once by a VAE (f16 npy + JSON sidecar).
//!
//! Layout: `<out>.npy` holds `[N, C, h, w]` f16 latents, already multiplied by the VAE's
//! `scaling_factor` (the low-level model's training targets), row `i` = image `i` of the list
//! (training images first, then test images). `<out>.json` ([`LatentMeta`]) records the dataset,
//! image list fingerprint, VAE folder and fingerprint (config + weights size/mtime), image size,
//! mode/sample and scaling factor; the cache is reused when all of them match.
//!
//! Resuming: work goes into `<out>.npy.partial` (a full-size npy written row by row) with a
//! progress marker `<out>.npy.partial.json` (the meta + rows done); an interrupted run continues
//! from the marker when the meta still matches. Sampling is per image (`seed + row`), so a resumed
//! or re-batched run gives the same latents.
//!
//! Default location: `<subject dir>/latents/<vae-name>-<mode>.npy` ([`default_cache_path`]).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use burn::prelude::*;
use burn::tensor::TensorData;
use half::f16;
use indicatif::{ProgressBar, ProgressStyle};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::data::npy::{Dtype, header_bytes, read_header};
use crate::imageio::{self, ImageIoError};
use crate::models::vae::{AutoencoderKLConfig, Vae, load_vae, posterior::seeded_normal};
use crate::models::weights::WeightsError;

/// Errors of building or reading a latent cache; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LatentError {
    /// The VAE folder is unusable.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// An image cannot be read.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// File system error.
    #[error("{path}: {action} failed: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// OS error.
        source: std::io::Error,
    },
    /// The cache file is not a latent cache this code wrote.
    #[error("{path}: not a latent cache ({reason}); delete it and rerun `brainscope latents`")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to encode.
    #[error("no images to encode (empty image list for {0})")]
    NoImages(PathBuf),
    /// A row index past the end.
    #[error("{path}: row {row} out of range (cache has {len} rows)")]
    Row {
        /// The cache file.
        path: PathBuf,
        /// Requested row.
        row: usize,
        /// Rows in the cache.
        len: usize,
    },
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> LatentError + 'a {
    move |source| LatentError::Io { path: path.into(), action, source }
}

/// Posterior mode (the default) or a seeded sample (what the paper did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LatentMode {
    /// The distribution's mode (= mean).
    Mode,
    /// `mean + std * eps`, `eps` seeded per image with `seed + row`.
    Sample {
        /// Base seed.
        seed: u64,
    },
}

impl LatentMode {
    /// Short name used in file names: `mode` or `sample<seed>`.
    pub fn tag(&self) -> String {
        match self {
            LatentMode::Mode => "mode".into(),
            LatentMode::Sample { seed } => format!("sample{seed}"),
        }
    }
}

/// The JSON sidecar of a cache (also the progress marker of a partial one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentMeta {
    /// Dataset (subject) folder.
    pub dataset: PathBuf,
    /// Number of images (= rows).
    pub image_count: usize,
    /// How many of them are training images (rows `0..n_train`); the rest are test images.
    pub n_train: usize,
    /// FNV-1a hash of the image paths, sizes and mtimes.
    pub images_fingerprint: String,
    /// VAE hub folder.
    pub vae: PathBuf,
    /// FNV-1a hash of the VAE's config.json and weights file sizes and mtimes.
    pub vae_fingerprint: String,
    /// Square image size the images were resized to.
    pub image_size: u32,
    /// Latent shape per image `[C, h, w]`.
    pub latent_shape: [usize; 3],
    /// Mode or sample.
    pub mode: LatentMode,
    /// The VAE's scaling factor (already applied to the stored latents).
    pub scaling_factor: f64,
    /// Rows written so far (= `image_count` when complete).
    pub rows_done: usize,
}

impl LatentMeta {
    /// Whether two metas describe the same cache content (ignoring progress).
    fn same_content(&self, other: &LatentMeta) -> bool {
        let strip = |m: &LatentMeta| LatentMeta { rows_done: 0, ..m.clone() };
        strip(self) == strip(other)
    }
}

/// What to encode and where.
#[derive(Debug, Clone)]
pub struct LatentJob {
    /// Dataset folder (recorded in the sidecar).
    pub dataset: PathBuf,
    /// Images in row order.
    pub images: Vec<PathBuf>,
    /// How many of `images` are training images.
    pub n_train: usize,
    /// VAE hub folder.
    pub vae: PathBuf,
    /// Output `.npy`; the sidecar is the same path with `.json`.
    pub out: PathBuf,
    /// Images per forward pass.
    pub batch: usize,
    /// Mode or sample.
    pub mode: LatentMode,
    /// Image size; `None` = [`default_image_size`] of the VAE.
    pub image_size: Option<u32>,
    /// Show an indicatif progress bar.
    pub progress: bool,
}

/// The image size to encode at: 512 for the SD 1.x VAE layout (as the paper did; some SD VAE
/// configs say `sample_size` 256), else the config's `sample_size`.
pub fn default_image_size(config: &AutoencoderKLConfig) -> u32 {
    if config.block_out_channels == [128, 256, 512, 512] && config.latent_channels == 4 {
        512
    } else {
        config.sample_size as u32
    }
}

/// A short name for a VAE folder: its name, or `<parent>-vae` for a hub `vae/` subfolder.
pub fn vae_name(vae: &Path) -> String {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match name(vae).as_deref() {
        Some("vae") => {
            vae.parent().and_then(name).map(|p| format!("{p}-vae")).unwrap_or("vae".into())
        }
        Some(n) => n.to_string(),
        None => "vae".into(),
    }
}

/// `<dataset>/latents/<vae-name>-<mode>.npy`.
pub fn default_cache_path(dataset: &Path, vae: &Path, mode: LatentMode) -> PathBuf {
    dataset.join("latents").join(format!("{}-{}.npy", vae_name(vae), mode.tag()))
}

/// The sidecar path of a cache file (`x.npy` -> `x.json`).
pub fn sidecar_path(cache: &Path) -> PathBuf {
    cache.with_extension("json")
}

fn partial_paths(out: &Path) -> (PathBuf, PathBuf) {
    let mut data = out.as_os_str().to_owned();
    data.push(".partial");
    let data = PathBuf::from(data);
    let mut marker = data.as_os_str().to_owned();
    marker.push(".json");
    (data, PathBuf::from(marker))
}

/// FNV-1a 64-bit over bytes, as hex.
fn fnv1a(parts: impl IntoIterator<Item = Vec<u8>>) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in part.into_iter().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

/// Size and mtime of a file as bytes for fingerprinting.
fn stat_bytes(path: &Path) -> Result<Vec<u8>, LatentError> {
    let md = std::fs::metadata(path).map_err(io(path, "stat"))?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}|{}|{}", path.display(), md.len(), mtime).into_bytes())
}

/// Fingerprint of an image list (paths, sizes, mtimes).
pub fn images_fingerprint(images: &[PathBuf]) -> Result<String, LatentError> {
    let parts = images.iter().map(|p| stat_bytes(p)).collect::<Result<Vec<_>, _>>()?;
    Ok(fnv1a(parts))
}

/// Fingerprint of a VAE folder (config.json + weights file sizes and mtimes).
pub fn vae_fingerprint(vae: &Path) -> Result<String, LatentError> {
    let weights = crate::models::weights::weights_file(vae, &crate::models::vae::vae_spec())?;
    Ok(fnv1a([stat_bytes(&vae.join("config.json"))?, stat_bytes(&weights)?]))
}

/// Encode images `[B, 3, H, W]` in [-1, 1] into scaled latents (`scaling_factor * z`), where `z`
/// is the mode, or a sample with `eps` seeded by `seed + i` for batch item `i`.
pub fn encode_scaled(vae: &Vae, images: Tensor<4>, sample_seed: Option<u64>) -> Tensor<4> {
    let post = vae.model.encode(images);
    let z = match sample_seed {
        None => post.mode(),
        Some(seed) => {
            let [b, c, h, w] = post.mean.dims();
            let device = post.mean.device();
            let eps: Vec<Tensor<4>> = (0..b)
                .map(|i| seeded_normal([1, c, h, w], seed.wrapping_add(i as u64), &device))
                .collect();
            post.mean.clone() + post.std() * Tensor::cat(eps, 0)
        }
    };
    z.mul_scalar(vae.config.scaling_factor) // [B, C, h, w]
}

fn read_meta(path: &Path) -> Option<LatentMeta> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn write_meta(path: &Path, meta: &LatentMeta) -> Result<(), LatentError> {
    let json = serde_json::to_string_pretty(meta)
        .map_err(|e| LatentError::Format { path: path.into(), reason: e.to_string() })?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json + "\n").map_err(io(&tmp, "write"))?;
    std::fs::rename(&tmp, path).map_err(io(path, "rename"))
}

/// Make sure `job.out` holds an up-to-date cache: reuse it when its sidecar matches, resume a
/// matching partial run, or encode from scratch. Returns the cache path.
pub fn ensure_latent_cache(job: &LatentJob, device: &Device) -> Result<PathBuf, LatentError> {
    if job.images.is_empty() {
        return Err(LatentError::NoImages(job.dataset.clone()));
    }
    let config = crate::models::vae::read_vae_config(&job.vae)?;
    let size = job.image_size.unwrap_or_else(|| default_image_size(&config));
    let f = config.downsample_factor();
    let latent_shape = [config.latent_channels, size as usize / f, size as usize / f];
    let wanted = LatentMeta {
        dataset: job.dataset.clone(),
        image_count: job.images.len(),
        n_train: job.n_train,
        images_fingerprint: images_fingerprint(&job.images)?,
        vae: job.vae.clone(),
        vae_fingerprint: vae_fingerprint(&job.vae)?,
        image_size: size,
        latent_shape,
        mode: job.mode,
        scaling_factor: config.scaling_factor,
        rows_done: 0,
    };
    let sidecar = sidecar_path(&job.out);
    if let Some(meta) = read_meta(&sidecar)
        && meta.same_content(&wanted)
        && meta.rows_done == meta.image_count
        && job.out.is_file()
    {
        return Ok(job.out.clone());
    }

    let (partial, marker) = partial_paths(&job.out);
    if let Some(parent) = job.out.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent, "create folder"))?;
    }
    // Trainers of a sweep (a Slurm array) start together on the same data: one builds the
    // cache under an exclusive flock, the others wait and then find it up to date.
    let mut lock_path = job.out.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path, "open"))?;
    // SAFETY: flock(2) on a descriptor we own; released when `lock` is dropped (function end).
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(io(&lock_path, "lock")(std::io::Error::last_os_error()));
    }
    if let Some(meta) = read_meta(&sidecar)
        && meta.same_content(&wanted)
        && meta.rows_done == meta.image_count
        && job.out.is_file()
    {
        return Ok(job.out.clone());
    }
    let n = job.images.len();
    let row_len: usize = latent_shape.iter().product();
    let header = header_bytes("<f2", &[n, latent_shape[0], latent_shape[1], latent_shape[2]]);
    let resume_from = match read_meta(&marker) {
        Some(m) if m.same_content(&wanted) && partial.is_file() => m.rows_done,
        _ => 0,
    };
    let mut file = if resume_from > 0 {
        OpenOptions::new().write(true).open(&partial).map_err(io(&partial, "open"))?
    } else {
        let mut f = File::create(&partial).map_err(io(&partial, "create"))?;
        f.write_all(&header).map_err(io(&partial, "write"))?;
        f.set_len((header.len() + n * row_len * 2) as u64).map_err(io(&partial, "resize"))?;
        f
    };

    let vae = load_vae(&job.vae, device)?;
    let bar = if job.progress { ProgressBar::new(n as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "encoding {bar:40} {pos}/{len} images [{elapsed} < {eta}] {per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(resume_from as u64);
    let batch = job.batch.max(1);
    let mut meta = LatentMeta { rows_done: resume_from, ..wanted };
    let mut start = resume_from;
    while start < n {
        let end = (start + batch).min(n);
        let images = imageio::load_batch(&job.images[start..end], size, size, device)?; // [b, 3, S, S]
        let seed = match job.mode {
            LatentMode::Mode => None,
            LatentMode::Sample { seed } => Some(seed.wrapping_add(start as u64)),
        };
        let z = encode_scaled(&vae, images, seed); // [b, C, h, w]
        let values: Vec<f32> =
            z.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| {
                LatentError::Format { path: partial.clone(), reason: format!("{e:?}") }
            })?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
        file.seek(SeekFrom::Start((header.len() + start * row_len * 2) as u64))
            .map_err(io(&partial, "seek"))?;
        file.write_all(&bytes).map_err(io(&partial, "write"))?;
        file.sync_data().map_err(io(&partial, "sync"))?;
        meta.rows_done = end;
        write_meta(&marker, &meta)?;
        bar.set_position(end as u64);
        start = end;
    }
    bar.finish_and_clear();
    drop(file);
    std::fs::rename(&partial, &job.out).map_err(io(&job.out, "rename"))?;
    write_meta(&sidecar, &meta)?;
    let _ = std::fs::remove_file(&marker);
    Ok(job.out.clone())
}

/// A finished latent cache, memory-mapped; rows come back as f32.
#[derive(Debug)]
pub struct LatentCache {
    path: PathBuf,
    map: Mmap,
    offset: usize,
    dtype: Dtype,
    n: usize,
    shape: [usize; 3],
    meta: Option<LatentMeta>,
}

impl LatentCache {
    /// Open a cache `.npy` (f16 or f32, `[N, C, h, w]`) and its sidecar when present.
    pub fn open(path: &Path) -> Result<Self, LatentError> {
        let bad = |reason: String| LatentError::Format { path: path.into(), reason };
        let mut file = File::open(path).map_err(io(path, "open"))?;
        let header = read_header(&mut file, path).map_err(|e| bad(e.to_string()))?;
        let dtype = match header.dtype {
            Some(d @ (Dtype::F16 | Dtype::F32)) if !header.fortran_order => d,
            _ => {
                return Err(bad(format!(
                    "dtype {} (fortran {}), expected <f2 or <f4 in C order",
                    header.descr, header.fortran_order
                )));
            }
        };
        let [n, c, h, w]: [usize; 4] = header
            .shape
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("shape {:?}, expected [N, C, h, w]", header.shape)))?;
        // SAFETY: the file is opened read-only; the cache is only replaced by rename, never
        // truncated in place, so the mapping stays valid.
        let map = unsafe { Mmap::map(&file) }.map_err(io(path, "map"))?;
        let need = header.data_offset + n * c * h * w * dtype.size();
        if map.len() < need {
            return Err(bad(format!("file has {} bytes, shape needs {need}", map.len())));
        }
        Ok(Self {
            path: path.into(),
            map,
            offset: header.data_offset,
            dtype,
            n,
            shape: [c, h, w],
            meta: read_meta(&sidecar_path(path)),
        })
    }

    /// Number of rows (images).
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the cache has no rows.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Latent shape per row `[C, h, w]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The sidecar, when present.
    pub fn meta(&self) -> Option<&LatentMeta> {
        self.meta.as_ref()
    }

    /// Rows `idx` as f32 `[k, C, h, w]` (already scaled by the VAE's scaling factor).
    pub fn rows(&self, idx: &[usize]) -> Result<ndarray::Array4<f32>, LatentError> {
        let row_len: usize = self.shape.iter().product();
        let mut out = Vec::with_capacity(idx.len() * row_len);
        for &r in idx {
            if r >= self.n {
                return Err(LatentError::Row { path: self.path.clone(), row: r, len: self.n });
            }
            let size = self.dtype.size();
            let bytes = &self.map[self.offset + r * row_len * size..][..row_len * size];
            match self.dtype {
                Dtype::F16 => out.extend(
                    bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
                ),
                _ => out.extend(
                    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
            }
        }
        let [c, h, w] = self.shape;
        Ok(ndarray::Array4::from_shape_vec((idx.len(), c, h, w), out)
            .expect("row length matches shape"))
    }

    /// Rows `idx` as a tensor `[k, C, h, w]` on `device`.
    pub fn rows_tensor(&self, idx: &[usize], device: &Device) -> Result<Tensor<4>, LatentError> {
        let a = self.rows(idx)?;
        let [c, h, w] = self.shape;
        let data: Vec<f32> = a.into_raw_vec_and_offset().0;
        Ok(Tensor::from_data(TensorData::new(data, [idx.len(), c, h, w]), device))
    }
}
