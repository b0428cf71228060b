//! Experiment detail: progress, train-loss chart (raw + debiased EMA, overlays), validation L1
//! with the best epoch marked (or learning rate), log tail, reconstructions with an epoch slider.

use crate::tui::app::{App, ChartCache, SecondChart};
use crate::tui::chart::{downsample_minmax, fmt_num, y_bounds};
use crate::tui::model::{Experiment, Series, ValPoint};
use crate::tui::theme::Theme;
use crate::tui::views::fmt_duration;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, Gauge, GraphType, Paragraph};

/// Cells taken by the y labels and axis line, roughly.
const Y_LABEL_CELLS: u16 = 9;

/// Draw the detail view of the selected experiment into `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &mut App) {
    let Some(idx) = app.visible().get(app.selected).copied() else {
        f.render_widget(Paragraph::new("no experiment selected (Esc: back)"), area);
        return;
    };
    let bottom_h = (area.height * 2 / 5).max(8);
    let human = human_line(&app.project.experiments[idx], app.theme);
    let eval = eval_lines(app, &app.project.experiments[idx]);
    let [head, eval_area, human_area, charts, bottom] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(eval.len() as u16),
        Constraint::Length(u16::from(human.is_some())),
        Constraint::Min(6),
        Constraint::Length(bottom_h),
    ])
    .areas(area);
    header(f, head, app, idx);
    f.render_widget(Paragraph::new(eval), eval_area);
    if let Some(line) = human {
        f.render_widget(Paragraph::new(line), human_area);
    }
    draw_charts(f, charts, app, idx);
    let [log_area, img_area] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    log_tail(f, log_area, app, idx);
    recon(f, img_area, app, idx);
}

fn header(f: &mut Frame, area: Rect, app: &App, idx: usize) {
    let t = app.theme;
    let e = &app.project.experiments[idx];
    let (sym, style) = t.state(e.state());
    let desc = e.config.as_ref().map(|c| c.description.clone()).unwrap_or_else(|err| err.clone());
    let mut title = vec![
        Span::styled(format!(" {} ", e.id), t.accent()),
        Span::styled(format!("{sym} {} ", e.state().name()), style),
    ];
    if !e.run.message.is_empty() {
        title.push(Span::styled(format!("({}) ", e.run.message), style));
    }
    title.push(Span::raw(format!("{desc} ")));
    let block = Block::default().borders(Borders::ALL).title(Line::from(title));
    let mut label = format!("epoch {}/{}", e.epochs_done(), e.total_epochs());
    if e.run.total_steps > 0 {
        label.push_str(&format!(" · step {}/{}", e.run.step, e.run.total_steps));
    }
    if let Some(eta) = e.eta_secs() {
        label.push_str(&format!(" · ETA {}", fmt_duration(eta)));
    }
    if e.corrupt_lines() > 0 {
        label.push_str(&format!(" · {} corrupt line(s)", e.corrupt_lines()));
    }
    // The device the trainer recorded (status.json), with its adapter when that fits.
    if let Some(device) = &e.run.device {
        let fits = label.chars().count() + device.chars().count() + 5 <= area.width as usize;
        let shown =
            if fits { device.as_str() } else { crate::experiments::state::short_device(device) };
        label.push_str(&format!(" · {shown}"));
    }
    let gauge = Gauge::default()
        .block(block)
        .gauge_style(t.series(0))
        .ratio(e.progress())
        .label(Span::styled(label, Style::default()))
        .use_unicode(true);
    f.render_widget(gauge, area);
}

