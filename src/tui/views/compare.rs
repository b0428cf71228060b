//! Side-by-side compare: one image across the marked experiments (target | each experiment's
//! low-level, and high-level when present), the metrics of each under its image, the vote
//! winner marked; `j`/`k` step through the images.
//!
//! Images are aligned by what they show (`samples.json` of the recon folder, through
//! [`crate::eval::human::SampleSource`]), never by sample number: experiments of different
//! seeds reconstruct different validation images, and one experiment's target is never put
//! beside another's reconstruction of something else. An experiment without that image says
//! so in its column. (The probe set of issue 14 makes every experiment show the same images.)

use crate::eval::human::{SampleSet, SampleSource, ValidationSamples};
use crate::experiments::state::ReconKind;
use crate::tui::app::App;
use crate::tui::chart::fmt_num;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use std::path::PathBuf;

/// Narrowest image column.
const MIN_COL: u16 = 14;

/// One experiment's column.
struct Column {
    id: String,
    /// Its low-level and high-level sample sets (latest epoch each), when it has them.
    low: Option<SampleSet>,
    high: Option<SampleSet>,
    /// Best val L1 and human 2-AFC accuracy, one per line.
    metrics: String,
}

impl Column {
    fn find(&self, key: &str) -> Option<(usize, PathBuf, Option<PathBuf>, PathBuf)> {
        let s = self.low.as_ref()?.samples.iter().find(|s| s.key == key)?;
        let high = self
            .high
            .as_ref()
            .and_then(|h| h.samples.iter().find(|x| x.key == key))
            .map(|x| x.recon.clone());
        Some((s.index, s.recon.clone(), high, s.target.clone()))
    }
}

/// Draw the compare view into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let source = ValidationSamples;
    let columns: Vec<Column> = app
        .compare
        .iter()
        .filter_map(|id| {
            let e = app.project.get(id)?;
            let low = source.samples(id, &e.dir, ReconKind::Lowlevel, None).ok();
            let high = source.samples(id, &e.dir, ReconKind::Highlevel, None).ok();
            let l1 = e.best_val().map_or("-".into(), |b| fmt_num(b.1));
            let human =
                e.human.lowlevel.accuracy.map_or("-".into(), |a| format!("{:.0}%", a * 100.0));
            Some(Column { id: id.clone(), low, high, metrics: format!("L1 {l1}\n2AFC {human}") })
        })
        .collect();
    // Every image any column shows, those shown by the most experiments first.
    let mut keys: Vec<(String, usize)> = Vec::new();
    for c in &columns {
        for s in c.low.iter().flat_map(|l| &l.samples) {
            match keys.iter_mut().find(|(k, _)| *k == s.key) {
                Some((_, n)) => *n += 1,
                None => keys.push((s.key.clone(), 1)),
            }
        }
    }
    keys.sort_by_key(|(_, n)| std::cmp::Reverse(*n)); // stable: first appearance within a count
    let head = format!(" compare · {} ", app.compare.join(" "));
    if keys.is_empty() {
        let block = Block::default().borders(Borders::ALL).title(Span::styled(head, t.accent()));
        f.render_widget(
            Paragraph::new("No reconstructions yet: they appear after each training epoch.")
                .style(t.dim())
                .block(block),
            area,
        );
        return;
    }
    app.sample = app.sample.min(keys.len() - 1);
    let (key, count) = keys[app.sample].clone();
    let winners = app.project.votes.as_ref().map(|v| v.winners.clone()).unwrap_or_default();
    let winner = |c: &Column, index: usize| winners.get(&index).is_some_and(|w| *w == c.id);
    let title = Line::from(vec![
        Span::styled(head, t.accent()),
        Span::styled(
            format!("· image {}/{} · in {count} of {} ", app.sample + 1, keys.len(), columns.len()),
            t.dim(),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [body, note] = Layout::vertical([Constraint::Min(4), Constraint::Length(1)]).areas(inner);
    let aligned = !columns.iter().any(|c| key.starts_with(&format!("{}#", c.id)));
    let note_text = if aligned {
        let name = std::path::Path::new(&key).file_name().map(|n| n.to_string_lossy());
        format!("image: {}", name.unwrap_or_else(|| key.as_str().into()))
    } else {
        "this run predates samples.json: its images cannot be matched with other runs'".into()
    };
    f.render_widget(Paragraph::new(note_text).style(t.dim()), note);
    let found: Vec<_> = columns.iter().map(|c| c.find(&key)).collect();
    let target = found.iter().flatten().map(|(_, _, _, t)| t.clone()).next();
    let fit = ((body.width / MIN_COL).max(2) - 1) as usize;
    let shown = columns.len().min(fit);
    let n = shown + 1;
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(body);
    // Images about square (halfblocks: a cell is two pixels tall), metrics right under them.
    let img_rows = body.width / n as u16 / 2 + 1;
    let target = target.map(|p| vec![p]).unwrap_or_default();
    cell(f, cols[0], app, "target", target, "", false, img_rows);
    for (k, (c, hit)) in columns.iter().zip(&found).take(shown).enumerate() {
        let r = cols[k + 1];
        match hit {
            Some((index, low, high, _)) => {
                let won = winner(c, *index);
                let head = format!("{}{}", c.id, if won { " ★ vote" } else { "" });
                let mut imgs = vec![low.clone()];
                imgs.extend(high.clone());
                cell(f, r, app, &head, imgs, &c.metrics, won, img_rows);
            }
            None => {
                let [h, b] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(r);
                f.render_widget(
                    Paragraph::new(c.id.clone()).alignment(Alignment::Center).style(t.accent()),
                    h,
                );
                f.render_widget(
                    Paragraph::new("not among its samples")
                        .alignment(Alignment::Center)
                        .style(t.dim())
                        .wrap(Wrap { trim: true }),
                    b,
                );
            }
        }
    }
    if columns.len() > shown {
        let more = format!(" +{} more: widen the terminal ", columns.len() - shown);
        let w = (more.chars().count() as u16).min(area.width);
        let r =
            Rect::new(area.x + area.width.saturating_sub(w + 1), area.y + area.height - 1, w, 1);
        f.render_widget(Paragraph::new(more).style(t.warn()), r);
    }
}

/// Header, images stacked (low-level over high-level, `img_rows` each), metrics lines.
#[allow(clippy::too_many_arguments)] // one drawing helper, called twice
fn cell(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    head: &str,
    images: Vec<PathBuf>,
    metrics: &str,
    won: bool,
    img_rows: u16,
) {
    let t = app.theme;
    let img_h = img_rows * images.len().max(1) as u16;
    let [h, body, m] =
        Layout::vertical([Constraint::Length(1), Constraint::Max(img_h), Constraint::Length(2)])
            .areas(area);
    let style = if won { t.warn() } else { t.accent() };
    f.render_widget(Paragraph::new(head.to_string()).alignment(Alignment::Center).style(style), h);
    f.render_widget(
        Paragraph::new(metrics.to_string()).alignment(Alignment::Center).style(t.dim()),
        m,
    );
    if images.is_empty() {
        return;
    }
    let rows =
        Layout::vertical(vec![Constraint::Ratio(1, images.len() as u32); images.len()]).split(body);
    let dim = t.dim();
    for (path, r) in images.iter().zip(rows.iter()) {
        let r = Rect { width: r.width.saturating_sub(1), ..*r };
        app.images.render(f, r, path, dim);
    }
}
