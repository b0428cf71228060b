//! One seed, one run, on every device: the weight init and the dropout masks are drawn on the
//! host (`brainscope::rng`), so two CPU runs of one seed are identical, another seed gives
//! another run, and a CPU run and a wgpu run of the tiny experiment are the same run (through the
//! CLI: the first train losses within float rounding, every val L1 within 1e-3 relative). The
//! device a run used is in status.json and `status`.
//! Without a wgpu build or a Vulkan adapter the wgpu test says so and skips (fails under
//! `BRAINSCOPE_REQUIRE_WGPU=1`, as the rest of the GPU group).

use crate::common::Project;
use brainscope::experiments::metrics::read_metrics;
use brainscope::experiments::state::{MetricRecord, Split, read_status};
use brainscope::models::lowlevel::{LowLevelConfig, LowLevelWidths};
use brainscope::rng::dropout_rng;
use burn::prelude::*;
use burn::tensor::TensorData;
use std::process::Output;

/// The bound on every val L1 of the CPU-vs-wgpu comparison (relative).
const DEVICE_RTOL: f64 = 1e-3;
/// Seed of the test VAE: one fixed set of latents, so the comparison is the same on every run.
const VAE_SEED: u64 = 0;
/// The asserted bound on the first [`SAME_START_STEPS`] train losses (relative): a device that
/// drew its own init, masks or shuffle would be 1e-2 or more apart at step 1.
const START_RTOL: f64 = 1e-4;
/// Steps whose train loss must agree within [`START_RTOL`].
const SAME_START_STEPS: usize = 3;

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Train the tiny experiment from scratch on `device` in the foreground; its metrics records.
fn train(p: &Project, device: &str) -> Vec<MetricRecord> {
    let out = p.run(&["train", "7", "--foreground", "--restart", "--device", device]);
    assert!(out.status.success(), "train --device {device}: {}\nlog:\n{}", text(&out), p.log());
    read_metrics(&p.dir().join("metrics.jsonl")).unwrap().0
}

fn values(records: &[MetricRecord], split: Split) -> Vec<f64> {
    records.iter().filter(|r| r.split == split).filter_map(|r| r.loss.or(r.l1)).collect()
}