/// The eval panel: the record's numbers with their split, epoch, sample count and CLIP model
/// (or that none was used), the progress of a running `e`, or how the last one failed.
pub fn eval_lines(app: &App, e: &Experiment) -> Vec<Line<'static>> {
    let t = app.theme;
    let jobs = app.evals.as_ref();
    let mut lines = Vec::new();
    let mut head = vec![Span::styled(" eval", t.accent())];
    if let Some((progress, secs)) = jobs.and_then(|j| j.progress(&e.id)) {
        head.push(Span::styled(format!(" running {}: {progress}", fmt_duration(secs)), t.warn()));
        lines.push(Line::from(std::mem::take(&mut head)));
    } else if let Some(crate::tui::background_job::Finished::Failed(why)) =
        jobs.and_then(|j| j.finished(&e.id))
    {
        head.push(Span::styled(format!(" failed: {why}"), t.warn()));
        lines.push(Line::from(std::mem::take(&mut head)));
    }
    if let Some(jobs) = app.recons.as_ref() {
        if let Some((progress, secs)) = jobs.progress(&e.id) {
            lines.push(Line::from(vec![
                Span::styled(" recon", t.accent()),
                Span::styled(format!(" running {}: {progress}", fmt_duration(secs)), t.warn()),
            ]));
        } else if let Some(crate::tui::background_job::Finished::Failed(why)) = jobs.finished(&e.id)
        {
            lines.push(Line::from(vec![
                Span::styled(" recon", t.accent()),
                Span::styled(format!(" failed: {why}"), t.warn()),
            ]));
        }
    }
    if let Some(err) = &e.run.eval_error {
        let mut l = if head.is_empty() { vec![Span::raw(" ")] } else { std::mem::take(&mut head) };
        l.push(Span::styled(format!(" {err}"), t.warn()));
        lines.push(Line::from(l));
    }
    let Some(r) = &e.run.eval else {
        if lines.is_empty() {
            head.push(Span::styled(" · not evaluated yet (e runs brainscope eval)", t.dim()));
            lines.push(Line::from(head));
        }
        return lines;
    };
    let clip = match &r.clip {
        Some(c) => {
            let name = std::path::Path::new(c).file_name().map(|n| n.to_string_lossy());
            format!("CLIP {}", name.unwrap_or_else(|| c.as_str().into()))
        }
        None => "no CLIP".into(),
    };
    let mut first = if head.is_empty() { vec![Span::raw("     ")] } else { head };
    first.push(Span::styled(
        format!(
            " {} · ep {} · {} samples · latent L1 {} · {clip}",
            r.split.name(),
            r.epoch + 1,
            r.samples,
            fmt_num(r.latent_l1)
        ),
        t.dim(),
    ));
    lines.push(Line::from(first));
    let opt = |v: Option<f64>, pct: bool| match v {
        Some(v) if pct => format!("{:.1}%", v * 100.0),
        Some(v) => format!("{v:.4}"),
        None => "-".into(),
    };
    lines.push(Line::from(vec![Span::raw(format!(
        "  PixCorr {:.4}  SSIM {:.4}  2-way {}  CLIP 2-way {}  CLIP sim {}",
        r.pixcorr,
        r.ssim,
        opt(Some(r.two_way_pixels), true),
        opt(r.two_way_clip, true),
        opt(r.clip_sim_target, false),
    ))]));
    lines
}

/// `human 2AFC · low-level 75% correct (15/20), 95% CI 53-89%, raters: a, b`, once rated.
fn human_line(e: &Experiment, t: Theme) -> Option<Line<'static>> {
    let h = &e.human;
    let mut spans = vec![Span::styled(" human 2AFC", t.accent())];
    for (name, s) in [("low-level", &h.lowlevel), ("high-level", &h.highlevel)] {
        if s.trials > 0 {
            spans.push(Span::raw(format!(" · {name} {}", s.line())));
        }
    }
    if let Some(err) = &h.error {
        spans.push(Span::styled(format!(" · {err}"), t.warn()));
    } else if h.corrupt > 0 {
        spans.push(Span::styled(format!(" · {} corrupt line(s) skipped", h.corrupt), t.warn()));
    }
    (spans.len() > 1).then(|| Line::from(spans))
}

