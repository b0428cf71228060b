//! Gallery: one image across the (visible) experiments side by side, target first, with the
//! vote winner marked when `votes.json` covers it.
//!
//! Each experiment shows its final probe-set reconstructions (`recon/final-probe/`, written by
//! `brainscope eval`) when they exist, else the chosen or latest epoch. Samples are aligned by
//! the dataset image `samples.json` names ([`Aligned`]); among probe-set runs, a run whose
//! images come from elsewhere (it predates the probe set) says so in its column instead of
//! showing a different image. Runs that all predate `samples.json` are shown by sample number,
//! as they always were (said in the title). Where `brainscope recon` has run, a column shows
//! low | high-level images with the BLIP caption that prompted the high-level one below them
//! (truncated to the column), as the detail view does.

use crate::tui::app::App;
use crate::tui::model::{Aligned, PREDATES_PROBE, ReconSet, vote_winner};
use crate::tui::views::detail::image_row;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use std::path::PathBuf;

/// Narrowest image column.
const MIN_COL: u16 = 14;

/// What one experiment's column shows.
enum Shown {
    /// Its images of the sample (not the target): `(kind, path)`, and the sample's caption
    /// (`sample-XX-caption.txt`) when `recon` wrote one.
    Images(Vec<(String, PathBuf)>, Option<String>),
    /// A note instead of images.
    Note(&'static str),
}

/// Draw the gallery into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let chosen = app.recon_epoch;
    let sets: Vec<(String, Option<ReconSet>)> = app
        .visible()
        .iter()
        .map(|&i| &app.project.experiments[i])
        .filter_map(|e| Some((e.id.clone(), Some(e.shown_recon(chosen)?))))
        .collect();
    // Runs without any samples.json: by sample number (the legacy gallery).
    let legacy = present(&sets)
        .all(|(_, s)| s.split.is_none() && s.samples.values().all(|x| x.row.is_none()));
    let aligned = if legacy { by_number(&sets) } else { Aligned::new(&sets) };
    let keys = &aligned.keys;
    if keys.is_empty() {
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
    app.sample = app.sample.min(keys.len() - 1);
    let (key, _) = keys[app.sample].clone();
    let mut target: Option<PathBuf> = None;
    let mut winner: Option<String> = None;
    let mut columns: Vec<(String, String, Shown)> = Vec::new(); // id, folder label, shown
    for (id, set) in &sets {
        let Some(set) = set else { continue };
        if aligned.excluded(set) {
            columns.push((id.clone(), set.label(), Shown::Note(PREDATES_PROBE)));
            continue;
        }
        let hit = if legacy {
            key.parse::<usize>().ok().and_then(|i| Some((i, set.samples.get(&i)?)))
        } else {
            set.find(id, &key)
        };
        let Some((index, sample)) = hit else { continue };
        if let Some(tp) = sample.file("target") {
            target.get_or_insert(tp.clone());
        }
        if winner.is_none() {
            winner = vote_winner(app.project.votes.as_ref(), set, index).map(str::to_string);
        }
        let files: Vec<_> = sample.files.iter().filter(|(k, _)| k != "target").cloned().collect();
        if !files.is_empty() {
            columns.push((id.clone(), set.label(), Shown::Images(files, set.caption(index))));
        }
    }
    let vote_note = match (&app.project.votes, &winner) {
        (Some(_), Some(w)) => format!(" · vote winner: {w} ★"),
        (Some(_), None) => " · no vote on this image".into(),
        (None, _) => String::new(),
    };
    let what = if legacy {
        format!("sample {key}")
    } else {
        let name = std::path::Path::new(&key).file_name().map(|n| n.to_string_lossy());
        name.map_or(key.clone(), |n| n.into_owned())
    };
    let mut title = vec![Span::styled(
        format!(" gallery · {what} ({}/{})", app.sample + 1, keys.len()),
        t.accent(),
    )];
    if legacy {
        title.push(Span::styled(" · by sample number", t.dim()));
    }
    title.push(Span::styled(vote_note, t.warn()));
    title.push(Span::raw(" "));
    let block = Block::default().borders(Borders::ALL).title(Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let fit = (inner.width / MIN_COL).max(1) as usize;
    let slots = fit.saturating_sub(usize::from(target.is_some())).max(1);
    let start = app.selected.min(columns.len().saturating_sub(slots));
    let shown: Vec<_> = columns.iter().skip(start).take(slots).collect();
    let n = (shown.len() + usize::from(target.is_some())).max(1);
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(inner);
    // A caption line under every column when one shown has a caption, so the images line up.
    let captioned = shown.iter().any(|(_, _, s)| matches!(s, Shown::Images(_, Some(_))));
    let blank = captioned.then_some("");
    let mut k = 0;
    if let Some(tp) = &target {
        column(f, cols[0], app, "target", &[("target".into(), tp.clone())], blank, None);
        k = 1;
    }
    for (j, (id, label, what)) in shown.iter().enumerate() {
        let won = winner.as_deref() == Some(id.as_str());
        let head = format!("{id} · {label}{}", if won { " ★" } else { "" });
        match what {
            Shown::Images(files, caption) => {
                let mark = won.then_some("★");
                let caption = caption.as_deref().or(blank);
                column(f, cols[k + j], app, &head, files, caption, mark);
            }
            Shown::Note(note) => {
                let [h, b] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)])
                    .areas(cols[k + j]);
                f.render_widget(Paragraph::new(head).style(t.accent()), h);
                f.render_widget(
                    Paragraph::new(*note)
                        .alignment(Alignment::Center)
                        .style(t.warn())
                        .wrap(Wrap { trim: true }),
                    b,
                );
            }
        }
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

/// The experiments that have reconstructions.
fn present(sets: &[(String, Option<ReconSet>)]) -> impl Iterator<Item = (&String, &ReconSet)> {
    sets.iter().filter_map(|(id, s)| Some((id, s.as_ref()?)))
}

/// Legacy alignment: sample numbers, every experiment's, ascending.
fn by_number(sets: &[(String, Option<ReconSet>)]) -> Aligned {
    let mut numbers: Vec<usize> =
        present(sets).flat_map(|(_, s)| s.samples.keys().copied()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    Aligned { keys: numbers.into_iter().map(|n| (n.to_string(), 0)).collect(), probe: false }
}

/// One column: `head`, the images stacked (each labelled with its kind and `mark`), and, when
/// `caption` is `Some`, a last line for it: quoted and truncated to the column (`""`: left
/// blank, to line up with captioned columns).
fn column(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    head: &str,
    files: &[(String, PathBuf)],
    caption: Option<&str>,
    mark: Option<&str>,
) {
    let caption_rows = u16::from(caption.is_some());
    let [h, body, cap] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(caption_rows),
    ])
    .areas(area);
    let style = if mark.is_some() { app.theme.warn() } else { app.theme.accent() };
    f.render_widget(Paragraph::new(head.to_string()).style(style), h);
    if let Some(c) = caption.filter(|c| !c.is_empty()) {
        // One cell short of the column, as the images are: columns stay apart.
        let text = truncate(&format!("\"{c}\""), cap.width.saturating_sub(1) as usize);
        f.render_widget(
            Paragraph::new(text).alignment(Alignment::Center).style(app.theme.dim()),
            cap,
        );
    }
    // Kinds stacked vertically within the column.
    let rows =
        Layout::vertical(vec![Constraint::Ratio(1, files.len().max(1) as u32); files.len().max(1)])
            .split(body);
    for (file, r) in files.iter().zip(rows.iter()) {
        image_row(f, *r, app, std::slice::from_ref(file), mark);
    }
}

/// `text` cut to at most `width` terminal cells, ending in `…` when cut.
fn truncate(text: &str, width: usize) -> String {
    let cells = |s: &str| Span::raw(s).width();
    if cells(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for ch in text.chars() {
        let w = cells(ch.encode_utf8(&mut buf));
        if used + w + 1 > width {
            break;
        }
        out.push(ch);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_counts_cells_and_marks_the_cut() {
        assert_eq!(truncate("\"a cat\"", 7), "\"a cat\"");
        assert_eq!(truncate("\"a cat on a mat\"", 7), "\"a cat…");
        assert_eq!(truncate("猫猫猫", 4), "猫…", "wide characters take two cells");
        assert_eq!(truncate("abc", 0), "");
    }
}
