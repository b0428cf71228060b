//! The Algonauts 2023 ROI classes and their labels (label 0 = no ROI), and the paper's ROI sets.
//!
//! Readers take labels from the `mapping_<class>.npy` files; this table is what the demo writes
//! and what error messages and docs list.

/// ROI classes in the order the challenge lists them, each with `(label, name)` pairs.
pub const ROI_CLASSES: &[(&str, &[(i32, &str)])] = &[
    (
        "prf-visualrois",
        &[(1, "V1v"), (2, "V1d"), (3, "V2v"), (4, "V2d"), (5, "V3v"), (6, "V3d"), (7, "hV4")],
    ),
    ("floc-bodies", &[(1, "EBA"), (2, "FBA-1"), (3, "FBA-2"), (4, "mTL-bodies")]),
    ("floc-faces", &[(1, "OFA"), (2, "FFA-1"), (3, "FFA-2"), (4, "mTL-faces"), (5, "aTL-faces")]),
    ("floc-places", &[(1, "OPA"), (2, "PPA"), (3, "RSC")]),
    (
        "floc-words",
        &[(1, "OWFA"), (2, "VWFA-1"), (3, "VWFA-2"), (4, "mfs-words"), (5, "mTL-words")],
    ),
    (
        "streams",
        &[
            (1, "early"),
            (2, "midventral"),
            (3, "midlateral"),
            (4, "midparietal"),
            (5, "ventral"),
            (6, "lateral"),
            (7, "parietal"),
        ],
    ),
];

/// The paper's ROI sets by name (`none` = all voxels is handled by the caller).
pub const ROI_SETS: &[(&str, &[&str])] = &[
    ("set1", &["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4", "FFA-1", "FFA-2", "PPA"]),
    (
        "set2",
        &[
            "EBA",
            "FBA-1",
            "FBA-2",
            "mTL-bodies",
            "OFA",
            "FFA-1",
            "FFA-2",
            "mTL-faces",
            "aTL-faces",
            "OPA",
            "PPA",
            "RSC",
        ],
    ),
    (
        "set3",
        &["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"],
    ),
];
