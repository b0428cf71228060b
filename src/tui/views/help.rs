//! Help: every key binding, grouped by view, in two columns so it fits 80x24. Drawn from the
//! key map itself ([`keys::GROUPS`]), so it lists exactly the keys that work.

use crate::tui::app::App;
use crate::tui::keys::{self, Group};
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
    let [cols, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let halves =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(cols);
    let (left, right) = keys::GROUPS.split_at(balanced_split(keys::GROUPS));
    for (groups, col) in [left, right].into_iter().zip(halves.iter()) {
        let width = groups.iter().flat_map(|g| g.bindings).map(|b| b.label().chars().count());
        let width = width.max().unwrap_or(0) + 1;
        let mut lines = Vec::new();
        for group in groups {
            lines.push(Line::from(Span::styled(group.title, t.accent())));
            for b in group.bindings {
                lines.push(Line::from(vec![
                    Span::styled(format!(" {:<width$}", b.label()), t.accent()),
                    Span::raw(b.help),
                ]));
            }
        }
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), *col);
    }
    let states = "· idle ▶ running ◷ queued ✔ done ■ stopped ✖ crashed · q keeps training on";
    f.render_widget(Paragraph::new(states).style(t.dim()), foot);
}

/// Where to cut the groups into two columns of about equal height (in lines).
fn balanced_split(groups: &[Group]) -> usize {
    let height = |g: &Group| 1 + g.bindings.len();
    let total: usize = groups.iter().map(height).sum();
    let mut acc = 0;
    let mut best = (usize::MAX, 0);
    for (i, g) in groups.iter().enumerate() {
        acc += height(g);
        let taller = acc.max(total - acc);
        if taller < best.0 {
            best = (taller, i + 1);
        }
    }
    best.1
}
