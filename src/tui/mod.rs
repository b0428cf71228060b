//! The console (ratatui): experiment table, detail with live charts, gallery, help.
