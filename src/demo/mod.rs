//! The embedded demo dataset: procedural images and a simulated brain, written in exactly the
//! Algonauts 2023 challenge layout (design 3.1/3.2) so the real reader is what reads it.
//!
//! ```text
//! <out>/brainscope-demo.json                      marker: settings and summary (not Algonauts)
//! <out>/demo_labels.csv                           per image: split, file, category, objects
//! <out>/subj01/training_split/training_fmri/{lh,rh}_training_fmri.npy   f32 [N, V_lh] / [N, V_rh]
//! <out>/subj01/training_split/training_images/train-0001_nsd-00001.png ...
//! <out>/subj01/test_split/test_fmri/{lh,rh}_test_fmri.npy + test_images/test-0001_nsd-XXXXX.png
//! <out>/subj01/roi_masks/{lh,rh}.<class>_challenge_space.npy  int32 label per vertex (0 = none)
//! <out>/subj01/roi_masks/mapping_<class>.npy                  pickled dict {int: name}
//! ```
//!
//! Determinism: every random draw comes from `ChaCha8Rng::seed_from_u64(seed)` with a separate
//! ChaCha stream per purpose ([`stream_rng`]): one per image, one per hemisphere's layout and
//! one per hemisphere's noise. Same seed and settings give identical files on the same build
//! and CPU (the pRF matrix product may round differently on another CPU's SIMD path).
//!
//! Generation writes into a hidden sibling folder and renames it into place at the end, so a
//! failure or Ctrl-C never leaves a half-written dataset at `out`.

pub mod brain;
pub mod canvas;
pub mod scenes;

use crate::data::mapping::write_mapping;
use crate::data::roi_table::ROI_CLASSES;
use brain::{FEATURE_GRID, FEATURE_MAPS, Hemisphere, HemisphereBrain, MIN_VERTICES};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array1, Array2, s};
use ndarray_npy::write_npy;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scenes::{Category, SceneObject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Default demo folder, relative to the project directory.
pub const DEFAULT_DEMO_DIR: &str = "demo-data";
/// The subject folder the demo writes.
pub const DEMO_SUBJECT: &str = "subj01";
/// Marker file that identifies a folder as a brainscope demo (holds settings and summary).
pub const MARKER_FILE: &str = "brainscope-demo.json";
/// Per-image labels: `split,index,file,category,objects` (objects as `category@x:y:area;...`).
pub const LABELS_FILE: &str = "demo_labels.csv";
/// Version of the demo's files; bump when the generator's output changes for a given seed.
pub const DEMO_FORMAT: u32 = 1;

/// Largest accepted image side, vertex count per hemisphere and image count.
const MAX_SIZE: u32 = 1024;
const MAX_VERTICES: usize = 60_000;
const MAX_IMAGES: usize = 100_000;

/// Settings of a demo dataset. Equal settings give identical files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoConfig {
    /// Seed of every random draw.
    pub seed: u64,
    /// Training images (rows of the training fMRI).
    pub train_images: usize,
    /// Test images (0 = no test split).
    pub test_images: usize,
    /// Image side in pixels (square RGB).
    pub image_size: u32,
    /// Left-hemisphere vertices (subj01 has 19004).
    pub lh_vertices: usize,
    /// Right-hemisphere vertices (subj01 has 20544).
    pub rh_vertices: usize,
    /// Signal-to-noise ratio per vertex: signal standard deviation / noise standard deviation.
    pub snr: f32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            train_images: 1000,
            test_images: 100,
            image_size: 64,
            lh_vertices: 2000,
            rh_vertices: 2200,
            snr: 1.0,
        }
    }
}

impl DemoConfig {
    /// Check every setting; the error names the flag and its valid range.
    pub fn validate(&self) -> Result<(), DemoError> {
        let bad = |flag: &'static str, value: String, fix: String| {
            Err(DemoError::InvalidSetting { flag, value, fix })
        };
        if !(16..=MAX_SIZE).contains(&self.image_size) {
            return bad(
                "--size",
                self.image_size.to_string(),
                format!("use 16 to {MAX_SIZE} pixels"),
            );
        }
        if !(1..=MAX_IMAGES).contains(&self.train_images) {
            return bad(
                "--images",
                self.train_images.to_string(),
                format!("use 1 to {MAX_IMAGES} training images"),
            );
        }
        if self.test_images > MAX_IMAGES {
            return bad(
                "--test-images",
                self.test_images.to_string(),
                format!("use 0 to {MAX_IMAGES}"),
            );
        }
        for (flag, v) in [("--lh", self.lh_vertices), ("--rh", self.rh_vertices)] {
            if !(MIN_VERTICES..=MAX_VERTICES).contains(&v) {
                return bad(
                    flag,
                    v.to_string(),
                    format!("use {MIN_VERTICES} to {MAX_VERTICES} vertices (every ROI needs one)"),
                );
            }
        }
        if !(self.snr.is_finite() && self.snr > 0.0) {
            return bad(
                "--snr",
                self.snr.to_string(),
                "use a positive number (1.0: noise as strong as signal)".into(),
            );
        }
        Ok(())
    }
}

