//! AdamW exactly as `torch.optim.AdamW` (amsgrad off), with a fused in-place update.
//!
//! Per parameter and step `t` (1-based), with `lr` and `beta1` given per step by the schedule:
//! ```text
//! p  = p * (1 - lr * wd)                      // decoupled weight decay
//! m  = m + (1 - beta1) * (g - m)              // torch: exp_avg.lerp_(grad, 1 - beta1)
//! v  = v * beta2 + (1 - beta2) * g * g
//! denom = sqrt(v) / sqrt(1 - beta2^t) + eps   // eps outside the square root
//! p  = p - lr / (1 - beta1^t) * m / denom
//! ```
//! Scalars are computed in f64 as Python does, the tensors in f32.
//!
//! **Parameter groups.** Weight decay applies to the weights of linear, convolution and
//! attention layers and to nothing else: a parameter gets *no* decay when its field name is
//! `bias`, `gamma` or `beta`, or when the module that declares it is a normalisation layer
//! (`LayerNorm`, `GroupNorm`, `BatchNorm`, `InstanceNorm`, `RmsNorm`). Both are read from the
//! module path that [`burn::module::ModuleMapper`] reports while walking the model (e.g.
//! `lin0.0.weight` in a `Linear` decays, `lin0.1.gamma` in a `LayerNorm` does not).
//!
//! **Speed.** On the CPU (`flex`) backend the update is one pass over parameter, gradient and
//! both moments: the parameter's storage is updated in place (no reallocation when the model
//! holds the only reference), the moments are plain `Vec<f32>` owned by the optimizer, and large
//! tensors are split across threads, each running an AVX2 kernel where the CPU has one. Other
//! backends go through host memory (correct, slower).
//!
//! **State.** `m`, `v` and the step count are saved to / loaded from one safetensors file keyed
//! by parameter path (`m.lin0.0.weight`, `v.lin0.0.weight`, metadata `step`), so a checkpoint
//! does not depend on in-memory parameter ids.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::{GradientCheckpointingStrategy, TensorData};
use serde::{Deserialize, Serialize};

use crate::huge_pages::{HUGE_MIN, zeroed_buffer};

/// Errors of saving and loading the optimizer state.
#[derive(Debug, thiserror::Error)]
pub enum AdamWError {
    /// The state file could not be read or written.
    #[error("cannot read or write optimizer state {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid optimizer state (cut short, wrong format).
    #[error(
        "optimizer state {path} is corrupt or not an AdamW state: {msg}; use an earlier checkpoint"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The state belongs to another model (parameter missing or of another size).
    #[error(
        "optimizer state {path} does not fit this model: {msg}; the checkpoint was made with another model config"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        msg: String,
    },
}

/// Hyper-parameters of [`AdamW`] that do not change per step (lr and beta1 come from the
/// schedule at every step).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AdamWConfig {
    /// Second-moment decay (PyTorch default 0.999).
    pub beta2: f64,
    /// Added to the denominator, outside the square root (PyTorch default 1e-8).
    pub eps: f64,
    /// Decoupled weight decay of the decaying group (paper: 1e-2; biases and norms get 0).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta2: 0.999, eps: 1e-8, weight_decay: 1e-2 }
    }
}

impl AdamWConfig {
    /// A fresh optimizer (step 0, no moments yet).
    pub fn init(&self) -> AdamW {
        AdamW { config: *self, step: 0, states: BTreeMap::new() }
    }
}

/// Moments of one parameter.
#[derive(Debug, Clone)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
    /// Whether this optimizer already moved the parameter into a huge-page buffer.
    param_relocated: bool,
}

impl Moments {
    fn zeros(n: usize) -> Self {
        Self { m: zeroed_buffer(n), v: zeroed_buffer(n), param_relocated: false }
    }
}

/// AdamW with PyTorch's arithmetic and a fused CPU update. Built by [`AdamWConfig::init`].
#[derive(Debug, Clone)]
pub struct AdamW {
    config: AdamWConfig,
    step: u64,
    states: BTreeMap<String, Moments>,
}

/// Whether a parameter at `path` (dot-joined field names) declared by a module of type
/// `module_type` (burn's container name, e.g. `Struct:LayerNorm`) gets weight decay.
pub fn decays(path: &str, module_type: &str) -> bool {
    let field = path.rsplit('.').next().unwrap_or(path);
    let is_norm = ["LayerNorm", "GroupNorm", "BatchNorm", "InstanceNorm", "RmsNorm"]
        .iter()
        .any(|n| module_type.strip_prefix("Struct:") == Some(n));
    !(is_norm || matches!(field, "bias" | "gamma" | "beta"))
}

