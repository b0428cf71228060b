//! The fast paths as custom burn-autodiff operations on `Autodiff<Flex>`: the forward is the
//! slice kernel of [`super::kernels`], and each op registers a backward step that computes the
//! input and parameter gradients with the matching backward kernel (GEMMs for convolutions).
//!
//! The state of every step keeps the forward's inputs as flex primitives (cheap `Arc` clones),
//! so it works without a checkpointing strategy (burn's default, the one `device.autodiff()`
//! gives).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, BackendTypes, Flex};
use burn::tensor::TensorData;

use super::kernels::{self, ConvGeometry, NormGeometry};
use super::linear;

/// The autodiff float primitive on the flex backend.
pub(crate) type AdTensor = <Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive;

/// A flex primitive from a computed buffer.
pub(crate) fn flex(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
}

/// The contiguous f32 contents of a flex primitive (copied only when it is a strided view).
pub(crate) fn contiguous(p: &FlexTensor) -> FlexTensor {
    if p.as_slice::<f32>().is_some() { p.clone() } else { p.to_contiguous() }
}

fn slice(p: &FlexTensor) -> &[f32] {
    p.as_slice::<f32>().expect("contiguous f32 primitive")
}

/// What the convolution's backward step keeps.
#[derive(Debug, Clone)]
struct ConvState {
    input: FlexTensor,
    weight: FlexTensor,
    geometry: ConvGeometry,
}

impl ConvState {
    /// The gradients asked for by `need` (input, weight, bias).
    fn grads(&self, grad: FlexTensor, need: [bool; 3]) -> kernels::ConvGrads {
        let grad = contiguous(&grad);
        kernels::conv_backward(
            slice(&self.input),
            slice(&self.weight),
            slice(&grad),
            &self.geometry,
            need,
        )
    }

    fn input_shape(&self) -> Vec<usize> {
        let g = &self.geometry;
        vec![self.input.layout().shape().num_elements() / (g.c_in * g.h * g.w), g.c_in, g.h, g.w]
    }

    fn weight_shape(&self) -> Vec<usize> {
        let g = &self.geometry;
        vec![g.c_out, g.c_in, g.kh, g.kw]
    }
}

#[derive(Debug)]
struct ConvWithBias;

impl Backward<Flex, 3> for ConvWithBias {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, w, b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let state = ops.state;
        let g = state.grads(grad, [x.is_some(), w.is_some(), b.is_some()]);
        if let (Some(node), Some(dx)) = (x, g.input) {
            grads.register::<Flex>(node.id, flex(dx, &state.input_shape()));
        }
        if let (Some(node), Some(dw)) = (w, g.weight) {
            grads.register::<Flex>(node.id, flex(dw, &state.weight_shape()));
        }
        if let (Some(node), Some(db)) = (b, g.bias) {
            grads.register::<Flex>(node.id, flex(db, &[state.geometry.c_out]));
        }
    }
}

#[derive(Debug)]
struct ConvNoBias;

impl Backward<Flex, 2> for ConvNoBias {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let state = ops.state;
        let g = state.grads(grad, [x.is_some(), w.is_some(), false]);
        if let (Some(node), Some(dx)) = (x, g.input) {
            grads.register::<Flex>(node.id, flex(dx, &state.input_shape()));
        }
        if let (Some(node), Some(dw)) = (w, g.weight) {
            grads.register::<Flex>(node.id, flex(dw, &state.weight_shape()));
        }
    }
}

/// A stride-1 convolution of `[B, C_in, H, W]` as a tracked op: `[B, C_out, H', W']`.
pub(crate) fn conv2d(
    x: AdTensor,
    weight: AdTensor,
    bias: Option<AdTensor>,
    geometry: ConvGeometry,
) -> AdTensor {
    let input = contiguous(x.primitive());
    let w = contiguous(weight.primitive());
    let b = bias.as_ref().map(|b| contiguous(b.primitive()));
    let batch = input.layout().shape().num_elements() / (geometry.c_in * geometry.h * geometry.w);
    let (ho, wo) = geometry.output_size();
    let out = kernels::conv_forward(slice(&input), slice(&w), b.as_ref().map(slice), &geometry);
    let out = flex(out, &[batch, geometry.c_out, ho, wo]); // [B, C_out, H', W']
    let state = ConvState { input, weight: w, geometry };
    match bias {
        Some(bias) => match ConvWithBias
            .prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        },
        None => match ConvNoBias
            .prepare::<NoCheckpointing>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        },
    }
}

/// What the GroupNorm's backward step keeps.
#[derive(Debug, Clone)]
struct NormState {
    input: FlexTensor,
    /// `(gamma, beta)`.
    affine: Option<(FlexTensor, FlexTensor)>,
    geometry: NormGeometry,
    shape: Vec<usize>,
}

