//! Colours and styles of the console, or none at all under `NO_COLOR`. Part of the console's
//! state (the app holds one), used by every view.

use crate::experiments::state::RunState;
use ratatui::style::{Color, Modifier, Style};

/// Colours, or none at all when `NO_COLOR` is set. Every state also has a symbol, so nothing
/// depends on colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Use colours.
    pub color: bool,
}

impl Theme {
    /// Colours unless the `NO_COLOR` environment variable is set and non-empty.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color { Style::new().fg(c) } else { Style::new() }
    }

    /// Symbol and style of a state.
    pub fn state(&self, s: RunState) -> (&'static str, Style) {
        match s {
            RunState::Idle => ("·", self.fg(Color::Gray)),
            RunState::Queued => ("◷", self.fg(Color::Magenta)),
            RunState::Running => ("▶", self.fg(Color::Green).add_modifier(Modifier::BOLD)),
            RunState::Done => ("✔", self.fg(Color::Cyan)),
            RunState::Stopped => ("■", self.fg(Color::Yellow)),
            RunState::Crashed => ("✖", self.fg(Color::Red).add_modifier(Modifier::BOLD)),
        }
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        if self.color { Style::new().fg(Color::DarkGray) } else { Style::new() }
    }

    /// Titles and highlights.
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Warnings and errors.
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Selected table row.
    pub fn selected(&self) -> Style {
        if self.color {
            Style::new().bg(Color::DarkGray).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    /// Colour for series `i` (main experiment is 0, overlays follow).
    pub fn series(&self, i: usize) -> Style {
        const PALETTE: [Color; 6] =
            [Color::Cyan, Color::Magenta, Color::Yellow, Color::Green, Color::Blue, Color::Red];
        self.fg(PALETTE[i % PALETTE.len()])
    }
}
