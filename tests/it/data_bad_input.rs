//! Every bad input of issue 2 gets a clear error naming the file (or folder) and the fix.
//! Each case copies the good numpy fixture into a temporary folder and breaks one thing.

use std::fs;
use std::path::{Path, PathBuf};

use brainscope::data::DataError;
use brainscope::data::algonauts::Subject;
use brainscope::data::mapping::{read_mapping, write_mapping};
use brainscope::data::npy;
use brainscope::data::roi::{MaskMode, RoiSet, VoxelMask};

/// A writable copy of the challenge-naming fixture: (tempdir guard, dataset root, subject dir).
fn good_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy/challenge");
    crate::common::copy_dir(&fixture, tmp.path());
    let root = tmp.path().to_path_buf();
    let subj = root.join("subj01");
    (tmp, root, subj)
}

fn open_err(root: &Path) -> String {
    Subject::open(root, "subj01").unwrap_err().to_string()
}

fn assert_mentions(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "message lacks '{n}': {msg}");
    }
}

const LH: &str = "training_split/training_fmri/lh_training_fmri.npy";
const RH: &str = "training_split/training_fmri/rh_training_fmri.npy";

#[test]
fn missing_root_and_subject() {
    let (_t, root, _) = good_copy();
    let e = open_err(&root.join("nope"));
    assert_mentions(&e, &["nope", "not found", "brainscope demo"]);
    let e = Subject::open(&root, "subj07").unwrap_err().to_string();
    assert_mentions(&e, &["subj07", "subjects found: subj01", "--subject"]);
}

#[test]
fn missing_folders_and_files() {
    let (_t, root, subj) = good_copy();
    fs::remove_file(subj.join(RH)).unwrap();
    assert_mentions(&open_err(&root), &["rh_training_fmri.npy", "not found", "fix:"]);

    let (_t, root, subj) = good_copy();
    fs::remove_dir_all(subj.join("training_split/training_images")).unwrap();
    assert_mentions(&open_err(&root), &["training_images", "not found"]);

    let (_t, root, subj) = good_copy();
    fs::remove_dir_all(subj.join("roi_masks")).unwrap();
    let s = Subject::open(&root, "subj01").unwrap(); // the fMRI alone is usable
    assert_mentions(&s.roi_atlas().unwrap_err().to_string(), &["roi_masks", "not found"]);

    let (_t, root, subj) = good_copy();
    fs::remove_file(subj.join("roi_masks/rh.floc-faces_challenge_space.npy")).unwrap();
    let e = Subject::open(&root, "subj01").unwrap().roi_atlas().unwrap_err().to_string();
    assert_mentions(&e, &["rh.floc-faces_challenge_space.npy", "floc-faces", "roi_masks"]);

    let (_t, root, subj) = good_copy();
    fs::remove_file(subj.join("roi_masks/mapping_streams.npy")).unwrap();
    let e = Subject::open(&root, "subj01").unwrap().roi_atlas().unwrap_err().to_string();
    assert_mentions(&e, &["mapping_streams.npy", "not found"]);

    let (_t, root, subj) = good_copy();
    fs::remove_file(subj.join("test_split/test_fmri/lh_test_fmri.npy")).unwrap();
    assert_mentions(&open_err(&root), &["lh_test_fmri.npy", "other hemisphere"]);
}

#[test]
fn wrong_dtype_and_rank() {
    let (_t, root, subj) = good_copy();
    npy::write_i32(&subj.join(LH), &[6, 10], &[1; 60]).unwrap();
    assert_mentions(&open_err(&root), &["lh_training_fmri.npy", "<i4", "float32", "astype"]);

    let (_t, root, subj) = good_copy();
    npy::write_f32(&subj.join(RH), &[72], &[0.0; 72]).unwrap();
    assert_mentions(&open_err(&root), &["rh_training_fmri.npy", "[72]", "2-D"]);

    let (_t, root, subj) = good_copy();
    npy::write_f32(&subj.join("roi_masks/lh.streams_challenge_space.npy"), &[10], &[0.5; 10])
        .unwrap();
    let e = Subject::open(&root, "subj01").unwrap().roi_atlas().unwrap_err().to_string();
    assert_mentions(&e, &["lh.streams_challenge_space.npy", "non-integer"]);

    let (_t, root, subj) = good_copy();
    fs::write(subj.join(LH), b"not an npy file at all").unwrap();
    assert_mentions(&open_err(&root), &["lh_training_fmri.npy", "magic", "numpy.save"]);

    let (_t, root, subj) = good_copy();
    let bytes = fs::read(subj.join(LH)).unwrap();
    fs::write(subj.join(LH), &bytes[..bytes.len() - 4]).unwrap();
    assert_mentions(&open_err(&root), &["lh_training_fmri.npy", "truncated"]);
}

#[test]
fn hemisphere_row_mismatch() {
    let (_t, root, subj) = good_copy();
    npy::write_f32(&subj.join(RH), &[5, 12], &[0.0; 60]).unwrap();
    assert_mentions(
        &open_err(&root),
        &["lh_training_fmri.npy", "rh_training_fmri.npy", "6 rows", "5"],
    );
}

