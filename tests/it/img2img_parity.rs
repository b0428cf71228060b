//! `StableDiffusionImg2ImgPipeline` parity on the tiny random pipeline of
//! tests/fixtures/make_sd_fixtures.py (hub layout under tests/fixtures/sd/pipeline/), without the
//! UNet: a replaying [`NoisePredictor`] checks every UNet input (latents, timestep, text context)
//! against the ones diffusers fed its UNet and returns diffusers' output, so the tokenizer, text
//! encoder, VAE encode / posterior / scaling, add_noise, guidance, scheduler and decode /
//! postprocess are proven end to end. [`run_fixture_case`] is the hook for the real UNet.
//! Also `brainscope img2img`'s bad input, through the CLI.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use brainscope::pipelines::img2img::preprocess_image;
use brainscope::pipelines::{
    Img2ImgOptions, LatentMode, NoisePredictor, Randomness, SdPipeline, img2img,
};
use brainscope::schedulers::SchedulerKind;
use burn::prelude::*;
use burn::tensor::TensorData;
use serde_json::Value;

/// UNet inputs (latents, context) as diffusers saw them.
const INPUT_TOL: f32 = 1e-4;
/// The output image, in [0, 1] units.
const OUTPUT_TOL: f32 = 1e-3;

fn sd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd")
}

/// The recorded tensors of one img2img case.
pub struct Recording {
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Recording {
    fn load(case: &str) -> Self {
        let bytes = std::fs::read(sd_dir().join(format!("img2img_{case}.safetensors"))).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                (name, view.shape().to_vec(), values)
            })
            .collect();
        Self { tensors }
    }

    fn get(&self, name: &str) -> Option<&(String, Vec<usize>, Vec<f32>)> {
        self.tensors.iter().find(|(n, _, _)| n == name)
    }

    fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Option<Tensor<D>> {
        let (_, shape, values) = self.get(name)?;
        let shape: [usize; D] = shape.as_slice().try_into().expect("rank");
        Some(Tensor::from_data(TensorData::new(values.clone(), shape), device))
    }

    /// The UNet timesteps, in call order.
    pub fn timesteps(&self) -> Vec<f32> {
        self.get("timesteps").unwrap().2.clone()
    }
}

fn max_abs<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}

/// Replays diffusers' UNet: checks each call's inputs against the recorded ones and returns the
/// recorded output.
struct Replay {
    recording: Recording,
    calls: RefCell<usize>,
    worst_latents: RefCell<f32>,
    worst_context: RefCell<f32>,
}

impl NoisePredictor for Replay {
    fn predict(&self, latents: Tensor<4>, timestep: f32, context: Tensor<3>) -> Tensor<4> {
        let k = *self.calls.borrow();
        let device = latents.device();
        let ts = self.recording.timesteps();
        assert!(k < ts.len(), "more UNet calls than diffusers made ({})", ts.len());
        assert_eq!(timestep, ts[k], "UNet call {k}: timestep");
        let want = self.recording.tensor::<4>(&format!("unet_in_{k}"), &device).unwrap();
        let d = max_abs(latents, want);
        let dc = max_abs(context, self.recording.tensor::<3>("context", &device).unwrap());
        let mut wl = self.worst_latents.borrow_mut();
        *wl = wl.max(d);
        let mut wc = self.worst_context.borrow_mut();
        *wc = wc.max(dc);
        *self.calls.borrow_mut() += 1;
        self.recording.tensor::<4>(&format!("unet_out_{k}"), &device).unwrap()
    }
}

fn case_json(case: &str) -> Value {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(sd_dir().join("cases.json")).unwrap())
            .unwrap();
    cases.into_iter().find(|c| c["name"] == case).unwrap_or_else(|| panic!("no case {case}"))
}

