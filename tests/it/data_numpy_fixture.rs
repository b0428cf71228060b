//! Files written by real numpy (tests/fixtures/make_numpy_fixtures.py) read back through the
//! data layer: both namings, f32/f64/f16 arrays, int masks, and `np.save(dict)` mapping pickles
//! from numpy 2.x (challenge/) and numpy 1.x (course/).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use brainscope::data::algonauts::{Naming, Subject};
use brainscope::data::mapping::{read_mapping, write_mapping};
use brainscope::data::npy::{Dtype, NpyMatrix, read_int_vector};
use brainscope::data::roi::{MaskMode, RoiSet, VoxelMask};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy").join(p)
}

/// The formula the fixture script used (see its docstring).
fn lh_value(r: usize, c: usize, offset: f32) -> f32 {
    (r * 100 + c) as f32 + offset
}
fn rh_value(r: usize, c: usize, offset: f32) -> f32 {
    -((r * 100 + c) as f32 + offset) - 0.5
}

#[test]
fn challenge_naming_f32_round_trip() {
    let s = Subject::open(&fixture("challenge"), "subj01").unwrap();
    assert_eq!((s.n_train(), s.lh_vertices(), s.rh_vertices()), (6, 10, 12));
    assert_eq!(s.naming(), Naming::Challenge);
    assert_eq!(s.train_fmri().lh.dtype(), Dtype::F32);
    let names: Vec<String> = s
        .train_images()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names[0], "train-0001_nsd-00013.png");
    assert_eq!(names[5], "train-0006_nsd-00198.png");
    // Rows in arbitrary order, all voxels, zero mode = lh ++ rh.
    let mask = VoxelMask::all(10, 12, MaskMode::Zero);
    let rows = [5, 0, 3];
    let x = s.load_fmri(&mask, &rows).unwrap(); // [3, 22]
    assert_eq!(x.dim(), (3, 22));
    for (i, &r) in rows.iter().enumerate() {
        for c in 0..10 {
            assert_eq!(x[[i, c]], lh_value(r, c, 0.0));
        }
        for c in 0..12 {
            assert_eq!(x[[i, 10 + c]], rh_value(r, c, 0.0));
        }
    }
    // Test split: images and fMRI.
    let test = s.test().expect("fixture has a test split");
    assert_eq!(test.images.len(), 2);
    let mut calls = 0;
    let t = s
        .load_test_fmri(&mask, &[1], &mut |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
    assert_eq!(calls, 1);
    assert_eq!(test.fmri.as_ref().unwrap().lh.dtype(), Dtype::F16);
    assert_eq!(t[[0, 3]], lh_value(1, 3, 500.0));
    assert_eq!(t[[0, 10]], rh_value(1, 0, 500.0));
}

#[test]
fn course_naming_f64_converted() {
    let s = Subject::open(&fixture("course"), "subj01").unwrap();
    assert_eq!((s.n_train(), s.lh_vertices(), s.rh_vertices()), (5, 10, 12));
    assert_eq!(s.naming(), Naming::Course);
    assert_eq!(s.train_fmri().rh.dtype(), Dtype::F64);
    assert!(s.test().is_none());
    assert!(s.train_images()[4].ends_with("4.png"));
    let x = s.load_fmri(&VoxelMask::all(10, 12, MaskMode::Zero), &[4]).unwrap();
    assert_eq!(x[[0, 9]], lh_value(4, 9, 0.0));
    assert_eq!(x[[0, 21]], rh_value(4, 11, 0.0));
    let mut buf = vec![0.0; 2 * 22];
    s.fmri_rows_into(&VoxelMask::all(10, 12, MaskMode::Zero), &[1, 2], &mut buf).unwrap();
    assert_eq!(buf[22], lh_value(2, 0, 0.0));
}

#[test]
fn atlas_from_numpy_pickles_both_versions() {
    for sub in ["challenge", "course"] {
        let s = Subject::open(&fixture(sub), "subj01").unwrap();
        let atlas = s.roi_atlas().unwrap();
        let classes: Vec<&str> = atlas.classes.iter().map(|c| c.name.as_str()).collect();
        // Challenge order; the fsaverage-space file is not a class.
        assert_eq!(classes, ["prf-visualrois", "floc-faces", "streams"], "{sub}");
        assert_eq!(atlas.classes[0].mapping[&0], "Unknown");
        assert_eq!(atlas.classes[0].mapping[&7], "hV4");
        let counts = atlas.roi_counts();
        let get = |n: &str| counts.iter().find(|c| c.name == n).map(|c| (c.lh, c.rh)).unwrap();
        assert_eq!(get("V1v"), (2, 1));
        assert_eq!(get("V2d"), (0, 1));
        assert_eq!(get("FFA-1"), (1, 2));
        assert_eq!(get("early"), (4, 5));
        assert_eq!(get("V3v"), (0, 0));
        assert!(!atlas.roi_names().contains(&"Unknown".to_string()));
        assert!(atlas.unnamed_labels().is_empty());
    }
}

