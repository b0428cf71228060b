//! The Algonauts 2023 data layer: fMRI arrays, ROI masks and sets, images, train/val split.
//!
//! - [`npy`]: `.npy` headers, memory-mapped 1-D/2-D arrays (f32 zero-copy, f64/f16 converted
//!   per row), small array writers.
//! - [`pickle`]: a minimal pickle reader/writer for the `np.save(dict)` mapping files.
//! - [`mapping`]: read and write `mapping_<class>.npy` (`{label: name}` dicts).
//! - [`algonauts`]: one subject's folder (both namings), its images, fMRI and ROI atlas.
//! - [`roi`]: ROI sets (`set1|set2|set3|none|custom`), masking modes, the voxel mask.
//! - [`split`]: the seeded, platform-independent 70/30 train/val split.
//! - [`probe`]: the dataset-level probe set held out of every experiment's split.
//! - [`roi_table`]: the challenge's ROI classes and the paper's ROI sets.

pub mod algonauts;
pub mod mapping;
pub mod npy;
pub mod pickle;
pub mod probe;
pub mod roi;
pub mod roi_table;
pub mod split;

use std::path::PathBuf;

/// Everything that can go wrong reading or writing a dataset. Every message names the file
/// (or folder) involved and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A folder the layout requires does not exist.
    #[error("folder {path} not found ({what}); fix: {fix}")]
    MissingDir {
        /// The folder that was looked for.
        path: PathBuf,
        /// What it should contain.
        what: String,
        /// How to fix it.
        fix: String,
    },
    /// A file the layout requires does not exist.
    #[error("file {path} not found ({what}); fix: {fix}")]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
        /// What it should contain.
        what: String,
        /// How to fix it.
        fix: String,
    },
    /// Reading or writing a file failed at the OS level.
    #[error("cannot {action} {path}; fix: check the path and its permissions")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done (`read`, `write`, `map`, ...).
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid `.npy` file (bad magic, header or truncated data).
    #[error("{path} is not a readable .npy file: {reason}; fix: re-save it with numpy.save")]
    NpyFormat {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The array has an element type we cannot use here.
    #[error(
        "{path} has dtype {found}, expected {expected}; fix: convert it, e.g. np.save(path, np.load(path).astype('{hint}'))"
    )]
    Dtype {
        /// The file involved.
        path: PathBuf,
        /// The dtype descriptor found (numpy notation, e.g. `<i8`).
        found: String,
        /// The dtypes accepted.
        expected: String,
        /// The numpy dtype to convert to.
        hint: String,
    },
    /// The array has the wrong number of dimensions.
    #[error("{path} has shape {found:?}, expected {expected}; fix: save the array with that shape")]
    Rank {
        /// The file involved.
        path: PathBuf,
        /// The shape found.
        found: Vec<usize>,
        /// The shape expected, in words.
        expected: String,
    },
    /// The array is stored in Fortran (column-major) order; rows could not be streamed.
    #[error(
        "{path} is stored in Fortran (column-major) order; fix: re-save it in C order: np.save(path, np.ascontiguousarray(np.load(path)))"
    )]
    FortranOrder {
        /// The file involved.
        path: PathBuf,
    },
    /// A mapping pickle could not be parsed.
    #[error(
        "cannot read the pickled mapping in {path}: {reason}; fix: write it with numpy: np.save(path, {{1: 'V1v', 2: 'V1d', ...}})"
    )]
    Pickle {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A mapping pickle holds something other than a `{int: str}` dict.
    #[error(
        "{path} holds {found}, expected a dict {{label (int): ROI name (str)}}; fix: np.save(path, {{1: 'V1v', 2: 'V1d', ...}})"
    )]
    NotADict {
        /// The file involved.
        path: PathBuf,
        /// What was found instead.
        found: String,
    },
    /// The left and right hemisphere arrays have a different number of rows (stimuli).
    #[error(
        "{lh} has {lh_rows} rows but {rh} has {rh_rows}; both hemispheres need one row per stimulus; fix: use the lh/rh pair of the same subject and split"
    )]
    HemisphereRows {
        /// Left hemisphere file.
        lh: PathBuf,
        /// Its rows.
        lh_rows: usize,
        /// Right hemisphere file.
        rh: PathBuf,
        /// Its rows.
        rh_rows: usize,
    },
    /// The number of images does not match the fMRI rows.
    #[error(
        "{dir} holds {images} images but {fmri} has {rows} rows (one per image); fix: restore the missing images or use the matching fMRI file"
    )]
    ImageCount {
        /// The image folder.
        dir: PathBuf,
        /// Images found.
        images: usize,
        /// The fMRI file compared with.
        fmri: PathBuf,
        /// Its rows.
        rows: usize,
    },
    /// Image files are named inconsistently (gaps, duplicates, mixed namings).
    #[error(
        "{dir}: {reason}; fix: name images train-0001_nsd-XXXXX.png (1-based) or 0.png, 1.png, ... (0-based)"
    )]
    ImageNames {
        /// The image folder.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An ROI mask's length differs from the hemisphere's vertex count.
    #[error(
        "{path} has {len} entries but {fmri} has {vertices} vertices; fix: use the roi_masks of the same subject as the fMRI"
    )]
    MaskLength {
        /// The mask file.
        path: PathBuf,
        /// Its length.
        len: usize,
        /// The fMRI file compared with.
        fmri: PathBuf,
        /// Its vertex count (columns).
        vertices: usize,
    },
    /// A mask uses a label that its mapping file does not name.
    #[error(
        "{path} uses label {label}, which {mapping} does not name; fix: use the mapping file of the same release"
    )]
    UnknownLabel {
        /// The mask file.
        path: PathBuf,
        /// The label.
        label: i32,
        /// The mapping file.
        mapping: PathBuf,
    },
    /// No ROI mask files were found.
    #[error(
        "{dir} holds no ROI masks ({{lh,rh}}.<class>_challenge_space.npy or {{lh,rh}}.<class>_space.npy with mapping_<class>.npy); fix: copy the subject's roi_masks folder"
    )]
    NoRoiMasks {
        /// The roi_masks folder.
        dir: PathBuf,
    },
    /// An ROI name that no class of the atlas contains.
    #[error("unknown ROI '{name}' (in {source_desc}); valid names: {valid}")]
    UnknownRoi {
        /// The name given.
        name: String,
        /// Where the valid names come from (mapping folder or "ROI table").
        source_desc: String,
        /// All valid names, comma-separated.
        valid: String,
    },
    /// The ROI set selects no voxel at all.
    #[error(
        "ROI set '{set}' selects no voxel in {dir} (its ROIs are empty in both hemispheres); fix: choose other ROIs or `none` (all voxels)"
    )]
    EmptyRoiUnion {
        /// The set, as written.
        set: String,
        /// The roi_masks folder.
        dir: PathBuf,
    },
    /// An ROI set string that cannot be parsed.
    #[error(
        "cannot parse ROI set '{0}'; fix: use set1, set2, set3, none or a comma-separated list of ROI names"
    )]
    BadRoiSet(String),
    /// A voxel mask built for another subject (different vertex counts).
    #[error(
        "the voxel mask covers {mask_lh}+{mask_rh} vertices but {subject} has {lh}+{rh}; fix: build the mask from this subject's roi_atlas()"
    )]
    MaskSubject {
        /// The subject folder.
        subject: PathBuf,
        /// Mask's lh vertices.
        mask_lh: usize,
        /// Mask's rh vertices.
        mask_rh: usize,
        /// Subject's lh vertices.
        lh: usize,
        /// Subject's rh vertices.
        rh: usize,
    },
    /// A row index beyond the array.
    #[error("row {row} requested but {path} has {rows} rows; fix: use indices below {rows}")]
    RowOutOfRange {
        /// The file involved.
        path: PathBuf,
        /// The index asked for.
        row: usize,
        /// Rows available.
        rows: usize,
    },
    /// A value that cannot be written (e.g. a non-finite or out-of-range value).
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The fix for a missing dataset root or subject folder.
pub const FIX_ROOT: &str = "point at the dataset root that holds <subject>/training_split and <subject>/roi_masks (Algonauts 2023 layout), or create one with `brainscope demo`";

impl DataError {
    /// Wrap an I/O error with the file and action involved.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), action, source }
    }
}
