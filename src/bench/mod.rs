//! Benchmarks behind `brainscope bench`: one module per benchmark, each printing medians and,
//! where a PyTorch reference script exists in `bench/`, the ratio against it.

pub mod blip;
pub mod clip;
pub mod console;
pub mod data;
pub mod gemm;
pub mod img2img;
pub mod train;
pub mod unet;
pub mod vae;

use std::path::Path;
use std::time::Instant;

/// Median wall seconds of `repeats` (at least 1) timed calls of `f`, after one warm-up call.
pub(crate) fn median_secs(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Run the PyTorch reference `python script --flag value ..`: `Ok(Ok(json))` with its stdout,
/// `Ok(Err(why))` when it could not run or exited non-zero (the report names why and goes on
/// without ratios), `Err` when it ran but printed something that is not JSON.
pub(crate) fn run_reference(
    python: &str,
    script: &Path,
    flags: &[(&str, String)],
) -> anyhow::Result<Result<serde_json::Value, String>> {
    use anyhow::Context;
    let args = flags.iter().flat_map(|(flag, value)| [*flag, value.as_str()]);
    let out = match std::process::Command::new(python).arg(script).args(args).output() {
        Ok(out) => out,
        Err(e) => return Ok(Err(format!("running {python} {}: {e}", script.display()))),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Ok(Err(format!("{python} exited with {}: {}", out.status, stderr.trim())));
    }
    let json = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{}: output is not JSON", script.display()))?;
    Ok(Ok(json))
}