impl NormState {
    fn grads(&self, grad: FlexTensor) -> kernels::NormGrads {
        let grad = contiguous(&grad);
        let affine = self.affine.as_ref().map(|(g, b)| (slice(g), slice(b)));
        kernels::group_norm_backward(slice(&self.input), affine, slice(&grad), &self.geometry)
    }
}

#[derive(Debug)]
struct NormAffine;

impl Backward<Flex, 3> for NormAffine {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, gamma, beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let state = ops.state;
        let g = state.grads(grad);
        let c = state.geometry.channels;
        if let Some(node) = x {
            grads.register::<Flex>(node.id, flex(g.input, &state.shape));
        }
        if let Some(node) = gamma {
            grads.register::<Flex>(node.id, flex(g.gamma, &[c]));
        }
        if let Some(node) = beta {
            grads.register::<Flex>(node.id, flex(g.beta, &[c]));
        }
    }
}

#[derive(Debug)]
struct NormPlain;

impl Backward<Flex, 1> for NormPlain {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let state = ops.state;
        if let Some(node) = x {
            grads.register::<Flex>(node.id, flex(state.grads(grad).input, &state.shape));
        }
    }
}

/// GroupNorm (+SiLU) of `[B, C, H, W]` as a tracked op, with optional `(gamma, beta)`.
pub(crate) fn group_norm(
    x: AdTensor,
    affine: Option<(AdTensor, AdTensor)>,
    geometry: NormGeometry,
    shape: [usize; 4],
) -> AdTensor {
    let input = contiguous(x.primitive());
    let params =
        affine.as_ref().map(|(g, b)| (contiguous(g.primitive()), contiguous(b.primitive())));
    let out = kernels::group_norm_forward(
        slice(&input),
        params.as_ref().map(|(g, b)| (slice(g), slice(b))),
        &geometry,
    );
    let out = flex(out, &shape); // [B, C, H, W]
    let state = NormState { input, affine: params, geometry, shape: shape.to_vec() };
    match affine {
        Some((gamma, beta)) => match NormAffine
            .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        },
        None => match NormPlain.prepare::<NoCheckpointing>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(state, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        },
    }
}

#[derive(Debug)]
struct Upsample;

impl Backward<Flex, 1> for Upsample {
    /// `[B, C, H, W]` of the input.
    type State = [usize; 4];

    fn backward(self, ops: Ops<[usize; 4], 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let [_, _, h, w] = ops.state;
        if let Some(node) = x {
            let dx = kernels::upsample2x_backward(slice(&grad), h, w);
            grads.register::<Flex>(node.id, flex(dx, &ops.state));
        }
    }
}

/// Nearest 2x upsampling of `[B, C, H, W]` as a tracked op: `[B, C, 2H, 2W]`.
pub(crate) fn upsample_nearest2x(x: AdTensor, shape: [usize; 4]) -> AdTensor {
    let [b, c, h, w] = shape;
    let input = contiguous(x.primitive());
    let out = flex(kernels::upsample2x_forward(slice(&input), h, w), &[b, c, 2 * h, 2 * w]);
    match Upsample.prepare::<NoCheckpointing>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(shape, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// What the linear layer's backward step keeps: `x` `[m, k]` and `w` `[k, n]`.
#[derive(Debug, Clone)]
struct LinearState {
    input: FlexTensor,
    weight: FlexTensor,
    /// `(m, k, n)`.
    dims: (usize, usize, usize),
}

#[derive(Debug)]
struct LinearNoBias;

impl Backward<Flex, 2> for LinearNoBias {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, w] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node)); // [m, n]
        let LinearState { input, weight, dims: (m, k, n) } = ops.state;
        if let Some(node) = x {
            let dx = linear::backward_input(slice(&grad), slice(&weight), m, k, n);
            grads.register::<Flex>(node.id, flex(dx, &[m, k]));
        }
        if let Some(node) = w {
            let dw = linear::backward_weight(slice(&input), slice(&grad), m, k, n);
            grads.register::<Flex>(node.id, flex(dw, &[k, n]));
        }
    }
}

/// `x` `[m, k]` @ `w` `[k, n]` as a tracked op: `[m, n]`.
pub(crate) fn linear_no_bias(x: AdTensor, weight: AdTensor) -> AdTensor {
    let input = contiguous(x.primitive());
    let w = contiguous(weight.primitive());
    let (m, k) = (input.layout().shape()[0], input.layout().shape()[1]);
    let n = w.layout().shape()[1];
    let out = flex(linear::forward(slice(&input), slice(&w), m, k, n), &[m, n]); // [m, n]
    let state = LinearState { input, weight: w, dims: (m, k, n) };
    match LinearNoBias
        .prepare::<NoCheckpointing>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}