/// x of a train point: its step, or its fractional epoch given the steps per epoch.
fn train_x(step: u64, per_epoch: Option<f64>) -> f64 {
    match per_epoch {
        Some(spe) if spe > 0.0 => step as f64 / spe,
        _ => step as f64,
    }
}

fn ytrans(v: f64, log: bool) -> f64 {
    if log { v.max(1e-12).log10() } else { v }
}

/// Downsampled (raw, smoothed, lr) series of `e`, of which those in `wanted` are up to date
/// (from the cache when nothing changed).
fn series<'a>(
    cache: &'a mut ChartCache,
    e: &Experiment,
    buckets: u16,
    x_epochs: bool,
    log_y: bool,
    wanted: &[Series],
) -> &'a [Vec<(f64, f64)>; 3] {
    let key = (e.generation, buckets, x_epochs, log_y);
    let Some(h) = e.history.as_ref().filter(|h| !h.is_empty()) else {
        *cache = ChartCache::default();
        return &cache.series;
    };
    if cache.key != key {
        cache.computed = [false; 3];
        cache.key = key;
    }
    if wanted.iter().any(|&s| !cache.computed[s as usize]) {
        let spe = if x_epochs { e.steps_per_epoch() } else { None };
        let n = h.len();
        let (x0, x1) = (train_x(h.step(0), spe), train_x(h.step(n - 1), spe));
        let b = buckets as usize;
        let one = |s: Series| match h.pyramid(s).candidates(b) {
            // Long histories: only the pyramid's per-block extremes (O(width) points).
            Some(pts) => downsample_minmax(
                pts.iter().map(|&(i, _)| train_x(h.step(i), spe)),
                pts.iter().map(|&(_, v)| ytrans(f64::from(v), log_y)),
                x0,
                x1,
                b,
            ),
            None => downsample_minmax(
                h.steps().map(|step| train_x(step, spe)),
                h.values(s).map(|v| ytrans(v, log_y)),
                x0,
                x1,
                b,
            ),
        };
        for &s in wanted {
            if !cache.computed[s as usize] {
                cache.series[s as usize] = one(s);
                cache.computed[s as usize] = true;
            }
        }
    }
    &cache.series
}

fn x_bounds(sets: &[&[(f64, f64)]]) -> [f64; 2] {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in sets {
        if let (Some(a), Some(b)) = (s.first(), s.last()) {
            lo = lo.min(a.0);
            hi = hi.max(b.0);
        }
    }
    if !lo.is_finite() {
        return [0.0, 1.0];
    }
    if hi - lo < 1e-9 { [lo, lo + 1.0] } else { [lo, hi] }
}

fn y_label(v: f64, log: bool) -> String {
    fmt_num(if log { 10f64.powf(v) } else { v })
}