#[test]
fn image_count_and_names() {
    let (_t, root, subj) = good_copy();
    let imgs = subj.join("training_split/training_images");
    fs::remove_file(imgs.join("train-0006_nsd-00198.png")).unwrap();
    let e = open_err(&root);
    assert_mentions(&e, &["training_images", "5 images", "lh_training_fmri.npy", "6 rows"]);
    // `inspect` reports it and still opens the subject.
    let (s, problems) = Subject::inspect(&root, "subj01").unwrap();
    assert_eq!(s.n_train(), 6);
    assert!(matches!(problems[0], DataError::ImageCount { images: 5, rows: 6, .. }));

    let (_t, root, subj) = good_copy();
    let imgs = subj.join("training_split/training_images");
    fs::remove_file(imgs.join("train-0003_nsd-00087.png")).unwrap();
    assert_mentions(&open_err(&root), &["training_images", "image number 3 is missing"]);

    let (_t, root, subj) = good_copy();
    let imgs = subj.join("training_split/training_images");
    fs::copy(imgs.join("train-0001_nsd-00013.png"), imgs.join("0.png")).unwrap();
    assert_mentions(&open_err(&root), &["training_images", "mixes"]);

    let (_t, root, subj) = good_copy();
    let imgs = subj.join("training_split/training_images");
    fs::copy(imgs.join("train-0001_nsd-00013.png"), imgs.join("cat.png")).unwrap();
    assert_mentions(&open_err(&root), &["training_images", "cat.png", "neither naming"]);
}

#[test]
fn mask_length_mismatch() {
    let (_t, root, subj) = good_copy();
    npy::write_i32(&subj.join("roi_masks/rh.prf-visualrois_challenge_space.npy"), &[11], &[0; 11])
        .unwrap();
    let e = Subject::open(&root, "subj01").unwrap().roi_atlas().unwrap_err().to_string();
    assert_mentions(
        &e,
        &[
            "rh.prf-visualrois_challenge_space.npy",
            "11 entries",
            "rh_training_fmri.npy",
            "12 vertices",
        ],
    );
}

#[test]
fn unreadable_and_non_dict_mapping() {
    let (_t, root, subj) = good_copy();
    let m = subj.join("roi_masks/mapping_floc-faces.npy");
    let bytes = fs::read(&m).unwrap();
    fs::write(&m, &bytes[..bytes.len() - 30]).unwrap();
    let e = Subject::open(&root, "subj01").unwrap().roi_atlas().unwrap_err().to_string();
    assert_mentions(&e, &["mapping_floc-faces.npy", "pickle", "np.save"]);

    let (_t, root, subj) = good_copy();
    let m = subj.join("roi_masks/mapping_floc-faces.npy");
    let list =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy/arrays/mapping_list.npy");
    fs::copy(list, &m).unwrap();
    let e = Subject::open(&root, "subj01").unwrap().roi_atlas().unwrap_err().to_string();
    assert_mentions(&e, &["mapping_floc-faces.npy", "expected a dict", "np.save"]);

    let (_t, _root, subj) = good_copy();
    let m = subj.join("roi_masks/mapping_streams.npy");
    npy::write_f32(&m, &[2], &[1.0, 2.0]).unwrap();
    assert_mentions(
        &read_mapping(&m).unwrap_err().to_string(),
        &["mapping_streams.npy", "numeric array"],
    );
}

#[test]
fn unknown_roi_and_empty_union() {
    let (_t, root, _) = good_copy();
    let atlas = Subject::open(&root, "subj01").unwrap().roi_atlas().unwrap();
    let e = VoxelMask::build(&atlas, &"V1v,XYZ".parse().unwrap(), MaskMode::Zero)
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["'XYZ'", "roi_masks", "V1v", "FFA-1", "early", "set1"]);
    // V3v (label 5) and hV4 (label 7, lh only) — V3v has no vertex at all.
    let e = VoxelMask::build(&atlas, &"V3v,V3d".parse().unwrap(), MaskMode::Select)
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["V3v,V3d", "selects no voxel", "roi_masks"]);
    assert!(RoiSet::parse(" , ").is_err());
}

#[test]
fn mask_from_another_subject_and_rows_out_of_range() {
    let (_t, root, _) = good_copy();
    let s = Subject::open(&root, "subj01").unwrap();
    let e = s.load_fmri(&VoxelMask::all(11, 12, MaskMode::Zero), &[0]).unwrap_err().to_string();
    assert_mentions(&e, &["11+12", "10+12", "roi_atlas"]);
    let e = s.load_fmri(&VoxelMask::all(10, 12, MaskMode::Zero), &[0, 6]).unwrap_err().to_string();
    assert_mentions(&e, &["row 6", "lh_training_fmri.npy", "6 rows"]);
    let course = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy/course");
    let c = Subject::open(&course, "subj01").unwrap();
    let e = c
        .load_test_fmri(&VoxelMask::all(10, 12, MaskMode::Zero), &[0], &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["lh_test_fmri.npy", "training split"]);
}

#[test]
fn failed_writes_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/dir/mapping_x.npy");
    let e = write_mapping(&missing, &Default::default()).unwrap_err().to_string();
    assert_mentions(&e, &["mapping_x.npy", "write"]);
    let p = tmp.path().join("a.npy");
    assert!(npy::write_f32(&p, &[2, 2], &[1.0; 3]).is_err());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing written on failure");
}
