//! The latent cache: every image of a dataset encoded once by a VAE (f16 npy + JSON sidecar).
//!
//! Layout: `<out>.npy` holds `[N, C, h, w]` f16 latents, already multiplied by the VAE's
//! `scaling_factor` (the low-level model's training targets), row `i` = image `i` of the list
//! (training images first, then test images). `<out>.json` ([`LatentMeta`]) records the dataset,
//! the images' content fingerprint, VAE folder and content fingerprint (config.json + weights
//! bytes), image size, mode/sample and scaling factor; the cache is reused when all of them
//! match, and rebuilt otherwise with the reason ([`BuiltCache::rebuilt_because`]: the VAE
//! changed, the images changed, ...). Fingerprints hash every byte (streamed once per check,
//! images in parallel), so a replaced file is noticed whatever its size and mtime.
//!
//! Resuming: work goes into `<out>.npy.partial` (a full-size npy written row by row) with a
//! progress marker `<out>.npy.partial.json` (the meta + rows done); an interrupted run continues
//! from the marker when the meta still matches. Sampling is per image (`seed + row`), so a resumed
//! or re-batched run gives the same latents.
//!
//! Default location: `<subject dir>/latents/<vae-name>-<mode>.npy` ([`default_cache_path`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::DataError;
use crate::data::npy::{Dtype, NpyMatrix, encode_f32, header_bytes, read_header};
use crate::imageio::{self, ImageIoError};
use crate::models::vae::{AutoencoderKLConfig, Vae, load_vae, posterior::seeded_normal};
use crate::models::weights::WeightsError;
use crate::train::checkpoint::Checksum;

/// Errors of building or reading a latent cache; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LatentError {
    /// The VAE folder is unusable.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// An image cannot be read.
    #[error(transparent)]
    Image(#[from] ImageIoError),
    /// The cache file cannot be mapped or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// File system error.
    #[error("{path}: {action} failed")]
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
    /// Content fingerprint of the images, in row order ([`images_fingerprint`]).
    pub images_fingerprint: String,
    /// VAE hub folder.
    pub vae: PathBuf,
    /// Content fingerprint of the VAE's config.json and weights ([`vae_fingerprint`]).
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
        self.changes(other).is_empty()
    }

    /// What differs between this (an existing cache's) meta and `new`, in words, each naming
    /// what changed (progress ignored).
    pub fn changes(&self, new: &LatentMeta) -> Vec<String> {
        let mut out = Vec::new();
        let mut differs = |what: &str, old: String, now: String| {
            if old != now {
                out.push(format!("{what} {old} -> {now}"));
            }
        };
        differs("dataset", self.dataset.display().to_string(), new.dataset.display().to_string());
        differs("VAE folder", self.vae.display().to_string(), new.vae.display().to_string());
        differs("image count", self.image_count.to_string(), new.image_count.to_string());
        differs("training images", self.n_train.to_string(), new.n_train.to_string());
        differs("image size", self.image_size.to_string(), new.image_size.to_string());
        differs(
            "latent shape",
            format!("{:?}", self.latent_shape),
            format!("{:?}", new.latent_shape),
        );
        differs("mode", self.mode.tag(), new.mode.tag());
        differs("scaling factor", self.scaling_factor.to_string(), new.scaling_factor.to_string());
        if self.vae_fingerprint != new.vae_fingerprint {
            out.push(format!(
                "the VAE's config.json or weights in {} changed (content fingerprint {} -> {})",
                new.vae.display(),
                self.vae_fingerprint,
                new.vae_fingerprint
            ));
        }
        if self.images_fingerprint != new.images_fingerprint {
            out.push(format!(
                "the images changed (content fingerprint {} -> {})",
                self.images_fingerprint, new.images_fingerprint
            ));
        }
        out
    }
}

/// The outcome of [`ensure_latent_cache`].
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltCache {
    /// The up-to-date cache file.
    pub path: PathBuf,
    /// Why an existing cache was replaced (what changed, and what to do about runs trained on
    /// the old latents); `None` when it was reused or built for the first time.
    pub rebuilt_because: Option<String>,
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

impl LatentJob {
    /// The latent cache every experiment on `subject` with VAE `vae` shares (the trainer's and
    /// `eval`'s): posterior modes of the training images then the test images, in row order.
    pub fn for_subject(
        subject: &crate::data::algonauts::Subject,
        vae: &Path,
        progress: bool,
    ) -> Self {
        let mut images = subject.train_images().to_vec();
        if let Some(test) = subject.test() {
            images.extend(test.images.iter().cloned());
        }
        Self {
            dataset: subject.dir().to_path_buf(),
            images,
            n_train: subject.n_train(),
            vae: vae.to_path_buf(),
            out: default_cache_path(subject.dir(), vae, LatentMode::Mode),
            batch: 16,
            mode: LatentMode::Mode,
            image_size: None,
            progress,
        }
    }
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

/// Fingerprints of this kind start with this tag, so a sidecar written with the older
/// size + mtime fingerprints never matches (and says so).
const FINGERPRINT_KIND: &str = "content:";

/// Stream `path`'s bytes into `sum` (its length first, so file boundaries count).
fn hash_file(path: &Path, sum: &mut Checksum) -> Result<(), LatentError> {
    let mut file = File::open(path).map_err(io(path, "open"))?;
    let len = file.metadata().map_err(io(path, "stat"))?.len();
    sum.update(&len.to_le_bytes());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path, "read"))?;
        if n == 0 {
            return Ok(());
        }
        sum.update(&buf[..n]);
    }
}

