//! `--device`, shared by every subcommand that runs a model.

use burn::tensor::Device;

use crate::backend::BackendError;

/// The `--device` option (flattened into a subcommand's `Args`).
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArg {
    /// Device: cpu, wgpu, cuda (`cuda:N` for another GPU).
    #[arg(long = "device", value_name = "DEVICE", default_value = "cpu")]
    pub name: String,
}

impl DeviceArg {
    /// The burn device it names (no autodiff).
    pub fn device(&self) -> Result<Device, BackendError> {
        crate::backend::device(&self.name)
    }
}
