//! `brainscope submit IDS... [--slurm] [--partition P] [--gres gpu:1] [--time 24:00:00]
//! [--cpus N] [--mem M] [--array] [--hold] [--bin PATH] [--device D] [--dir experiments]`: train
//! experiments on a Slurm cluster. Writes the batch script (the experiment's `slurm-job.sh`, or
//! one `experiments/.slurm/array-FIRST-LAST.sh` for `--array`), submits it with `sbatch`, and
//! records the job in each experiment's `slurm-job.json`; `status` and the console show the
//! experiment as queued until its trainer starts.

use crate::cluster::slurm::{JobOptions, Slurm};
use crate::cluster::{SubmitRequest, submit};
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `brainscope submit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Submit to Slurm (the only scheduler; accepted for explicitness).
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Generic resources, e.g. `gpu:1`.
    #[arg(long)]
    pub gres: Option<String>,
    /// Time limit, e.g. `24:00:00` (the trainer gets SIGTERM 120 s before it and checkpoints).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task.
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Memory per node, e.g. `32G`.
    #[arg(long)]
    pub mem: Option<String>,
    /// One array job for all ids (`SLURM_ARRAY_TASK_ID` picks the experiment) instead of one
    /// job each.
    #[arg(long)]
    pub array: bool,
    /// Submit held: the jobs wait (queued) until `scontrol release JOBID`.
    #[arg(long)]
    pub hold: bool,
    /// The brainscope binary the compute nodes run (default: this one); must be reachable at
    /// the same path there.
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Device for the trainers (default: each experiment's `train.device`).
    #[arg(long)]
    pub device: Option<String>,
    /// Experiments folder (on the filesystem the compute nodes share).
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
}

/// Run `brainscope submit`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let slurm = Slurm::detect()?;
    let experiments_dir = std::path::absolute(&args.dir)
        .with_context(|| format!("cannot resolve {}", args.dir.display()))?;
    let exe = match &args.bin {
        Some(p) => {
            std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))?
        }
        None => std::env::current_exe().context("cannot find the brainscope executable")?,
    };
    let request = SubmitRequest {
        experiments_dir,
        ids: args.ids.clone(),
        exe,
        array: args.array,
        options: JobOptions {
            partition: args.partition,
            gres: args.gres,
            time: args.time,
            cpus: args.cpus,
            mem: args.mem,
            device: args.device,
            hold: args.hold,
        },
    };
    let submitted = submit(&slurm, &request)?;
    for s in &submitted {
        println!(
            "experiment {} submitted as slurm job {} ({})",
            s.id,
            s.job_id,
            s.script.display()
        );
    }
    println!("  watch: brainscope status   stop: brainscope stop ID");
    Ok(())
}