/// The per-step scalars, computed in f64 like PyTorch and used in f32.
#[derive(Debug, Clone, Copy)]
struct StepScalars {
    /// `1 - lr * wd` (1 for the no-decay group).
    decay: f32,
    /// `1 - beta1` (the lerp weight).
    w1: f32,
    beta2: f32,
    /// `1 - beta2`.
    w2: f32,
    /// `sqrt(1 - beta2^t)`.
    bc2_sqrt: f32,
    eps: f32,
    /// `lr / (1 - beta1^t)`.
    step_size: f32,
}

impl AdamW {
    /// The optimizer's fixed hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Number of steps taken (PyTorch's `state['step']`).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One optimizer step: every parameter of `model` that has a gradient in `grads` is updated
    /// with learning rate `lr` and first-moment decay `beta1` (both from the schedule).
    ///
    /// # Panics
    /// If a parameter is not f32, or a loaded state does not match the parameter's size (use
    /// [`AdamW::load`] with the model, which checks this).
    pub fn step<M: Module>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        lr: f64,
        beta1: f64,
    ) -> M {
        self.step += 1;
        let t = self.step as f64;
        let c = self.config;
        let base = StepScalars {
            decay: 1.0,
            w1: (1.0 - beta1) as f32,
            beta2: c.beta2 as f32,
            w2: (1.0 - c.beta2) as f32,
            bc2_sqrt: (1.0 - c.beta2.powf(t)).sqrt() as f32,
            eps: c.eps as f32,
            step_size: (lr / (1.0 - beta1.powf(t))) as f32,
        };
        let decayed = StepScalars { decay: (1.0 - lr * c.weight_decay) as f32, ..base };
        let mut mapper = StepMapper {
            grads: &mut grads,
            states: &mut self.states,
            path: Vec::new(),
            plain: base,
            decayed,
        };
        model.map(&mut mapper)
    }

    /// Save `m`, `v` and the step count to a safetensors file (written to a temporary file and
    /// renamed, so a crash never leaves a half-written state under `path`).
    pub fn save(&self, path: &Path) -> Result<(), AdamWError> {
        use safetensors::tensor::{Dtype, TensorView};
        let io = |source| AdamWError::Io { path: path.to_path_buf(), source };
        let mut views = Vec::with_capacity(self.states.len() * 2);
        for (name, mom) in &self.states {
            for (prefix, data) in [("m", &mom.m), ("v", &mom.v)] {
                let bytes: &[u8] = bytemuck::cast_slice(data);
                let view = TensorView::new(Dtype::F32, vec![data.len()], bytes).map_err(|e| {
                    AdamWError::Corrupt { path: path.to_path_buf(), msg: e.to_string() }
                })?;
                views.push((format!("{prefix}.{name}"), view));
            }
        }
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "brainscope-adamw-1".to_string());
        meta.insert("step".to_string(), self.step.to_string());
        meta.insert(
            "config".to_string(),
            serde_json::to_string(&self.config).expect("config serialises"),
        );
        let tmp = path.with_extension("safetensors.tmp");
        safetensors::serialize_to_file(views, &Some(meta), &tmp)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Load a state saved by [`AdamW::save`] and check it against `model`: every stored moment
    /// must belong to a parameter of the same size.
    pub fn load<M: Module>(path: &Path, model: &M) -> Result<Self, AdamWError> {
        let corrupt = |msg: String| AdamWError::Corrupt { path: path.to_path_buf(), msg };
        let io = |source| AdamWError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the checkpoint file is not modified while loading (checkpoints are written to
        // a temporary file and renamed into place).
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("brainscope-adamw-1") {
            return Err(corrupt("missing format tag 'brainscope-adamw-1'".into()));
        }
        let step: u64 = meta
            .get("step")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("missing or bad 'step'".into()))?;
        let config: AdamWConfig = meta
            .get("config")
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| corrupt("missing or bad 'config'".into()))?;
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;

        let sizes = param_sizes(model);
        let mut states = BTreeMap::new();
        for (name, view) in st.tensors() {
            let Some(param) = name.strip_prefix("m.") else { continue };
            let v_view = st.tensor(&format!("v.{param}")).map_err(|e| corrupt(e.to_string()))?;
            let to_vec =
                |view: &safetensors::tensor::TensorView<'_>| -> Result<Vec<f32>, AdamWError> {
                    if view.dtype() != safetensors::Dtype::F32 {
                        return Err(corrupt(format!("{name} is {:?}, expected F32", view.dtype())));
                    }
                    let mut out = zeroed_buffer(view.data().len() / 4);
                    for (o, b) in out.iter_mut().zip(view.data().chunks_exact(4)) {
                        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                    Ok(out)
                };
            let (m, v) = (to_vec(&view)?, to_vec(&v_view)?);
            match sizes.get(param) {
                None => {
                    return Err(AdamWError::Mismatch {
                        path: path.to_path_buf(),
                        msg: format!("the model has no parameter '{param}'"),
                    });
                }
                Some(&n) if n != m.len() || n != v.len() => {
                    return Err(AdamWError::Mismatch {
                        path: path.to_path_buf(),
                        msg: format!(
                            "'{param}' has {n} values in the model but {} in the state",
                            m.len()
                        ),
                    });
                }
                Some(_) => {}
            }
            states.insert(param.to_string(), Moments { m, v, param_relocated: false });
        }
        Ok(Self { config, step, states })
    }
}

