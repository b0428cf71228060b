//! The wgpu adapters of this machine, probed once per process without opening a device.
//!
//! The probe walks the graphics APIs in the order burn's wgpu runtime (cubecl) settles on one —
//! Vulkan, then DX12, then OpenGL on Linux and Windows, Metal on macOS — and keeps the first
//! that has a GPU, or failing that the first with any adapter (a software rasterizer such as
//! lavapipe). The adapters it lists are the ones `--device wgpu:N` addresses, in the order
//! cubecl counts them.
//!
//! `BRAINSCOPE_HIDE_WGPU=1` makes the probe report no adapter (to try the `--device cpu` hint on
//! a machine that has one; `VK_ICD_FILENAMES=/nonexistent` hides Vulkan drivers the same way
//! but not OpenGL ones).

use std::sync::OnceLock;

use burn::backend::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};

use super::{BackendError, DeviceInfo};

/// The environment variable that hides every wgpu adapter from the probe.
pub const HIDE_ENV: &str = "BRAINSCOPE_HIDE_WGPU";

/// One adapter of the settled graphics API.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// How `brainscope devices` shows it.
    pub info: DeviceInfo,
    /// The burn selector that reaches this adapter (type-indexed, as cubecl counts).
    pub kind: DeviceKind,
}

/// What the probe found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The adapters, in enumeration order (index N = `wgpu:N`).
    pub adapters: Vec<Adapter>,
}

/// The adapters, probed on first call (cached: creating Vulkan instances while burn's runtime
/// creates its own on another thread can crash the loader, so the probe runs once, before any
/// wgpu device is handed out). `Err` holds why there are none, for the error message.
pub fn adapters() -> Result<&'static Probe, String> {
    static PROBE: OnceLock<Result<Probe, String>> = OnceLock::new();
    PROBE.get_or_init(probe).as_ref().map_err(Clone::clone)
}

/// The burn device for `--device wgpu` (`index` None) or `wgpu:N`, after the probe saw it.
pub fn device(name: &str, index: Option<usize>) -> Result<Device, BackendError> {
    let probe =
        adapters().map_err(|cause| BackendError::NoWgpuAdapter { device: name.into(), cause })?;
    match index {
        None => Ok(Device::wgpu(DeviceKind::DefaultDevice)),
        Some(i) => match probe.adapters.get(i) {
            Some(a) => Ok(Device::wgpu(a.kind.clone())),
            None => Err(BackendError::NoSuchAdapter {
                device: name.into(),
                count: probe.adapters.len(),
            }),
        },
    }
}

/// The graphics APIs in cubecl's order for this platform.
fn api_chain() -> Vec<wgpu::Backend> {
    if cfg!(target_os = "macos") {
        vec![wgpu::Backend::Metal]
    } else {
        vec![wgpu::Backend::Vulkan, wgpu::Backend::Dx12, wgpu::Backend::Gl]
    }
}

fn probe() -> Result<Probe, String> {
    if std::env::var_os(HIDE_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(format!("{HIDE_ENV} is set"));
    }
    let enabled = wgpu::Instance::enabled_backend_features();
    let mut tried = Vec::new();
    let mut software_only = None;
    for api in api_chain() {
        if !enabled.contains(api.into()) {
            continue;
        }
        tried.push(api.to_string());
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: api.into(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let found = block_on(instance.enumerate_adapters(api.into()));
        // Kept for the life of the process: dropping an instance while burn's runtime
        // creates one on another thread can crash the Vulkan loader.
        std::mem::forget(instance);
        if found.is_empty() {
            continue;
        }
        let gpu = found.iter().any(|a| a.get_info().device_type != wgpu::DeviceType::Cpu);
        let list = describe(&found);
        std::mem::forget(found);
        if gpu {
            return Ok(Probe { adapters: list });
        }
        software_only.get_or_insert(list);
    }
    software_only.map(|adapters| Probe { adapters }).ok_or_else(|| no_adapter_cause(&tried))
}

/// Why nothing was found, with the environment that commonly causes it.
fn no_adapter_cause(tried: &[String]) -> String {
    let mut cause = format!("none on {}", tried.join(", "));
    if let Some(icd) = std::env::var_os("VK_ICD_FILENAMES") {
        cause += &format!("; VK_ICD_FILENAMES={} limits the Vulkan drivers", icd.to_string_lossy());
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cause += "; XDG_RUNTIME_DIR is not set (the Vulkan loader may need it)";
    }
    cause
}

/// Listings and burn selectors, numbered per device type the way cubecl numbers them
/// (`DiscreteGpu(n)` is the n-th discrete adapter).
fn describe(found: &[wgpu::Adapter]) -> Vec<Adapter> {
    let mut per_type = [0usize; 5];
    found
        .iter()
        .enumerate()
        .map(|(i, adapter)| {
            let info = adapter.get_info();
            let (slot, label) = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => (0, "discrete-gpu"),
                wgpu::DeviceType::IntegratedGpu => (1, "integrated-gpu"),
                wgpu::DeviceType::VirtualGpu => (2, "virtual-gpu"),
                wgpu::DeviceType::Cpu => (3, "software"),
                wgpu::DeviceType::Other => (4, "other"),
            };
            let n = per_type[slot];
            per_type[slot] += 1;
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(n),
                wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(n),
                wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(n),
                wgpu::DeviceType::Cpu => DeviceKind::Cpu,
                // burn has no selector for "other" adapters: wgpu's own pick.
                wgpu::DeviceType::Other => DeviceKind::DefaultDevice,
            };
            Adapter {
                info: DeviceInfo {
                    device: format!("wgpu:{i}"),
                    name: info.name.clone(),
                    kind: label.into(),
                    backend: info.backend.to_string(),
                    memory_bytes: memory_bytes(adapter),
                    f16: adapter.features().contains(wgpu::Features::SHADER_F16),
                },
                kind,
            }
        })
        .collect()
}

/// The largest device-local memory heap of a Vulkan adapter (what cubecl takes as the device's
/// capacity); `None` on other APIs, which do not report memory.
#[cfg(not(any(target_os = "macos", target_os = "ios", target_family = "wasm")))]
fn memory_bytes(adapter: &wgpu::Adapter) -> Option<u64> {
    // SAFETY: the HAL adapter is only read (its physical device's memory properties), not used
    // to create objects wgpu does not know about; `adapter` outlives the borrow.
    let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Vulkan>() }?;
    let instance = hal.shared_instance().raw_instance();
    // SAFETY: a query on a physical device that the instance enumerated.
    let props =
        unsafe { instance.get_physical_device_memory_properties(hal.raw_physical_device()) };
    const DEVICE_LOCAL: u32 = 0x1; // VK_MEMORY_HEAP_DEVICE_LOCAL_BIT
    props.memory_heaps[..props.memory_heap_count as usize]
        .iter()
        .filter(|heap| heap.flags.as_raw() & DEVICE_LOCAL != 0)
        .map(|heap| heap.size)
        .max()
}

#[cfg(any(target_os = "macos", target_os = "ios", target_family = "wasm"))]
fn memory_bytes(_adapter: &wgpu::Adapter) -> Option<u64> {
    None
}

/// Drive a future to completion on this thread. wgpu's native futures are ready on their first
/// poll; this only yields between polls, it never waits on a timer.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}