/// Replace `from` (which must be there) by `to` in the experiment's experiment.toml.
fn edit_toml(p: &Project, from: &str, to: &str) {
    let path = p.dir().join("experiment.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    assert!(toml.contains(from), "{toml}");
    std::fs::write(&path, toml.replace(from, to)).unwrap();
}

fn set_seed(p: &Project, seed: u64) {
    edit_toml(p, "seed = 3\n", &format!("seed = {seed}\n"));
}

fn tiny() -> LowLevelConfig {
    LowLevelConfig::new(24)
        .with_widths(LowLevelWidths {
            hidden: 32,
            blocks: 2,
            dropout_in: 0.5,
            dropout_block: 0.3,
            proj_channels: 8,
            upsampler_channels: vec![8, 16],
        })
        .with_proj_size(4)
        .with_norm_groups(4)
}

fn flat<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// The model's weights in module order.
fn weights(model: &brainscope::models::lowlevel::LowLevelModel) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.push(flat(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

#[test]
fn the_seed_fixes_the_initial_weights_and_the_dropout_masks_whatever_the_device() {
    let cfg = tiny();
    let plain = cfg.init(&Device::flex(), 11);
    let autodiff = cfg.init(&Device::flex().autodiff(), 11);
    let (a, b) = (weights(&plain), weights(&autodiff));
    assert_eq!(a, b, "one seed, one init, with or without autodiff");
    let other = weights(&cfg.init(&Device::flex(), 12));
    assert_eq!(a.len(), other.len());
    // Every drawn tensor (not the norms' constant gammas and betas) changes with the seed.
    let drawn = a.iter().zip(&other).filter(|(x, y)| x != y).count();
    let constant = a.iter().filter(|t| t.iter().all(|&v| v == 0.0 || v == 1.0)).count();
    assert_eq!(drawn + constant, a.len(), "{drawn} drawn + {constant} constant tensors");
    assert!(drawn >= 10, "only {drawn} tensors depend on the seed");

    let device = Device::flex().autodiff();
    let model = cfg.init(&device, 11);
    let x: Vec<f32> = (0..3 * 24).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect();
    let x = || Tensor::<2>::from_data(TensorData::new(x.clone(), [3, 24]), &device); // [3, 24]
    let run = |step| flat(model.forward_train(x(), &mut dropout_rng(11, step)));
    assert_eq!(run(4), run(4), "a step's masks are fixed by the seed and the step");
    assert_ne!(run(4), run(5), "each step draws other masks");
    assert_ne!(run(4), flat(model.forward(x())), "dropout is active in training");
    assert_eq!(flat(model.forward(x())), flat(model.forward(x())), "eval mode draws nothing");
}

#[test]
fn two_cpu_runs_of_one_seed_are_identical_and_another_seed_gives_another_run() {
    let p = Project::new(2, 8);
    let first = train(&p, "cpu");
    let again = train(&p, "cpu");
    let (val, train_loss) = (values(&first, Split::Val), values(&first, Split::Train));
    assert_eq!(val.len(), 2, "{first:?}");
    assert!(!train_loss.is_empty());
    assert_eq!(values(&again, Split::Val), val, "same seed, same val L1, bit for bit");
    assert_eq!(values(&again, Split::Train), train_loss, "same seed, same losses");
    let status = read_status(&p.status_path()).unwrap().unwrap();
    assert_eq!(status.device.as_deref(), Some("cpu"));
    set_seed(&p, 4);
    let other = train(&p, "cpu");
    assert_ne!(values(&other, Split::Val), val, "another seed, another run");
}

#[test]
fn a_cpu_run_and_a_wgpu_run_of_one_seed_agree_and_status_names_each_device() {
    // The group's device (`wgpu`; `cuda` under scripts/gpu-check.sh), or a printed skip.
    let test = "a_cpu_run_and_a_wgpu_run_of_one_seed_agree";
    if crate::gpu_parity::gpu_or_skip(test).is_none() {
        return;
    }
    let gpu_device = crate::gpu_parity::gpu_name();
    // Two upsampler entries of 128 channels: `[128, 4, 4]` maps, so each GroupNorm group
    // normalises 4 channels x 16 pixels. The shared experiment's three entries start from
    // `[32, 2, 2]` maps (one channel over 4 pixels a group), a normalisation so ill-conditioned
    // that two CPU runs whose kernels only round differently (`BRAINSCOPE_FAST_CPU=0`) part by
    // 1e-3 and more within 2 epochs: the devices cannot agree better than the CPU with itself.
    let p = Project::with_vae_seed(2, 8, Some(VAE_SEED));
    edit_toml(&p, "upsampler_channels = [32, 32, 32]", "upsampler_channels = [128, 128]");
    // One project, so both runs read the latent cache the first one built.
    let cpu_records = train(&p, "cpu");
    let gpu_records = train(&p, &gpu_device);
    let rel = |c: f64, g: f64| (c - g).abs() / c.abs();
    let (cpu_train, gpu_train) =
        (values(&cpu_records, Split::Train), values(&gpu_records, Split::Train));
    assert_eq!(cpu_train.len(), 14, "2 epochs x 7 steps");
    assert_eq!(gpu_train.len(), cpu_train.len());
    for (step, (c, g)) in cpu_train.iter().zip(&gpu_train).enumerate() {
        eprintln!(
            "step {}: train loss cpu {c:.7} {gpu_device} {g:.7} (relative {:.2e})",
            step + 1,
            rel(*c, *g)
        );
        assert!(g.is_finite(), "step {}: {gpu_device} loss {g}", step + 1);
        if step < SAME_START_STEPS {
            assert!(
                rel(*c, *g) <= START_RTOL,
                "step {}: cpu {c} vs {gpu_device} {g}: the runs start apart ({:.2e})",
                step + 1,
                rel(*c, *g)
            );
        }
    }
    let (cpu, gpu) = (values(&cpu_records, Split::Val), values(&gpu_records, Split::Val));
    assert_eq!(cpu.len(), 2, "two epochs, two val L1");
    assert_eq!(gpu.len(), cpu.len());
    for (epoch, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        eprintln!(
            "epoch {}: val L1 cpu {c:.6} {gpu_device} {g:.6} (relative {:.2e})",
            epoch + 1,
            rel(*c, *g)
        );
        assert!(
            rel(*c, *g) <= DEVICE_RTOL,
            "epoch {}: val L1 cpu {c} vs {gpu_device} {g}: {:.2e} apart, over {DEVICE_RTOL:e}",
            epoch + 1,
            rel(*c, *g)
        );
    }
    let status = read_status(&p.status_path()).unwrap().unwrap();
    let device = status.device.expect("the trainer records its device");
    let kind = gpu_device.split(':').next().unwrap();
    assert!(device.starts_with(kind), "{device}");
    let out = p.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["experiments"][0]["device"], device.as_str(), "{json:#}");
    let table = String::from_utf8_lossy(&p.run(&["status"]).stdout).into_owned();
    assert!(table.contains("DEVICE") && table.contains(&format!(" {kind}")), "{table}");
}