/// Vertices of one ROI in the demo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoRoiCount {
    /// ROI class, e.g. `floc-faces`.
    pub class: String,
    /// ROI name, e.g. `FFA-1`.
    pub name: String,
    /// Left-hemisphere vertices.
    pub lh: usize,
    /// Right-hemisphere vertices.
    pub rh: usize,
}

/// What a demo folder holds (also stored in its marker file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSummary {
    /// Where the dataset is (the folder passed as `out`).
    #[serde(skip)]
    pub path: PathBuf,
    /// The subject folder name (`subj01`).
    pub subject: String,
    /// File-format version ([`DEMO_FORMAT`]).
    pub format: u32,
    /// The settings it was generated with.
    pub config: DemoConfig,
    /// Training images per main category, by category name.
    pub train_categories: BTreeMap<String, usize>,
    /// Vertices per ROI, in [`ROI_CLASSES`] order.
    pub rois: Vec<DemoRoiCount>,
    /// Vertices without any label (in no class), lh and rh.
    pub unlabeled: [usize; 2],
}

impl DemoSummary {
    /// The subject folder, `path/subj01`: what `data::algonauts::Subject::open` takes with the root.
    pub fn subject_dir(&self) -> PathBuf {
        self.path.join(&self.subject)
    }
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(f, "demo dataset: {}", self.subject_dir().display())?;
        writeln!(
            f,
            "  images: {} training + {} test, {}x{} RGB (seed {})",
            c.train_images, c.test_images, c.image_size, c.image_size, c.seed
        )?;
        let cats: Vec<String> =
            self.train_categories.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(f, "  training categories: {}", cats.join(", "))?;
        writeln!(
            f,
            "  vertices: lh {}, rh {} (unlabeled lh {}, rh {}); SNR {}",
            c.lh_vertices, c.rh_vertices, self.unlabeled[0], self.unlabeled[1], c.snr
        )?;
        writeln!(f, "  ROI vertices (lh/rh):")?;
        for (class, _) in ROI_CLASSES {
            let rois: Vec<String> = self
                .rois
                .iter()
                .filter(|r| r.class == *class)
                .map(|r| format!("{} {}/{}", r.name, r.lh, r.rh))
                .collect();
            writeln!(f, "    {class:<15} {}", rois.join("  "))?;
        }
        Ok(())
    }
}

/// Why the demo could not be generated or read. Nothing is left at `out` on error.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A setting is out of range.
    #[error("invalid demo setting {flag} {value}: {fix}")]
    InvalidSetting {
        /// The CLI flag.
        flag: &'static str,
        /// The rejected value.
        value: String,
        /// The valid range.
        fix: String,
    },
    /// `out` exists, is not empty and has no demo marker: never overwritten.
    #[error(
        "{} exists and is not a brainscope demo folder (no {MARKER_FILE}); choose another --out or move it away",
        path.display()
    )]
    NotADemo {
        /// The folder.
        path: PathBuf,
    },
    /// `out` holds a demo generated with other settings.
    #[error(
        "{} already holds a demo generated with other settings ({existing}); pass --force to regenerate it",
        path.display()
    )]
    DifferentSettings {
        /// The folder.
        path: PathBuf,
        /// Its settings, briefly.
        existing: String,
    },
    /// The marker file is unreadable or from another version.
    #[error("cannot read demo marker {}: {reason}; regenerate with `brainscope demo --force --out {}`", path.display(), path.parent().unwrap_or(Path::new(".")).display())]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or folder could not be written.
    #[error("cannot {action} {}; check the folder is writable and the disk has space", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was attempted.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// An array file could not be written.
    #[error("cannot write array {}; check the folder is writable and the disk has space", path.display())]
    Npy {
        /// The `.npy` file.
        path: PathBuf,
        /// The cause.
        source: ndarray_npy::WriteNpyError,
    },
    /// An image could not be written.
    #[error("cannot write image {}; check the folder is writable and the disk has space", path.display())]
    Png {
        /// The `.png` file.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
    /// A mapping pickle could not be written.
    #[error(transparent)]
    Mapping(#[from] crate::data::DataError),
}

fn io_err<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> DemoError + 'a {
    move |source| DemoError::Io { path: path.to_path_buf(), action, source }
}

