//! Slurm through its command-line tools: `sbatch --parsable` to submit, `squeue` (then `sacct`,
//! then `scontrol show job`) to learn a job's state, `scancel` to stop it; and the batch script
//! that runs this same binary as `train ID --foreground` on the compute node.
//!
//! Hand-written over `std::process::Command`: the command-line tools are Slurm's stable
//! interface on every cluster, while the Rust bindings to libslurm need its headers and the
//! exact library version at build time.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A Slurm job's state, reduced to what the registry distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for resources (also requeued or held jobs).
    Pending,
    /// Allocated and running (also completing, suspended, signalling, staging out).
    Running,
    /// Ended with exit code 0.
    Completed,
    /// Ended with a non-zero exit code or a launch failure.
    Failed,
    /// Cancelled by a user or an administrator (`scancel`).
    Cancelled,
    /// Its node failed (also BOOT_FAIL).
    NodeFail,
    /// Hit its time limit (also DEADLINE).
    Timeout,
    /// Preempted by a higher-priority job and not requeued.
    Preempted,
    /// Killed by the out-of-memory handler.
    OutOfMemory,
}

impl JobState {
    /// From Slurm's state name (`PENDING`, `CANCELLED by 0`, `CA`, ...); `None` when unknown.
    pub fn parse(slurm: &str) -> Option<Self> {
        let word = slurm.split_whitespace().next().unwrap_or("").trim_end_matches('+');
        Some(match word.to_ascii_uppercase().as_str() {
            "PENDING" | "PD" | "REQUEUED" | "RQ" | "REQUEUE_HOLD" | "RH" | "REQUEUE_FED" | "RF"
            | "CONFIGURING" | "CF" | "RESV_DEL_HOLD" | "RD" => JobState::Pending,
            "RUNNING" | "R" | "COMPLETING" | "CG" | "SUSPENDED" | "S" | "STOPPED" | "ST"
            | "SIGNALING" | "SI" | "STAGE_OUT" | "SO" | "RESIZING" | "RS" => JobState::Running,
            "COMPLETED" | "CD" => JobState::Completed,
            "FAILED" | "F" | "SPECIAL_EXIT" | "SE" => JobState::Failed,
            "CANCELLED" | "CA" | "REVOKED" | "RV" => JobState::Cancelled,
            "NODE_FAIL" | "NF" | "BOOT_FAIL" | "BF" => JobState::NodeFail,
            "TIMEOUT" | "TO" | "DEADLINE" | "DL" => JobState::Timeout,
            "PREEMPTED" | "PR" => JobState::Preempted,
            "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
            _ => return None,
        })
    }

    /// snake_case name (`node_fail`, ...).
    pub fn name(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::NodeFail => "node_fail",
            JobState::Timeout => "timeout",
            JobState::Preempted => "preempted",
            JobState::OutOfMemory => "out_of_memory",
        }
    }

    /// Pending or running: the job has not ended.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Pending | JobState::Running)
    }
}

/// What Slurm says about one job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobInfo {
    /// The id as asked (`1234` or `1234_5`).
    pub job_id: String,
    /// Reduced state.
    pub state: JobState,
    /// Slurm's own state name (`PENDING`, `CANCELLED`, ...).
    pub slurm_state: String,
    /// Slurm's reason (`Priority`, `Resources`, `NonZeroExitCode`, ...; empty for `None`).
    pub reason: String,
    /// Node list (empty while pending).
    pub nodes: String,
    /// `exit:signal` as sacct/scontrol print it (empty when unknown).
    pub exit_code: String,
}

/// Talking to Slurm failed.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// A Slurm tool is not on PATH.
    #[error(
        "`{tool}` is not on PATH: install the Slurm client tools (sbatch, squeue, scancel; Debian/Ubuntu: apt-get install slurm-client) and the cluster's slurm.conf, or train on this machine with `brainscope train ID`"
    )]
    NotInstalled { tool: &'static str },
    /// A Slurm tool could not be started.
    #[error("cannot run {tool}")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    /// A Slurm tool refused (its own message).
    #[error("{tool} failed: {message}")]
    Refused { tool: String, message: String },
    /// Output that is not what the tool prints.
    #[error("unexpected output from {tool}: {output:?}")]
    Parse { tool: String, output: String },
}

