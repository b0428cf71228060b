//! The GPU test group, part 1: every model's parity fixtures on the wgpu device (lavapipe in
//! CI), through the same check functions the CPU parity tests use.
//!
//! Tolerances (max absolute difference to the PyTorch reference, f32 on wgpu):
//! VAE encode/decode 1e-4, low-level model 1e-4, CLIP towers 1e-4, BLIP vision + decoder logits
//! 1e-4, UNet 1e-4 — the same as on the CPU. In f16 (`--dtype f16`, weights and activations
//! half precision), against the same f32 references: VAE encode/decode 5e-2 (lavapipe: decode
//! 1.6e-2 and 3.6e-2 on the two fixtures), UNet 2e-2, CLIP towers 5e-2, BLIP vision + decoder
//! logits 1.5e-1 (lavapipe: 1.6e-2 and 7.0e-2).
//!
//! Without a wgpu adapter every test prints `skipped: ...` and passes, unless
//! `BRAINSCOPE_REQUIRE_WGPU=1` (set by `.ci/run`), which makes a missing adapter a failure.
//! `BRAINSCOPE_GPU_TEST_DEVICE=cuda` runs the group on CUDA instead (scripts/gpu-check.sh).

use std::sync::OnceLock;

use brainscope::dtype::Precision;
use burn::tensor::Device;

/// f16 tolerance of the VAE (encode mean/logvar, decode), in the fixtures' units.
pub(crate) const VAE_F16_TOL: f32 = 5e-2;
/// f16 tolerance of the UNet output.
pub(crate) const UNET_F16_TOL: f32 = 2e-2;
/// f16 tolerance of the CLIP towers (hidden states, pooled output, projected features); lavapipe:
/// 1.6e-2 at most (text last_hidden_state).
pub(crate) const CLIP_F16_TOL: f32 = 5e-2;
/// f16 tolerance of BLIP's vision states and decoder logits; lavapipe: vision 6.4e-3, logits
/// 7.0e-2, logsumexp 2.0e-3.
pub(crate) const BLIP_F16_TOL: f32 = 1.5e-1;
/// f32 tolerance of every model on wgpu.
pub(crate) const F32_TOL: f32 = 1e-4;

