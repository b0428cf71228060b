//! `brainscope demo`: generate the embedded demo dataset (Algonauts 2023 layout) and print its
//! summary.

use crate::demo::{self, DEFAULT_DEMO_DIR, DemoConfig, Plan};
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `brainscope demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write (the dataset root; the subject is `<out>/subj01`).
    #[arg(long, default_value = DEFAULT_DEMO_DIR)]
    pub out: PathBuf,
    /// Seed of every random draw (same seed and settings: identical files).
    #[arg(long, default_value_t = DemoConfig::default().seed)]
    pub seed: u64,
    /// Training images.
    #[arg(long, default_value_t = DemoConfig::default().train_images)]
    pub images: usize,
    /// Test images (0: no test split).
    #[arg(long, default_value_t = DemoConfig::default().test_images)]
    pub test_images: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = DemoConfig::default().image_size)]
    pub size: u32,
    /// Left-hemisphere vertices (subj01: 19004).
    #[arg(long, default_value_t = DemoConfig::default().lh_vertices)]
    pub lh: usize,
    /// Right-hemisphere vertices (subj01: 20544).
    #[arg(long, default_value_t = DemoConfig::default().rh_vertices)]
    pub rh: usize,
    /// Signal-to-noise ratio per vertex (signal sd / noise sd).
    #[arg(long, default_value_t = DemoConfig::default().snr)]
    pub snr: f32,
    /// Regenerate an existing demo folder (a non-demo folder is never overwritten).
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `brainscope demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = DemoConfig {
        seed: args.seed,
        train_images: args.images,
        test_images: args.test_images,
        image_size: args.size,
        lh_vertices: args.lh,
        rh_vertices: args.rh,
        snr: args.snr,
    };
    let (summary, fresh) = match demo::prepare(&config, &args.out, args.force)? {
        Plan::UpToDate(summary) => (summary, false),
        Plan::Generate | Plan::Regenerate => (
            demo::generate(&config, &args.out).with_context(|| {
                format!("generating the demo dataset in {}", args.out.display())
            })?,
            true,
        ),
    };
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        value["path"] = serde_json::Value::String(summary.path.display().to_string());
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{summary}");
        if !fresh {
            println!("(already there with these settings; --force regenerates it)");
        }
    }
    Ok(())
}
