//! The one integration-test binary (each binary links burn, so one binary builds and links
//! once). One module per area; `common` is the shared end-to-end harness.

mod clip_parity;
mod common;
mod data_bad_input;
mod data_cli;
mod data_numpy_fixture;
mod data_split;
mod demo_dataset;
mod demo_learnable;
mod e2e_console;
mod e2e_console_eval;
mod e2e_console_training;
mod eval_metrics;
mod hardening_runs;
mod human_eval;
mod latents_cache;
mod lowlevel_parity;
mod lowlevel_train;
mod metrics_tail;
mod optim_adamw;
mod optim_onecycle;
mod runs_control;
mod slurm;
mod train_e2e;
mod tui_eval;
mod tui_views;
mod vae_demo;
mod vae_parity;