/// The Slurm client tools found on PATH.
#[derive(Debug, Clone)]
pub struct Slurm {
    /// Folder holding `sbatch` (the other tools are taken from there too).
    pub bin_dir: PathBuf,
}

/// Find `name` in the folders of `PATH` (an executable file).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

impl Slurm {
    /// The Slurm tools on PATH, or [`SlurmError::NotInstalled`] when `sbatch` is not there.
    pub fn detect() -> Result<Self, SlurmError> {
        let sbatch = find_on_path("sbatch").ok_or(SlurmError::NotInstalled { tool: "sbatch" })?;
        let bin_dir = sbatch.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Self { bin_dir })
    }

    /// Whether `sbatch` is on PATH (the console offers Slurm only then).
    pub fn available() -> bool {
        find_on_path("sbatch").is_some()
    }

    fn run<I, S>(&self, tool: &str, args: I) -> Result<Output, SlurmError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let beside = self.bin_dir.join(tool);
        let exe = if beside.is_file() { beside } else { PathBuf::from(tool) };
        Command::new(&exe)
            .args(args)
            .env("SLURM_TIME_FORMAT", "standard")
            .output()
            .map_err(|source| SlurmError::Spawn { tool: tool.to_string(), source })
    }

    fn refused(tool: &str, out: &Output) -> SlurmError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr.trim();
        let message = if message.is_empty() {
            format!("exit status {}", out.status)
        } else {
            message.to_string()
        };
        SlurmError::Refused { tool: tool.to_string(), message }
    }

    /// `sbatch --test-only SCRIPT`: Slurm checks the script's options (partition, time, gres)
    /// without submitting.
    pub fn test_only(&self, script: &Path) -> Result<(), SlurmError> {
        let out = self.run("sbatch", [OsStr::new("--test-only"), script.as_os_str()])?;
        if !out.status.success() {
            return Err(Self::refused("sbatch", &out));
        }
        Ok(())
    }

    /// `sbatch --parsable SCRIPT` -> the job id.
    pub fn submit(&self, script: &Path) -> Result<String, SlurmError> {
        let out = self.run("sbatch", [OsStr::new("--parsable"), script.as_os_str()])?;
        if !out.status.success() {
            return Err(Self::refused("sbatch", &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        parse_sbatch_parsable(&text)
            .ok_or_else(|| SlurmError::Parse { tool: "sbatch".into(), output: text.into_owned() })
    }

    /// The state of each job in `job_ids` that Slurm still knows: `squeue` (pending, running
    /// and recently ended jobs), then `sacct` for the rest (clusters with accounting), then
    /// `scontrol show job`. Ids Slurm does not know are absent from the map.
    pub fn query(&self, job_ids: &[String]) -> Result<BTreeMap<String, JobInfo>, SlurmError> {
        let mut found = BTreeMap::new();
        if job_ids.is_empty() {
            return Ok(found);
        }
        let list = job_ids.join(",");
        let out = self.run(
            "squeue",
            [
                "--noheader",
                "--array",
                "--states=all",
                "--format=%i|%T|%r|%N",
                "--jobs",
                list.as_str(),
            ],
        )?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            for info in parse_squeue(&String::from_utf8_lossy(&out.stdout)) {
                found.insert(info.job_id.clone(), info);
            }
        } else if !stderr.contains("Invalid job id") {
            // slurmctld down or not configured: the caller shows the state as unknown.
            return Err(Self::refused("squeue", &out));
        }
        let missing: Vec<&String> = job_ids.iter().filter(|id| !found.contains_key(*id)).collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        // Without an accounting database sacct fails ("accounting storage is disabled"): then
        // only scontrol can still know the job.
        if let Ok(out) = self.run(
            "sacct",
            [
                "--noheader",
                "--parsable2",
                "--allocations",
                "--format=JobID,State,ExitCode,NodeList",
            ]
            .into_iter()
            .chain(["--jobs", list.as_str()]),
        ) && out.status.success()
        {
            for info in parse_sacct(&String::from_utf8_lossy(&out.stdout)) {
                if missing.contains(&&info.job_id) {
                    found.insert(info.job_id.clone(), info);
                }
            }
        }
        for id in missing {
            if found.contains_key(id) {
                continue;
            }
            if let Ok(out) = self.run("scontrol", ["--oneliner", "show", "job", id.as_str()])
                && out.status.success()
                && let Some(mut info) = parse_scontrol(&String::from_utf8_lossy(&out.stdout))
            {
                info.job_id = id.clone();
                found.insert(id.clone(), info);
            }
        }
        Ok(found)
    }

    /// `scancel [--full --signal=SIG] JOB`: with a signal, send it to the batch shell (the
    /// trainer, which the batch script `exec`s) and every step; without, cancel the job (Slurm
    /// sends SIGTERM, then SIGKILL after its KillWait). A job that already ended is not an error.
    pub fn cancel(&self, job_id: &str, signal: Option<&str>) -> Result<(), SlurmError> {
        let mut args: Vec<String> = Vec::new();
        if let Some(sig) = signal {
            args.extend(["--full".into(), format!("--signal={sig}")]);
        }
        args.push(job_id.to_string());
        let out = self.run("scancel", &args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stderr.contains("already completing or completed") {
            return Err(Self::refused("scancel", &out));
        }
        Ok(())
    }
}

/// `1234` or `1234;cluster` -> `1234`.
pub fn parse_sbatch_parsable(out: &str) -> Option<String> {
    let id = out.lines().map(str::trim).find(|l| !l.is_empty())?.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

fn reason(r: &str) -> String {
    let r = r.trim();
    if r.eq_ignore_ascii_case("none") || r == "(null)" { String::new() } else { r.to_string() }
}

/// Lines of `squeue --format=%i|%T|%r|%N`.
pub fn parse_squeue(out: &str) -> Vec<JobInfo> {
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().split('|').collect();
            let state = JobState::parse(f.get(1)?)?;
            Some(JobInfo {
                job_id: f[0].trim().to_string(),
                state,
                slurm_state: f[1].trim().to_string(),
                reason: reason(f.get(2).unwrap_or(&"")),
                nodes: f.get(3).unwrap_or(&"").trim().to_string(),
                exit_code: String::new(),
            })
        })
        .collect()
}

/// Lines of `sacct --parsable2 --format=JobID,State,ExitCode,NodeList`.
pub fn parse_sacct(out: &str) -> Vec<JobInfo> {
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().split('|').collect();
            let state = JobState::parse(f.get(1)?)?;
            let nodes = f.get(3).unwrap_or(&"").trim();
            Some(JobInfo {
                job_id: f[0].trim().to_string(),
                state,
                slurm_state: f[1].split_whitespace().next().unwrap_or("").to_string(),
                reason: String::new(),
                nodes: if nodes == "None assigned" { String::new() } else { nodes.to_string() },
                exit_code: f.get(2).unwrap_or(&"").trim().to_string(),
            })
        })
        .collect()
}

