//! The console (ratatui): experiment table, detail with live charts, gallery, help.
//!
//! [`model`] reads the contract files incrementally on the registry's run-state reader
//! (`experiments::registry::RunReader`), holding a [`history`] only for what is drawn; [`app`]
//! holds the state and applies [`keys`] actions (one binding table, also the help); [`views`]
//! draw in the [`theme`]'s colours, [`event`] runs the loop, [`image`] encodes images off the UI
//! thread, [`terminal`] guarantees the terminal is restored.

pub mod app;
pub mod chart;
pub mod event;
pub mod history;
pub mod image;
pub mod keys;
pub mod model;
pub mod terminal;
pub mod theme;
pub mod views;
