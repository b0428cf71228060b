//! One subject of an Algonauts 2023 dataset (design 3.1), in either naming:
//!
//! - challenge release: images `train-0001_nsd-00013.png` (1-based), masks
//!   `{lh,rh}.<class>_challenge_space.npy`;
//! - course subset: images `0.png, 1.png, ...` (0-based), masks `{lh,rh}.<class>_space.npy`.
//!
//! The naming is detected from the files. Shapes are read from the files (never assumed), and
//! the fMRI arrays are memory-mapped: rows are streamed into the caller's output, so loading a
//! subject never holds more than the output plus one row.
//!
//! Row `i` of the fMRI arrays belongs to the `i`-th image of the sorted image list.

use ndarray::Array2;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::mapping::read_mapping;
use super::npy::{NpyMatrix, RELEASE_EVERY_BYTES, read_int_vector};
use super::roi::{RoiAtlas, RoiClass, VoxelMask};
use super::roi_table::ROI_CLASSES;
use super::{DataError, FIX_ROOT};

/// How a folder's files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Naming {
    /// The challenge release: `train-0001_nsd-00013.png`, `*_challenge_space.npy`.
    Challenge,
    /// The course subset: `0.png`, `*_space.npy`.
    Course,
}

/// The left and right hemisphere arrays of one split.
#[derive(Debug)]
pub struct Hemispheres {
    /// Left hemisphere `[N, lh vertices]`.
    pub lh: NpyMatrix,
    /// Right hemisphere `[N, rh vertices]`.
    pub rh: NpyMatrix,
}

/// The test split: images always, fMRI when the release includes it.
#[derive(Debug)]
pub struct TestSplit {
    /// Test images in order.
    pub images: Vec<PathBuf>,
    /// Test fMRI, when present.
    pub fmri: Option<Hemispheres>,
}

/// One subject's folder, opened and checked.
#[derive(Debug)]
pub struct Subject {
    dir: PathBuf,
    name: String,
    naming: Naming,
    train: Hemispheres,
    train_images: Vec<PathBuf>,
    test: Option<TestSplit>,
}

/// Progress callback: `(rows done, rows total)`.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

impl Subject {
    /// Open `root/subject` (or `root` itself when it already is a subject folder) and check
    /// it: fMRI dtypes and ranks, lh/rh row counts, image count against rows, test split.
    pub fn open(root: &Path, subject: &str) -> Result<Subject, DataError> {
        let (s, mut problems) = Self::inspect(root, subject)?;
        match problems.is_empty() {
            true => Ok(s),
            false => Err(problems.remove(0)),
        }
    }

    /// Like [`Subject::open`] but only fails on what makes the subject unusable (missing or
    /// unreadable fMRI, lh/rh row mismatch); other problems (image names and count, test
    /// split) are returned alongside, for reports such as `brainscope data info`.
    pub fn inspect(root: &Path, subject: &str) -> Result<(Subject, Vec<DataError>), DataError> {
        let dir = subject_dir(root, subject)?;
        let mut problems = Vec::new();
        let train_dir = dir.join("training_split");
        require_dir(&train_dir, "training split: training_fmri/ and training_images/")?;
        let train = open_hemispheres(&train_dir.join("training_fmri"), "training")?;
        let img_dir = train_dir.join("training_images");
        require_dir(&img_dir, "training images, one per fMRI row")?;
        let (train_images, naming) = match list_images(&img_dir, "train") {
            Ok(v) => v,
            Err(e) => {
                problems.push(e);
                (Vec::new(), Naming::Challenge)
            }
        };
        if train_images.len() != train.lh.rows()
            && (problems.is_empty() || !train_images.is_empty())
        {
            problems.push(DataError::ImageCount {
                dir: img_dir.clone(),
                images: train_images.len(),
                fmri: train.lh.path().to_path_buf(),
                rows: train.lh.rows(),
            });
        }
        let test = match open_test(&dir, &train) {
            Ok(t) => t,
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| subject.to_string());
        Ok((Subject { dir, name, naming, train, train_images, test }, problems))
    }

    /// The subject folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The subject's name (its folder name, e.g. `subj01`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The image naming detected for the training images.
    pub fn naming(&self) -> Naming {
        self.naming
    }

