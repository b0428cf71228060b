//! The blind 2-AFC rating view: one reconstruction and two candidate targets, the experiment
//! hidden; the results once the session is over. State and rules live in
//! [`crate::eval::human::Session`] (held in `App::rating`); this only draws.

use crate::eval::human::{ExperimentSummary, Session};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// Draw the rating view into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let Some(session) = &app.rating else {
        let block = Block::default().borders(Borders::ALL).title(" blind 2AFC ");
        f.render_widget(
            Paragraph::new("No rating session: mark experiments in the table and press a.")
                .style(t.dim())
                .block(block),
            area,
        );
        return;
    };
    if session.is_over() {
        results(f, area, app);
    } else {
        trial(f, area, app);
    }
}

fn trial(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let s = app.rating.as_ref().expect("checked by draw");
    let current = s.current().expect("the session is not over").clone();
    let mut title = vec![
        Span::styled(
            format!(" blind 2AFC · trial {} of {} ", s.answered() + 1, s.total()),
            t.accent(),
        ),
        Span::styled(format!("· rater {} ", s.rater), t.dim()),
    ];
    if s.resumed > 0 {
        title.push(Span::styled(format!("· continued ({} done before) ", s.resumed), t.dim()));
    }
    let block = Block::default().borders(Borders::ALL).title(Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let left_out = if s.skipped.is_empty() {
        String::new()
    } else {
        let ids: Vec<&str> = s.skipped.iter().map(|k| k.id.as_str()).collect();
        format!(" ({} left out: no samples to rate)", ids.join(", "))
    };
    // Images are about square: a column `w` cells wide needs about `w / 2` rows of halfblocks,
    // so the labels sit right under them instead of at the bottom of a tall terminal.
    let img_h = (inner.width / 6 + 1).max(3);
    let [prompt, images, labels] =
        Layout::vertical([Constraint::Length(1), Constraint::Max(img_h), Constraint::Length(1)])
            .areas(inner);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw("Which image did the subject see? "),
            Span::styled(left_out, t.dim()),
        ])),
        prompt,
    );
    // Reconstruction | gap | candidate 1 | candidate 2.
    let [recon, _, one, two] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Length(2),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(images);
    let [recon_label, _, one_label, two_label] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Length(2),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(labels);
    image(f, recon, app, &current.recon);
    image(f, one, app, &current.left);
    image(f, two, app, &current.right);
    for (text, r, style) in [
        ("reconstruction", recon_label, t.dim()),
        ("1  (h ←)", one_label, t.accent()),
        ("2  (l →)", two_label, t.accent()),
    ] {
        f.render_widget(Paragraph::new(text).alignment(Alignment::Center).style(style), r);
    }
}

/// One image, one cell narrower than its column (a gap between neighbours). Never the file
/// name: with images off that would give the answer away.
fn image(f: &mut Frame, area: Rect, app: &mut App, path: &std::path::Path) {
    let area = Rect { width: area.width.saturating_sub(1), ..area };
    if app.images.picker().is_none() {
        f.render_widget(
            Paragraph::new("images are off (--image-protocol); rating needs them")
                .style(app.theme.warn())
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let dim = app.theme.dim();
    app.images.render(f, area, path, dim);
}

fn results(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let s = app.rating.as_ref().expect("checked by draw");
    let left = s.total() - s.answered();
    let title = format!(" blind 2AFC · session over · {} of {} answered ", s.answered(), s.total());
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, t.accent()));
    let mut lines = vec![
        Line::from(Span::styled(
            format!("This session ({}, rater {}; chance is 50%):", s.kind.name(), s.rater),
            t.accent(),
        )),
        Line::from(Span::styled(
            format!(
                " {:<8} {:>8} {:>8} {:>9} {:>11}",
                "ID", "ANSWERED", "CORRECT", "ACCURACY", "95% CI"
            ),
            t.dim(),
        )),
    ];
    for r in s.results() {
        lines.push(Line::from(row(&r)));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!("All {} ratings so far (every rater, every session):", s.kind.name()),
        t.accent(),
    )));
    for r in s.results() {
        if let Some(e) = app.project.get(&r.id) {
            let all = match s.kind {
                crate::experiments::state::ReconKind::Lowlevel => &e.human.lowlevel,
                crate::experiments::state::ReconKind::Highlevel => &e.human.highlevel,
            };
            lines.push(Line::from(format!(" {:<8} {}", r.id, all.line())));
        }
    }
    lines.push(Line::from(""));
    lines.extend(footer(s, left, t));
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}

fn row(r: &ExperimentSummary) -> String {
    let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.0}%", v * 100.0));
    let ci = match (r.ci_low, r.ci_high) {
        (Some(lo), Some(hi)) => format!("{:.0}-{:.0}%", lo * 100.0, hi * 100.0),
        _ => "-".into(),
    };
    format!(" {:<8} {:>8} {:>8} {:>9} {:>11}", r.id, r.trials, r.correct, pct(r.accuracy), ci)
}

fn footer(s: &Session, left: usize, t: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        "Every answer is saved in the experiment's human-2afc.jsonl.".to_string(),
        t.dim(),
    ))];
    if left > 0 {
        lines.push(Line::from(Span::styled(
            format!("{left} trial(s) unanswered: rating the same experiments again continues."),
            t.dim(),
        )));
    }
    for k in &s.skipped {
        lines.push(Line::from(Span::styled(format!("left out: {}", k.reason), t.warn())));
    }
    lines.push(Line::from(Span::styled(
        "q / Esc / Enter: back   u: take back the last answer".to_string(),
        t.accent(),
    )));
    lines
}