#[test]
fn roi_sets_on_real_masks() {
    let s = Subject::open(&fixture("challenge"), "subj01").unwrap();
    let atlas = s.roi_atlas().unwrap();
    // V1v: lh 0,1; rh 0.  FFA-1: lh 4; rh 6,7.
    let set: RoiSet = "V1v,FFA-1".parse().unwrap();
    let sel = VoxelMask::build(&atlas, &set, MaskMode::Select).unwrap();
    assert_eq!(sel.input_width(), 6);
    let x = s.load_fmri(&sel, &[2]).unwrap();
    let want: Vec<f32> = vec![
        lh_value(2, 0, 0.),
        lh_value(2, 1, 0.),
        lh_value(2, 4, 0.),
        rh_value(2, 0, 0.),
        rh_value(2, 6, 0.),
        rh_value(2, 7, 0.),
    ];
    assert_eq!(x.row(0).to_vec(), want);
    let zero = VoxelMask::build(&atlas, &set, MaskMode::Zero).unwrap();
    let z = s.load_fmri(&zero, &[2]).unwrap();
    assert_eq!(z.dim(), (1, 22));
    assert_eq!(z[[0, 1]], lh_value(2, 1, 0.));
    assert_eq!(z[[0, 2]], 0.0);
    assert_eq!(z[[0, 10 + 7]], rh_value(2, 7, 0.));
    // set3 = the streams: lh 0-6, rh 0-7 and 10, 11.
    let s3 = VoxelMask::build(&atlas, &RoiSet::Set3, MaskMode::Select).unwrap();
    assert_eq!(s3.selected(), (7, 10));
    // set1 needs PPA (floc-places), which these masks lack: named in the error.
    let err = VoxelMask::build(&atlas, &RoiSet::Set1, MaskMode::Zero).unwrap_err().to_string();
    assert!(err.contains("PPA") && err.contains("V1v"), "{err}");
}

#[test]
fn float_dtypes_convert_identically() {
    let read = |name: &str| {
        let m = NpyMatrix::open(&fixture("arrays").join(name), "test").unwrap();
        let mut rows = Vec::new();
        m.for_rows(&[0, 1], |_, r| rows.extend_from_slice(r)).unwrap();
        (m.dtype(), rows)
    };
    let want = vec![0.25, -1.5, 3.0, 1024.0, -0.125, 7.75];
    assert_eq!(read("m_f32.npy"), (Dtype::F32, want.clone()));
    assert_eq!(read("m_f64.npy"), (Dtype::F64, want.clone()));
    assert_eq!(read("m_f16.npy"), (Dtype::F16, want));
}

#[test]
fn bad_arrays_name_the_file_and_the_problem() {
    let err = |name: &str| {
        NpyMatrix::open(&fixture("arrays").join(name), "test").unwrap_err().to_string()
    };
    let e = err("m_i64.npy");
    assert!(e.contains("m_i64.npy") && e.contains("<i8") && e.contains("float32"), "{e}");
    let e = err("m_3d.npy");
    assert!(e.contains("m_3d.npy") && e.contains("[2, 3, 1]") && e.contains("2-D"), "{e}");
    let e = err("m_fortran.npy");
    assert!(
        e.contains("m_fortran.npy") && e.contains("Fortran") && e.contains("ascontiguousarray"),
        "{e}"
    );
    let e = err("m_bigendian.npy");
    assert!(e.contains("m_bigendian.npy") && e.contains(">f4"), "{e}");
}

#[test]
fn masks_of_other_dtypes() {
    for name in ["mask_f32.npy", "mask_u8.npy"] {
        assert_eq!(
            read_int_vector(&fixture("arrays").join(name), "mask").unwrap(),
            vec![0, 1, 2, 0]
        );
    }
    let e = read_int_vector(&fixture("arrays").join("m_f32.npy"), "mask").unwrap_err().to_string();
    assert!(e.contains("m_f32.npy") && e.contains("1-D"), "{e}");
}

#[test]
fn mapping_variants() {
    let m = read_mapping(&fixture("arrays/mapping_numpy_scalars.npy")).unwrap();
    assert_eq!(m, BTreeMap::from([(1, "V1v".to_string()), (2, "V1d".to_string())]));
    for (name, says) in [
        ("mapping_str_keys.npy", "key a str"),
        ("mapping_list.npy", "shape (2)"),
        ("mapping_two_dicts.npy", "shape (2)"),
        ("m_f32.npy", "numeric array"),
    ] {
        let e = read_mapping(&fixture("arrays").join(name)).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(says) && e.contains("np.save"), "{name}: {e}");
    }
}

#[test]
fn written_mapping_matches_numpy_bytes_semantics() {
    // What write_mapping writes is read back by our reader exactly like numpy's own files.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mapping_floc-faces.npy");
    let want = read_mapping(&fixture("course/subj01/roi_masks/mapping_floc-faces.npy")).unwrap();
    write_mapping(&p, &want).unwrap();
    assert_eq!(read_mapping(&p).unwrap(), want);
    // Same header as numpy's, and the same pickle (protocol 3) numpy 1.26 writes.
    let ours = std::fs::read(&p).unwrap();
    let numpy1 = std::fs::read(fixture("course/subj01/roi_masks/mapping_floc-faces.npy")).unwrap();
    assert_eq!(ours, numpy1);
}