    /// Number of training stimuli (fMRI rows).
    pub fn n_train(&self) -> usize {
        self.train.lh.rows()
    }

    /// Left-hemisphere vertex count.
    pub fn lh_vertices(&self) -> usize {
        self.train.lh.cols()
    }

    /// Right-hemisphere vertex count.
    pub fn rh_vertices(&self) -> usize {
        self.train.rh.cols()
    }

    /// Training images, in fMRI row order.
    pub fn train_images(&self) -> &[PathBuf] {
        &self.train_images
    }

    /// The training fMRI arrays (memory-mapped).
    pub fn train_fmri(&self) -> &Hemispheres {
        &self.train
    }

    /// The test split, when the folder has one.
    pub fn test(&self) -> Option<&TestSplit> {
        self.test.as_ref()
    }

    /// The `roi_masks` folder.
    pub fn roi_dir(&self) -> PathBuf {
        self.dir.join("roi_masks")
    }

    /// Read every ROI class (`mapping_<class>.npy` + lh/rh masks, either naming) and check the
    /// mask lengths against the vertex counts.
    pub fn roi_atlas(&self) -> Result<RoiAtlas, DataError> {
        let dir = self.roi_dir();
        require_dir(&dir, "ROI masks and mapping_<class>.npy files")?;
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, "list", e))? {
            let entry = entry.map_err(|e| DataError::io(&dir, "list", e))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(class) = file.strip_prefix("mapping_").and_then(|f| f.strip_suffix(".npy"))
            {
                names.insert(class.to_string());
            } else if let Some((_, class)) = mask_class(&file) {
                names.insert(class);
            }
        }
        if names.is_empty() {
            return Err(DataError::NoRoiMasks { dir });
        }
        // The challenge's class order first, then any other class alphabetically.
        let mut ordered: Vec<String> =
            ROI_CLASSES.iter().map(|(c, _)| c.to_string()).filter(|c| names.contains(c)).collect();
        ordered.extend(names.iter().filter(|n| !ROI_CLASSES.iter().any(|(c, _)| c == n)).cloned());
        let mut classes = Vec::new();
        for class in ordered {
            let mapping_path = dir.join(format!("mapping_{class}.npy"));
            if !mapping_path.is_file() {
                return Err(DataError::MissingFile {
                    path: mapping_path,
                    what: format!("the {{label: name}} dict of ROI class {class}"),
                    fix: "copy it from the same release as the masks".into(),
                });
            }
            let mapping = read_mapping(&mapping_path)?;
            let lh_path = find_mask(&dir, "lh", &class)?;
            let rh_path = find_mask(&dir, "rh", &class)?;
            let lh = read_int_vector(&lh_path, "left-hemisphere ROI labels")?;
            let rh = read_int_vector(&rh_path, "right-hemisphere ROI labels")?;
            for (path, len, m) in
                [(&lh_path, lh.len(), &self.train.lh), (&rh_path, rh.len(), &self.train.rh)]
            {
                if len != m.cols() {
                    return Err(DataError::MaskLength {
                        path: path.clone(),
                        len,
                        fmri: m.path().to_path_buf(),
                        vertices: m.cols(),
                    });
                }
            }
            classes.push(RoiClass {
                name: class,
                lh,
                rh,
                mapping,
                files: [lh_path, rh_path, mapping_path],
            });
        }
        Ok(RoiAtlas {
            dir,
            lh_vertices: self.lh_vertices(),
            rh_vertices: self.rh_vertices(),
            classes,
        })
    }

    /// Training fMRI rows `rows`, masked: `[rows.len(), mask.input_width()]` (lh ++ rh).
    pub fn load_fmri(&self, mask: &VoxelMask, rows: &[usize]) -> Result<Array2<f32>, DataError> {
        self.load_fmri_with(mask, rows, &mut |_, _| {})
    }

    /// [`Subject::load_fmri`] reporting progress after each row (e.g. to an indicatif bar).
    pub fn load_fmri_with(
        &self,
        mask: &VoxelMask,
        rows: &[usize],
        progress: Progress,
    ) -> Result<Array2<f32>, DataError> {
        load_masked(&self.dir, &self.train, mask, rows, progress)
    }

    /// Test fMRI rows, masked like [`Subject::load_fmri`]; an error when the release has none.
    pub fn load_test_fmri(
        &self,
        mask: &VoxelMask,
        rows: &[usize],
        progress: Progress,
    ) -> Result<Array2<f32>, DataError> {
        let fmri = self.test.as_ref().and_then(|t| t.fmri.as_ref()).ok_or_else(|| {
            DataError::MissingFile {
                path: self.dir.join("test_split/test_fmri/lh_test_fmri.npy"),
                what: "test fMRI (the public challenge release withholds it)".into(),
                fix: "use the training split (validation rows) instead".into(),
            }
        })?;
        load_masked(&self.dir, fmri, mask, rows, progress)
    }

    /// Fill `out` (`[rows.len() * mask.input_width()]`, row-major) with masked training rows:
    /// the batch path for training loops.
    pub fn fmri_rows_into(
        &self,
        mask: &VoxelMask,
        rows: &[usize],
        out: &mut [f32],
    ) -> Result<(), DataError> {
        fill_masked(&self.dir, &self.train, mask, rows, out, &mut |_, _| {})
    }
}

