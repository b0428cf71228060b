//! The demo dataset: read back by the real Algonauts reader (shapes, labels, values), byte-exact
//! determinism per seed, the simulated brain's tuning, and the folder-safety rules.

use assert_cmd::Command;
use brainscope::data::algonauts::Subject;
use brainscope::data::roi::{MaskMode, VoxelMask};
use brainscope::data::roi_table::ROI_CLASSES;
use brainscope::demo::{
    DemoConfig, DemoError, LABELS_FILE, MARKER_FILE, Plan, ensure_demo, generate_with_progress,
    prepare,
};
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn small(seed: u64) -> DemoConfig {
    DemoConfig {
        seed,
        train_images: 60,
        test_images: 10,
        image_size: 24,
        lh_vertices: 300,
        rh_vertices: 330,
        ..DemoConfig::default()
    }
}

fn make(config: &DemoConfig, out: &Path) {
    generate_with_progress(config, out, &ProgressBar::hidden()).unwrap();
}

/// Every file under `root`, relative path -> bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(p.strip_prefix(root).unwrap().to_path_buf(), fs::read(&p).unwrap());
            }
        }
    }
    files
}

#[test]
fn demo_round_trips_through_the_algonauts_reader() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let config = small(5);
    let summary = generate_with_progress(&config, &out, &ProgressBar::hidden()).unwrap();
    assert_eq!(summary.path, out);

    let subject = Subject::open(&out, "subj01").unwrap();
    assert_eq!((subject.n_train(), subject.lh_vertices(), subject.rh_vertices()), (60, 300, 330));
    assert_eq!(subject.train_images().len(), 60);
    let first = subject.train_images()[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(first, "train-0001_nsd-00001.png");
    let img = image::open(&subject.train_images()[59]).unwrap();
    assert_eq!((img.width(), img.height()), (24, 24));
    let test = subject.test().expect("test split");
    assert_eq!(test.images.len(), 10);
    assert_eq!(test.images[0].file_name().unwrap().to_string_lossy(), "test-0001_nsd-00061.png");

    // ROI atlas: every class, names from the pickled mappings, counts as in the summary.
    let atlas = subject.roi_atlas().unwrap();
    assert_eq!(atlas.classes.len(), ROI_CLASSES.len());
    for ((class, rois), read) in ROI_CLASSES.iter().zip(&atlas.classes) {
        assert_eq!(read.name, *class);
        let names: Vec<(i32, &str)> = read.rois().collect();
        assert_eq!(names, rois.to_vec(), "mapping of {class}");
    }
    let counts = atlas.roi_counts();
    for r in &summary.rois {
        let c =
            counts.iter().find(|c| c.class == r.class && c.name == r.name).expect("ROI in atlas");
        assert_eq!((c.lh, c.rh), (r.lh, r.rh), "{} {}", r.class, r.name);
        assert!(r.lh > 0 && r.rh > 0, "{} {} empty", r.class, r.name);
    }

    // Values: every vertex is z-scored over training + test rows together.
    let mask = VoxelMask::all(300, 330, MaskMode::Zero);
    let train = subject.load_fmri(&mask, &(0..60).collect::<Vec<_>>()).unwrap();
    let test_fmri =
        subject.load_test_fmri(&mask, &(0..10).collect::<Vec<_>>(), &mut |_, _| {}).unwrap();
    assert_eq!(train.dim(), (60, 630));
    assert_eq!(test_fmri.dim(), (10, 630));
    for v in 0..630 {
        let col: Vec<f64> =
            train.column(v).iter().chain(test_fmri.column(v).iter()).map(|&x| x as f64).collect();
        let mean = col.iter().sum::<f64>() / 70.0;
        let sd = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 70.0).sqrt();
        assert!(mean.abs() < 1e-4 && (sd - 1.0).abs() < 1e-3, "vertex {v}: mean {mean}, sd {sd}");
    }

    // The labels file lists every image with its category, in row order.
    let labels = fs::read_to_string(out.join(LABELS_FILE)).unwrap();
    let lines: Vec<&str> = labels.lines().skip(1).collect();
    assert_eq!(lines.len(), 70);
    assert!(lines[0].starts_with("train,1,train-0001_nsd-00001.png,"));
    assert!(lines[60].starts_with("test,1,test-0001_nsd-00061.png,"));
    assert_eq!(summary.train_categories.values().sum::<usize>(), 60);
}

