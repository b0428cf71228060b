//! `brainscope recon ID [--split probe|val] [--limit N] [--sd DIR] [--blip DIR] ...`: the paper's
//! guided reconstruction (library: [`crate::pipelines::guided`]).

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::eval::project_weights;
use crate::experiments::registry::find;
use crate::experiments::state::EvalSplit;
use crate::models::blip::Preprocess;
use crate::pipelines::guided::{GuidedRequest, guided_reconstruction};
use crate::schedulers::img2img_start;

/// The SD pipeline folder looked for when `--sd` is not given, relative to the project folder.
pub const DEFAULT_SD: &str = "weights/stable-diffusion-v1-5";
/// The BLIP folder looked for when `--blip` is not given, relative to the project folder.
pub const DEFAULT_BLIP: &str = "weights/blip-image-captioning-large";

/// `--help` text.
pub const LONG_ABOUT: &str = "\
The paper's guided reconstruction, sample by sample: BLIP captions the blurry low-level image
(\"blurry \" removed from the caption, as the seed code did), then Stable Diffusion img2img turns
caption + low-level image into a clear image (the paper's settings by default: strength 0.75,
guidance 6, 50 PNDM steps = 38 UNet calls from t = 741; no negative prompt; no safety checker).

Needs: the low-level images of `brainscope eval ID --split S` (experiments/<id>/recon/final-<S>/),
an SD 1.x hub pipeline folder (--sd, default weights/stable-diffusion-v1-5: runwayml/
stable-diffusion-v1-5 with model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)
and a BLIP captioning folder (--blip, default weights/blip-image-captioning-large:
Salesforce/blip-image-captioning-large); see weights/README.md. The default split is the
dataset's probe set, so experiments are reconstructed (and voted on) on the same images; the
paper voted on training images.

Writes beside the low-level images: sample-XX-caption.txt, sample-XX-highlevel.png and
highlevel.json (the settings). Resumable: finished samples are kept (Ctrl-C loses only the one in
progress) and the same command continues; other settings are refused unless --restart. Each
sample's noise comes from our ChaCha8 generator seeded with --seed + its dataset row. Real runs
are for GPU boxes (--device); on the CPU one SD 1.5 image takes minutes. `brainscope vote
--rule paper` then picks across experiments.";

/// Arguments of `brainscope recon`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment id (folder name under --dir).
    pub id: String,
    /// Experiments folder.
    #[arg(long, default_value = "experiments")]
    pub dir: PathBuf,
    /// Which final reconstructions (made by `brainscope eval --split S`).
    #[arg(long, value_enum, default_value = "probe")]
    pub split: EvalSplit,
    /// Only the first N samples.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// SD 1.x hub pipeline folder (default: weights/stable-diffusion-v1-5 of the project).
    #[arg(long, value_name = "DIR")]
    pub sd: Option<PathBuf>,
    /// BLIP captioning hub folder (default: weights/blip-image-captioning-large of the project).
    #[arg(long, value_name = "DIR")]
    pub blip: Option<PathBuf>,
    /// BLIP's pixels: hf (BlipImageProcessor) or seed (what the paper's code fed: raw 0-255).
    #[arg(long, value_enum, default_value_t = Preprocess::Hf)]
    pub blip_preprocess: Preprocess,
    /// Strength, guidance, steps, scheduler, latent mode, seed (as `brainscope img2img`).
    #[command(flatten)]
    pub diffusion: crate::cli::img2img::DiffusionArgs,
    /// Remake every high-level image of the selected samples.
    #[arg(long)]
    pub restart: bool,
    /// Print one JSON object per sample ({"sample", "row", "caption", "reused"}).
    #[arg(long)]
    pub json: bool,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
}

/// Run `brainscope recon`.
pub fn run(args: Args) -> anyhow::Result<()> {
    img2img_start(args.diffusion.steps, args.diffusion.strength)?;
    let (experiment_dir, _) = find(&args.dir, &args.id)?;
    if args.limit == Some(0) {
        anyhow::bail!("--limit 0 leaves no sample: give --limit 1 or more, or leave it out");
    }
    let request = GuidedRequest {
        experiment_dir,
        id: args.id.clone(),
        split: args.split,
        limit: args.limit,
        sd: project_weights(args.sd.as_deref(), &args.dir, DEFAULT_SD),
        blip: project_weights(args.blip.as_deref(), &args.dir, DEFAULT_BLIP),
        blip_preprocess: args.blip_preprocess,
        strength: args.diffusion.strength,
        guidance: args.diffusion.guidance,
        steps: args.diffusion.steps,
        scheduler: args.diffusion.scheduler,
        latent_mode: args.diffusion.latent_mode,
        seed: args.diffusion.seed,
        restart: args.restart,
        precision: args.diffusion.dtype,
        device: args.device.device_for(args.diffusion.dtype)?,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "recon {prefix} {bar:30} {pos}/{len} samples  {elapsed} (eta {eta})  {msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(args.id.clone());
    let json = args.json;
    let done = guided_reconstruction(&request, &mut |k, total, s| {
        bar.set_length(total as u64);
        bar.set_position(k as u64);
        bar.set_message(s.caption.clone());
        if json {
            let line = serde_json::json!({
                "sample": s.sample, "row": s.row, "caption": s.caption, "reused": s.reused,
            });
            bar.suspend(|| println!("{line}"));
        }
    })?;
    bar.finish_and_clear();
    if !json {
        for s in &done {
            let note = if s.reused { " (kept from an earlier run)" } else { "" };
            println!("sample {:02} (row {}): {}{note}", s.sample, s.row, s.caption);
        }
        let dir = crate::experiments::state::RunPaths::new(&request.experiment_dir)
            .recon_final(args.split);
        println!("wrote {} high-level images to {}", done.len(), dir.display());
    }
    Ok(())
}