fn load_masked(
    dir: &Path,
    h: &Hemispheres,
    mask: &VoxelMask,
    rows: &[usize],
    progress: Progress,
) -> Result<Array2<f32>, DataError> {
    let width = mask.input_width();
    // The only full-size allocation: the output itself.
    let mut out = Array2::<f32>::zeros((rows.len(), width)); // [rows, width]
    let buf = out.as_slice_mut().expect("a fresh Array2 is contiguous");
    fill_masked(dir, h, mask, rows, buf, progress)?;
    Ok(out)
}

fn fill_masked(
    dir: &Path,
    h: &Hemispheres,
    mask: &VoxelMask,
    rows: &[usize],
    out: &mut [f32],
    progress: Progress,
) -> Result<(), DataError> {
    if mask.lh_vertices() != h.lh.cols() || mask.rh_vertices() != h.rh.cols() {
        return Err(DataError::MaskSubject {
            subject: dir.to_path_buf(),
            mask_lh: mask.lh_vertices(),
            mask_rh: mask.rh_vertices(),
            lh: h.lh.cols(),
            rh: h.rh.cols(),
        });
    }
    let width = mask.input_width();
    assert_eq!(out.len(), rows.len() * width, "output must hold rows.len() x input_width values");
    for (path, m) in [(h.lh.path(), &h.lh), (h.rh.path(), &h.rh)] {
        if let Some(&bad) = rows.iter().find(|&&r| r >= m.rows()) {
            return Err(DataError::RowOutOfRange {
                path: path.to_path_buf(),
                row: bad,
                rows: m.rows(),
            });
        }
    }
    // Stream one row of each hemisphere at a time (f32: borrowed from the map; others: converted
    // into one reusable buffer); drop the mapped pages every RELEASE_EVERY_BYTES.
    let mut lh_buf = vec![0f32; h.lh.cols()];
    let mut rh_buf = vec![0f32; h.rh.cols()];
    let total = rows.len();
    let mut since = 0;
    for (i, &r) in rows.iter().enumerate() {
        let lh: &[f32] = match h.lh.row_f32_borrowed(r)? {
            Some(row) => row,
            None => {
                h.lh.read_row_into(r, &mut lh_buf)?;
                &lh_buf
            }
        };
        let rh: &[f32] = match h.rh.row_f32_borrowed(r)? {
            Some(row) => row,
            None => {
                h.rh.read_row_into(r, &mut rh_buf)?;
                &rh_buf
            }
        };
        mask.apply(lh, rh, &mut out[i * width..(i + 1) * width]);
        since += h.lh.row_stride() + h.rh.row_stride();
        if since >= RELEASE_EVERY_BYTES {
            h.lh.release_all();
            h.rh.release_all();
            since = 0;
        }
        progress(i + 1, total);
    }
    h.lh.release_all();
    h.rh.release_all();
    Ok(())
}