/// `scontrol --oneliner show job ID` (`JobId=.. JobState=.. Reason=.. ExitCode=.. NodeList=..`).
pub fn parse_scontrol(out: &str) -> Option<JobInfo> {
    let line = out.lines().find(|l| l.contains("JobState="))?;
    let field = |key: &str| -> String {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let slurm_state = field("JobState");
    let nodes = field("NodeList");
    Some(JobInfo {
        job_id: field("JobId"),
        state: JobState::parse(&slurm_state)?,
        slurm_state,
        reason: reason(&field("Reason")),
        nodes: if nodes == "(null)" { String::new() } else { nodes },
        exit_code: field("ExitCode"),
    })
}

/// Resources and placement asked of Slurm (the `brainscope submit` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--gres` (`gpu:1`).
    pub gres: Option<String>,
    /// `--time` (`24:00:00`).
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--mem` (`16G`).
    pub mem: Option<String>,
    /// Device for every trainer (overrides each experiment's `train.device`).
    pub device: Option<String>,
    /// Submit held (`--hold`): the job waits until `scontrol release JOB`.
    pub hold: bool,
}

/// Seconds before the time limit at which Slurm sends SIGTERM to the trainer (`--signal`), so
/// it finishes its step and checkpoints instead of being killed.
pub const SIGTERM_BEFORE_LIMIT_SECS: u32 = 120;

/// One batch script: a single experiment, or an array over several (`SLURM_ARRAY_TASK_ID`
/// indexes the id list).
#[derive(Debug, Clone)]
pub struct BatchScript {
    /// Experiment ids, in task order.
    pub ids: Vec<u32>,
    /// Device per id (exported as `BRAINSCOPE_DEVICE` and passed as `--device`).
    pub devices: Vec<String>,
    /// Absolute experiments folder.
    pub experiments_dir: PathBuf,
    /// Absolute path of the brainscope binary the compute node runs.
    pub exe: PathBuf,
    /// Slurm's own output file (`%j`, `%A`, `%a` patterns allowed).
    pub output: PathBuf,
    /// Resources.
    pub options: JobOptions,
}

/// Single-quote for bash.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl BatchScript {
    /// Whether this is an array job.
    pub fn is_array(&self) -> bool {
        self.ids.len() > 1
    }

    /// The script text. The trainer replaces the batch shell (`exec`) so that `scancel
    /// --signal` and `--signal=B:TERM@N` reach it; it never gets `--restart`, so a requeued or
    /// resubmitted job resumes from the last checkpoint.
    pub fn render(&self) -> String {
        let o = &self.options;
        let name = match self.ids.as_slice() {
            [one] => format!("brainscope-{one}"),
            many => format!("brainscope-{}-{}", many[0], many[many.len() - 1]),
        };
        let exp = self.experiments_dir.display().to_string();
        let mut s = String::from("#!/bin/bash\n");
        s.push_str(&format!(
            "# Written by `brainscope submit` on {}: trains experiment(s) {} of {exp} on Slurm.\n\
             # Stop with `brainscope stop ID` (scancel, SIGTERM first); resubmitting resumes from the\n\
             # last checkpoint.\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
        ));
        let mut sb = |line: String| s.push_str(&format!("#SBATCH {line}\n"));
        sb(format!("--job-name={name}"));
        sb(format!("--output={}", self.output.display()));
        sb("--open-mode=append".into());
        sb(format!(
            "--chdir={}",
            self.experiments_dir.parent().unwrap_or(Path::new("/")).display()
        ));
        sb("--requeue".into());
        sb(format!("--signal=B:TERM@{SIGTERM_BEFORE_LIMIT_SECS}"));
        sb("--ntasks=1".into());
        if self.is_array() {
            sb(format!("--array=0-{}", self.ids.len() - 1));
        }
        if let Some(p) = &o.partition {
            sb(format!("--partition={p}"));
        }
        if let Some(g) = &o.gres {
            sb(format!("--gres={g}"));
        }
        if let Some(t) = &o.time {
            sb(format!("--time={t}"));
        }
        if let Some(c) = o.cpus {
            sb(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &o.mem {
            sb(format!("--mem={m}"));
        }
        if o.hold {
            sb("--hold".into());
        }
        let ids: Vec<String> = self.ids.iter().map(u32::to_string).collect();
        let devices: Vec<String> = self.devices.iter().map(|d| sh_quote(d)).collect();
        s.push_str(&format!(
            "set -eu\n\
             IDS=({ids})\n\
             DEVICES=({devices})\n\
             TASK=${{SLURM_ARRAY_TASK_ID:-0}}\n\
             ID=${{IDS[$TASK]}}\n\
             EXPERIMENTS={exp_q}\n\
             export BRAINSCOPE_DEVICE=${{DEVICES[$TASK]}}\n\
             # The trainer's output goes where the console tails it.\n\
             exec >>\"$EXPERIMENTS/$ID/train.log\" 2>&1\n\
             echo \"=== $(hostname) slurm job ${{SLURM_JOB_ID:-?}} task $TASK (restart ${{SLURM_RESTART_COUNT:-0}}) device $BRAINSCOPE_DEVICE at $(date -u +%FT%TZ) ===\"\n\
             exec {exe} train \"$ID\" --foreground --dir \"$EXPERIMENTS\" --device \"$BRAINSCOPE_DEVICE\"\n",
            ids = ids.join(" "),
            devices = devices.join(" "),
            exp_q = sh_quote(&exp),
            exe = sh_quote(&self.exe.display().to_string()),
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_from_every_tool_spelling() {
        assert_eq!(JobState::parse("PENDING"), Some(JobState::Pending));
        assert_eq!(JobState::parse("CANCELLED by 0"), Some(JobState::Cancelled));
        assert_eq!(JobState::parse("CANCELLED+"), Some(JobState::Cancelled));
        assert_eq!(JobState::parse("NODE_FAIL"), Some(JobState::NodeFail));
        assert_eq!(JobState::parse("OUT_OF_MEMORY"), Some(JobState::OutOfMemory));
        assert_eq!(JobState::parse("TO"), Some(JobState::Timeout));
        assert_eq!(JobState::parse("COMPLETING"), Some(JobState::Running));
        assert_eq!(JobState::parse("PREEMPTED"), Some(JobState::Preempted));
        assert_eq!(JobState::parse("REQUEUED"), Some(JobState::Pending));
        assert_eq!(JobState::parse("WHATEVER"), None);
    }

    #[test]
    fn squeue_sacct_scontrol_and_sbatch_outputs_parse() {
        let q = parse_squeue("12_0|RUNNING|None|vm\n12_1|PENDING|Resources|\nbad line\n");
        assert_eq!(q.len(), 2);
        assert_eq!(
            (q[0].job_id.as_str(), q[0].state, q[0].nodes.as_str()),
            ("12_0", JobState::Running, "vm")
        );
        assert_eq!((q[1].state, q[1].reason.as_str()), (JobState::Pending, "Resources"));
        let a = parse_sacct("7|CANCELLED by 1000|0:15|node3\n8|TIMEOUT|0:0|None assigned\n");
        assert_eq!(
            (a[0].state, a[0].slurm_state.as_str(), a[0].exit_code.as_str()),
            (JobState::Cancelled, "CANCELLED", "0:15")
        );
        assert_eq!((a[1].state, a[1].nodes.as_str()), (JobState::Timeout, ""));
        let c = parse_scontrol(
            "JobId=5 JobName=wrap UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 NodeList=vm BatchHost=vm\n",
        )
        .unwrap();
        assert_eq!(
            (c.job_id.as_str(), c.state, c.reason.as_str(), c.exit_code.as_str(), c.nodes.as_str()),
            ("5", JobState::Failed, "NonZeroExitCode", "3:0", "vm")
        );
        assert_eq!(parse_sbatch_parsable("1234\n").as_deref(), Some("1234"));
        assert_eq!(parse_sbatch_parsable("99;cluster2\n").as_deref(), Some("99"));
        assert_eq!(parse_sbatch_parsable("Submitted batch job 5\n"), None);
    }

    #[test]
    fn array_script_indexes_ids_and_never_restarts() {
        let script = BatchScript {
            ids: vec![200, 201, 202],
            devices: vec!["cpu".into(), "cuda".into(), "cpu".into()],
            experiments_dir: "/p/experiments".into(),
            exe: "/opt/bin/brainscope".into(),
            output: "/p/experiments/.slurm/array-%A_%a.out".into(),
            options: JobOptions {
                partition: Some("gpu".into()),
                gres: Some("gpu:1".into()),
                time: Some("24:00:00".into()),
                cpus: Some(8),
                mem: Some("32G".into()),
                device: None,
                hold: false,
            },
        }
        .render();
        for line in [
            "#SBATCH --array=0-2",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --time=24:00:00",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "IDS=(200 201 202)",
            "DEVICES=('cpu' 'cuda' 'cpu')",
            "export BRAINSCOPE_DEVICE=${DEVICES[$TASK]}",
            "exec '/opt/bin/brainscope' train \"$ID\" --foreground --dir \"$EXPERIMENTS\"",
        ] {
            assert!(script.contains(line), "missing {line:?} in\n{script}");
        }
        assert!(!script.contains("--restart"));
    }
}
