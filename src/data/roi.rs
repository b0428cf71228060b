//! ROI atlas (per-class label vectors + mappings), ROI sets, masking modes and the voxel mask
//! that turns a subject's lh/rh vertices into a model input row.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::DataError;
use super::roi_table::{ROI_CLASSES, ROI_SETS};

/// One ROI class of a subject (e.g. `prf-visualrois`): a label per vertex in each hemisphere
/// and the names of the labels.
#[derive(Debug, Clone)]
pub struct RoiClass {
    /// Class name, e.g. `floc-faces`.
    pub name: String,
    /// Label per left-hemisphere vertex (0 = outside every ROI of the class).
    pub lh: Vec<i32>,
    /// Label per right-hemisphere vertex.
    pub rh: Vec<i32>,
    /// `label -> ROI name` from `mapping_<class>.npy` (label 0, "Unknown", is never an ROI).
    pub mapping: BTreeMap<i32, String>,
    /// The files read, for messages: lh mask, rh mask, mapping.
    pub files: [PathBuf; 3],
}

impl RoiClass {
    /// `(label, name)` of the class's ROIs (label 0 excluded).
    pub fn rois(&self) -> impl Iterator<Item = (i32, &str)> {
        self.mapping.iter().filter(|(l, _)| **l != 0).map(|(l, n)| (*l, n.as_str()))
    }
}

/// All ROI classes of a subject, with its vertex counts.
#[derive(Debug, Clone)]
pub struct RoiAtlas {
    /// The `roi_masks` folder the atlas was read from.
    pub dir: PathBuf,
    /// Left-hemisphere vertex count.
    pub lh_vertices: usize,
    /// Right-hemisphere vertex count.
    pub rh_vertices: usize,
    /// The classes, in the challenge's order (unknown classes after, alphabetically).
    pub classes: Vec<RoiClass>,
}

/// Voxel counts of one ROI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoiCount {
    /// Class, e.g. `floc-faces`.
    pub class: String,
    /// Label within the class.
    pub label: i32,
    /// ROI name, e.g. `FFA-1`.
    pub name: String,
    /// Vertices in the left hemisphere.
    pub lh: usize,
    /// Vertices in the right hemisphere.
    pub rh: usize,
}

impl RoiAtlas {
    /// Every ROI name of the atlas, in class order.
    pub fn roi_names(&self) -> Vec<String> {
        self.classes.iter().flat_map(|c| c.rois().map(|(_, n)| n.to_string())).collect()
    }

    /// Per-ROI vertex counts in each hemisphere.
    pub fn roi_counts(&self) -> Vec<RoiCount> {
        let mut out = Vec::new();
        for class in &self.classes {
            let count = |v: &[i32], label: i32| v.iter().filter(|&&l| l == label).count();
            for (label, name) in class.rois() {
                out.push(RoiCount {
                    class: class.name.clone(),
                    label,
                    name: name.to_string(),
                    lh: count(&class.lh, label),
                    rh: count(&class.rh, label),
                });
            }
        }
        out
    }

    /// Labels used in a mask but not named by its mapping: `(mask file, label, mapping file)`.
    pub fn unnamed_labels(&self) -> Vec<DataError> {
        let mut out = Vec::new();
        for class in &self.classes {
            for (labels, file) in [(&class.lh, &class.files[0]), (&class.rh, &class.files[1])] {
                let mut seen: Vec<i32> = labels.clone();
                seen.sort_unstable();
                seen.dedup();
                for l in seen {
                    if l != 0 && !class.mapping.contains_key(&l) {
                        out.push(DataError::UnknownLabel {
                            path: file.clone(),
                            label: l,
                            mapping: class.files[2].clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Find `name` (exact, else case-insensitive): `(class index, label)` of every match.
    fn lookup(&self, name: &str) -> Vec<(usize, i32)> {
        let find = |exact: bool| -> Vec<(usize, i32)> {
            self.classes
                .iter()
                .enumerate()
                .flat_map(|(ci, c)| {
                    c.rois()
                        .filter(
                            move |(_, n)| {
                                if exact { *n == name } else { n.eq_ignore_ascii_case(name) }
                            },
                        )
                        .map(move |(l, _)| (ci, l))
                })
                .collect()
        };
        let exact = find(true);
        if exact.is_empty() { find(false) } else { exact }
    }
}

/// Which voxels feed the model: one of the paper's sets, all voxels, or a custom ROI list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoiSet {
    /// V1v V1d V2v V2d V3v V3d hV4 FFA-1 FFA-2 PPA.
    Set1,
    /// The floc body, face and place ROIs.
    Set2,
    /// The seven streams.
    Set3,
    /// Every vertex of both hemispheres.
    None,
    /// Any list of ROI names (union).
    Custom(Vec<String>),
}

impl RoiSet {
    /// Parse `set1|set2|set3|none|<comma-separated ROI names>` (set names case-insensitive).
    pub fn parse(s: &str) -> Result<Self, DataError> {
        let t = s.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "set1" => RoiSet::Set1,
            "set2" => RoiSet::Set2,
            "set3" => RoiSet::Set3,
            "none" | "all" => RoiSet::None,
            _ => {
                let names: Vec<String> =
                    t.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
                if names.is_empty() {
                    return Err(DataError::BadRoiSet(s.to_string()));
                }
                RoiSet::Custom(names)
            }
        })
    }

    /// The ROI names of the set, or `None` for all voxels.
    pub fn roi_names(&self) -> Option<Vec<String>> {
        let table = |key: &str| {
            ROI_SETS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.iter().map(|s| s.to_string()).collect())
        };
        match self {
            RoiSet::Set1 => table("set1"),
            RoiSet::Set2 => table("set2"),
            RoiSet::Set3 => table("set3"),
            RoiSet::None => None,
            RoiSet::Custom(v) => Some(v.clone()),
        }
    }
}

impl FromStr for RoiSet {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RoiSet::parse(s)
    }
}

impl fmt::Display for RoiSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoiSet::Set1 => f.write_str("set1"),
            RoiSet::Set2 => f.write_str("set2"),
            RoiSet::Set3 => f.write_str("set3"),
            RoiSet::None => f.write_str("none"),
            RoiSet::Custom(v) => f.write_str(&v.join(",")),
        }
    }
}

