//! `brainscope bench <what>`: benchmarks that print figures (never timed assertions in tests).

use clap::Subcommand;

/// Arguments of `brainscope bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which benchmark to run.
    #[command(subcommand)]
    pub what: Bench,
}

/// The available benchmarks.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Peak RSS while loading a real-size (subj01) dataset.
    Data(crate::bench::data::Args),
    /// SD-VAE encode/decode at real size with random weights.
    Vae(crate::bench::vae::Args),
    /// Low-level model training throughput at the paper's size.
    Train(crate::bench::train::Args),
    /// Console frame time with many experiments and long histories.
    Console(crate::bench::console::Args),
    /// CLIP ViT-L/14 image embedding at real size (random weights), beside transformers.
    Clip(crate::bench::clip::Args),
    /// BLIP-large caption of one image (random weights, greedy and beams), beside transformers.
    Blip(crate::bench::blip::Args),
    /// One SD 1.5 UNet call at real size (random weights), beside diffusers.
    Unet(crate::bench::unet::Args),
    /// The paper's img2img (38 UNet calls) on one 512x512 image at SD 1.5 size (random weights).
    Img2img(crate::bench::img2img::Args),
}

/// Run the chosen benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        Bench::Data(a) => crate::bench::data::run(a),
        Bench::Vae(a) => crate::bench::vae::run(a),
        Bench::Train(a) => crate::bench::train::run(a),
        Bench::Console(a) => crate::bench::console::run(a),
        Bench::Clip(a) => crate::bench::clip::run(a),
        Bench::Blip(a) => crate::bench::blip::run(a),
        Bench::Unet(a) => crate::bench::unet::run(a),
        Bench::Img2img(a) => crate::bench::img2img::run(a),
    }
}