/// Every float parameter of `model` as `(path, decays)`, in module order: which group
/// [`AdamW::step`] puts it in (see [`decays`]).
pub fn param_groups<M: Module>(model: &M) -> Vec<(String, bool)> {
    struct Groups {
        path: Vec<(String, String)>,
        out: Vec<(String, bool)>,
    }
    impl ModuleVisitor for Groups {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.push((name.to_string(), container_type.to_string()));
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            let path = self.path.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(".");
            let module_type = self.path.last().map(|(_, t)| t.as_str()).unwrap_or("");
            let d = decays(&path, module_type);
            self.out.push((path, d));
        }
    }
    let mut v = Groups { path: Vec::new(), out: Vec::new() };
    model.visit(&mut v);
    v.out
}

/// Parameter path -> number of values, for checking a loaded state.
fn param_sizes<M: Module>(model: &M) -> HashMap<String, usize> {
    struct Sizes {
        path: Vec<String>,
        out: HashMap<String, usize>,
    }
    impl ModuleVisitor for Sizes {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.insert(self.path.join("."), param.shape().num_elements());
        }
    }
    let mut v = Sizes { path: Vec::new(), out: HashMap::new() };
    model.visit(&mut v);
    v.out
}

/// Walks the model, updating each parameter that has a gradient.
struct StepMapper<'a> {
    grads: &'a mut GradientsParams,
    states: &'a mut BTreeMap<String, Moments>,
    /// (field name, container type) from the root to the current parameter.
    path: Vec<(String, String)>,
    plain: StepScalars,
    decayed: StepScalars,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper): (ParamId, Tensor<D>, _) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = self.path.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(".");
        let module_type = self.path.last().map(|(_, t)| t.as_str()).unwrap_or("");
        let scalars = if decays(&path, module_type) { self.decayed } else { self.plain };
        let numel = tensor.shape().num_elements();
        let state = self.states.entry(path.clone()).or_insert_with(|| Moments::zeros(numel));
        assert_eq!(
            state.m.len(),
            numel,
            "AdamW state of '{path}' does not match the parameter size"
        );

        let context = AutodiffContext::capture(&tensor);
        let updated = update_tensor(tensor.inner(), grad, state, &scalars, &path);
        Param::from_mapped_value(id, context.restore(updated), mapper)
    }
}

/// The autodiff state a parameter carries, put back after the update on the inner backend.
struct AutodiffContext {
    autodiff: bool,
    require_grad: bool,
    checkpointing: Option<GradientCheckpointingStrategy>,
}

impl AutodiffContext {
    fn capture<const D: usize>(t: &Tensor<D>) -> Self {
        Self {
            autodiff: t.is_autodiff(),
            require_grad: t.is_require_grad(),
            checkpointing: t.gradient_checkpointing_strategy(),
        }
    }

    fn restore<const D: usize>(self, inner: Tensor<D>) -> Tensor<D> {
        if !self.autodiff {
            return inner;
        }
        let mut t = Tensor::from_inner(inner);
        if let Some(s) = self.checkpointing {
            t = t.with_gradient_checkpointing_strategy(s);
        }
        if self.require_grad {
            t = t.require_grad();
        }
        t
    }
}

