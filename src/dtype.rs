//! `--dtype f16|f32`: the float precision inference runs in.
//!
//! f16 is for GPU devices (`wgpu` with shader f16, `cuda`) and is refused on the CPU, where
//! burn's flex backend computes half floats in software, slower than f32 and no smaller in
//! what matters here. Running in f16 means two things, both needed: the device's default float
//! type becomes f16 ([`prepare_device`], before any tensor exists on it, so every tensor a model
//! creates internally — masks, embeddings, noise — is f16 too), and the loaded weights, which
//! keep the f32 of their safetensors, are cast ([`cast_module`]). Outputs are cast back to f32
//! ([`to_f32`]) before they are written.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, FloatDType, Tensor};

/// The precision of a run (`--dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    /// 32-bit floats (the default; every device).
    #[default]
    F32,
    /// 16-bit floats (GPU devices only).
    F16,
}

impl Precision {
    /// burn's float dtype for it.
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
        }
    }
}

/// A precision the device cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DtypeError {
    /// f16 asked for on the CPU backend.
    #[error(
        "--dtype f16 needs a GPU device (--device wgpu or cuda); the CPU computes f16 in software, slower than f32: use --dtype f32 with --device {device}"
    )]
    CpuF16 {
        /// The device name given.
        device: String,
    },
    /// The GPU has no f16 arithmetic (a wgpu adapter without `shader-f16`).
    #[error(
        "--device {device} cannot compute in f16 (the adapter lacks shader f16; `brainscope devices` shows which do): use --dtype f32"
    )]
    Unsupported {
        /// The device name given.
        device: String,
    },
    /// The device already created tensors, so its default float type is fixed.
    #[error("--device {device}: cannot switch to f16 after tensors exist on it ({reason})")]
    Configure {
        /// The device name given.
        device: String,
        /// burn's reason.
        reason: String,
    },
}

/// Make `device` (named `name` on the command line) run in `precision`: a no-op for f32; for f16
/// a check that it is a GPU device with f16 arithmetic, then its default float type set to f16.
/// Call before any tensor exists on the device (so before loading a model).
pub fn prepare_device(
    name: &str,
    device: &mut Device,
    precision: Precision,
) -> Result<(), DtypeError> {
    if precision == Precision::F32 {
        return Ok(());
    }
    if !crate::backend::is_gpu_name(name) {
        return Err(DtypeError::CpuF16 { device: name.into() });
    }
    if !device.supports_dtype(FloatDType::F16) {
        return Err(DtypeError::Unsupported { device: name.into() });
    }
    device
        .configure(FloatDType::F16)
        .map_err(|e| DtypeError::Configure { device: name.into(), reason: e.to_string() })
}

/// `module` with every float parameter cast to `precision` (weights load as the f32 of their
/// files whatever the device default is).
pub fn cast_module<M: Module>(module: M, precision: Precision) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| t.cast(dtype))
        }
    }
    if precision == Precision::F32 {
        return module;
    }
    module.map(&mut Cast(precision.float_dtype()))
}

/// An SD pipeline's text encoder and VAE weights in `precision` (its UNet is loaded apart).
pub fn cast_pipeline(
    mut pipeline: crate::pipelines::SdPipeline,
    precision: Precision,
) -> crate::pipelines::SdPipeline {
    pipeline.text_encoder.model = cast_module(pipeline.text_encoder.model, precision);
    pipeline.vae.model = cast_module(pipeline.vae.model, precision);
    pipeline
}

/// `t` as f32 (a no-op when it is already), for writing results.
pub fn to_f32<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.cast(FloatDType::F32)
}
