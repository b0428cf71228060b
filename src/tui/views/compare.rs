//! Side-by-side compare: one image across the marked experiments (target | each experiment's
//! low-level, and high-level when present), the metrics of each under its image, the vote
//! winner marked; `j`/`k` step through the images.
//!
//! Images are aligned by what they show (`samples.json` of the recon folder), never by sample
//! number: experiments of different seeds reconstruct different validation images, and one
//! experiment's target is never put beside another's reconstruction of something else. Each
//! experiment shows its final probe-set reconstructions (`recon/final-probe/`) when `eval`
//! wrote them, else its latest epoch; once one experiment is on the probe set (the same images
//! for all), a run that predates it says so in its column. Under each image: that image's
//! PixCorr and SSIM (scored off the draw path by [`crate::tui::sample_metrics`]) and the
//! experiment's eval numbers.

use crate::tui::app::App;
use crate::tui::chart::fmt_num;
use crate::tui::model::{Aligned, PREDATES_PROBE, ReconSet, vote_winner};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use std::path::PathBuf;

/// Narrowest image column.
const MIN_COL: u16 = 14;

/// Columns at least this wide write the metric names out.
const WIDE_COL: u16 = 30;

/// One experiment's image of the shown sample.
struct Hit {
    index: usize,
    target: Option<PathBuf>,
    low: PathBuf,
    high: Option<PathBuf>,
}

/// `0.123`, or `.123` / `-.123` when space is short.
fn num(v: f64, wide: bool) -> String {
    let s = format!("{v:.3}");
    if wide { s } else { s.replacen("0.", ".", 1) }
}

