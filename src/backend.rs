//! Backend choice: burn 0.22 picks the backend at run time through [`burn::tensor::Device`].
//! `cpu` (burn's `flex` backend, always compiled) is the default device; `wgpu` (a default cargo
//! feature) and `cuda` (opt-in: its build downloads LLVM) are cargo features.
//!
//! A wgpu device is only handed out after [`wgpu::adapters`] has seen an adapter, so
//! `--device wgpu` on a machine without a Vulkan driver fails at once with the cause, instead of
//! panicking inside wgpu at the first tensor.

use burn::tensor::Device;

#[cfg(feature = "wgpu")]
pub mod wgpu;

/// A device name that the build cannot serve, or that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend exists but this binary was built without its cargo feature.
    #[error(
        "device '{0}' is not compiled into this binary: rebuild with `cargo build --release --features {0}`"
    )]
    NotCompiled(String),
    /// Not a device name at all.
    #[error("unknown device '{0}': expected one of cpu, wgpu, wgpu:N, cuda, cuda:N")]
    Unknown(String),
    /// `wgpu` is compiled in, but the machine offers no adapter.
    #[error(
        "--device {device}: no wgpu adapter found ({cause}); install a Vulkan driver (a GPU's, or Debian's mesa-vulkan-drivers for a software one), or run on the CPU with `--device cpu`"
    )]
    NoWgpuAdapter {
        /// The name asked for.
        device: String,
        /// What the probe saw (the graphics APIs tried, environment that hides drivers).
        cause: String,
    },
    /// `wgpu:N` past the adapters there are.
    #[error(
        "--device {device}: this machine has {count} wgpu adapter(s) (`brainscope devices` lists them)"
    )]
    NoSuchAdapter {
        /// The name asked for.
        device: String,
        /// Adapters found.
        count: usize,
    },
}

/// What a device name accepted by `--device` and `experiment.toml` looks like (`wgpu:N` and
/// `cuda:N` pick one adapter or GPU of several), for error messages.
pub const DEVICE_RULE: &str = "cpu, wgpu, wgpu:N, cuda or cuda:N";

/// Split a device name into its kind and optional index (`wgpu:1` -> (`wgpu`, Some(1))),
/// checking the syntax only: whether this build has the backend is [`device`]'s question.
/// `flex` is accepted as another name for `cpu`; the CPU takes no index.
pub fn parse_device_name(name: &str) -> Result<(&str, Option<usize>), BackendError> {
    let unknown = || BackendError::Unknown(name.into());
    let (kind, index) = match name.split_once(':') {
        Some((kind, index)) => (kind, Some(index.parse::<usize>().map_err(|_| unknown())?)),
        None => (name, None),
    };
    match kind {
        "cpu" | "flex" if index.is_none() => Ok((kind, index)),
        "wgpu" | "cuda" => Ok((kind, index)),
        _ => Err(unknown()),
    }
}

/// Parse a device name (`cpu`, `wgpu`, `wgpu:N`, `cuda`, `cuda:N`) into a burn device (no
/// autodiff). `wgpu` is wgpu's own pick (a high-performance GPU first); `wgpu:N` the N-th
/// adapter of `brainscope devices`.
pub fn device(name: &str) -> Result<Device, BackendError> {
    let (kind, index) = parse_device_name(name)?;
    match kind {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => wgpu::device(name, index),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err(BackendError::NotCompiled("wgpu".into())),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(index.unwrap_or(0))),
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

/// Whether `name` runs on a GPU backend (`wgpu`, `cuda`), by name only.
pub fn is_gpu_name(name: &str) -> bool {
    matches!(name.split_once(':').map_or(name, |(k, _)| k), "wgpu" | "cuda")
}

/// One device this build can run on, as `brainscope devices` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeviceInfo {
    /// The `--device` value that selects it (`cpu`, `wgpu:0`, `cuda:0`).
    pub device: String,
    /// What it calls itself (`llvmpipe (LLVM 19.1.7, 256 bits)`, `NVIDIA H200`), or the CPU
    /// backend and its threads.
    pub name: String,
    /// `cpu`, `discrete-gpu`, `integrated-gpu`, `virtual-gpu`, `software` (a CPU rasterizer
    /// such as lavapipe) or `other`.
    pub kind: String,
    /// The API it runs through: `flex` (burn's CPU backend), `vulkan`, `metal`, `dx12`, `gl`,
    /// `cuda`.
    pub backend: String,
    /// Memory it reports: the largest device-local heap on Vulkan, the machine's RAM for the
    /// CPU; `None` where the API says nothing.
    pub memory_bytes: Option<u64>,
    /// Whether shaders can compute in f16 there (`--dtype f16`); false on the CPU, where f16
    /// is refused.
    pub f16: bool,
}

/// Every device this build can use: the CPU, each wgpu adapter, each CUDA GPU (when compiled).
pub fn list_devices() -> Vec<DeviceInfo> {
    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(unused_mut))]
    let mut out = vec![DeviceInfo {
        device: "cpu".into(),
        name: format!("burn flex ({} threads)", rayon::current_num_threads()),
        kind: "cpu".into(),
        backend: "flex".into(),
        memory_bytes: total_ram(),
        f16: false,
    }];
    #[cfg(feature = "wgpu")]
    if let Ok(probe) = wgpu::adapters() {
        out.extend(probe.adapters.iter().map(|a| a.info.clone()));
    }
    #[cfg(feature = "cuda")]
    for (i, device) in
        Device::enumerate(burn::tensor::DeviceType::Cuda).into_vec().into_iter().enumerate()
    {
        let name = device.identity().map_or_else(|| "CUDA GPU".to_owned(), |id| id.name);
        out.push(DeviceInfo {
            device: format!("cuda:{i}"),
            name,
            kind: "discrete-gpu".into(),
            backend: "cuda".into(),
            memory_bytes: None,
            f16: true,
        });
    }
    out
}

/// `MemTotal` of /proc/meminfo, where there is one.
fn total_ram() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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