/// `root/subject`, or `root` itself when it holds `training_split/`.
fn subject_dir(root: &Path, subject: &str) -> Result<PathBuf, DataError> {
    if !root.is_dir() {
        return Err(DataError::MissingDir {
            path: root.to_path_buf(),
            what: "dataset root".into(),
            fix: FIX_ROOT.into(),
        });
    }
    let dir = root.join(subject);
    if dir.is_dir() {
        return Ok(dir);
    }
    if root.join("training_split").is_dir() {
        return Ok(root.to_path_buf());
    }
    let mut found: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("training_split").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let what = if found.is_empty() {
        format!(
            "subject {subject}; no subject folder with training_split/ found in {}",
            root.display()
        )
    } else {
        format!("subject {subject}; subjects found: {} (pass --subject)", found.join(", "))
    };
    Err(DataError::MissingDir { path: dir, what, fix: FIX_ROOT.into() })
}

fn require_dir(dir: &Path, what: &str) -> Result<(), DataError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(DataError::MissingDir {
            path: dir.to_path_buf(),
            what: what.into(),
            fix: "restore it from the dataset release (the subject folder must follow the Algonauts 2023 layout)".into(),
        })
    }
}

/// Open `{lh,rh}_<split>_fmri.npy` in `dir` and check the row counts agree.
fn open_hemispheres(dir: &Path, split: &str) -> Result<Hemispheres, DataError> {
    require_dir(dir, &format!("{split} fMRI: lh_{split}_fmri.npy and rh_{split}_fmri.npy"))?;
    let lh = NpyMatrix::open(
        &dir.join(format!("lh_{split}_fmri.npy")),
        "left-hemisphere fMRI [stimuli, vertices]",
    )?;
    let rh = NpyMatrix::open(
        &dir.join(format!("rh_{split}_fmri.npy")),
        "right-hemisphere fMRI [stimuli, vertices]",
    )?;
    if lh.rows() != rh.rows() {
        return Err(DataError::HemisphereRows {
            lh: lh.path().to_path_buf(),
            lh_rows: lh.rows(),
            rh: rh.path().to_path_buf(),
            rh_rows: rh.rows(),
        });
    }
    Ok(Hemispheres { lh, rh })
}

/// The test split, if `test_split/` exists: images (required) and fMRI (optional, both or none).
fn open_test(dir: &Path, train: &Hemispheres) -> Result<Option<TestSplit>, DataError> {
    let test_dir = dir.join("test_split");
    if !test_dir.is_dir() {
        return Ok(None);
    }
    let img_dir = test_dir.join("test_images");
    let images = if img_dir.is_dir() { list_images(&img_dir, "test")?.0 } else { Vec::new() };
    let fmri_dir = test_dir.join("test_fmri");
    let (lh_p, rh_p) = (fmri_dir.join("lh_test_fmri.npy"), fmri_dir.join("rh_test_fmri.npy"));
    let fmri = match (lh_p.is_file(), rh_p.is_file()) {
        (false, false) => None,
        (true, false) | (false, true) => {
            let missing = if lh_p.is_file() { rh_p } else { lh_p };
            return Err(DataError::MissingFile {
                path: missing,
                what: "the other hemisphere of the test fMRI".into(),
                fix: "restore it, or remove both test fMRI files".into(),
            });
        }
        (true, true) => {
            let h = open_hemispheres(&fmri_dir, "test")?;
            for (m, t) in [(&h.lh, &train.lh), (&h.rh, &train.rh)] {
                if m.cols() != t.cols() {
                    return Err(DataError::Rank {
                        path: m.path().to_path_buf(),
                        found: vec![m.rows(), m.cols()],
                        expected: format!(
                            "[N, {}] (the vertex count of {})",
                            t.cols(),
                            t.path().display()
                        ),
                    });
                }
            }
            if !images.is_empty() && images.len() != h.lh.rows() {
                return Err(DataError::ImageCount {
                    dir: img_dir,
                    images: images.len(),
                    fmri: h.lh.path().to_path_buf(),
                    rows: h.lh.rows(),
                });
            }
            Some(h)
        }
    };
    Ok(Some(TestSplit { images, fmri }))
}

/// `(hemisphere, class)` of a mask file name in either naming (`_fsaverage_space` and
/// `all-vertices` files of the release are not ROI classes).
fn mask_class(file: &str) -> Option<(Naming, String)> {
    let rest = file.strip_prefix("lh.").or_else(|| file.strip_prefix("rh."))?;
    let stem = rest.strip_suffix("_space.npy")?;
    if stem.ends_with("_fsaverage") || stem.starts_with("all-vertices") {
        return None;
    }
    Some(match stem.strip_suffix("_challenge") {
        Some(class) => (Naming::Challenge, class.to_string()),
        None => (Naming::Course, stem.to_string()),
    })
}

