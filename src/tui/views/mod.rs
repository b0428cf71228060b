//! Drawing: one module per view, plus the frame around them (status line, confirmation,
//! "terminal too small").

pub mod compare;
pub mod detail;
pub mod form;
pub mod gallery;
pub mod help;
pub mod rate;
pub mod table;

use crate::tui::app::App;
use crate::tui::keys::View;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Smallest usable terminal.
pub const MIN_WIDTH: u16 = 60;
/// Smallest usable terminal height.
pub const MIN_HEIGHT: u16 = 16;

/// Draw the whole console for the current state.
pub fn draw(f: &mut Frame, app: &mut App) {
    // The detail view's charts need the histories of what it shows (loaded here, on demand).
    app.prepare_frame();
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{}\nbrainscope needs at least {MIN_WIDTH}x{MIN_HEIGHT}\n(q quits)",
            area.width, area.height
        );
        let y = area.height.saturating_sub(3) / 2;
        let r = Rect::new(area.x, area.y + y, area.width, area.height.saturating_sub(y).min(3));
        f.render_widget(
            Paragraph::new(msg).alignment(Alignment::Center).wrap(Wrap { trim: true }),
            r,
        );
        return;
    }
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    match app.view {
        View::Table => table::draw(f, main, app),
        View::Detail => detail::draw(f, main, app),
        View::Gallery => gallery::draw(f, main, app),
        View::Help => help::draw(f, main, app),
        View::Rate => rate::draw(f, main, app),
        View::Compare => compare::draw(f, main, app),
    }
    status_line(f, status, app);
    if let Some(id) = app.confirm_stop.clone() {
        confirm(f, main, app, &id);
    }
    if let Some(id) = app.ask_where.clone() {
        ask_where(f, main, app, &id);
    }
    if app.form.is_some() {
        form::draw(f, main, app);
    }
}

fn status_line(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let line = if app.form.is_some() {
        Line::from(Span::styled(
            "Tab/↓ next field  ↑ previous  Enter create  Esc cancel (nothing written)",
            t.dim(),
        ))
    } else if app.ask_where.is_some() {
        Line::from(Span::styled("l local  s Slurm  Esc neither", t.dim()))
    } else if app.filtering {
        Line::from(vec![
            Span::styled("/", t.accent()),
            Span::raw(app.filter.clone()),
            Span::styled("▏", t.accent()),
        ])
    } else if let Some(m) = &app.message {
        Line::from(Span::styled(m.clone(), t.warn()))
    } else {
        let hints = match app.view {
            View::Table => {
                "Enter open  s start  x stop  e eval  n clone  v cols  a rate  c compare  ? help"
            }
            View::Detail => {
                "Esc back  +/- smooth  L log  X x-axis  v val/lr  [ ] epoch  n sample  e eval"
            }
            View::Gallery => "Esc back  h/l sample  [ ] epoch  ? help  q quit",
            View::Help => "Esc back  q quit",
            View::Rate if app.rating.as_ref().is_some_and(|s| s.is_over()) => {
                "q/Esc/Enter back  u take back the last answer"
            }
            View::Rate => "1/h/← left  2/l/→ right  u undo  s skip  q end (answers are saved)",
            View::Compare => "Esc back  j/k image  ? help  q quit",
        };
        Line::from(Span::styled(hints, t.dim()))
    };
    f.render_widget(Paragraph::new(line), area);
}

fn confirm(f: &mut Frame, area: Rect, app: &App, id: &str) {
    let w = 44.min(area.width);
    let h = 5.min(area.height);
    let r = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
    f.render_widget(Clear, r);
    let block =
        Block::default().borders(Borders::ALL).title(" stop ").border_style(app.theme.warn());
    let text = vec![
        Line::from(format!("Stop training of experiment {id}?")),
        Line::from("It checkpoints and can be resumed with s."),
        Line::from(Span::styled("y: stop   n / Esc: keep running", app.theme.accent())),
    ];
    f.render_widget(Paragraph::new(text).block(block).alignment(Alignment::Center), r);
}

fn ask_where(f: &mut Frame, area: Rect, app: &App, id: &str) {
    let w = 46.min(area.width);
    let h = 5.min(area.height);
    let r = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
    f.render_widget(Clear, r);
    let block =
        Block::default().borders(Borders::ALL).title(" start ").border_style(app.theme.accent());
    let text = vec![
        Line::from(format!("Train experiment {id} locally or on Slurm?")),
        Line::from("Slurm: sbatch with the default resources."),
        Line::from(Span::styled("l: local   s: Slurm   Esc: neither", app.theme.accent())),
    ];
    f.render_widget(Paragraph::new(text).block(block).alignment(Alignment::Center), r);
}

/// `1h02m`, `4m05s`, `12s`.
pub fn fmt_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}
