//! `--device` (shared by every subcommand that runs a model) and `--dtype` (by the inference
//! subcommands: decode, img2img, recon, caption, embed).

use burn::tensor::Device;

use crate::backend::BackendError;
use crate::dtype::Precision;

/// The `--device` option (flattened into a subcommand's `Args`).
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArg {
    /// Device: cpu, wgpu (`wgpu:N` for one adapter of `brainscope devices`), cuda (`cuda:N`
    /// for another GPU).
    #[arg(long = "device", value_name = "DEVICE", default_value = "cpu")]
    pub name: String,
}

impl DeviceArg {
    /// The burn device it names (no autodiff).
    pub fn device(&self) -> Result<Device, BackendError> {
        crate::backend::device(&self.name)
    }

    /// The burn device it names, set up for `precision` (f16: GPU devices only; before any
    /// tensor exists on it).
    pub fn device_for(&self, precision: Precision) -> anyhow::Result<Device> {
        let mut device = self.device()?;
        crate::dtype::prepare_device(&self.name, &mut device, precision)?;
        Ok(device)
    }
}

/// The `--dtype` option (flattened into an inference subcommand's `Args`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DtypeArg {
    /// Float precision: f32, or f16 on a GPU device (refused on the CPU).
    #[arg(long = "dtype", value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
}