fn x_label(v: f64) -> String {
    if v.fract().abs() < 1e-9 && v.abs() < 1e9 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

fn axes(
    t: Theme,
    xb: [f64; 2],
    yb: [f64; 2],
    x_title: &str,
    log: bool,
) -> (Axis<'static>, Axis<'static>) {
    let x = Axis::default()
        .title(Span::styled(x_title.to_string(), t.dim()))
        .bounds(xb)
        .labels(vec![Line::from(x_label(xb[0])), Line::from(x_label(xb[1]))])
        .style(t.dim());
    let y = Axis::default()
        .bounds(yb)
        .labels(vec![Line::from(y_label(yb[0], log)), Line::from(y_label(yb[1], log))])
        .style(t.dim());
    (x, y)
}

fn empty_chart(f: &mut Frame, area: Rect, title: &str, msg: &str, t: Theme) {
    let block =
        Block::default().borders(Borders::ALL).title(Span::styled(title.to_string(), t.accent()));
    f.render_widget(
        Paragraph::new(msg.to_string()).style(t.dim()).alignment(Alignment::Center).block(block),
        area,
    );
}

fn draw_charts(f: &mut Frame, area: Rect, app: &mut App, idx: usize) {
    let three = area.width >= 120;
    let areas: Vec<Rect> = if three {
        Layout::horizontal([
            Constraint::Percentage(40),
            Constraint::Percentage(30),
            Constraint::Percentage(30),
        ])
        .split(area)
        .to_vec()
    } else {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .split(area)
            .to_vec()
    };
    train_chart(f, areas[0], app, idx);
    if three {
        val_chart(f, areas[1], app, idx);
        lr_chart(f, areas[2], app, idx);
    } else {
        match app.second {
            SecondChart::ValL1 => val_chart(f, areas[1], app, idx),
            SecondChart::Lr => lr_chart(f, areas[1], app, idx),
        }
    }
}

fn buckets_for(area: Rect) -> u16 {
    // Braille: two dots per cell column.
    area.width.saturating_sub(2 + Y_LABEL_CELLS).max(1) * 2
}

/// Overlay experiments: the marked ones other than `idx`, in table order.
fn overlays(app: &App, idx: usize) -> Vec<usize> {
    let id = &app.project.experiments[idx].id;
    app.project
        .experiments
        .iter()
        .enumerate()
        .filter(|(_, e)| app.marked.contains(&e.id) && &e.id != id)
        .map(|(i, _)| i)
        .collect()
}

fn train_chart(f: &mut Frame, area: Rect, app: &mut App, idx: usize) {
    let t = app.theme;
    let smoothing = app.project.smoothing();
    let title = format!("train loss · EMA {smoothing:.2}{}", if app.log_y { " · log" } else { "" });
    let title_line = |ids: &[String]| {
        let mut spans = vec![Span::styled(title.clone(), t.accent())];
        if ids.len() > 1 {
            for (k, id) in ids.iter().enumerate() {
                spans.push(Span::styled(
                    format!(" {}{id}", if k == 0 { "· " } else { "+" }),
                    t.series(k),
                ));
            }
        }
        Line::from(spans)
    };
    if app.project.experiments[idx].history.as_ref().is_none_or(|h| h.is_empty()) {
        empty_chart(f, area, &title, "no training steps yet\n(s starts training)", t);
        return;
    }
    let buckets = buckets_for(area);
    let (x_epochs, log_y) = (app.x_epochs, app.log_y);
    let mut all: Vec<(String, [Vec<(f64, f64)>; 3])> = Vec::new();
    for i in std::iter::once(idx).chain(overlays(app, idx)) {
        let e = &app.project.experiments[i];
        let cache = app.chart_cache.entry((e.id.clone(), buckets)).or_default();
        let s = series(cache, e, buckets, x_epochs, log_y, &[Series::Loss, Series::Smoothed]);
        all.push((e.id.clone(), [s[0].clone(), s[1].clone(), Vec::new()]));
    }
    let mut datasets = Vec::new();
    datasets.push(
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.dim())
            .data(&all[0].1[0]),
    );
    for (k, (id, s)) in all.iter().enumerate() {
        datasets.push(
            Dataset::default()
                .name(id.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(t.series(k))
                .data(&s[1]),
        );
    }
    let sets: Vec<&[(f64, f64)]> =
        all.iter().flat_map(|(_, s)| [s[0].as_slice(), s[1].as_slice()]).collect();
    let xb = x_bounds(&sets);
    let yb = y_bounds(sets.iter().copied());
    let (x, y) = axes(t, xb, yb, if x_epochs { "epoch" } else { "step" }, log_y);
    let ids: Vec<String> = all.iter().map(|(id, _)| id.clone()).collect();
    let block = Block::default().borders(Borders::ALL).title(title_line(&ids));
    let chart = Chart::new(datasets).block(block).x_axis(x).y_axis(y).legend_position(None);
    f.render_widget(chart, area);
}

fn val_chart(f: &mut Frame, area: Rect, app: &mut App, idx: usize) {
    let t = app.theme;
    let log_y = app.log_y;
    let e = &app.project.experiments[idx];
    let title = match e.best_val() {
        Some((epoch, l1)) => format!("val L1 · best {} @ep {}", fmt_num(l1), epoch + 1),
        None => "val L1".to_string(),
    };
    let no_val: &[ValPoint] = &[];
    let val = |e: &Experiment| e.history.as_ref().map_or(no_val, |h| h.val()).to_vec();
    if val(e).is_empty() {
        empty_chart(f, area, &title, "no validation epochs yet", t);
        return;
    }
    let mut all: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for i in std::iter::once(idx).chain(overlays(app, idx)) {
        let o = &app.project.experiments[i];
        all.push((
            o.id.clone(),
            val(o).iter().map(|v| ((v.epoch + 1) as f64, ytrans(v.l1, log_y))).collect(),
        ));
    }
    let best: Vec<(f64, f64)> =
        e.best_val().map(|(ep, l1)| ((ep + 1) as f64, ytrans(l1, log_y))).into_iter().collect();
    let mut datasets: Vec<Dataset> = all
        .iter()
        .enumerate()
        .map(|(k, (id, pts))| {
            Dataset::default()
                .name(id.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(t.series(k))
                .data(pts)
        })
        .collect();
    datasets.push(
        Dataset::default()
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(t.warn())
            .data(&best),
    );
    let sets: Vec<&[(f64, f64)]> = all.iter().map(|(_, s)| s.as_slice()).collect();
    let mut xb = x_bounds(&sets);
    xb[0] = xb[0].min(1.0);
    let yb = y_bounds(sets.iter().copied());
    let (x, y) = axes(t, xb, yb, "epoch", log_y);
    let mut spans = vec![Span::styled(title, t.accent())];
    if all.len() > 1 {
        for (k, (id, _)) in all.iter().enumerate() {
            spans.push(Span::styled(
                format!(" {}{id}", if k == 0 { "· " } else { "+" }),
                t.series(k),
            ));
        }
    }
    let block = Block::default().borders(Borders::ALL).title(Line::from(spans));
    let chart = Chart::new(datasets).block(block).x_axis(x).y_axis(y).legend_position(None);
    f.render_widget(chart, area);
}

fn lr_chart(f: &mut Frame, area: Rect, app: &mut App, idx: usize) {
    let t = app.theme;
    let title = if app.log_y { "learning rate · log" } else { "learning rate" };
    let e = &app.project.experiments[idx];
    if e.history.as_ref().is_none_or(|h| !h.has_lr()) {
        empty_chart(f, area, title, "no learning-rate records yet", t);
        return;
    }
    let buckets = buckets_for(area);
    let (x_epochs, log_y) = (app.x_epochs, app.log_y);
    let cache = app.chart_cache.entry((e.id.clone(), buckets)).or_default();
    let lr = series(cache, e, buckets, x_epochs, log_y, &[Series::Lr])[2].clone();
    let xb = x_bounds(&[&lr]);
    let yb = y_bounds(std::iter::once(lr.as_slice()));
    let (x, y) = axes(t, xb, yb, if x_epochs { "epoch" } else { "step" }, log_y);
    let ds = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.series(3))
            .data(&lr),
    ];
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, t.accent()));
    f.render_widget(Chart::new(ds).block(block).x_axis(x).y_axis(y), area);
}