/// Whether a missing adapter fails the test instead of skipping it.
fn required() -> bool {
    std::env::var_os("BRAINSCOPE_REQUIRE_WGPU").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skip (print the reason, return None) or fail when required.
fn skip(test: &str, reason: &str) -> Option<Device> {
    assert!(!required(), "{test}: {reason}, and BRAINSCOPE_REQUIRE_WGPU is set");
    eprintln!("skipped: {test}: {reason}");
    None
}

/// Whether this build sees a wgpu adapter, or why not.
pub(crate) fn wgpu_probe() -> Result<(), String> {
    #[cfg(feature = "wgpu")]
    {
        brainscope::backend::wgpu::adapters()
            .map(|_| ())
            .map_err(|c| format!("no wgpu adapter ({c})"))
    }
    #[cfg(not(feature = "wgpu"))]
    {
        Err("wgpu is not compiled into this build (cargo feature `wgpu`)".into())
    }
}

/// The device the group runs on: `BRAINSCOPE_GPU_TEST_DEVICE`, default `wgpu` (`cuda` on an
/// NVIDIA box: scripts/gpu-check.sh).
pub(crate) fn gpu_name() -> String {
    std::env::var("BRAINSCOPE_GPU_TEST_DEVICE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "wgpu".into())
}

/// The group's device, or None (after printing why) when this machine has no such device.
pub(crate) fn gpu_or_skip(test: &str) -> Option<Device> {
    let name = gpu_name();
    if name.starts_with("wgpu")
        && let Err(reason) = wgpu_probe()
    {
        return skip(test, &reason);
    }
    match brainscope::backend::device(&name) {
        Ok(device) => Some(device),
        Err(e) => skip(test, &e.to_string()),
    }
}

/// A device running in f16, or None (after printing why) when there is none or it has no shader
/// f16. On wgpu it is `wgpu:0`, a device of its own beside `wgpu` (burn fixes a device's default
/// float type once), so the f32 tests run in the same process; cuda has no second handle to
/// the same GPU, so there f16 is checked through the CLI (`gpu_decode_f16_...`).
pub(crate) fn gpu_f16_or_skip(test: &str) -> Option<Device> {
    static F16: OnceLock<Result<Device, String>> = OnceLock::new();
    gpu_or_skip(test)?;
    if !gpu_name().starts_with("wgpu") {
        eprintln!("skipped: {test}: in-process f16 runs on wgpu only (cuda: the CLI test)");
        return None;
    }
    let device = F16.get_or_init(|| {
        let mut device = brainscope::backend::device("wgpu:0").map_err(|e| e.to_string())?;
        brainscope::dtype::prepare_device("wgpu:0", &mut device, Precision::F16)
            .map_err(|e| e.to_string())?;
        Ok(device)
    });
    match device {
        Ok(d) => Some(d.clone()),
        // No shader f16 on this adapter: a property of the driver, not a failure.
        Err(reason) => {
            eprintln!("skipped: {test}: {reason}");
            None
        }
    }
}

#[test]
fn gpu_vae_parity_f32() {
    let Some(device) = gpu_or_skip("gpu_vae_parity_f32") else { return };
    for name in ["tiny_lpb1", "tiny_lpb2"] {
        crate::vae_parity::check_parity_on(name, &device, Precision::F32, F32_TOL);
    }
}

#[test]
fn gpu_vae_parity_f16() {
    let Some(device) = gpu_f16_or_skip("gpu_vae_parity_f16") else { return };
    for name in ["tiny_lpb1", "tiny_lpb2"] {
        crate::vae_parity::check_parity_on(name, &device, Precision::F16, VAE_F16_TOL);
    }
}

#[test]
fn gpu_lowlevel_parity_f32() {
    let Some(device) = gpu_or_skip("gpu_lowlevel_parity_f32") else { return };
    crate::lowlevel_parity::check_outputs_on(&device, F32_TOL);
}

#[test]
fn gpu_clip_parity_f32() {
    let Some(device) = gpu_or_skip("gpu_clip_parity_f32") else { return };
    for name in ["quick_gelu", "gelu"] {
        crate::clip_parity::check_parity_on(name, &device, Precision::F32, F32_TOL);
    }
}

#[test]
fn gpu_clip_parity_f16() {
    let Some(device) = gpu_f16_or_skip("gpu_clip_parity_f16") else { return };
    for name in ["quick_gelu", "gelu"] {
        crate::clip_parity::check_parity_on(name, &device, Precision::F16, CLIP_F16_TOL);
    }
}

#[test]
fn gpu_blip_parity_f32() {
    let Some(device) = gpu_or_skip("gpu_blip_parity_f32") else { return };
    crate::blip_parity::check_logits_on(&device, Precision::F32, F32_TOL);
}

#[test]
fn gpu_blip_parity_f16() {
    let Some(device) = gpu_f16_or_skip("gpu_blip_parity_f16") else { return };
    crate::blip_parity::check_logits_on(&device, Precision::F16, BLIP_F16_TOL);
}

#[test]
fn gpu_unet_parity_f32() {
    let Some(device) = gpu_or_skip("gpu_unet_parity_f32") else { return };
    for name in ["tiny_sd1", "tiny_sd2_linear"] {
        crate::unet_parity::check_parity_on(name, &device, Precision::F32, F32_TOL);
    }
}

#[test]
fn gpu_unet_parity_f16() {
    let Some(device) = gpu_f16_or_skip("gpu_unet_parity_f16") else { return };
    for name in ["tiny_sd1", "tiny_sd2_linear"] {
        crate::unet_parity::check_parity_on(name, &device, Precision::F16, UNET_F16_TOL);
    }
}