#[test]
fn face_and_place_rois_prefer_their_category() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let config = DemoConfig { train_images: 200, test_images: 0, ..small(9) };
    make(&config, &out);
    let subject = Subject::open(&out, "subj01").unwrap();
    assert!(subject.test().is_none(), "--test-images 0 writes no test split");
    let atlas = subject.roi_atlas().unwrap();
    let mask = VoxelMask::all(300, 330, MaskMode::Zero);
    let fmri = subject.load_fmri(&mask, &(0..200).collect::<Vec<_>>()).unwrap();
    let categories: Vec<String> = fs::read_to_string(out.join(LABELS_FILE))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().to_string())
        .collect();
    // Mean response of an ROI's lh vertices to images of one category minus all others.
    let contrast = |class: &str, label: i32, category: &str| {
        let rc = atlas.classes.iter().find(|c| c.name == class).unwrap();
        let vertices: Vec<usize> = (0..300).filter(|&v| rc.lh[v] == label).collect();
        let (mut inside, mut n_in, mut outside, mut n_out) = (0f64, 0f64, 0f64, 0f64);
        for (i, cat) in categories.iter().enumerate() {
            let r: f64 =
                vertices.iter().map(|&v| fmri[[i, v]] as f64).sum::<f64>() / vertices.len() as f64;
            if cat == category {
                (inside, n_in) = (inside + r, n_in + 1.0);
            } else {
                (outside, n_out) = (outside + r, n_out + 1.0);
            }
        }
        inside / n_in - outside / n_out
    };
    let ffa = contrast("floc-faces", 2, "faces");
    let ppa = contrast("floc-places", 2, "places");
    let v1_faces = contrast("prf-visualrois", 1, "faces");
    assert!(ffa > 0.5, "FFA-1 face contrast {ffa}");
    assert!(ppa > 0.5, "PPA place contrast {ppa}");
    assert!(v1_faces.abs() < ffa, "V1v is as face-selective as FFA-1: {v1_faces} vs {ffa}");
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    make(&small(3), &a);
    make(&small(3), &b);
    make(&small(4), &c);
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(bytes == &tb[path], "{} differs between two runs with seed 3", path.display());
    }
    for f in [
        "subj01/training_split/training_fmri/lh_training_fmri.npy",
        "subj01/training_split/training_fmri/rh_training_fmri.npy",
        "subj01/training_split/training_images/train-0001_nsd-00001.png",
        "subj01/roi_masks/lh.prf-visualrois_challenge_space.npy",
    ] {
        let f = Path::new(f);
        // Masks have the same layout for any seed; their content is equal by design.
        if f.to_string_lossy().contains("roi_masks") {
            assert_eq!(ta[f], tc[f]);
        } else {
            assert_ne!(ta[f], tc[f], "{} equal for seeds 3 and 4", f.display());
        }
    }
}

#[test]
fn bad_settings_and_foreign_folders_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    for (bad, flag) in [
        (DemoConfig { image_size: 8, ..small(1) }, "--size"),
        (DemoConfig { train_images: 0, ..small(1) }, "--images"),
        (DemoConfig { lh_vertices: 10, ..small(1) }, "--lh"),
        (DemoConfig { snr: 0.0, ..small(1) }, "--snr"),
    ] {
        let err = generate_with_progress(&bad, &out, &ProgressBar::hidden()).unwrap_err();
        assert!(
            matches!(err, DemoError::InvalidSetting { .. }) && err.to_string().contains(flag),
            "{err}"
        );
        assert!(!out.exists(), "{flag}: something was written");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no staging folder left behind");

    // A folder with other content is never touched, not even by ensure_demo or --force.
    let foreign = dir.path().join("mine");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    for err in [
        generate_with_progress(&small(1), &foreign, &ProgressBar::hidden()).unwrap_err(),
        prepare(&small(1), &foreign, true).unwrap_err(),
        ensure_demo(&foreign).unwrap_err(),
    ] {
        assert!(matches!(err, DemoError::NotADemo { .. }), "{err}");
        assert!(err.to_string().contains("not a brainscope demo"), "{err}");
    }
    assert_eq!(fs::read_to_string(foreign.join("notes.txt")).unwrap(), "keep me");
    assert_eq!(fs::read_dir(&foreign).unwrap().count(), 1);
}

#[test]
fn existing_demo_is_kept_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    assert_eq!(prepare(&small(1), &out, false).unwrap(), Plan::Generate);
    make(&small(1), &out);
    assert!(matches!(prepare(&small(1), &out, false).unwrap(), Plan::UpToDate(_)));
    let err = prepare(&small(2), &out, false).unwrap_err();
    assert!(
        matches!(err, DemoError::DifferentSettings { .. }) && err.to_string().contains("--force"),
        "{err}"
    );
    assert_eq!(prepare(&small(2), &out, true).unwrap(), Plan::Regenerate);
    // ensure_demo keeps whatever demo is there.
    assert_eq!(ensure_demo(&out).unwrap().config, small(1));
    // Regenerating replaces it as a whole; nothing else is left in the parent.
    make(&small(2), &out);
    assert_eq!(ensure_demo(&out).unwrap().config, small(2));
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(names, ["demo"]);
    assert!(out.join(MARKER_FILE).is_file());
}

#[test]
fn cli_generates_prints_summary_and_refuses_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let args = [
        "demo",
        "--images",
        "20",
        "--test-images",
        "4",
        "--size",
        "16",
        "--lh",
        "120",
        "--rh",
        "130",
    ];
    let run = |extra: &[&str]| {
        Command::cargo_bin("brainscope")
            .unwrap()
            .args(args)
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("20 training + 4 test") && text.contains("FFA-1"), "{text}");
    let again = run(&["--json"]);
    assert!(again.status.success());
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["config"]["lh_vertices"], 120);
    let other = run(&["--seed", "7"]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("--force"));
    assert!(run(&["--seed", "7", "--force"]).status.success());
}