/// The random stream for one purpose: `ChaCha8Rng::seed_from_u64(seed)` on ChaCha stream
/// `(purpose << 32) | index`. Purposes: 1 = image `index` (0-based over training then test),
/// 2 = layout of hemisphere `index` (0 lh, 1 rh), 3 = noise of hemisphere `index`.
pub fn stream_rng(seed: u64, purpose: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((purpose << 32) | (index & 0xffff_ffff));
    rng
}

/// What is at `out`: nothing usable, a demo (its summary), or something else.
enum Existing {
    Missing,
    Demo(DemoSummary),
    Other,
}

fn existing(out: &Path) -> Result<Existing, DemoError> {
    if !out.exists() {
        return Ok(Existing::Missing);
    }
    let marker = out.join(MARKER_FILE);
    if marker.is_file() {
        return read_summary(out).map(Existing::Demo);
    }
    let empty = out.is_dir() && fs::read_dir(out).map_err(io_err(out, "list"))?.next().is_none();
    Ok(if empty { Existing::Missing } else { Existing::Other })
}

/// Read the summary of the demo at `out` from its marker file.
pub fn read_summary(out: &Path) -> Result<DemoSummary, DemoError> {
    let path = out.join(MARKER_FILE);
    let text = fs::read_to_string(&path)
        .map_err(|e| DemoError::Marker { path: path.clone(), reason: e.to_string() })?;
    let mut summary: DemoSummary = serde_json::from_str(&text)
        .map_err(|e| DemoError::Marker { path: path.clone(), reason: e.to_string() })?;
    if summary.format != DEMO_FORMAT {
        return Err(DemoError::Marker {
            path,
            reason: format!(
                "format {} but this brainscope writes format {DEMO_FORMAT}",
                summary.format
            ),
        });
    }
    summary.path = out.to_path_buf();
    Ok(summary)
}

/// The demo at `out`, generated with default settings first if `out` is missing or empty.
/// An existing demo is kept whatever its settings; a non-demo folder is an error.
/// Shows a progress bar on stderr while generating: call it before a full-screen UI starts.
pub fn ensure_demo(out: &Path) -> Result<DemoSummary, DemoError> {
    match existing(out)? {
        Existing::Demo(summary) => Ok(summary),
        Existing::Missing => generate(&DemoConfig::default(), out),
        Existing::Other => Err(DemoError::NotADemo { path: out.to_path_buf() }),
    }
}

/// The folder name of the embedded demo dataset: a data root named so is generated on first
/// use (by `brainscope train` and the console).
pub const DEMO_DIR_NAME: &str = "demo-data";

/// Generate the demo at `root` (default settings) when `root` is named [`DEMO_DIR_NAME`] and
/// lacks the `subject` folder; `Ok(true)` when it did. Any other root is left alone (the data
/// layer reports what is missing). The trainer calls it through
/// [`crate::train::trainer::TrainRequest::prepare_data`].
pub fn ensure_demo_root(root: &Path, subject: &str) -> Result<bool, DemoError> {
    if root.file_name().is_none_or(|n| n != DEMO_DIR_NAME) || root.join(subject).is_dir() {
        return Ok(false);
    }
    ensure_demo(root)?;
    Ok(true)
}

/// What [`prepare`] decided about an existing folder.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing there yet (or an empty folder): generate.
    Generate,
    /// A demo with the same settings is there: nothing to do.
    UpToDate(DemoSummary),
    /// A demo is there and `force` was given: regenerate (it is replaced at the end).
    Regenerate,
}

