//! `brainscope bench data`: peak resident memory while loading a real-size (subj01) dataset.
//!
//! Writes (or reuses) a random float32 dataset in the Algonauts layout, opens it through
//! [`Subject`] and loads every training row with mask `none` through [`Subject::load_fmri`],
//! then prints the process's peak RSS (`VmHWM` in `/proc/self/status`) beside the size of the
//! loaded array. The target (issue 2) is a peak of at most ~1.1x the array.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::algonauts::Subject;
use crate::data::mapping::write_mapping;
use crate::data::npy::{self, Dtype, NpyMatrix, RowWriter};
use crate::data::roi::{MaskMode, VoxelMask};

/// Arguments of `brainscope bench data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Training stimuli (rows); subj01 has 9841.
    #[arg(long, default_value_t = 9841)]
    pub n: usize,
    /// Left-hemisphere vertices; subj01 has 19004.
    #[arg(long, default_value_t = 19004)]
    pub lh: usize,
    /// Right-hemisphere vertices; subj01 has 20544.
    #[arg(long, default_value_t = 20544)]
    pub rh: usize,
    /// Dataset root to write (or reuse when its shapes match); default: a folder in the
    /// system temp dir, kept for reuse.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Delete the dataset after the run.
    #[arg(long)]
    pub clean: bool,
    /// Stored fMRI dtype: f32 (the release's; read zero-copy) or f64/f16 (converted per row).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: Dtype,
}

fn parse_dtype(s: &str) -> Result<Dtype, String> {
    match s {
        "f32" | "float32" => Ok(Dtype::F32),
        "f64" | "float64" => Ok(Dtype::F64),
        "f16" | "float16" => Ok(Dtype::F16),
        other => Err(format!("unknown dtype '{other}': use f32, f64 or f16")),
    }
}

/// Peak resident set size of this process in bytes (`VmHWM`), Linux only.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kb("VmHWM:").map(|kb| kb * 1024)
}

/// Current resident set size of this process in bytes (`VmRSS`), Linux only.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kb("VmRSS:").map(|kb| kb * 1024)
}

fn proc_status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} rows ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// Run the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    let root = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "brainscope-bench-data-{}x{}x{}-{}",
            args.n,
            args.lh,
            args.rh,
            args.dtype.numpy_name()
        ))
    });
    let subj = root.join("subj01");
    if reusable(&subj, &args) {
        println!("reusing {}", subj.display());
    } else {
        println!(
            "writing a random {}x({}+{}) {} dataset to {}",
            args.n,
            args.lh,
            args.rh,
            args.dtype.numpy_name(),
            subj.display()
        );
        write_dataset(&subj, &args)?;
    }

    let array_bytes = (args.n * (args.lh + args.rh) * 4) as u64;
    let before = peak_rss_bytes().unwrap_or(0);
    let t0 = Instant::now();
    let subject = Subject::open(&root, "subj01")?;
    let mask = VoxelMask::all(subject.lh_vertices(), subject.rh_vertices(), MaskMode::Zero);
    let rows: Vec<usize> = (0..subject.n_train()).collect();
    let pb = bar(rows.len() as u64, "loading");
    let x = subject.load_fmri_with(&mask, &rows, &mut |done, _| {
        if done % 64 == 0 {
            pb.set_position(done as u64)
        }
    })?;
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let peak = peak_rss_bytes().context("VmHWM is unavailable (not Linux?)")?;
    let rss = rss_bytes().unwrap_or(0);
    // Touch the result so the load cannot be optimised away.
    let checksum: f64 = x.row(x.nrows() - 1).iter().map(|v| *v as f64).sum();

    println!(
        "array      [{}, {}] f32 in memory (stored as {}) = {} bytes ({:.3} GiB, {:.2} GB)",
        x.nrows(),
        x.ncols(),
        args.dtype.numpy_name(),
        array_bytes,
        gib(array_bytes),
        array_bytes as f64 / 1e9
    );
    println!("load       {secs:.2} s ({:.2} GB/s)", array_bytes as f64 / 1e9 / secs);
    println!(
        "peak RSS   before load {:.3} GiB, after load {:.3} GiB (current {:.3} GiB)",
        gib(before),
        gib(peak),
        gib(rss)
    );
    println!(
        "ratio      peak RSS / array = {:.3} (target <= 1.1)",
        peak as f64 / array_bytes as f64
    );
    println!("checksum   {checksum:.4}");
    if let (Some(anon), Some(file)) = (proc_status_kb("RssAnon:"), proc_status_kb("RssFile:")) {
        println!(
            "resident   anonymous {:.3} GiB, file-backed {:.3} GiB",
            gib(anon * 1024),
            gib(file * 1024)
        );
    }
    drop(x);
    if args.clean {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        println!("removed {}", root.display());
    } else {
        println!("dataset kept for reuse: {} (pass --clean to delete it)", root.display());
    }
    Ok(())
}

