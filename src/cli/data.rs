//! `brainscope data info DIR [--subject subj01] [--json]`: what a dataset folder holds and
//! what is wrong with it. Problems are collected (not stopped at); the exit code is 1 when any
//! was found.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Serialize;

use crate::data::algonauts::{Naming, Subject};
use crate::data::roi::{MaskMode, RoiCount, RoiSet, VoxelMask};

/// Arguments of `brainscope data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do with the dataset.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// Subcommands of `brainscope data`.
#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Print N, vertex counts, per-ROI voxel counts, images, test split and problems found.
    Info(InfoArgs),
}

/// Arguments of `brainscope data info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Dataset root (holding `subj01/`), or a subject folder itself.
    pub dir: PathBuf,
    /// Subject folder name under DIR.
    #[arg(long, default_value = "subj01")]
    pub subject: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The report `data info` prints.
#[derive(Debug, Default, Serialize)]
pub struct DataInfo {
    /// The subject folder.
    pub subject_dir: Option<PathBuf>,
    /// Image naming detected (`challenge` or `course`).
    pub naming: Option<Naming>,
    /// Training stimuli (fMRI rows).
    pub n_train: Option<usize>,
    /// Left-hemisphere vertices.
    pub lh_vertices: Option<usize>,
    /// Right-hemisphere vertices.
    pub rh_vertices: Option<usize>,
    /// fMRI dtype as stored (`float32`, `float64`, `float16`).
    pub fmri_dtype: Option<String>,
    /// Training images found.
    pub train_images: usize,
    /// Distinct training image sizes `[width, height, count]`.
    pub image_sizes: Vec<[u32; 3]>,
    /// Test split: images found (None = no test_split folder).
    pub test_images: Option<usize>,
    /// Whether the test split has fMRI (None = no test split).
    pub test_fmri_rows: Option<usize>,
    /// ROI classes read.
    pub roi_classes: Vec<String>,
    /// Per-ROI voxel counts.
    pub rois: Vec<RoiCount>,
    /// The paper's sets: name, selected lh/rh voxels, or why unavailable.
    pub roi_sets: Vec<SetInfo>,
    /// Every problem found, as a message naming the file and the fix.
    pub problems: Vec<String>,
}

/// One ROI set in the report.
#[derive(Debug, Serialize)]
pub struct SetInfo {
    /// `set1`, `set2`, `set3`.
    pub name: String,
    /// Selected voxels `(lh, rh)`, or `None` when unavailable.
    pub voxels: Option<(usize, usize)>,
    /// Why the set cannot be built on this dataset.
    pub unavailable: Option<String>,
}

/// Run `brainscope data`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Info(a) => info(a),
    }
}

fn info(args: InfoArgs) -> anyhow::Result<()> {
    let report = inspect(&args.dir, &args.subject);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if !report.problems.is_empty() {
        bail!("{} problem(s) found in {}", report.problems.len(), args.dir.display());
    }
    Ok(())
}