/// Run the fixture case `case` (cases.json) through our pipeline with `predictor` as the UNet and
/// return the max abs difference of the output image from diffusers', in [0, 1] units. With the
/// real UNet ported, `run_fixture_case(case, &unet)` is its end-to-end parity test.
pub fn run_fixture_case(case: &str, predictor: &dyn NoisePredictor) -> f32 {
    let device = brainscope::backend::default_device();
    let spec = case_json(case);
    let sd = SdPipeline::load(&sd_dir().join("pipeline"), &device).expect("load fixture pipeline");
    let recording = Recording::load(case);
    let image =
        preprocess_image(&sd_dir().join("input.png"), sd.vae_scale_factor() as u32, &device)
            .unwrap();
    let options = Img2ImgOptions {
        prompt: spec["prompt"].as_str().unwrap().into(),
        negative_prompt: spec["negative_prompt"].as_str().unwrap().into(),
        strength: spec["strength"].as_f64().unwrap(),
        guidance_scale: spec["guidance"].as_f64().unwrap(),
        steps: spec["steps"].as_u64().unwrap() as usize,
        scheduler: match spec["scheduler"].as_str().unwrap() {
            "pndm" => SchedulerKind::Pndm,
            _ => SchedulerKind::Ddim,
        },
        latent_mode: match spec["latent_mode"].as_str().unwrap() {
            "sample" => LatentMode::Sample,
            _ => LatentMode::Argmax,
        },
    };
    let randomness = Randomness {
        seed: 0,
        noise: recording.tensor::<4>("noise", &device),
        posterior_noise: recording.tensor::<4>("posterior_noise", &device),
    };
    let mut steps_seen = 0;
    let out = img2img(&sd, predictor, image, &options, &randomness, &mut |done, total| {
        assert_eq!(total, spec["unet_calls"].as_u64().unwrap() as usize);
        steps_seen = done;
    })
    .expect("img2img");
    assert_eq!(steps_seen, spec["unet_calls"].as_u64().unwrap() as usize);
    max_abs(out, recording.tensor::<4>("output", &device).unwrap())
}

fn replay_case(case: &str) {
    let replay = Replay {
        recording: Recording::load(case),
        calls: RefCell::new(0),
        worst_latents: RefCell::new(0.0),
        worst_context: RefCell::new(0.0),
    };
    let d = run_fixture_case(case, &replay);
    let calls = *replay.calls.borrow();
    let (dl, dc) = (*replay.worst_latents.borrow(), *replay.worst_context.borrow());
    eprintln!(
        "img2img {case}: {calls} UNet calls, latents {dl:.2e}, context {dc:.2e}, output {d:.2e}"
    );
    assert_eq!(calls, replay.recording.timesteps().len(), "{case}: UNet calls");
    assert!(dc <= INPUT_TOL, "{case}: text context differs by {dc}");
    assert!(dl <= INPUT_TOL, "{case}: UNet input latents differ by {dl}");
    assert!(d <= OUTPUT_TOL, "{case}: output image differs by {d}");
}

#[test]
fn pndm_posterior_sample() {
    replay_case("pndm_sample");
}

#[test]
fn pndm_posterior_argmax_with_negative_prompt() {
    replay_case("pndm_argmax");
}

#[test]
fn ddim_posterior_sample() {
    replay_case("ddim_sample");
}

#[test]
fn ddim_argmax_without_guidance() {
    replay_case("ddim_argmax");
}

// ---- `brainscope img2img` bad input: clear error, non-zero exit, nothing written ----

fn cli_err(args: &[&str], out: &Path) -> String {
    let output = Command::cargo_bin("brainscope")
        .unwrap()
        .arg("img2img")
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(!output.status.success(), "img2img {args:?} succeeded");
    assert!(!out.exists(), "img2img {args:?} wrote {}", out.display());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_mentions(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "expected {n:?} in: {msg}");
    }
}

fn base_args(sd: &Path, image: &Path) -> Vec<String> {
    vec![
        "--sd".into(),
        sd.display().to_string(),
        "--image".into(),
        image.display().to_string(),
        "--prompt".into(),
        "a photo of a cat".into(),
    ]
}

fn with(mut base: Vec<String>, extra: &[&str]) -> Vec<String> {
    base.extend(extra.iter().map(|s| s.to_string()));
    base
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn cli_rejects_bad_strength_and_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.png");
    let base = base_args(&sd_dir().join("pipeline"), &sd_dir().join("input.png"));
    for s in ["0", "1.5", "-0.2"] {
        let flag = format!("--strength={s}");
        let err = cli_err(&strs(&with(base.clone(), &[&flag])), &out);
        assert_mentions(&err, &["strength must be in (0, 1]", s]);
    }
    let err = cli_err(&strs(&with(base.clone(), &["--steps", "0"])), &out);
    assert_mentions(&err, &["steps must be between 1 and"]);
    let err = cli_err(&strs(&with(base.clone(), &["--steps", "3", "--strength", "0.2"])), &out);
    assert_mentions(&err, &["leaves no denoising step", "--strength or --steps"]);
    let err = cli_err(&strs(&with(base, &["--steps", "2000"])), &out);
    assert_mentions(&err, &["steps must be between 1 and 1000", "2000"]);
}