/// Whether `subj` already holds a dataset of the requested shape.
fn reusable(subj: &Path, args: &Args) -> bool {
    let fmri = subj.join("training_split/training_fmri");
    let ok = |p: &Path, cols: usize| {
        NpyMatrix::open(p, "bench")
            .map(|m| m.rows() == args.n && m.cols() == cols && m.dtype() == args.dtype)
            .unwrap_or(false)
    };
    ok(&fmri.join("lh_training_fmri.npy"), args.lh)
        && ok(&fmri.join("rh_training_fmri.npy"), args.rh)
        && subj.join("roi_masks/mapping_prf-visualrois.npy").is_file()
        && Subject::open(subj, "subj01").is_ok()
}

/// xorshift64*: fast, deterministic noise for the benchmark's fMRI values.
struct XorShift(u64);

impl XorShift {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0 // [-1, 1)
    }
}

fn write_dataset(subj: &Path, args: &Args) -> anyhow::Result<()> {
    let fmri = subj.join("training_split/training_fmri");
    let imgs = subj.join("training_split/training_images");
    let masks = subj.join("roi_masks");
    for d in [&fmri, &imgs, &masks] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (name, cols) in [("lh_training_fmri.npy", args.lh), ("rh_training_fmri.npy", args.rh)] {
        let pb = bar(args.n as u64, "writing");
        let mut w = RowWriter::create(&fmri.join(name), args.dtype, args.n, cols)?;
        let mut row = vec![0f32; cols];
        for r in 0..args.n {
            row.iter_mut().for_each(|v| *v = rng.next_f32());
            w.write_row(&row)?;
            if r % 64 == 0 {
                pb.set_position(r as u64);
            }
        }
        w.finish()?;
        pb.finish_and_clear();
    }
    // One tiny PNG, copied under every image name (the benchmark measures the fMRI load).
    let png = {
        let mut buf = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(1, 1).write_to(&mut buf, image::ImageFormat::Png)?;
        buf.into_inner()
    };
    for i in 0..args.n {
        let p = imgs.join(format!("train-{:04}_nsd-{:05}.png", i + 1, i));
        std::fs::write(&p, &png).with_context(|| format!("writing {}", p.display()))?;
    }
    // One ROI class so the folder is a complete subject (the load itself uses mask `none`).
    let labels: BTreeMap<i32, String> =
        [(0, "Unknown"), (1, "V1v"), (2, "V1d")].iter().map(|(k, v)| (*k, v.to_string())).collect();
    write_mapping(&masks.join("mapping_prf-visualrois.npy"), &labels)?;
    for (h, n) in [("lh", args.lh), ("rh", args.rh)] {
        let v: Vec<i32> = (0..n).map(|i| (i % 3) as i32).collect();
        npy::write_i32(&masks.join(format!("{h}.prf-visualrois_challenge_space.npy")), &[n], &v)?;
    }
    Ok(())
}