/// Inspect a dataset and collect everything `data info` reports.
pub fn inspect(dir: &Path, subject: &str) -> DataInfo {
    let mut r = DataInfo::default();
    let (s, problems) = match Subject::inspect(dir, subject) {
        Ok(v) => v,
        Err(e) => {
            r.problems.push(crate::errors::chain(&e));
            return r;
        }
    };
    r.problems.extend(problems.iter().map(|e| crate::errors::chain(e)));
    r.subject_dir = Some(s.dir().to_path_buf());
    r.naming = Some(s.naming());
    r.n_train = Some(s.n_train());
    r.lh_vertices = Some(s.lh_vertices());
    r.rh_vertices = Some(s.rh_vertices());
    r.fmri_dtype = Some(s.train_fmri().lh.dtype().numpy_name());
    r.train_images = s.train_images().len();
    let mut sizes: Vec<[u32; 3]> = Vec::new();
    let mut unreadable = Vec::new();
    for p in s.train_images() {
        match image::image_dimensions(p) {
            Ok((w, h)) => match sizes.iter_mut().find(|e| e[0] == w && e[1] == h) {
                Some(e) => e[2] += 1,
                None => sizes.push([w, h, 1]),
            },
            Err(e) => unreadable.push(format!("{}: {e}", p.display())),
        }
    }
    if !unreadable.is_empty() {
        r.problems.push(format!(
            "{} unreadable image(s), e.g. {}; fix: restore them from the release",
            unreadable.len(),
            unreadable[0]
        ));
    }
    r.image_sizes = sizes;
    if let Some(t) = s.test() {
        r.test_images = Some(t.images.len());
        r.test_fmri_rows = t.fmri.as_ref().map(|h| h.lh.rows());
    }
    match s.roi_atlas() {
        Ok(atlas) => {
            r.roi_classes = atlas.classes.iter().map(|c| c.name.clone()).collect();
            r.rois = atlas.roi_counts();
            r.problems.extend(atlas.unnamed_labels().iter().map(|e| e.to_string()));
            let names = atlas.roi_names();
            for set in [RoiSet::Set1, RoiSet::Set2, RoiSet::Set3] {
                let missing: Vec<String> = set
                    .roi_names()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|n| !names.iter().any(|a| a.eq_ignore_ascii_case(n)))
                    .collect();
                let (voxels, unavailable) = if !missing.is_empty() {
                    (None, Some(format!("the masks lack {}", missing.join(", "))))
                } else {
                    match VoxelMask::build(&atlas, &set, MaskMode::Select) {
                        Ok(m) => (Some(m.selected()), None),
                        Err(e) => (None, Some(crate::errors::chain(&e))),
                    }
                };
                r.roi_sets.push(SetInfo { name: set.to_string(), voxels, unavailable });
            }
        }
        Err(e) => r.problems.push(crate::errors::chain(&e)),
    }
    r
}

/// The human-readable report.
pub fn render(r: &DataInfo) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if let (Some(dir), Some(n), Some(lh), Some(rh)) =
        (&r.subject_dir, r.n_train, r.lh_vertices, r.rh_vertices)
    {
        let naming = match r.naming {
            Some(Naming::Course) => "course subset (0.png, *_space.npy)",
            _ => "challenge release (train-0001_nsd-XXXXX.png, *_challenge_space.npy)",
        };
        let _ = writeln!(o, "subject   {}", dir.display());
        let _ = writeln!(o, "naming    {naming}");
        let _ = writeln!(
            o,
            "training  N = {n} stimuli, fMRI {}",
            r.fmri_dtype.as_deref().unwrap_or("?")
        );
        let _ = writeln!(o, "vertices  lh {lh} + rh {rh} = {}", lh + rh);
        let sizes: Vec<String> =
            r.image_sizes.iter().map(|[w, h, c]| format!("{w}x{h} ({c})")).collect();
        let _ = writeln!(
            o,
            "images    {} found; sizes: {}",
            r.train_images,
            if sizes.is_empty() { "-".into() } else { sizes.join(", ") }
        );
        let test = match (r.test_images, r.test_fmri_rows) {
            (None, _) => "absent".to_string(),
            (Some(i), None) => format!("{i} images, no fMRI"),
            (Some(i), Some(n)) => format!("{i} images, fMRI {n} rows"),
        };
        let _ = writeln!(o, "test      {test}");
    }
    if !r.rois.is_empty() {
        let _ = writeln!(o, "\nROI voxels ({} classes)", r.roi_classes.len());
        let _ = writeln!(o, "  {:<16} {:<15} {:>7} {:>7}", "class", "ROI", "lh", "rh");
        for c in &r.rois {
            let _ = writeln!(o, "  {:<16} {:<15} {:>7} {:>7}", c.class, c.name, c.lh, c.rh);
        }
        let _ = writeln!(o, "\nROI sets");
        for s in &r.roi_sets {
            match (s.voxels, &s.unavailable) {
                (Some((l, rr)), _) => {
                    let _ = writeln!(o, "  {:<5} lh {l} + rh {rr} = {} voxels", s.name, l + rr);
                }
                (None, Some(why)) => {
                    let _ = writeln!(o, "  {:<5} unavailable: {why}", s.name);
                }
                _ => {}
            }
        }
    }
    if r.problems.is_empty() {
        let _ = writeln!(o, "\nproblems  none");
    } else {
        let _ = writeln!(o, "\nproblems  {}", r.problems.len());
        for p in &r.problems {
            let _ = writeln!(o, "  - {p}");
        }
    }
    o
}