#[test]
fn cli_names_the_missing_part() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.png");
    let src = sd_dir().join("pipeline");
    for (missing, needle) in [
        ("vae", "vae/"),
        ("unet", "unet/"),
        ("text_encoder", "text_encoder/"),
        ("tokenizer", "tokenizer/"),
        ("scheduler", "scheduler/"),
        ("model_index.json", "model_index.json"),
    ] {
        let dir = tmp.path().join(format!("no_{missing}"));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() != missing {
                std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
            }
        }
        let err = cli_err(&strs(&base_args(&dir, &sd_dir().join("input.png"))), &out);
        assert_mentions(&err, &[needle, "is missing", "download", "stable-diffusion-v1-5"]);
    }
}

#[test]
fn cli_rejects_wrong_noise_shape_and_small_image() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.png");
    let base = base_args(&sd_dir().join("pipeline"), &sd_dir().join("input.png"));
    let bad = tmp.path().join("bad.npy");
    ndarray_npy::write_npy(&bad, &ndarray::Array4::<f32>::zeros((1, 4, 5, 5))).unwrap();
    let bad_s = bad.display().to_string();
    for flag in ["--noise", "--posterior-noise"] {
        let err = cli_err(&strs(&with(base.clone(), &[flag, &bad_s])), &out);
        // input.png is 40x24, the fixture VAE downscales by 4: latents [1, 4, 6, 10].
        assert_mentions(&err, &["bad.npy", "[1, 4, 5, 5]", "expected [1, 4, 6, 10]"]);
    }
    let err = cli_err(&strs(&with(base.clone(), &["--noise", "/nonexistent/n.npy"])), &out);
    assert_mentions(&err, &["/nonexistent/n.npy"]);

    let small = tmp.path().join("small.png");
    image::RgbImage::new(3, 9).save(&small).unwrap();
    let err = cli_err(&strs(&base_args(&sd_dir().join("pipeline"), &small)), &out);
    assert_mentions(&err, &["small.png", "3x9", "too small", "4x4"]);
}

#[test]
fn help_says_there_is_no_safety_checker() {
    let output =
        Command::cargo_bin("brainscope").unwrap().args(["img2img", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert_mentions(
        &help,
        &["No safety checker", "--latent-mode", "--posterior-noise", "38 UNet calls"],
    );
}

/// The whole pipeline with the ported UNet (no replay): diffusers' image within [`OUTPUT_TOL`].
fn real_unet_case(case: &str) {
    let device = brainscope::backend::default_device();
    let unet = brainscope::models::unet::load_unet(&sd_dir().join("pipeline/unet"), &device)
        .expect("load the fixture UNet")
        .model;
    let d = run_fixture_case(case, &unet);
    eprintln!("img2img {case} with the ported UNet: output {d:.2e}");
    assert!(d <= OUTPUT_TOL, "{case}: output image differs by {d}");
}

#[test]
fn real_unet_pndm_sample_and_argmax() {
    real_unet_case("pndm_sample");
    real_unet_case("pndm_argmax");
}

#[test]
fn real_unet_ddim_sample_and_argmax() {
    real_unet_case("ddim_sample");
    real_unet_case("ddim_argmax");
}

#[test]
fn cli_runs_the_fixture_pipeline_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.png");
    let input = sd_dir().join("input.png");
    let args = base_args(&sd_dir().join("pipeline"), &input);
    let mut cmd = Command::cargo_bin("brainscope").unwrap();
    cmd.arg("img2img")
        .args(strs(&args))
        .arg("-o")
        .arg(&out)
        .arg("--steps")
        .arg("4")
        .arg("--seed")
        .arg("7");
    let assert = cmd.assert();
    let output = assert.get_output();
    assert!(output.status.success(), "img2img failed: {}", String::from_utf8_lossy(&output.stderr));
    let (iw, ih) = image::image_dimensions(&input).unwrap();
    let (ow, oh) = image::image_dimensions(&out).unwrap();
    assert_eq!((ow, oh), (iw / 8 * 8, ih / 8 * 8), "output keeps the (multiple-of-8) input size");
}
