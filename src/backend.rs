//! Backend choice: burn 0.22 picks the backend at run time through [`burn::tensor::Device`].
//! `cpu` (burn's `flex` backend, always compiled) is the default; `wgpu` and `cuda` are cargo
//! features.

use burn::tensor::Device;

/// A device name that the build cannot serve, or that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend exists but this binary was built without its cargo feature.
    #[error(
        "device '{0}' is not compiled into this binary: rebuild with `cargo build --release --features {0}`"
    )]
    NotCompiled(String),
    /// Not a device name at all.
    #[error("unknown device '{0}': expected one of cpu, wgpu, cuda")]
    Unknown(String),
}

/// Device names accepted by `--device` and `experiment.toml`.
pub const DEVICE_NAMES: [&str; 3] = ["cpu", "wgpu", "cuda"];

/// Parse a device name (`cpu`, `wgpu`, `cuda`, `cuda:N`) into a burn device (no autodiff).
pub fn device(name: &str) -> Result<Device, BackendError> {
    let (kind, index) = name.split_once(':').unwrap_or((name, "0"));
    match kind {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err(BackendError::NotCompiled("wgpu".into())),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(
            index.parse::<usize>().map_err(|_| BackendError::Unknown(name.into()))?,
        )),
        #[cfg(not(feature = "cuda"))]
        "cuda" => {
            let _ = index;
            Err(BackendError::NotCompiled("cuda".into()))
        }
        _ => Err(BackendError::Unknown(name.into())),
    }
}

/// The default device: the CPU (`flex`) backend.
pub fn default_device() -> Device {
    Device::flex()
}

/// Run `f` with burn's random generator seeded to `seed`.
///
/// burn keeps one generator per process, so two threads that seed and draw at the same time
/// (parallel tests, say) would take each other's numbers. This holds a process-wide lock for the
/// whole of `f`, making every seeded section deterministic. `f` must not call `with_seed` itself.
pub fn with_seed<R>(device: &Device, seed: u64, f: impl FnOnce() -> R) -> R {
    static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = SEEDED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    f()
}