/// Draw the compare view into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let sets: Vec<(String, Option<ReconSet>)> = app
        .compare
        .iter()
        .filter_map(|id| Some((id.clone(), app.project.get(id)?.shown_recon(None))))
        .collect();
    // Every image any column shows, those shown by the most experiments first.
    let aligned = Aligned::new(&sets);
    let mut keys = aligned.keys.clone();
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
    let title = Line::from(vec![
        Span::styled(head, t.accent()),
        Span::styled(
            format!("· image {}/{} · in {count} of {} ", app.sample + 1, keys.len(), sets.len()),
            t.dim(),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [body, note] = Layout::vertical([Constraint::Min(4), Constraint::Length(1)]).areas(inner);
    let hits: Vec<Option<Hit>> = sets
        .iter()
        .map(|(id, set)| {
            let set = set.as_ref().filter(|s| !aligned.excluded(s))?;
            let (index, s) = set.find(id, &key)?;
            Some(Hit {
                index,
                target: s.file("target").cloned(),
                low: s.lowlevel()?.clone(),
                high: s.file("highlevel").cloned(),
            })
        })
        .collect();
    let winner = sets.iter().zip(&hits).find_map(|((_, set), hit)| {
        vote_winner(app.project.votes.as_ref(), set.as_ref()?, hit.as_ref()?.index)
    });
    let winner = winner.map(str::to_string);
    let unaligned = sets.iter().any(|(id, _)| key.starts_with(&format!("{id}#")));
    let note_text = if unaligned {
        "this run predates samples.json: its images cannot be matched with other runs'".into()
    } else {
        let name = std::path::Path::new(&key).file_name().map(|n| n.to_string_lossy());
        let name = name.unwrap_or_else(|| key.as_str().into());
        let set = if aligned.probe { "probe set" } else { "image" };
        format!("{set}: {name} · r PixCorr, s SSIM: this image, then its eval")
    };
    f.render_widget(Paragraph::new(note_text).style(t.dim()), note);
    let target = hits.iter().flatten().find_map(|h| h.target.clone());
    let fit = ((body.width / MIN_COL).max(2) - 1) as usize;
    let shown = sets.len().min(fit);
    let n = shown + 1;
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(body);
    // Images about square (halfblocks: a cell is two pixels tall), metrics right under them.
    let img_rows = body.width / n as u16 / 2 + 1;
    let target_imgs = target.clone().map(|p| vec![p]).unwrap_or_default();
    cell(f, cols[0], app, "target", target_imgs, Vec::new(), false, img_rows);
    for (k, ((id, set), hit)) in sets.iter().zip(&hits).take(shown).enumerate() {
        let r = cols[k + 1];
        match hit {
            Some(h) => {
                let won = winner.as_deref() == Some(id.as_str());
                let head = format!("{id}{}", if won { " ★ vote" } else { "" });
                let mut imgs = vec![h.low.clone()];
                imgs.extend(h.high.clone());
                let metrics = metric_lines(app, id, h, r.width >= WIDE_COL);
                cell(f, r, app, &head, imgs, metrics, won, img_rows);
            }
            None => {
                let excluded = set.as_ref().is_some_and(|s| aligned.excluded(s));
                let why = if excluded { PREDATES_PROBE } else { "not among its samples" };
                let [h, b] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(r);
                f.render_widget(
                    Paragraph::new(id.clone()).alignment(Alignment::Center).style(t.accent()),
                    h,
                );
                f.render_widget(
                    Paragraph::new(why)
                        .alignment(Alignment::Center)
                        .style(if excluded { t.warn() } else { t.dim() })
                        .wrap(Wrap { trim: true }),
                    b,
                );
            }
        }
    }
    if sets.len() > shown {
        let more = format!(" +{} more: widen the terminal ", sets.len() - shown);
        let w = (more.chars().count() as u16).min(area.width);
        let r =
            Rect::new(area.x + area.width.saturating_sub(w + 1), area.y + area.height - 1, w, 1);
        f.render_widget(Paragraph::new(more).style(t.warn()), r);
    }
}

/// Under an experiment's image: this image's PixCorr / SSIM (scored off the draw path; `…`
/// until ready), the experiment's eval numbers (split named), best val L1 and human 2AFC.
fn metric_lines(app: &mut App, id: &str, h: &Hit, wide: bool) -> Vec<String> {
    let (r, s) = if wide { ("PixCorr ", "SSIM ") } else { ("r ", "s ") };
    let this = match &h.target {
        Some(target) => match app.sample_metrics.get(target, &h.low) {
            Some(Ok(p)) => format!("{r}{} {s}{}", num(p.pixcorr, wide), num(p.ssim, wide)),
            Some(Err(_)) => "unreadable image".into(),
            None => "scoring…".into(),
        },
        None => "no target image".into(),
    };
    let Some(e) = app.project.get(id) else { return vec![this] };
    let eval = match &e.run.eval {
        Some(ev) => {
            format!("{} {r}{} {s}{}", ev.split.name(), num(ev.pixcorr, wide), num(ev.ssim, wide))
        }
        None => "not evaluated".into(),
    };
    let l1 = e.best_val().map_or("-".into(), |b| fmt_num(b.1));
    let human = e.human.lowlevel.accuracy.map_or("-".into(), |a| format!("{:.0}%", a * 100.0));
    vec![this, eval, format!("L1 {l1} 2AFC {human}")]
}

/// Header, images stacked (low-level over high-level, `img_rows` each), metrics lines.
#[allow(clippy::too_many_arguments)] // one drawing helper, called twice
fn cell(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    head: &str,
    images: Vec<PathBuf>,
    metrics: Vec<String>,
    won: bool,
    img_rows: u16,
) {
    let t = app.theme;
    let img_h = img_rows * images.len().max(1) as u16;
    let [h, body, m] =
        Layout::vertical([Constraint::Length(1), Constraint::Max(img_h), Constraint::Length(3)])
            .areas(area);
    let style = if won { t.warn() } else { t.accent() };
    f.render_widget(Paragraph::new(head.to_string()).alignment(Alignment::Center).style(style), h);
    let lines: Vec<Line> = metrics.into_iter().map(Line::from).collect();
    f.render_widget(Paragraph::new(lines).alignment(Alignment::Center).style(t.dim()), m);
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
