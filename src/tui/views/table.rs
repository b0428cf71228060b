//! Experiment table: one row per experiment, sortable by any column, filterable.

use crate::tui::app::{App, COLUMN_SPACING, Column};
use crate::tui::chart::fmt_num;
use crate::tui::model::Experiment;
use crate::tui::views::fmt_duration;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap};

/// Draw the table view into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let t = app.theme;
    let [table_area, info_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(area);
    let visible = app.visible();
    let arrow = if app.sort_desc { "▼" } else { "▲" };
    let mut title = vec![
        Span::styled(" brainscope ", t.accent()),
        Span::styled(format!("{} ", app.project.dir.display()), t.dim()),
    ];
    if !app.filter.is_empty() {
        title.push(Span::styled(
            format!(
                "filter '{}' ({} of {}) ",
                app.filter,
                visible.len(),
                app.project.experiments.len()
            ),
            t.warn(),
        ));
    }
    let block = Block::default().borders(Borders::ALL).title(Line::from(title));
    if app.project.experiments.is_empty() {
        let msg = format!(
            "No experiments in {}.\n\nAn experiment is a folder <id>/ holding experiment.toml;\n\
             the repository ships 92, 94, 97 and 100. Use --dir to point elsewhere.",
            app.project.dir.display()
        );
        f.render_widget(Paragraph::new(msg).block(block).wrap(Wrap { trim: false }), area);
        return;
    }
    // The columns that fit (all of them on a wide terminal, else the chosen set's first).
    let columns = Column::fitting(app.column_set, table_area.width.saturating_sub(2));
    app.columns = columns.clone();
    let header = Row::new(columns.iter().map(|&c| {
        let text =
            if c == app.sort { format!("{}{arrow}", c.title()) } else { c.title().to_string() };
        Cell::from(text)
    }))
    .style(t.accent());
    let rows: Vec<Row> = visible
        .iter()
        .map(|&i| {
            let e = &app.project.experiments[i];
            Row::new(columns.iter().map(|&c| cell(app, e, c)).collect::<Vec<_>>())
        })
        .collect();
    let widths: Vec<Constraint> = columns.iter().map(|c| Constraint::Length(c.width())).collect();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(t.selected())
        .column_spacing(COLUMN_SPACING);
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, table_area, &mut state);
    info(f, info_area, app);
}

/// One cell of experiment `e`.
fn cell<'a>(app: &App, e: &'a Experiment, c: Column) -> Cell<'a> {
    let t = app.theme;
    let cfg = e.config.as_ref().ok();
    let eval = e.run.eval.as_ref();
    let evaluating = app.evals.as_ref().is_some_and(|j| j.is_running(&e.id));
    let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    match c {
        Column::Id => {
            let marked = if app.marked.contains(&e.id) { "*" } else { " " };
            let slurm = if e.slurm_job.is_some() { "@" } else { "" };
            Cell::from(format!("{marked}{}{slurm}", e.id))
        }
        Column::State => {
            let (sym, style) = t.state(e.state());
            Cell::from(Span::styled(format!("{sym} {}", e.state().name()), style))
        }
        Column::Where => Cell::from(e.location()),
        Column::Device => {
            Cell::from(e.run.device.as_deref().map_or("-", crate::experiments::state::short_device))
        }
        Column::Roi => Cell::from(e.roi_set()),
        Column::Seed => Cell::from(cfg.map_or("?".into(), |c| c.train.seed.to_string())),
        Column::Batch => Cell::from(cfg.map_or("?".into(), |c| c.train.batch_size.to_string())),
        Column::Epoch => Cell::from(format!("{}/{}", e.epochs_done(), e.total_epochs())),
        Column::Loss => Cell::from(e.last_loss().map_or("-".into(), short)),
        Column::Best => Cell::from(match e.best_val() {
            // Only the last records are read yet: their best need not be the run's.
            _ if e.loading() => "…".to_string(),
            Some((epoch, l1)) => format!("{} @{}", short(l1), epoch + 1),
            None => "-".into(),
        }),
        Column::Eta => Cell::from(e.eta_secs().map_or("-".into(), fmt_duration)),
        // While `e` runs: a marker where the first number will appear.
        Column::PixCorr if evaluating => Cell::from(Span::styled("eval…", t.warn())),
        Column::PixCorr if e.run.eval_error.is_some() => {
            Cell::from(Span::styled("error", t.warn()))
        }
        Column::PixCorr => Cell::from(num(eval.map(|r| r.pixcorr))),
        Column::Ssim => Cell::from(num(eval.map(|r| r.ssim))),
        Column::TwoWay => {
            Cell::from(eval.map_or("-".into(), |r| format!("{:.1}%", r.two_way_pixels * 100.0)))
        }
        Column::ClipSim => Cell::from(num(eval.and_then(|r| r.clip_sim_target))),
        Column::Human => Cell::from(e.human.lowlevel.cell()),
    }
}

/// Four significant characters or so: `0.1234`, `12.35`, `1.2e-5`.
fn short(v: f64) -> String {
    if v.abs() >= 1e-3 && v.abs() < 10.0 { format!("{v:.4}") } else { fmt_num(v) }
}

fn info(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let block = Block::default().borders(Borders::ALL);
    let Some(e) = app.selected_experiment() else {
        f.render_widget(
            Paragraph::new("no experiment matches the filter").style(t.dim()).block(block),
            area,
        );
        return;
    };
    f.render_widget(Paragraph::new(info_lines(e, app)).block(block), area);
}

fn info_lines<'a>(e: &'a Experiment, app: &App) -> Vec<Line<'a>> {
    let t = app.theme;
    let mut lines = Vec::new();
    match &e.config {
        Ok(c) => lines.push(Line::from(vec![
            Span::styled(format!("{}: ", e.id), t.accent()),
            Span::raw(if c.description.is_empty() {
                "(no description)".to_string()
            } else {
                c.description.clone()
            }),
        ])),
        Err(err) => lines.push(Line::from(Span::styled(format!("{}: {err}", e.id), t.warn()))),
    }
    let mut second: Vec<Span> = Vec::new();
    if !e.run.message.is_empty() {
        second.push(Span::styled(e.run.message.clone(), t.state(e.state()).1));
        second.push(Span::raw("  "));
    }
    if e.corrupt_lines() > 0 {
        second.push(Span::styled(
            format!("{} corrupt metrics line(s) skipped", e.corrupt_lines()),
            t.warn(),
        ));
    }
    if let Some(err) = e.read_error() {
        second.push(Span::styled(err, t.warn()));
    }
    if second.is_empty() {
        let text = match e.record_counts() {
            Some((train, val)) => format!("{train} train points, {val} val epochs"),
            None => "reading the metrics history…".to_string(),
        };
        second.push(Span::styled(text, Style::default()));
    }
    lines.push(Line::from(second));
    lines
}
