//! `brainscope caption --blip DIR IMG... [--beams N] [--max-length N | --max-new-tokens N]
//! [--min-length N] [--repetition-penalty F] [--prefix TEXT] [--preprocess hf|seed] [--json]`:
//! BLIP captions as transformers' `BlipForConditionalGeneration.generate`.

use std::path::PathBuf;

use anyhow::bail;
use serde::Serialize;

use crate::models::blip::{self, GenerateOptions, Preprocess, preprocess};

pub const ABOUT: &str =
    "BLIP captions of images (transformers' BlipForConditionalGeneration.generate)";

pub const LONG_ABOUT: &str = "\
BLIP captions of images, as transformers' BlipForConditionalGeneration.generate makes them:
greedy search by default, beam search with --beams N; the decoder starts from [DEC] (plus
--prefix, e.g. \"a picture of\") and stops on [SEP] or at the maximum length.

--blip DIR is a transformers BLIP captioning hub folder holding config.json, model.safetensors,
preprocessor_config.json (BlipImageProcessor; defaults when absent) and tokenizer.json or
vocab.txt (BERT uncased). The paper's model is Salesforce/blip-image-captioning-large: download
its files from huggingface.co into weights/blip-image-captioning-large (see weights/README.md).
A folder with only pytorch_model.bin gets the one-line conversion to model.safetensors.

Lengths count the prompt ([DEC] and the prefix), as transformers' max_length / min_length:
--max-length defaults to 20, the paper's setting (recent transformers versions called without
arguments generate 20 new tokens instead: --max-new-tokens 20).

--preprocess hf (default) is BlipImageProcessor (bicubic resize, 1/255, CLIP mean/std);
--preprocess seed feeds what the paper's code fed BLIP-large: the bicubic resize with raw 0-255
values, no normalisation, to reproduce the paper's captions.

Output: one line per image, `PATH: caption`; --json prints
[{\"image\": PATH, \"caption\": TEXT, \"ids\": [int...]}] with the ids as generate returns them
([DEC] first).";

/// Arguments of `brainscope caption`.
#[derive(Debug, clap::Args)]
#[command(about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    /// BLIP hub folder (config.json + model.safetensors), e.g. weights/blip-image-captioning-large.
    #[arg(long, value_name = "DIR")]
    pub blip: PathBuf,
    /// Images to caption (PNG or JPEG).
    #[arg(value_name = "IMG", required = true)]
    pub images: Vec<PathBuf>,
    /// Beams (1 = greedy search).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub beams: usize,
    /// Longest caption in tokens, prompt included (transformers' max_length).
    #[arg(long, value_name = "N", conflicts_with = "max_new_tokens")]
    pub max_length: Option<usize>,
    /// Most tokens generated after the prompt (transformers' max_new_tokens).
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<usize>,
    /// Shortest caption in tokens, prompt included ([SEP] is banned before it).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub min_length: usize,
    /// Repetition penalty (1 = none; transformers' repetition_penalty).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub repetition_penalty: f32,
    /// Beam search length penalty (transformers' length_penalty).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub length_penalty: f32,
    /// Text the caption starts with, e.g. "a picture of".
    #[arg(long, value_name = "TEXT")]
    pub prefix: Option<String>,
    /// Image preprocessing: hf (BlipImageProcessor) or seed (the paper's raw 0-255 pixels).
    #[arg(long, value_enum, default_value_t = Preprocess::Hf)]
    pub preprocess: Preprocess,
    /// Print a JSON array of {image, caption, ids}.
    #[arg(long)]
    pub json: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub batch: usize,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
    /// The float precision.
    #[command(flatten)]
    pub dtype: crate::cli::device_arg::DtypeArg,
}

#[derive(Serialize)]
struct Row {
    image: String,
    caption: String,
    ids: Vec<u32>,
}

/// Run `brainscope caption`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.beams == 0 {
        bail!("--beams must be at least 1 (1 = greedy search)");
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(args.repetition_penalty > 0.0) {
        bail!("--repetition-penalty must be positive (1 = none)");
    }
    let precision = args.dtype.precision;
    let device = args.device.device_for(precision)?;
    let mut model = blip::load_blip(&args.blip, &device)?;
    model.model = crate::dtype::cast_module(model.model, precision);
    let prompt = model.prompt(args.prefix.as_deref())?;
    let opts = GenerateOptions {
        max_length: match (args.max_length, args.max_new_tokens) {
            (_, Some(n)) => prompt.len() + n,
            (Some(m), None) => m,
            (None, None) => GenerateOptions::default().max_length,
        },
        min_length: args.min_length,
        num_beams: args.beams,
        repetition_penalty: args.repetition_penalty,
        length_penalty: args.length_penalty,
        ..Default::default()
    };
    // Settings first, then every image, before the model runs: a bad input fails fast.
    let positions = model.config.text_config.max_position_embeddings;
    blip::generate::check_options(&opts, prompt.len(), positions).map_err(blip::BlipError::from)?;
    let size = model.config.vision_config.image_size as u32;
    let processor =
        preprocess::processor(&args.blip, size, args.preprocess).map_err(blip::BlipError::from)?;
    let mut batches = Vec::new();
    for chunk in args.images.chunks(args.batch) {
        batches.push(
            preprocess::load_pixel_values(&processor, chunk, &device)
                .map_err(blip::BlipError::from)?,
        ); // [n, 3, S, S]
    }
    let mut rows = Vec::new();
    for (pixels, paths) in batches.into_iter().zip(args.images.chunks(args.batch)) {
        let captions = model.caption(pixels, args.prefix.as_deref(), &opts)?;
        for (c, p) in captions.into_iter().zip(paths) {
            rows.push(Row { image: p.display().to_string(), caption: c.text, ids: c.ids });
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&rows)?);
    } else {
        for r in &rows {
            println!("{}: {}", r.image, r.caption);
        }
    }
    Ok(())
}
