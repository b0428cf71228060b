//! The console (ratatui): experiment table, detail with live charts, gallery, help.
//!
//! [`model`] reads the contract files incrementally on the registry's run-state reader
//! (`experiments::registry::RunReader`), holding a [`history`] only for what is drawn; [`app`]
//! holds the state and applies [`keys`] actions (one binding table, also the help); [`views`]
//! draw in the [`theme`]'s colours, [`event`] runs the loop, [`image`] encodes images off the UI
//! thread, [`terminal`] guarantees the terminal is restored. [`background_job`] runs `brainscope eval`
//! in the background (`e`), [`form`] is the clone form (`n`, through `experiments::create`),
//! [`sample_metrics`] scores the compared images off the draw path.

pub mod app;
pub mod background_job;
pub mod chart;
pub mod event;
pub mod form;
pub mod history;
pub mod image;
pub mod keys;
pub mod model;
pub mod sample_metrics;
pub mod terminal;
pub mod theme;
pub mod views;