/// Decide what `brainscope demo` does at `out`: errors for a non-demo folder (always) and for
/// a demo with other settings unless `force`.
pub fn prepare(config: &DemoConfig, out: &Path, force: bool) -> Result<Plan, DemoError> {
    config.validate()?;
    match existing(out)? {
        Existing::Missing => Ok(Plan::Generate),
        Existing::Other => Err(DemoError::NotADemo { path: out.to_path_buf() }),
        Existing::Demo(_) if force => Ok(Plan::Regenerate),
        Existing::Demo(s) if s.config == *config => Ok(Plan::UpToDate(s)),
        Existing::Demo(s) => Err(DemoError::DifferentSettings {
            path: out.to_path_buf(),
            existing: format!(
                "seed {}, {}+{} images, {} px, lh {}, rh {}, SNR {}",
                s.config.seed,
                s.config.train_images,
                s.config.test_images,
                s.config.image_size,
                s.config.lh_vertices,
                s.config.rh_vertices,
                s.config.snr
            ),
        }),
    }
}

/// Generate the demo into `out` with a progress bar on stderr (hidden when stderr is not a
/// terminal). Replaces an existing demo at `out`; refuses any other non-empty folder.
pub fn generate(config: &DemoConfig, out: &Path) -> Result<DemoSummary, DemoError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<24} [{bar:30}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let result = generate_with_progress(config, out, &bar);
    bar.finish_and_clear();
    result
}

/// [`generate`] reporting to the given bar (pass `ProgressBar::hidden()` for none).
pub fn generate_with_progress(
    config: &DemoConfig,
    out: &Path,
    bar: &ProgressBar,
) -> Result<DemoSummary, DemoError> {
    config.validate()?;
    if let Existing::Other = existing(out)? {
        return Err(DemoError::NotADemo { path: out.to_path_buf() });
    }
    let name =
        out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "demo".into());
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_err(&parent, "create folder"))?;
    let staging = Staging(parent.join(format!(".{name}.partial-{}", std::process::id())));
    if staging.0.exists() {
        fs::remove_dir_all(&staging.0).map_err(io_err(&staging.0, "remove stale folder"))?;
    }
    let mut summary = write_dataset(config, &staging.0, bar)?;

    // Swap into place: an old demo is moved aside first and removed after.
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let had_old = out.exists();
    if had_old {
        fs::rename(out, &old).map_err(io_err(out, "move aside"))?;
    }
    if let Err(e) = fs::rename(&staging.0, out) {
        if had_old {
            let _ = fs::rename(&old, out);
        }
        return Err(DemoError::Io {
            path: out.to_path_buf(),
            action: "move into place",
            source: e,
        });
    }
    if had_old {
        fs::remove_dir_all(&old).map_err(io_err(&old, "remove the replaced demo"))?;
    }
    summary.path = out.to_path_buf();
    Ok(summary)
}

