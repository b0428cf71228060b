//! `brainscope embed --clip DIR [IMG...] [--text T]... [--json | -o OUT.npy] [--unnormalized]`:
//! CLIP image and text embeddings (transformers' `image_embeds` / `text_embeds`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::prelude::*;

use crate::models::clip::{self, ClipParts};

pub const ABOUT: &str = "CLIP image and text embeddings (transformers' image_embeds / text_embeds)";

pub const LONG_ABOUT: &str = "\
CLIP image and text embeddings, as transformers' CLIPModel computes them: L2-normalised
projections (image_embeds / text_embeds), or the raw projections with --unnormalized.

--clip DIR is a transformers CLIP hub folder holding config.json and model.safetensors, plus
preprocessor_config.json for images (CLIPImageProcessor; defaults when absent) and tokenizer.json
or vocab.json + merges.txt for text (also looked for in a sibling tokenizer/ folder, the SD layout).
The paper's model is openai/clip-vit-large-patch14: download its files from huggingface.co into
weights/clip-vit-large-patch14 (see weights/README.md). A text-only folder (SD 1.x text_encoder/ +
tokenizer/) embeds text only when it has a projection; a vision-only folder embeds images only.

Output: a summary on stdout by default; --json prints one object
{\"image_embeds\": [[...]...], \"text_embeds\": [[...]...], \"input_ids\": [[...]...]} (input_ids
unpadded, bos..eos; a key is absent when there is no such input); -o OUT.npy writes the image
embeddings [images, dim] as f32 (the text embeddings when there are no images).";

/// Arguments of `brainscope embed`.
#[derive(Debug, clap::Args)]
#[command(about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    /// CLIP hub folder (config.json + model.safetensors), e.g. weights/clip-vit-large-patch14.
    #[arg(long, value_name = "DIR")]
    pub clip: PathBuf,
    /// Images to embed (PNG or JPEG).
    #[arg(value_name = "IMG")]
    pub images: Vec<PathBuf>,
    /// A text to embed (repeatable).
    #[arg(long = "text", value_name = "T")]
    pub texts: Vec<String>,
    /// Print one JSON object with the embeddings and token ids.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
    /// Write the image embeddings (or the text ones when there are no images) as f32 npy.
    #[arg(short, long, value_name = "OUT.npy")]
    pub output: Option<PathBuf>,
    /// Raw projections instead of L2-normalised ones.
    #[arg(long)]
    pub unnormalized: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// The device to run on.
    #[command(flatten)]
    pub device: crate::cli::device_arg::DeviceArg,
    /// The float precision.
    #[command(flatten)]
    pub dtype: crate::cli::device_arg::DtypeArg,
}

fn rows(t: Tensor<2>) -> anyhow::Result<Vec<Vec<f32>>> {
    let [_, d] = t.dims();
    let values: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(values.chunks(d.max(1)).map(<[f32]>::to_vec).collect())
}

/// Run `brainscope embed`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.images.is_empty() && args.texts.is_empty() {
        bail!(
            "nothing to embed: give image files and/or --text \"...\" (see `brainscope embed --help`)"
        );
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let precision = args.dtype.precision;
    let device = args.device.device_for(precision)?;
    let parts = match (args.images.is_empty(), args.texts.is_empty()) {
        (false, false) => ClipParts::All,
        (true, false) => ClipParts::Text,
        _ => ClipParts::Vision,
    };
    let mut clip = clip::load_clip(&args.clip, parts, &device)?;
    clip.model = crate::dtype::cast_module(clip.model, precision);
    if !args.texts.is_empty() {
        clip.text_model()?;
    }
    if !args.images.is_empty() {
        clip.vision_model()?;
    }
    let finish = |t: Tensor<2>| {
        let t = crate::dtype::to_f32(t); // normalised in f32 whatever the model ran in
        if args.unnormalized { t } else { clip::l2_normalize(t) }
    };

    let mut image_embeds = Vec::new();
    if !args.images.is_empty() {
        let processor = clip.image_processor()?;
        // Read every image before running the model, so a bad file fails fast.
        let mut batches = Vec::new();
        for chunk in args.images.chunks(args.batch) {
            batches.push(processor.load_batch(chunk, &device).map_err(clip::ClipError::from)?); // [n, 3, S, S]
        }
        for pixels in batches {
            image_embeds.extend(rows(finish(clip.get_image_features(pixels)?))?);
        }
    }
    let (mut text_embeds, mut input_ids) = (Vec::new(), Vec::new());
    if !args.texts.is_empty() {
        let tokenizer = clip.tokenizer()?;
        let (ids, mask, unpadded) =
            tokenizer.encode_batch(&args.texts, &device).map_err(clip::ClipError::from)?; // [n, 77]
        text_embeds = rows(finish(clip.get_text_features(ids, Some(mask))?))?;
        input_ids = unpadded;
    }

    if args.json {
        let mut out = serde_json::Map::new();
        if !args.images.is_empty() {
            out.insert("image_embeds".into(), serde_json::to_value(&image_embeds)?);
        }
        if !args.texts.is_empty() {
            out.insert("text_embeds".into(), serde_json::to_value(&text_embeds)?);
            out.insert("input_ids".into(), serde_json::to_value(&input_ids)?);
        }
        println!("{}", serde_json::Value::Object(out));
    } else if let Some(path) = &args.output {
        let (what, embeds) =
            if image_embeds.is_empty() { ("text", &text_embeds) } else { ("image", &image_embeds) };
        let dim = embeds.first().map_or(0, Vec::len);
        let flat: Vec<f32> = embeds.iter().flatten().copied().collect();
        crate::data::npy::write_f32(path, &[embeds.len(), dim], &flat)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} {what} embeddings [{}, {dim}] to {}",
            embeds.len(),
            embeds.len(),
            path.display()
        );
        if what == "image" && !text_embeds.is_empty() {
            eprintln!("note: -o holds the image embeddings only; use --json for the text ones");
        }
    } else {
        let kind = if args.unnormalized { "raw projection" } else { "L2-normalised" };
        let head = |v: &[f32]| {
            let shown: Vec<String> = v.iter().take(4).map(|x| format!("{x:+.4}")).collect();
            format!("[{}, ...] ({}-d, {kind})", shown.join(", "), v.len())
        };
        for (path, e) in args.images.iter().zip(&image_embeds) {
            println!("image {}: {}", path.display(), head(e));
        }
        for ((text, e), ids) in args.texts.iter().zip(&text_embeds).zip(&input_ids) {
            println!("text {text:?} ({} tokens): {}", ids.len(), head(e));
        }
        if !image_embeds.is_empty() && !text_embeds.is_empty() {
            let cos = |a: &[f32], b: &[f32]| {
                let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
                dot / (n(a) * n(b))
            };
            for (path, ie) in args.images.iter().zip(&image_embeds) {
                for (text, te) in args.texts.iter().zip(&text_embeds) {
                    println!("cosine {} ~ {text:?}: {:.4}", path.display(), cos(ie, te));
                }
            }
        }
    }
    Ok(())
}