/// Update one parameter (no autodiff) with its gradient; in place on the flex backend.
fn update_tensor<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    state: &mut Moments,
    s: &StepScalars,
    path: &str,
) -> Tensor<D> {
    assert_eq!(
        param.shape(),
        grad.shape(),
        "gradient of '{path}' has another shape than the parameter"
    );
    let device = param.device();
    // A handle to fall back on if the tensor is not on the flex backend; dropped before the
    // in-place update so the parameter's storage is unshared again.
    let fallback = param.clone();
    match param.try_into_primitive::<Flex>() {
        Ok(mut p) => {
            drop(fallback);
            assert_eq!(
                p.dtype(),
                burn::tensor::DType::F32,
                "AdamW needs f32 parameters ('{path}')"
            );
            let g = grad.try_into_primitive::<Flex>().unwrap_or_else(|e| {
                panic!("gradient of '{path}' is not on the parameter's device: {e:?}")
            });
            if !(p.is_contiguous() && p.layout().start_offset() == 0) {
                p = p.to_contiguous();
            }
            if !state.param_relocated && p.layout().num_elements() >= HUGE_MIN {
                // Once: copy the parameter into a huge-page buffer that is then updated in place.
                let mut buf = zeroed_buffer(p.layout().num_elements());
                buf.copy_from_slice(p.as_slice::<f32>().expect("contiguous f32 parameter"));
                p = FlexTensor::from_data(TensorData::new(buf, p.layout().shape().clone()));
            }
            state.param_relocated = true;
            let g = if g.as_slice::<f32>().is_some() { g } else { g.to_contiguous() };
            let gs = g.as_slice::<f32>().expect("contiguous f32 gradient");
            // Copy-on-write only when someone else still holds the parameter's storage.
            let n = gs.len();
            let ps = &mut p.storage_mut::<f32>()[..n];
            fused_update(ps, gs, &mut state.m, &mut state.v, s);
            Tensor::from_primitive::<Flex>(p)
        }
        Err(_) => host_update(fallback, grad, state, s, &device),
    }
}

/// The update through host memory, for non-CPU backends.
fn host_update<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    state: &mut Moments,
    s: &StepScalars,
    device: &Device,
) -> Tensor<D> {
    let shape = param.shape();
    let mut p: Vec<f32> =
        param.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 parameter");
    let g: Vec<f32> =
        grad.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 gradient");
    fused_update(&mut p, &g, &mut state.m, &mut state.v, s);
    Tensor::from_data(TensorData::new(p, shape), device)
}

/// Tensors smaller than this are updated on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// One pass over parameter, gradient and moments, split across threads for large tensors.
fn fused_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n, "AdamW buffers of different sizes");
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    if n < PARALLEL_MIN || threads == 1 {
        update_chunk(p, g, m, v, s);
        return;
    }
    // Chunks aligned to 64 values so every thread but the last runs whole SIMD blocks.
    let chunk = n.div_ceil(threads).div_ceil(64) * 64;
    std::thread::scope(|scope| {
        let parts = p
            .chunks_mut(chunk)
            .zip(g.chunks(chunk))
            .zip(m.chunks_mut(chunk))
            .zip(v.chunks_mut(chunk));
        for (((p, g), m), v) in parts {
            scope.spawn(move || update_chunk(p, g, m, v, s));
        }
    });
}

/// Update one contiguous chunk, with AVX2 where the CPU has it.
fn update_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { simd::update_avx2(p, g, m, v, s) };
            return;
        }
    }
    update_scalar(p, g, m, v, s);
}