/// How voxels outside the ROI set are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskMode {
    /// The paper's: keep the full width (lh ++ rh), zero every voxel outside the set.
    #[default]
    Zero,
    /// Keep only the voxels inside the set (smaller input layer, faster).
    Select,
}

impl FromStr for MaskMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zero" => Ok(MaskMode::Zero),
            "select" => Ok(MaskMode::Select),
            other => Err(format!(
                "unknown mask mode '{other}': use zero (keep width, zero outside) or select"
            )),
        }
    }
}

impl fmt::Display for MaskMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MaskMode::Zero => "zero",
            MaskMode::Select => "select",
        })
    }
}

/// The selected voxels of a subject for one ROI set and mode; maps an lh row and an rh row to
/// one model input row.
#[derive(Debug, Clone, PartialEq)]
pub struct VoxelMask {
    set: RoiSet,
    mode: MaskMode,
    lh_vertices: usize,
    rh_vertices: usize,
    /// Selected vertex indices per hemisphere, ascending; `None` = all of them.
    lh_sel: Option<Vec<usize>>,
    rh_sel: Option<Vec<usize>>,
}

impl VoxelMask {
    /// All voxels of a subject with these vertex counts (the `none` set).
    pub fn all(lh_vertices: usize, rh_vertices: usize, mode: MaskMode) -> Self {
        VoxelMask { set: RoiSet::None, mode, lh_vertices, rh_vertices, lh_sel: None, rh_sel: None }
    }

    /// The union of the set's ROIs, per hemisphere across all classes, then lh ++ rh.
    /// Unknown ROI names list the atlas's valid names; a set selecting nothing is an error.
    pub fn build(atlas: &RoiAtlas, set: &RoiSet, mode: MaskMode) -> Result<Self, DataError> {
        let Some(names) = set.roi_names() else {
            return Ok(Self::all(atlas.lh_vertices, atlas.rh_vertices, mode));
        };
        let mut lh = vec![false; atlas.lh_vertices];
        let mut rh = vec![false; atlas.rh_vertices];
        for name in &names {
            let hits = atlas.lookup(name);
            if hits.is_empty() {
                let builtin: Vec<&str> =
                    ROI_CLASSES.iter().flat_map(|(_, r)| r.iter().map(|(_, n)| *n)).collect();
                let valid = atlas.roi_names();
                let valid = if valid.is_empty() { builtin.join(", ") } else { valid.join(", ") };
                return Err(DataError::UnknownRoi {
                    name: name.clone(),
                    source_desc: format!("the mapping files of {}", atlas.dir.display()),
                    valid: format!("{valid} (or the sets set1, set2, set3, none)"),
                });
            }
            for (ci, label) in hits {
                let class = &atlas.classes[ci];
                for (sel, labels) in [(&mut lh, &class.lh), (&mut rh, &class.rh)] {
                    for (s, &l) in sel.iter_mut().zip(labels) {
                        *s |= l == label;
                    }
                }
            }
        }
        let idx = |v: &[bool]| {
            v.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect::<Vec<_>>()
        };
        let (lh_sel, rh_sel) = (idx(&lh), idx(&rh));
        if lh_sel.is_empty() && rh_sel.is_empty() {
            return Err(DataError::EmptyRoiUnion { set: set.to_string(), dir: atlas.dir.clone() });
        }
        Ok(VoxelMask {
            set: set.clone(),
            mode,
            lh_vertices: atlas.lh_vertices,
            rh_vertices: atlas.rh_vertices,
            lh_sel: Some(lh_sel),
            rh_sel: Some(rh_sel),
        })
    }

    /// The ROI set this mask was built from.
    pub fn set(&self) -> &RoiSet {
        &self.set
    }

    /// The masking mode.
    pub fn mode(&self) -> MaskMode {
        self.mode
    }

