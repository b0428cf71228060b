//! The one integration-test binary (each binary links burn, so one binary builds and links
//! once). One module per area; `common` is the shared end-to-end harness.

mod blip_parity;
mod caption_cli;
mod clip_parity;
mod common;
mod data_bad_input;
mod data_cli;
mod data_numpy_fixture;
mod data_split;
mod demo_dataset;
mod demo_learnable;
mod e2e_console;
mod e2e_console_training;
mod eval_cli;
mod eval_metrics;
mod fast_cpu_grad;
mod hardening_runs;
mod human_eval;
mod img2img_parity;
mod latents_cache;
mod lowlevel_parity;
mod lowlevel_train;
mod metrics_tail;
mod optim_adamw;
mod optim_onecycle;
mod probe;
mod runs_control;
mod scheduler_parity;
mod slurm;
mod train_e2e;
mod tui_views;
mod unet_parity;
mod vae_demo;
mod vae_parity;
mod vote_cli;
