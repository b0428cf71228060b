//! The clone form (`n`): a box over the current view with one line per field, the focused
//! field's cursor, and the library's error when a save was refused.

use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Draw the open form centred in `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let Some(form) = &app.form else { return };
    let t = app.theme;
    let error_rows: u16 = if form.error.is_some() { 4 } else { 0 };
    let w = 64.min(area.width);
    let h = (form.fields.len() as u16 + 4 + error_rows).min(area.height);
    let r = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
    f.render_widget(Clear, r);
    let title =
        format!(" clone experiment {} (as brainscope new --from {}) ", form.from, form.from);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, t.accent()))
        .border_style(t.accent());
    let mut lines = Vec::new();
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let changed = field.key.is_some() && field.value.trim() != field.original;
        let mut spans = vec![
            Span::styled(if focused { "▶ " } else { "  " }, t.accent()),
            Span::styled(
                format!("{:<11}", field.label),
                if focused { t.accent() } else { t.dim() },
            ),
            Span::raw(field.value.clone()),
        ];
        if focused {
            spans.push(Span::styled("▏", t.accent()));
        }
        if changed {
            spans.push(Span::styled(format!("  (was {})", field.original), t.dim()));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    match &form.error {
        Some(e) => lines.push(Line::from(Span::styled(e.clone(), t.warn()))),
        None => lines.push(Line::from(Span::styled(
            "Enter creates it (then s trains it) · Esc writes nothing",
            t.dim(),
        ))),
    }
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), r);
}
