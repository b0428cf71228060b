//! The GPU test group, part 2, through the real binary: `brainscope devices` (text and JSON),
//! `--device wgpu` without an adapter failing fast with the cause and the `--device cpu` hint
//! and nothing written, `--dtype f16` refused on the CPU, and `decode --dtype f16` on the group's
//! device (wgpu) against the CPU's f32 PNG.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{BIN, COMMAND_LIMIT, output_within};
use crate::gpu_parity::{gpu_name, gpu_or_skip};

fn vae_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vae/tiny_lpb1")
}

fn decode(device: &str, dtype: &str, out: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["decode", "--vae"])
        .arg(vae_fixture())
        .arg(vae_fixture().join("input_latent.npy"))
        .args(["--device", device, "--dtype", dtype, "-o"])
        .arg(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    output_within(&mut cmd, COMMAND_LIMIT)
}

#[test]
fn gpu_devices_lists_cpu_and_the_wgpu_adapters() {
    let out = output_within(Command::new(BIN).args(["devices", "--json"]), COMMAND_LIMIT);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["device"], "cpu");
    assert_eq!(list[0]["kind"], "cpu");
    assert!(list[0]["name"].as_str().unwrap().contains("threads"), "{:?}", list[0]);
    for d in &list {
        for key in ["device", "name", "kind", "backend", "memory_bytes", "f16"] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
    }
    let text = output_within(Command::new(BIN).arg("devices"), COMMAND_LIMIT);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    if let Err(reason) = crate::gpu_parity::wgpu_probe() {
        eprintln!("skipped: gpu_devices_lists_cpu_and_the_wgpu_adapters: {reason}");
        return;
    }
    let wgpu: Vec<_> =
        list.iter().filter(|d| d["device"].as_str().unwrap().starts_with("wgpu:")).collect();
    assert!(
        !wgpu.is_empty(),
        "an adapter was probed in-process but `devices` lists none: {list:?}"
    );
    for (i, d) in wgpu.iter().enumerate() {
        assert_eq!(d["device"], format!("wgpu:{i}"));
        assert!(text.contains(&format!("wgpu:{i}")), "{text}");
        assert!(text.contains(d["name"].as_str().unwrap()), "{text}");
    }
    // lavapipe (Debian's mesa-vulkan-drivers, what CI has) is Mesa's llvmpipe on Vulkan.
    if let Some(soft) = wgpu.iter().find(|d| d["kind"] == "software" && d["backend"] == "vulkan") {
        assert!(soft["name"].as_str().unwrap().contains("llvmpipe"), "{soft}");
        assert!(soft["memory_bytes"].as_u64().is_some_and(|b| b > 1 << 20), "{soft}");
    }
}

#[test]
fn gpu_no_adapter_fails_fast_names_the_cause_and_cpu() {
    if !cfg!(feature = "wgpu") {
        eprintln!(
            "skipped: gpu_no_adapter_fails_fast_names_the_cause_and_cpu: wgpu not compiled in"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("out.png");
    // Our switch (hides every API), then the Vulkan loader's own (no driver manifests).
    for env in [
        vec![("BRAINSCOPE_HIDE_WGPU", "1")],
        vec![("VK_ICD_FILENAMES", "/nonexistent"), ("BRAINSCOPE_HIDE_WGPU", "")],
    ] {
        let listed = output_within(
            Command::new(BIN).args(["devices", "--json"]).envs(env.iter().copied()),
            COMMAND_LIMIT,
        );
        let list: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
        if list.iter().any(|d| d["device"].as_str().unwrap().starts_with("wgpu")) {
            // VK_ICD_FILENAMES hides Vulkan only; an OpenGL driver may still answer.
            eprintln!("note: {env:?} leaves a wgpu adapter on another API: {list:?}");
            continue;
        }
        let start = Instant::now();
        let out = decode("wgpu", "f32", &png, &env);
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?}: decode succeeded without an adapter");
        assert!(err.contains("no wgpu adapter") && err.contains("--device cpu"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let cause = if env[0].0 == "VK_ICD_FILENAMES" {
            "VK_ICD_FILENAMES"
        } else {
            "BRAINSCOPE_HIDE_WGPU"
        };
        assert!(err.contains(cause), "the cause is named: {err}");
        assert!(took < Duration::from_secs(20), "not fast: {took:?}");
        assert!(!png.exists(), "nothing is written");
    }
    // `wgpu:N` past the adapters: the count and where to look.
    let out = decode("wgpu:99", "f32", &png, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("brainscope devices") || err.contains("no wgpu adapter"), "{err}");
    assert!(!png.exists());
}

#[test]
fn gpu_f16_is_refused_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("out.png");
    let out = decode("cpu", "f16", &png, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dtype f16 needs a GPU device") && err.contains("--dtype f32"), "{err}");
    assert!(!png.exists());
}

fn rgb(path: &Path) -> Vec<u8> {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8().into_raw()
}

#[test]
fn gpu_decode_f16_matches_the_cpu_f32_png() {
    let Some(_) = gpu_or_skip("gpu_decode_f16_matches_the_cpu_f32_png") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (cpu, gpu16) = (tmp.path().join("cpu.png"), tmp.path().join("wgpu16.png"));
    let out = decode("cpu", "f32", &cpu, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = decode(&gpu_name(), "f16", &gpu16, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("lacks shader f16") {
        eprintln!("skipped: gpu_decode_f16_matches_the_cpu_f32_png: {err}");
        return;
    }
    assert!(out.status.success(), "{err}");
    let (a, b) = (rgb(&cpu), rgb(&gpu16));
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
    println!("decode f16 on {} vs f32 on cpu: max {worst}/255", gpu_name());
    // VAE f16 tolerance 1e-2 in [-1, 1] is 1.3 grey levels, plus rounding.
    assert!(worst <= 2, "f16 PNG differs by {worst}/255");
}
