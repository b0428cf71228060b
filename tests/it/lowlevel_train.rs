//! Training the low-level model with this crate's AdamW and OneCycleLR: the parameter groups
//! follow the rule (decay on linear/conv/attention weights only), and a few steps on a fixed
//! batch lower the L1 loss with dropout active (host-drawn masks, `forward_train`).

use brainscope::models::lowlevel::{LowLevelConfig, LowLevelWidths};
use brainscope::train::adamw::{AdamWConfig, param_groups};
use brainscope::train::onecycle::OneCycleConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;

fn tiny() -> LowLevelConfig {
    LowLevelConfig::new(24)
        .with_widths(LowLevelWidths {
            hidden: 32,
            blocks: 2,
            proj_channels: 8,
            upsampler_channels: vec![8, 16],
            ..LowLevelWidths::default()
        })
        .with_proj_size(4)
        .with_norm_groups(4)
}

#[test]
fn decay_groups_cover_the_model() {
    let model = tiny().init(&Device::flex(), 0);
    let groups = param_groups(&model);
    let get = |p: &str| {
        groups.iter().find(|(n, _)| n == p).unwrap_or_else(|| panic!("no {p} in {groups:?}")).1
    };
    assert!(get("lin0.0.weight"));
    assert!(get("mlp.1.0.weight"));
    assert!(get("lin1.weight"));
    assert!(!get("lin0.1.gamma") && !get("lin0.1.beta"));
    assert!(!get("norm.gamma") && !get("norm.beta"));
    assert!(get("upsampler.conv_in.weight") && !get("upsampler.conv_in.bias"));
    assert!(get("upsampler.mid_block.attentions.0.to_q.weight"));
    assert!(!get("upsampler.mid_block.attentions.0.to_q.bias"));
    assert!(!get("upsampler.mid_block.attentions.0.group_norm.gamma"));
    assert!(!get("upsampler.up_blocks.0.resnets.0.norm1.gamma"));
    assert!(!get("upsampler.conv_norm_out.beta"));
    // Exactly the rank >= 2 tensors decay (PyTorch's usual "no decay on biases and norms").
    let n_decay = groups.iter().filter(|(_, d)| *d).count();
    let n_matrix =
        groups.iter().filter(|(n, _)| n.ends_with("weight") && !n.contains("norm")).count();
    assert_eq!(n_decay, n_matrix, "{groups:?}");
}

#[test]
fn loss_decreases_over_a_few_steps() {
    let device = Device::flex().autodiff();
    let cfg = tiny();
    let mut model = cfg.init(&device, 3);
    let [c, h, w] = cfg.output_shape();
    let (x, y) = brainscope::backend::with_seed(&device, 4, || {
        let x = Tensor::<2>::random([6, 24], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<4>::random([6, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        (x, y)
    });
    let steps = 30;
    let mut sched = OneCycleConfig::new(3e-3, steps, 0.2).init().unwrap();
    let mut optim = AdamWConfig::default().init();
    let mut losses = Vec::new();
    for k in 0..steps {
        let v = if k == 0 { sched.current().unwrap() } else { sched.step().unwrap() };
        let pred = model.forward_train(x.clone(), &mut brainscope::rng::dropout_rng(3, k as u64));
        let loss = (pred - y.clone()).abs().mean();
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        assert_eq!(grads.len(), param_groups(&model).len(), "every parameter gets a gradient");
        model = optim.step(model, grads, v.lr, v.beta1);
    }
    let first = losses[..3].iter().sum::<f32>() / 3.0;
    let last = losses[steps - 3..].iter().sum::<f32>() / 3.0;
    assert!(last < 0.9 * first, "loss did not decrease: {losses:?}");
}