/// Content fingerprint of an image list: every file's bytes, in order (hashed in parallel,
/// combined in list order).
pub fn images_fingerprint(images: &[PathBuf]) -> Result<String, LatentError> {
    let each: Vec<String> = images
        .par_iter()
        .map(|p| {
            let mut sum = Checksum::new();
            hash_file(p, &mut sum)?;
            Ok(sum.finish())
        })
        .collect::<Result<_, LatentError>>()?;
    let mut all = Checksum::new();
    for h in &each {
        all.update(h.as_bytes());
    }
    Ok(format!("{FINGERPRINT_KIND}{}", all.finish()))
}

/// Content fingerprint of a VAE folder: the bytes of config.json and of the weights file.
pub fn vae_fingerprint(vae: &Path) -> Result<String, LatentError> {
    let weights = crate::models::weights::weights_file(vae, &crate::models::vae::vae_spec())?;
    let mut sum = Checksum::new();
    hash_file(&vae.join("config.json"), &mut sum)?;
    hash_file(&weights, &mut sum)?;
    Ok(format!("{FINGERPRINT_KIND}{}", sum.finish()))
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
/// matching partial run, or encode from scratch (saying what changed when an existing cache is
/// replaced).
pub fn ensure_latent_cache(job: &LatentJob, device: &Device) -> Result<BuiltCache, LatentError> {
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
    let existing = read_meta(&sidecar).filter(|_| job.out.is_file());
    if let Some(meta) = &existing
        && meta.same_content(&wanted)
        && meta.rows_done == meta.image_count
    {
        return Ok(BuiltCache { path: job.out.clone(), rebuilt_because: None });
    }
    let rebuilt_because = existing.map(|old| {
        let mut changes = old.changes(&wanted);
        if !old.vae_fingerprint.starts_with(FINGERPRINT_KIND) {
            changes = vec!["the sidecar has the older size + mtime fingerprints".into()];
        } else if changes.is_empty() {
            changes.push("the sidecar records an unfinished cache".into());
        }
        format!(
            "{}; rebuilt {} from scratch: runs trained on the old latents should be retrained \
             with `brainscope train ID --restart`",
            changes.join("; "),
            job.out.display()
        )
    });

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
    // An exclusive lock, released when `lock` is dropped (function end).
    lock.lock().map_err(io(&lock_path, "lock"))?;
    if let Some(meta) = read_meta(&sidecar)
        && meta.same_content(&wanted)
        && meta.rows_done == meta.image_count
        && job.out.is_file()
    {
        return Ok(BuiltCache { path: job.out.clone(), rebuilt_because: None });
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
        let mut bytes = Vec::with_capacity(values.len() * 2);
        encode_f32(Dtype::F16, &values, &mut bytes);
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
    Ok(BuiltCache { path: job.out.clone(), rebuilt_because })
}

/// A finished latent cache, memory-mapped (through [`NpyMatrix`], one row per image); rows come
/// back as f32.
#[derive(Debug)]
pub struct LatentCache {
    path: PathBuf,
    matrix: NpyMatrix,
    shape: [usize; 3],
    meta: Option<LatentMeta>,
}

impl LatentCache {
    /// Open a cache `.npy` (f16 or f32, `[N, C, h, w]`) and its sidecar when present.
    pub fn open(path: &Path) -> Result<Self, LatentError> {
        let bad = |reason: String| LatentError::Format { path: path.into(), reason };
        let mut file = File::open(path).map_err(io(path, "open"))?;
        let header = read_header(&mut file, path).map_err(|e| bad(e.to_string()))?;
        if !matches!(header.dtype, Some(Dtype::F16 | Dtype::F32)) || header.fortran_order {
            return Err(bad(format!(
                "dtype {} (fortran {}), expected <f2 or <f4 in C order",
                header.descr, header.fortran_order
            )));
        }
        let [_, c, h, w]: [usize; 4] = header
            .shape
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("shape {:?}, expected [N, C, h, w]", header.shape)))?;
        let matrix = NpyMatrix::open_rows(path, "latent cache")?;
        Ok(Self {
            path: path.into(),
            matrix,
            shape: [c, h, w],
            meta: read_meta(&sidecar_path(path)),
        })
    }

    /// Number of rows (images).
    pub fn len(&self) -> usize {
        self.matrix.rows()
    }

    /// Whether the cache has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let mut out = vec![0f32; idx.len() * row_len];
        for (&r, dst) in idx.iter().zip(out.chunks_exact_mut(row_len.max(1))) {
            if r >= self.len() {
                return Err(LatentError::Row { path: self.path.clone(), row: r, len: self.len() });
            }
            self.matrix.read_row_into(r, dst)?;
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