/// The reference (scalar) update, in PyTorch's order of operations.
#[inline]
fn update_scalar(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    for i in 0..p.len() {
        let gi = g[i];
        let mi = m[i] + s.w1 * (gi - m[i]);
        let vi = v[i] * s.beta2 + s.w2 * gi * gi;
        let denom = vi.sqrt() / s.bc2_sqrt + s.eps;
        p[i] = p[i] * s.decay - s.step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! AVX2 version of [`super::update_scalar`]: 8 values per instruction, the same operations
    //! in the same order (no fused multiply-add), so results equal the scalar path bit for bit.
    //!
    //! The loop is written in assembly because the crate is built at opt-level 1 with debug
    //! assertions in dev/test, where the intrinsics' wrappers (stack spills, per-load overlap
    //! checks) made the update 2.5x slower than the same code at opt-level 3.
    use super::StepScalars;
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2; the four slices must have the same length.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn update_avx2(
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        s: &StepScalars,
    ) {
        let n = p.len();
        let n8 = n / 8 * 8;
        if n8 > 0 {
            let (w1, beta2, w2) =
                (_mm256_set1_ps(s.w1), _mm256_set1_ps(s.beta2), _mm256_set1_ps(s.w2));
            let (bc2, eps) = (_mm256_set1_ps(s.bc2_sqrt), _mm256_set1_ps(s.eps));
            let (decay, step) = (_mm256_set1_ps(s.decay), _mm256_set1_ps(s.step_size));
            // SAFETY: every access is at index i..i+8 with i + 8 <= n8 <= n for all four slices,
            // which do not overlap (one &mut and shared borrows of distinct buffers).
            unsafe {
                std::arch::asm!(
                    "2:",
                    "vmovups {g}, ymmword ptr [{gp} + {i}*4]",
                    "vmovups {m}, ymmword ptr [{mp} + {i}*4]",
                    "vsubps {t}, {g}, {m}",          // g - m
                    "vmulps {t}, {t}, {w1}",         // w1 * (g - m)
                    "vaddps {m}, {m}, {t}",          // m + w1 * (g - m)
                    "vmovups ymmword ptr [{mp} + {i}*4], {m}",
                    "vmovups {v}, ymmword ptr [{vp} + {i}*4]",
                    "vmulps {v}, {v}, {beta2}",      // v * beta2
                    "vmulps {t}, {g}, {w2}",         // w2 * g
                    "vmulps {t}, {t}, {g}",          // w2 * g * g
                    "vaddps {v}, {v}, {t}",
                    "vmovups ymmword ptr [{vp} + {i}*4], {v}",
                    "vsqrtps {t}, {v}",
                    "vdivps {t}, {t}, {bc2}",        // sqrt(v) / bc2_sqrt
                    "vaddps {t}, {t}, {eps}",        // denom
                    "vdivps {m}, {m}, {t}",          // m / denom
                    "vmulps {m}, {m}, {step}",       // step_size * (m / denom)
                    "vmovups {p}, ymmword ptr [{pp} + {i}*4]",
                    "vmulps {p}, {p}, {decay}",      // p * (1 - lr * wd)
                    "vsubps {p}, {p}, {m}",
                    "vmovups ymmword ptr [{pp} + {i}*4], {p}",
                    "add {i}, 8",
                    "cmp {i}, {n}",
                    "jb 2b",
                    i = inout(reg) 0usize => _,
                    n = in(reg) n8,
                    pp = in(reg) p.as_mut_ptr(),
                    gp = in(reg) g.as_ptr(),
                    mp = in(reg) m.as_mut_ptr(),
                    vp = in(reg) v.as_mut_ptr(),
                    w1 = in(ymm_reg) w1,
                    beta2 = in(ymm_reg) beta2,
                    w2 = in(ymm_reg) w2,
                    bc2 = in(ymm_reg) bc2,
                    eps = in(ymm_reg) eps,
                    decay = in(ymm_reg) decay,
                    step = in(ymm_reg) step,
                    g = out(ymm_reg) _,
                    m = out(ymm_reg) _,
                    v = out(ymm_reg) _,
                    p = out(ymm_reg) _,
                    t = out(ymm_reg) _,
                    options(nostack),
                );
            }
        }
        super::update_scalar(&mut p[n8..], &g[n8..], &mut m[n8..], &mut v[n8..], s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_groups_by_module_path() {
        assert!(decays("lin0.0.weight", "Struct:Linear"));
        assert!(decays("upsampler.conv_in.weight", "Struct:Conv2d"));
        assert!(!decays("upsampler.conv_in.bias", "Struct:Conv2d"));
        assert!(!decays("lin0.1.gamma", "Struct:LayerNorm"));
        assert!(!decays("lin0.1.beta", "Struct:LayerNorm"));
        assert!(!decays("norm.gamma", "Struct:GroupNorm"));
        assert!(!decays("norm.weight", "Struct:GroupNorm"));
    }

    #[test]
    fn simd_and_scalar_paths_agree() {
        let n = 1037;
        let g: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-3).collect();
        let s = StepScalars {
            decay: 0.9999,
            w1: 0.1,
            beta2: 0.999,
            w2: 0.001,
            bc2_sqrt: 0.0316,
            eps: 1e-8,
            step_size: 1e-3,
        };
        let (mut p1, mut m1, mut v1) = (vec![0.5f32; n], vec![0.01f32; n], vec![1e-4f32; n]);
        let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
        update_chunk(&mut p1, &g, &mut m1, &mut v1, &s);
        update_scalar(&mut p2, &g, &mut m2, &mut v2, &s);
        assert_eq!(p1, p2);
        assert_eq!(m1, m2);
        assert_eq!(v1, v2);
    }
}