    /// Left-hemisphere vertex count of the subject.
    pub fn lh_vertices(&self) -> usize {
        self.lh_vertices
    }

    /// Right-hemisphere vertex count of the subject.
    pub fn rh_vertices(&self) -> usize {
        self.rh_vertices
    }

    /// Selected voxels per hemisphere `(lh, rh)`.
    pub fn selected(&self) -> (usize, usize) {
        (
            self.lh_sel.as_ref().map_or(self.lh_vertices, Vec::len),
            self.rh_sel.as_ref().map_or(self.rh_vertices, Vec::len),
        )
    }

    /// Width of a model input row: `lh + rh` vertices (`zero`) or the selected count (`select`).
    pub fn input_width(&self) -> usize {
        match self.mode {
            MaskMode::Zero => self.lh_vertices + self.rh_vertices,
            MaskMode::Select => {
                let (l, r) = self.selected();
                l + r
            }
        }
    }

    /// Write the masked `lh ++ rh` row into `out` (length [`Self::input_width`]).
    pub fn apply(&self, lh: &[f32], rh: &[f32], out: &mut [f32]) {
        assert_eq!(lh.len(), self.lh_vertices, "lh row length");
        assert_eq!(rh.len(), self.rh_vertices, "rh row length");
        assert_eq!(out.len(), self.input_width(), "output row length");
        match self.mode {
            MaskMode::Zero => {
                let (ol, or) = out.split_at_mut(self.lh_vertices);
                for (o, src, sel) in [(ol, lh, &self.lh_sel), (or, rh, &self.rh_sel)] {
                    match sel {
                        None => o.copy_from_slice(src),
                        Some(idx) => {
                            o.fill(0.0);
                            for &i in idx {
                                o[i] = src[i];
                            }
                        }
                    }
                }
            }
            MaskMode::Select => {
                let (nl, _) = self.selected();
                let (ol, or) = out.split_at_mut(nl);
                for (o, src, sel) in [(ol, lh, &self.lh_sel), (or, rh, &self.rh_sel)] {
                    match sel {
                        None => o.copy_from_slice(src),
                        Some(idx) => {
                            for (o, &i) in o.iter_mut().zip(idx) {
                                *o = src[i];
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atlas() -> RoiAtlas {
        let map = |pairs: &[(i32, &str)]| pairs.iter().map(|(l, n)| (*l, n.to_string())).collect();
        RoiAtlas {
            dir: PathBuf::from("masks"),
            lh_vertices: 4,
            rh_vertices: 3,
            classes: vec![
                RoiClass {
                    name: "prf-visualrois".into(),
                    lh: vec![1, 0, 2, 0],
                    rh: vec![0, 1, 0],
                    mapping: map(&[(0, "Unknown"), (1, "V1v"), (2, "V1d")]),
                    files: Default::default(),
                },
                RoiClass {
                    name: "floc-faces".into(),
                    lh: vec![0, 0, 0, 2],
                    rh: vec![0, 0, 0],
                    mapping: map(&[(1, "OFA"), (2, "FFA-1")]),
                    files: Default::default(),
                },
            ],
        }
    }

    #[test]
    fn union_across_classes_zero_and_select() {
        let a = atlas();
        let set = RoiSet::parse("V1v, ffa-1").unwrap();
        let zero = VoxelMask::build(&a, &set, MaskMode::Zero).unwrap();
        assert_eq!(zero.input_width(), 7);
        let mut out = vec![9.0; 7];
        zero.apply(&[1., 2., 3., 4.], &[5., 6., 7.], &mut out);
        assert_eq!(out, vec![1., 0., 0., 4., 0., 6., 0.]);
        let sel = VoxelMask::build(&a, &set, MaskMode::Select).unwrap();
        assert_eq!(sel.input_width(), 3);
        let mut out = vec![9.0; 3];
        sel.apply(&[1., 2., 3., 4.], &[5., 6., 7.], &mut out);
        assert_eq!(out, vec![1., 4., 6.]);
    }

    #[test]
    fn none_keeps_everything() {
        let m = VoxelMask::build(&atlas(), &RoiSet::None, MaskMode::Select).unwrap();
        assert_eq!(m.input_width(), 7);
    }

    #[test]
    fn unknown_and_empty() {
        let a = atlas();
        let err = VoxelMask::build(&a, &RoiSet::parse("V9").unwrap(), MaskMode::Zero)
            .unwrap_err()
            .to_string();
        assert!(err.contains("V9") && err.contains("V1v") && err.contains("FFA-1"), "{err}");
        let err = VoxelMask::build(&a, &RoiSet::parse("OFA").unwrap(), MaskMode::Zero)
            .unwrap_err()
            .to_string();
        assert!(err.contains("selects no voxel"), "{err}");
    }

    #[test]
    fn counts() {
        let c = atlas().roi_counts();
        assert_eq!(
            c[0],
            RoiCount { class: "prf-visualrois".into(), label: 1, name: "V1v".into(), lh: 1, rh: 1 }
        );
        assert_eq!(c.len(), 4);
    }
}
