//! `brainscope data info` on the numpy fixture: a clean dataset (exit 0, text and JSON) and a
//! broken copy whose several problems are all reported (exit 1).

use std::fs;
use std::path::Path;

use assert_cmd::Command;

fn fixture(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy").join(p)
}

#[test]
fn info_on_a_clean_dataset() {
    let out = Command::cargo_bin("brainscope")
        .unwrap()
        .args(["data", "info"])
        .arg(fixture("challenge"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "N = 6",
        "lh 10 + rh 12 = 22",
        "6 found",
        "2 images, fMRI 2 rows",
        "FFA-1",
        "set3  lh 7 + rh 10",
        "the masks lack PPA",
        "problems  none",
    ] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
    let out = Command::cargo_bin("brainscope")
        .unwrap()
        .args(["data", "info", "--json"])
        .arg(fixture("course/subj01"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n_train"], 5);
    assert_eq!(v["naming"], "course");
    assert_eq!(v["fmri_dtype"], "float64");
    assert_eq!(v["test_images"], serde_json::Value::Null);
    assert_eq!(v["rois"].as_array().unwrap().len(), 19);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
}

#[test]
fn info_reports_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = fixture("course/subj01");
    for sub in ["training_split/training_fmri", "training_split/training_images", "roi_masks"] {
        fs::create_dir_all(root.join("subj01").join(sub)).unwrap();
        for e in fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), root.join("subj01").join(sub).join(e.file_name())).unwrap();
        }
    }
    fs::remove_file(root.join("subj01/training_split/training_images/4.png")).unwrap();
    fs::write(root.join("subj01/roi_masks/mapping_streams.npy"), b"\x93NUMPY garbage").unwrap();
    let out = Command::cargo_bin("brainscope")
        .unwrap()
        .args(["data", "info", "--json"])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<String> =
        v["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("training_images") && problems[0].contains("4 images"),
        "{problems:?}"
    );
    assert!(problems[1].contains("mapping_streams.npy"), "{problems:?}");
    assert_eq!(v["n_train"], 5, "what could be read is still reported");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
}
