//! PNDM and DDIM against diffusers (tests/fixtures/make_sd_fixtures.py, schedulers.json): the
//! timesteps of `set_timesteps` and img2img's cut, `add_noise`, and whole trajectories driven by
//! recorded random noise predictions, for SD 1.5's config and variants (beta schedules, spacings,
//! set_alpha_to_one, steps_offset, the PRK warm-up, v_prediction, clip_sample).

use std::path::Path;

use brainscope::schedulers::{Scheduler, SchedulerConfig, SchedulerKind};
use burn::prelude::*;
use burn::tensor::TensorData;
use serde_json::Value;

/// Max abs difference allowed on every sample of a trajectory.
const TOL: f32 = 1e-5;

fn cases() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd/schedulers.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensor(v: &Value, shape: [usize; 4], device: &Device) -> Tensor<4> {
    let values: Vec<f32> =
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn max_abs(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn trajectories_match_diffusers() {
    let device = brainscope::backend::default_device();
    let cases = cases();
    assert!(cases.len() >= 10);
    let mut worst = 0f32;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let kind = match case["kind"].as_str().unwrap() {
            "pndm" => SchedulerKind::Pndm,
            _ => SchedulerKind::Ddim,
        };
        let config: SchedulerConfig = serde_json::from_value(case["config"].clone()).unwrap();
        let shape: [usize; 4] = ints(&case["shape"])
            .iter()
            .map(|&d| d as usize)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let steps = case["steps"].as_u64().unwrap() as usize;
        let strength = case["strength"].as_f64().unwrap();

        let mut s = Scheduler::from_config(kind, &config, None).unwrap();
        s.set_timesteps(steps).unwrap();
        assert_eq!(s.timesteps(), ints(&case["timesteps_full"]).as_slice(), "{name}: timesteps");
        let kept = s.set_img2img_timesteps(steps, strength).unwrap();
        assert_eq!(kept, ints(&case["timesteps"]), "{name}: img2img timesteps");

        let x0 = tensor(&case["x0"], shape, &device);
        let noise = tensor(&case["noise"], shape, &device);
        let mut sample = s.add_noise(x0, noise, kept[0]);
        let d = max_abs(sample.clone(), tensor(&case["noisy"], shape, &device));
        assert!(d <= TOL, "{name}: add_noise differs by {d}");
        let outputs = case["model_outputs"].as_array().unwrap();
        let expected = case["samples"].as_array().unwrap();
        assert_eq!(outputs.len(), kept.len());
        for (k, &t) in kept.iter().enumerate() {
            sample = s.step(tensor(&outputs[k], shape, &device), t, sample).unwrap();
            let want = tensor(&expected[k], shape, &device);
            let scale = want.clone().abs().max().into_scalar::<f32>().max(1.0);
            let d = max_abs(sample.clone(), want) / scale;
            assert!(d <= TOL, "{name}: step {k} (t = {t}) differs by {d} (relative to {scale})");
            worst = worst.max(d);
        }
    }
    eprintln!("scheduler trajectories: worst step difference {worst:.2e} (tolerance {TOL:.0e})");
}

#[test]
fn paper_setting_is_38_calls_from_741() {
    let case = cases().into_iter().find(|c| c["name"] == "sd15_pndm_50_075").unwrap();
    let t = ints(&case["timesteps"]);
    assert_eq!((t.len(), t[0], t[1], t[2]), (38, 741, 721, 701));
    // diffusers' full list repeats the second timestep; the cut keeps PNDM's counter at 0 on 741.
    assert_eq!(&ints(&case["timesteps_full"])[..4], &[981, 961, 961, 941]);
}

#[test]
fn unsupported_config_values_are_named() {
    let bad: SchedulerConfig =
        serde_json::from_str(r#"{"beta_schedule": "sigmoid", "num_train_timesteps": 1000}"#)
            .unwrap();
    let err = Scheduler::from_config(SchedulerKind::Pndm, &bad, None).unwrap_err().to_string();
    assert!(
        err.contains("beta_schedule") && err.contains("sigmoid") && err.contains("scaled_linear"),
        "{err}"
    );
    let bad: SchedulerConfig = serde_json::from_str(r#"{"timestep_spacing": "karras"}"#).unwrap();
    let err = Scheduler::from_config(SchedulerKind::Ddim, &bad, None).unwrap_err().to_string();
    assert!(err.contains("timestep_spacing") && err.contains("trailing"), "{err}");
    let mut s =
        Scheduler::from_config(SchedulerKind::Pndm, &SchedulerConfig::default(), None).unwrap();
    assert!(s.set_timesteps(0).is_err());
    assert!(s.set_timesteps(1001).is_err());
}
