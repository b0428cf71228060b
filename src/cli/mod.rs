//! Command line: clap derive. One module per subcommand; each exposes `Args` and `run`.
//! With no subcommand, `brainscope` opens the console.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod bench;
pub mod caption;
pub mod console;
pub mod data;
pub mod decode;
pub mod demo;
pub mod device_arg;
pub mod devices;
pub mod embed;
pub mod encode;
pub mod eval;
pub mod img2img;
pub mod latents;
pub mod metrics;
pub mod new;
pub mod rate;
pub mod recon;
pub mod show;
pub mod status;
pub mod stop;
pub mod submit;
pub mod sweep;
pub mod train;
pub mod train_vae;
pub mod vote;

/// brainscope: fMRI-to-image reconstruction experiments, from the terminal.
#[derive(Debug, Parser)]
#[command(name = "brainscope", version, about, long_about = None)]
pub struct Cli {
    /// Options of the console (used when no subcommand is given).
    #[command(flatten)]
    pub console: console::Args,
    /// What to do; none opens the console.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Every subcommand of the CLI.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the embedded demo dataset (Algonauts 2023 layout) and its VAE.
    Demo(demo::Args),
    /// Inspect an Algonauts-layout dataset.
    Data(data::Args),
    /// Encode an image into a VAE latent (npy).
    Encode(encode::Args),
    /// Decode a VAE latent (npy) into a PNG.
    Decode(decode::Args),
    /// CLIP image and text embeddings (transformers' image_embeds / text_embeds).
    #[command(long_about = embed::LONG_ABOUT)]
    Embed(embed::Args),
    /// BLIP captions of images (transformers' generate: greedy or beam search).
    #[command(long_about = caption::LONG_ABOUT)]
    Caption(caption::Args),
    /// Stable Diffusion 1.x img2img from a hub pipeline folder (no safety checker).
    #[command(long_about = img2img::LONG_ABOUT)]
    Img2img(img2img::Args),
    /// Encode every image of a dataset into the latent cache.
    Latents(latents::Args),
    /// PixCorr and SSIM of a folder of reconstructions against a folder of targets.
    Metrics(metrics::Args),
    /// Score an experiment's checkpoint: latent L1, PixCorr, SSIM, 2-way, CLIP similarity.
    #[command(long_about = eval::long_about())]
    Eval(eval::Args),
    /// The winning experiment per sample, by CLIP (writes experiments/votes.json).
    #[command(long_about = vote::long_about())]
    Vote(vote::Args),
    /// The paper's guided reconstruction: BLIP caption + SD img2img of each low-level image.
    #[command(long_about = recon::LONG_ABOUT)]
    Recon(recon::Args),
    /// Train the small demo VAE on the demo images (weights/demo/vae).
    TrainVae(train_vae::Args),
    /// Train an experiment (detached by default).
    #[command(long_about = train::LONG_ABOUT)]
    Train(train::Args),
    /// Stop a running experiment gracefully.
    Stop(stop::Args),
    /// List experiments and their state.
    Status(status::Args),
    /// Create an experiment from another with edits (`--set KEY=VALUE`).
    New(new::Args),
    /// Create one experiment per combination of `--grid` values (listed in sweep.toml).
    Sweep(sweep::Args),
    /// Submit experiments to a Slurm cluster (`sbatch`; one job each or one array job).
    Submit(submit::Args),
    /// Print an image to the terminal (outside the console).
    Show(show::Args),
    /// Blind 2AFC human evaluation of reconstructions (or its summary with --json).
    #[command(long_about = rate::LONG_ABOUT)]
    Rate(rate::Args),
    /// Benchmarks (throughput and memory), beside PyTorch where a reference exists.
    Bench(bench::Args),
    /// The devices this build can run on (`--device` values): cpu, wgpu adapters, cuda GPUs.
    Devices(devices::Args),
}

/// Parse the command line, run it, and turn errors into a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => console::run(cli.console),
        Some(Command::Demo(a)) => demo::run(a),
        Some(Command::Data(a)) => data::run(a),
        Some(Command::Encode(a)) => encode::run(a),
        Some(Command::Decode(a)) => decode::run(a),
        Some(Command::Embed(a)) => embed::run(a),
        Some(Command::Caption(a)) => caption::run(a),
        Some(Command::Img2img(a)) => img2img::run(a),
        Some(Command::Latents(a)) => latents::run(a),
        Some(Command::Metrics(a)) => metrics::run(a),
        Some(Command::Eval(a)) => eval::run(a),
        Some(Command::Vote(a)) => vote::run(a),
        Some(Command::Recon(a)) => recon::run(a),
        Some(Command::TrainVae(a)) => train_vae::run(a),
        Some(Command::Train(a)) => train::run(a),
        Some(Command::Stop(a)) => stop::run(a),
        Some(Command::Status(a)) => status::run(a),
        Some(Command::New(a)) => new::run(a),
        Some(Command::Sweep(a)) => sweep::run(a),
        Some(Command::Submit(a)) => submit::run(a),
        Some(Command::Show(a)) => show::run(a),
        Some(Command::Rate(a)) => rate::run(a),
        Some(Command::Bench(a)) => bench::run(a),
        Some(Command::Devices(a)) => devices::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", crate::errors::chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}