/// A staging folder removed on drop unless it was renamed away.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Write the whole dataset into `root` (a fresh folder) and return its summary.
fn write_dataset(
    config: &DemoConfig,
    root: &Path,
    bar: &ProgressBar,
) -> Result<DemoSummary, DemoError> {
    let subj = root.join(DEMO_SUBJECT);
    let train_img = subj.join("training_split/training_images");
    let train_fmri = subj.join("training_split/training_fmri");
    let test_img = subj.join("test_split/test_images");
    let test_fmri = subj.join("test_split/test_fmri");
    let masks = subj.join("roi_masks");
    let mut dirs = vec![&train_img, &train_fmri, &masks];
    if config.test_images > 0 {
        dirs.extend([&test_img, &test_fmri]);
    }
    for d in dirs {
        fs::create_dir_all(d).map_err(io_err(d, "create folder"))?;
    }

    // Images: render, write, and pool into the features the pRFs see.
    let (n_train, n_test) = (config.train_images, config.test_images);
    let n = n_train + n_test;
    let size = config.image_size as usize;
    let per_image = FEATURE_MAPS * FEATURE_GRID * FEATURE_GRID;
    let mut features = Array2::<f32>::zeros((n, per_image)); // [images, maps * grid * grid]
    let mut objects: Vec<Vec<SceneObject>> = Vec::with_capacity(n);
    let mut labels = String::from("split,index,file,category,objects\n");
    let mut train_categories: BTreeMap<String, usize> =
        Category::ALL.iter().map(|c| (c.name().to_string(), 0)).collect();
    bar.set_length(n as u64 + 4);
    bar.set_message("rendering images");
    for i in 0..n {
        let scene = scenes::render(size, &mut stream_rng(config.seed, 1, i as u64));
        let (split, index, dir) = if i < n_train {
            ("train", i + 1, &train_img)
        } else {
            ("test", i - n_train + 1, &test_img)
        };
        // nsd ids: 1-based over training then test images, unique like the real ones.
        let file = format!("{split}-{index:04}_nsd-{:05}.png", i + 1);
        let path = dir.join(&file);
        image::save_buffer_with_format(
            &path,
            &scene.canvas.to_rgb8(),
            size as u32,
            size as u32,
            image::ColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .map_err(|source| DemoError::Png { path: path.clone(), source })?;
        let row = features.row_mut(i);
        brain::features(&scene.canvas.quantised(), size, row.into_slice().expect("contiguous row"));
        if i < n_train {
            *train_categories.entry(scene.category.name().to_string()).or_default() += 1;
        }
        let objs: Vec<String> = scene
            .objects
            .iter()
            .map(|o| format!("{}@{:.3}:{:.3}:{:.4}", o.category.name(), o.x, o.y, o.area))
            .collect();
        labels.push_str(&format!(
            "{split},{index},{file},{},{}\n",
            scene.category.name(),
            objs.join(";")
        ));
        objects.push(scene.objects);
        bar.inc(1);
    }

    // Brain: per hemisphere, lay out vertices, simulate, write fMRI and masks.
    let mut hemis = Vec::new();
    for (h, hemi, vertices) in
        [(0u64, Hemisphere::Left, config.lh_vertices), (1, Hemisphere::Right, config.rh_vertices)]
    {
        bar.set_message(format!("simulating {} fMRI", hemi.prefix()));
        let brain = HemisphereBrain::new(hemi, vertices, &mut stream_rng(config.seed, 2, h));
        let fmri = brain.respond(
            features.view(),
            &objects,
            config.snr,
            &mut stream_rng(config.seed, 3, h),
        );
        bar.set_message(format!("writing {} arrays", hemi.prefix()));
        let p = train_fmri.join(format!("{}_training_fmri.npy", hemi.prefix()));
        write_npy(&p, &fmri.slice(s![..n_train, ..]).to_owned())
            .map_err(|source| DemoError::Npy { path: p.clone(), source })?;
        if n_test > 0 {
            let p = test_fmri.join(format!("{}_test_fmri.npy", hemi.prefix()));
            write_npy(&p, &fmri.slice(s![n_train.., ..]).to_owned())
                .map_err(|source| DemoError::Npy { path: p.clone(), source })?;
        }
        for ((class, _), labels) in ROI_CLASSES.iter().zip(&brain.labels) {
            let p = masks.join(format!("{}.{class}_challenge_space.npy", hemi.prefix()));
            write_npy(&p, &Array1::from(labels.clone()))
                .map_err(|source| DemoError::Npy { path: p.clone(), source })?;
        }
        hemis.push(brain);
        bar.inc(2);
    }
    for (class, rois) in ROI_CLASSES {
        let mut mapping: BTreeMap<i32, String> = BTreeMap::from([(0, "Unknown".to_string())]);
        mapping.extend(rois.iter().map(|(l, n)| (*l, n.to_string())));
        write_mapping(&masks.join(format!("mapping_{class}.npy")), &mapping)?;
    }

    // Summary, labels and marker (the marker last: its presence means complete).
    let count = |b: &HemisphereBrain, ci: usize, label: i32| {
        b.labels[ci].iter().filter(|&&l| l == label).count()
    };
    let rois = ROI_CLASSES
        .iter()
        .enumerate()
        .flat_map(|(ci, (class, rois))| {
            let hemis = &hemis;
            rois.iter().map(move |(label, name)| DemoRoiCount {
                class: class.to_string(),
                name: name.to_string(),
                lh: count(&hemis[0], ci, *label),
                rh: count(&hemis[1], ci, *label),
            })
        })
        .collect();
    let unlabeled = |b: &HemisphereBrain| {
        (0..b.vertices()).filter(|&v| b.labels.iter().all(|l| l[v] == 0)).count()
    };
    let summary = DemoSummary {
        path: root.to_path_buf(),
        subject: DEMO_SUBJECT.to_string(),
        format: DEMO_FORMAT,
        config: config.clone(),
        train_categories,
        rois,
        unlabeled: [unlabeled(&hemis[0]), unlabeled(&hemis[1])],
    };
    let p = root.join(LABELS_FILE);
    fs::write(&p, labels).map_err(io_err(&p, "write"))?;
    let p = root.join(MARKER_FILE);
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    let mut f = fs::File::create(&p).map_err(io_err(&p, "create"))?;
    f.write_all(json.as_bytes()).and_then(|_| f.sync_all()).map_err(io_err(&p, "write"))?;
    bar.inc(1);
    Ok(summary)
}
