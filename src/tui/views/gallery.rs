//! Gallery: one validation sample across experiments side by side (target first), with the
//! vote winner marked when `votes.json` exists.

use crate::tui::app::App;
use crate::tui::views::detail::image_row;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use std::path::PathBuf;

/// Narrowest image column.
const MIN_COL: u16 = 14;

/// Draw the gallery into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let visible = app.visible();
    // Which epoch each experiment shows: the chosen one where it exists, else its latest.
    let chosen = app.recon_epoch;
    let mut columns: Vec<(String, usize, Vec<(String, PathBuf)>)> = Vec::new(); // id, epoch, files
    let mut sample_ids: Vec<usize> = Vec::new();
    for &i in &visible {
        let e = &app.project.experiments[i];
        let epoch = match chosen {
            Some(c) if e.recon_epochs.contains(&c) => c,
            _ => match e.recon_epochs.last() {
                Some(&l) => l,
                None => continue,
            },
        };
        let samples = e.recon_samples(epoch);
        sample_ids.extend(samples.keys().copied());
        columns.push((e.id.clone(), epoch, Vec::new()));
        let _ = samples;
    }
    sample_ids.sort_unstable();
    sample_ids.dedup();
    let epoch_note = match chosen {
        Some(c) => format!("epoch {}", c + 1),
        None => "latest epoch".into(),
    };
    if columns.is_empty() || sample_ids.is_empty() {
        let block =
            Block::default().borders(Borders::ALL).title(Span::styled(" gallery ", t.accent()));
        f.render_widget(
            Paragraph::new("No reconstructions yet: they appear after each training epoch.")
                .style(t.dim())
                .block(block),
            area,
        );
        return;
    }
    app.sample = app.sample.min(sample_ids.len() - 1);
    let sample = sample_ids[app.sample];
    let mut target: Option<PathBuf> = None;
    for (id, epoch, files) in &mut columns {
        let e = app.project.get(id).expect("listed above");
        if let Some(imgs) = e.recon_samples(*epoch).remove(&sample) {
            for (kind, path) in imgs {
                if kind == "target" {
                    target.get_or_insert(path);
                } else {
                    files.push((kind, path));
                }
            }
        }
    }
    columns.retain(|c| !c.2.is_empty());
    let winner = app.project.votes.as_ref().and_then(|v| v.winners.get(&sample).cloned());
    let vote_note = match (&app.project.votes, &winner) {
        (Some(_), Some(w)) => format!(" · vote winner: {w} ★"),
        (Some(_), None) => " · no vote for this sample".into(),
        (None, _) => String::new(),
    };
    let title = Line::from(vec![
        Span::styled(
            format!(
                " gallery · sample {} ({}/{}) · {epoch_note}",
                sample,
                app.sample + 1,
                sample_ids.len()
            ),
            t.accent(),
        ),
        Span::styled(vote_note, t.warn()),
        Span::raw(" "),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let fit = (inner.width / MIN_COL).max(1) as usize;
    let slots = fit.saturating_sub(usize::from(target.is_some())).max(1);
    let start = app.selected.min(columns.len().saturating_sub(slots));
    let shown: Vec<_> = columns.iter().skip(start).take(slots).collect();
    let n = shown.len() + usize::from(target.is_some());
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(inner);
    let mut k = 0;
    if let Some(tp) = &target {
        column(f, cols[0], app, "target", &[("target".into(), tp.clone())], None);
        k = 1;
    }
    for (j, (id, epoch, files)) in shown.iter().enumerate() {
        let won = winner.as_deref() == Some(id.as_str());
        let head = format!("{id} · ep {}{}", epoch + 1, if won { " ★" } else { "" });
        column(f, cols[k + j], app, &head, files, won.then_some("★"));
    }
    if columns.len() > slots {
        let more = format!(" {}-{} of {} (j/k) ", start + 1, start + shown.len(), columns.len());
        let r = Rect::new(
            inner.x + inner.width.saturating_sub(more.len() as u16 + 1),
            area.y + area.height - 1,
            more.len() as u16,
            1,
        );
        f.render_widget(Paragraph::new(more).style(t.dim()), r);
    }
}

fn column(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    head: &str,
    files: &[(String, PathBuf)],
    mark: Option<&str>,
) {
    let [h, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let style = if mark.is_some() { app.theme.warn() } else { app.theme.accent() };
    f.render_widget(Paragraph::new(head.to_string()).style(style), h);
    // Kinds stacked vertically within the column.
    let rows =
        Layout::vertical(vec![Constraint::Ratio(1, files.len().max(1) as u32); files.len().max(1)])
            .split(body);
    for (file, r) in files.iter().zip(rows.iter()) {
        image_row(f, *r, app, std::slice::from_ref(file), mark);
    }
}