fn find_mask(dir: &Path, hemi: &str, class: &str) -> Result<PathBuf, DataError> {
    let challenge = dir.join(format!("{hemi}.{class}_challenge_space.npy"));
    let course = dir.join(format!("{hemi}.{class}_space.npy"));
    if challenge.is_file() {
        Ok(challenge)
    } else if course.is_file() {
        Ok(course)
    } else {
        Err(DataError::MissingFile {
            path: challenge,
            what: format!("{hemi} labels of ROI class {class} (or {})", course.display()),
            fix: "copy the subject's roi_masks folder from the release".into(),
        })
    }
}

/// The images of `dir` in row order and the naming used. `prefix` is `train` or `test`.
fn list_images(dir: &Path, prefix: &str) -> Result<(Vec<PathBuf>, Naming), DataError> {
    let mut challenge = Vec::new(); // (1-based index, path)
    let mut course = Vec::new(); // (0-based index, path)
    let mut odd = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "list", e))? {
        let entry = entry.map_err(|e| DataError::io(dir, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((stem, ext)) = name.rsplit_once('.') else {
            continue;
        };
        if !["png", "jpg", "jpeg"].contains(&ext.to_ascii_lowercase().as_str()) {
            continue;
        }
        let path = entry.path();
        if let Some(i) = parse_challenge_name(stem, prefix) {
            challenge.push((i, path));
        } else if !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()) {
            match stem.parse::<usize>() {
                Ok(i) => course.push((i, path)),
                Err(_) => odd.push(name),
            }
        } else {
            odd.push(name);
        }
    }
    let bad = |reason: String| DataError::ImageNames { dir: dir.to_path_buf(), reason };
    if !odd.is_empty() {
        odd.sort();
        return Err(bad(format!(
            "{} image file(s) follow neither naming, e.g. {}",
            odd.len(),
            odd[0]
        )));
    }
    if !challenge.is_empty() && !course.is_empty() {
        return Err(bad(format!(
            "mixes {prefix}-NNNN_nsd-NNNNN names ({}) with plain numbered names ({})",
            challenge.len(),
            course.len()
        )));
    }
    let (mut items, naming, first) = if course.is_empty() {
        (challenge, Naming::Challenge, 1)
    } else {
        (course, Naming::Course, 0)
    };
    items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    for (k, (i, p)) in items.iter().enumerate() {
        if *i != k + first {
            let reason = if k > 0 && items[k - 1].0 == *i {
                format!("image number {i} appears twice ({})", p.display())
            } else {
                format!(
                    "image number {} is missing (numbering starts at {first} and must have no gaps)",
                    k + first
                )
            };
            return Err(bad(reason));
        }
    }
    Ok((items.into_iter().map(|(_, p)| p).collect(), naming))
}

/// `train-0001_nsd-00013` -> `Some(1)`.
fn parse_challenge_name(stem: &str, prefix: &str) -> Option<usize> {
    let rest = stem.strip_prefix(prefix)?.strip_prefix('-')?;
    let (num, nsd) = rest.split_once("_nsd-")?;
    if num.is_empty() || nsd.is_empty() || !nsd.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_challenge_name("train-0001_nsd-00013", "train"), Some(1));
        assert_eq!(parse_challenge_name("test-0159_nsd-72949", "test"), Some(159));
        assert_eq!(parse_challenge_name("train-0001", "train"), None);
        assert_eq!(
            mask_class("lh.prf-visualrois_challenge_space.npy"),
            Some((Naming::Challenge, "prf-visualrois".into()))
        );
        assert_eq!(
            mask_class("rh.floc-faces_space.npy"),
            Some((Naming::Course, "floc-faces".into()))
        );
        assert_eq!(mask_class("lh.floc-faces_fsaverage_space.npy"), None);
        assert_eq!(mask_class("lh.all-vertices_fsaverage_space.npy"), None);
        assert_eq!(mask_class("mapping_streams.npy"), None);
    }
}
