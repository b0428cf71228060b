//! Help: every key binding, grouped by view, in two columns so it fits 80x24.

use crate::tui::app::App;
use crate::tui::keys::HELP;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// Draw the help view into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let block = Block::default().borders(Borders::ALL).title(Span::styled(" help ", t.accent()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [cols, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);
    let halves =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(cols);
    // Split the groups where the two columns' line counts are closest.
    let lines = |g: &[(&str, &[(&str, &str)])]| g.iter().map(|(_, k)| k.len() + 1).sum::<usize>();
    let split = (1..HELP.len())
        .min_by_key(|&i| lines(&HELP[..i]).abs_diff(lines(&HELP[i..])))
        .unwrap_or(HELP.len());
    for (groups, col) in [&HELP[..split], &HELP[split..]].into_iter().zip(halves.iter()) {
        let mut lines = Vec::new();
        for (group, keys) in groups {
            lines.push(Line::from(Span::styled(*group, t.accent())));
            for (k, what) in *keys {
                lines.push(Line::from(vec![
                    Span::styled(format!(" {k:<11}"), t.accent()),
                    Span::raw(*what),
                ]));
            }
        }
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), *col);
    }
    let states = "States: · idle  ▶ running  ✔ done  ■ stopped  ✖ crashed.\nTraining runs detached: quitting the console keeps it going.";
    f.render_widget(Paragraph::new(states).style(t.dim()), foot);
}