fn log_tail(f: &mut Frame, area: Rect, app: &App, idx: usize) {
    let t = app.theme;
    let e = &app.project.experiments[idx];
    let block = Block::default().borders(Borders::ALL).title(Span::styled("train.log", t.accent()));
    let rows = area.height.saturating_sub(2) as usize;
    let text: Vec<Line> = if e.log_tail.is_empty() {
        vec![Line::from(Span::styled("(no log yet)", t.dim()))]
    } else {
        e.log_tail[e.log_tail.len().saturating_sub(rows)..]
            .iter()
            .map(|l| Line::from(l.as_str()))
            .collect()
    };
    f.render_widget(Paragraph::new(text).block(block), area);
}

/// The final probe reconstructions with high-level images (`brainscope recon`): target |
/// low-level | high-level, the caption below. `None` when there are none.
fn final_recon(app: &App, idx: usize) -> Option<crate::tui::model::ReconSet> {
    let set = app.project.experiments[idx].recon_set(crate::tui::model::ReconFolder::Final(
        crate::experiments::state::EvalSplit::Probe,
    ));
    let high = crate::experiments::state::recon::HIGHLEVEL;
    set.samples.values().any(|s| s.file(high).is_some()).then_some(set)
}

fn recon(f: &mut Frame, area: Rect, app: &mut App, idx: usize) {
    let t = app.theme;
    if app.recon_epoch.is_none()
        && let Some(set) = final_recon(app, idx)
    {
        let keys: Vec<usize> = set.samples.keys().copied().collect();
        app.sample = app.sample.min(keys.len() - 1);
        let sample = &set.samples[&keys[app.sample]];
        let caption = set.caption(keys[app.sample]);
        let title = format!(
            "recon · final probe (eval + recon) · sample {}/{} · [ for epochs",
            app.sample + 1,
            keys.len()
        );
        let block = Block::default().borders(Borders::ALL).title(Span::styled(title, t.accent()));
        let inner = block.inner(area);
        f.render_widget(block, area);
        let [images, caption_area] =
            Layout::vertical([Constraint::Min(2), Constraint::Length(1)]).areas(inner);
        let files = sample.files.clone();
        let text = caption.as_deref().map_or("(no caption)".to_string(), |c| format!("\"{c}\""));
        image_row(f, images, app, &files, None);
        f.render_widget(
            Paragraph::new(text).alignment(Alignment::Center).style(t.dim()),
            caption_area,
        );
        return;
    }
    let epochs = app.project.experiments[idx].recon_epochs.clone();
    let shown = app.shown_epoch();
    let Some(epoch) = shown else {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled("reconstructions", t.accent()));
        f.render_widget(
            Paragraph::new("none yet (written after each epoch)").style(t.dim()).block(block),
            area,
        );
        return;
    };
    let pos = epochs.iter().position(|&x| x == epoch).unwrap_or(0);
    let samples = app.project.experiments[idx].recon_samples(epoch);
    let keys: Vec<usize> = samples.keys().copied().collect();
    if !keys.is_empty() {
        app.sample = app.sample.min(keys.len() - 1);
    }
    let follow = if app.recon_epoch.is_none() { " latest" } else { "" };
    let title = format!(
        "recon · epoch {} ({}/{}{follow}) · sample {}/{}",
        epoch + 1,
        pos + 1,
        epochs.len(),
        app.sample + 1,
        keys.len()
    );
    let block = Block::default().borders(Borders::ALL).title(Span::styled(title, t.accent()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(files) = keys.get(app.sample).and_then(|k| samples.get(k)) else {
        f.render_widget(Paragraph::new("no images in this epoch").style(t.dim()), inner);
        return;
    };
    image_row(f, inner, app, files, None);
}

/// Images side by side with their kind as a label row below.
pub fn image_row(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    files: &[(String, std::path::PathBuf)],
    mark: Option<&str>,
) {
    if files.is_empty() || area.height < 2 {
        return;
    }
    let cols =
        Layout::horizontal(vec![Constraint::Ratio(1, files.len() as u32); files.len()]).split(area);
    let dim = app.theme.dim();
    for ((kind, path), col) in files.iter().zip(cols.iter()) {
        let [img, label] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(*col);
        let img = Rect { width: img.width.saturating_sub(1), ..img };
        app.images.render(f, img, path, dim);
        let text = match mark {
            Some(m) => format!("{kind} {m}"),
            None => kind.clone(),
        };
        f.render_widget(
            Paragraph::new(text).alignment(Alignment::Center).style(app.theme.accent()),
            label,
        );
    }
}
