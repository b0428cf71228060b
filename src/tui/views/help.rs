//! Help: every key binding, grouped by view.

use crate::tui::app::App;
use crate::tui::keys::HELP;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// Draw the help view into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let mut lines = Vec::new();
    for (group, keys) in HELP {
        lines.push(Line::from(Span::styled(*group, t.accent())));
        for (k, what) in *keys {
            lines.push(Line::from(vec![Span::raw(format!("  {k:<15} ")), Span::raw(*what)]));
        }
    }
    lines.push(Line::from(Span::styled(
        "States: · idle  ▶ running  ✔ done  ■ stopped  ✖ crashed.  Training runs detached: quitting keeps it going.",
        t.dim(),
    )));
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" help ", t.accent()));
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}
