//! Key bindings: terminal key events to [`Action`]s, per view and mode.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Which screen is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Experiment table.
    Table,
    /// One experiment: charts, log, images.
    Detail,
    /// One sample across experiments.
    Gallery,
    /// Key help.
    Help,
    /// A blind 2-AFC rating session (`a` in the table).
    Rate,
    /// Marked experiments side by side (`c` in the table).
    Compare,
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the console.
    Quit,
    /// Selection up / down / first / last / a page.
    Up,
    /// Selection down.
    Down,
    /// First row.
    Top,
    /// Last row.
    Bottom,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Open the selected experiment.
    Open,
    /// Back to the previous view.
    Back,
    /// Start or resume training of the selected experiment.
    Start,
    /// Stop the selected experiment (asks first).
    Stop,
    /// Answer yes to a confirmation.
    Yes,
    /// Answer no to a confirmation.
    No,
    /// Re-read everything from disk.
    Refresh,
    /// Show the key help.
    Help,
    /// Start typing a filter.
    Filter,
    /// A character typed into the filter.
    FilterChar(char),
    /// Delete the last filter character.
    FilterBackspace,
    /// Keep the filter and stop typing.
    FilterAccept,
    /// Clear the filter and stop typing.
    FilterCancel,
    /// Sort by column N (0-based); again to reverse.
    SortBy(usize),
    /// Sort by the next column.
    SortNext,
    /// Mark / unmark the selected experiment for overlays.
    Mark,
    /// Open the gallery.
    Gallery,
    /// More smoothing.
    SmoothMore,
    /// Less smoothing.
    SmoothLess,
    /// Toggle logarithmic y axes.
    LogY,
    /// Toggle the x axis between steps and epochs.
    XAxis,
    /// Toggle the second chart between validation L1 and learning rate.
    SecondChart,
    /// Previous / next reconstruction epoch.
    EpochPrev,
    /// Next reconstruction epoch.
    EpochNext,
    /// Latest reconstruction epoch.
    EpochLatest,
    /// Previous / next reconstruction sample.
    SamplePrev,
    /// Next reconstruction sample.
    SampleNext,
    /// Open a blind 2-AFC session over the marked (else the selected) experiments.
    Rate,
    /// Choose a candidate in the rating view.
    RateChoose(crate::eval::human::Side),
    /// Take back the last answer.
    RateUndo,
    /// Skip the trial (asked again after the others).
    RateSkip,
    /// End the session (answers are saved); again to leave the results.
    RateEnd,
    /// Open the compare view over the marked experiments.
    Compare,
}

/// What mode the input is in, besides the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain navigation.
    Normal,
    /// Typing a filter.
    Filtering,
    /// A yes/no question is open.
    Confirm,
}

/// Map one key event; `None` for keys without a binding.
pub fn map(view: View, mode: Mode, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Confirm => {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Yes),
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                    Some(Action::No)
                }
                _ => None,
            };
        }
        Mode::Filtering => {
            return match key.code {
                KeyCode::Enter => Some(Action::FilterAccept),
                KeyCode::Esc => Some(Action::FilterCancel),
                KeyCode::Backspace => Some(Action::FilterBackspace),
                KeyCode::Up => Some(Action::Up),
                KeyCode::Down => Some(Action::Down),
                KeyCode::Char(c) if !ctrl => Some(Action::FilterChar(c)),
                _ => None,
            };
        }
        Mode::Normal => {}
    }
    if view == View::Rate {
        // The rating view owns every key (q ends the session, s skips), so nothing of the
        // common map applies.
        use crate::eval::human::Side;
        return match key.code {
            KeyCode::Char('1') | KeyCode::Char('h') | KeyCode::Left => {
                Some(Action::RateChoose(Side::Left))
            }
            KeyCode::Char('2') | KeyCode::Char('l') | KeyCode::Right => {
                Some(Action::RateChoose(Side::Right))
            }
            KeyCode::Char('u') => Some(Action::RateUndo),
            KeyCode::Char('s') => Some(Action::RateSkip),
            KeyCode::Char('q') | KeyCode::Esc | KeyCode::Enter => Some(Action::RateEnd),
            KeyCode::Char('?') | KeyCode::F(1) => Some(Action::Help),
            _ => None,
        };
    }
    if ctrl {
        return match key.code {
            KeyCode::Char('d') => Some(Action::PageDown),
            KeyCode::Char('u') => Some(Action::PageUp),
            _ => None,
        };
    }
    let common = match key.code {
        KeyCode::Char('q') => Some(Action::Quit),
        KeyCode::Char('?') | KeyCode::F(1) => Some(Action::Help),
        KeyCode::Esc | KeyCode::Backspace => Some(Action::Back),
        KeyCode::Char('r') => Some(Action::Refresh),
        KeyCode::Char('s') => Some(Action::Start),
        KeyCode::Char('x') => Some(Action::Stop),
        KeyCode::Char('g') if view != View::Gallery => Some(Action::Gallery),
        _ => None,
    };
    if common.is_some() {
        return common;
    }
    match view {
        View::Table => match key.code {
            KeyCode::Char('j') | KeyCode::Down => Some(Action::Down),
            KeyCode::Char('k') | KeyCode::Up => Some(Action::Up),
            KeyCode::Home => Some(Action::Top),
            KeyCode::End | KeyCode::Char('G') => Some(Action::Bottom),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => Some(Action::Open),
            KeyCode::Char('/') => Some(Action::Filter),
            KeyCode::Char(' ') | KeyCode::Char('m') => Some(Action::Mark),
            KeyCode::Char('o') | KeyCode::Tab => Some(Action::SortNext),
            KeyCode::Char(c @ '1'..='9') => Some(Action::SortBy(c as usize - '1' as usize)),
            KeyCode::Char('a') => Some(Action::Rate),
            KeyCode::Char('c') => Some(Action::Compare),
            _ => None,
        },
        View::Compare => match key.code {
            KeyCode::Char('j') | KeyCode::Down | KeyCode::Char('n') => Some(Action::SampleNext),
            KeyCode::Char('k') | KeyCode::Up | KeyCode::Char('p') => Some(Action::SamplePrev),
            _ => None,
        },
        View::Rate => None,
        View::Detail => match key.code {
            KeyCode::Char('j') | KeyCode::Down => Some(Action::Down),
            KeyCode::Char('k') | KeyCode::Up => Some(Action::Up),
            KeyCode::Char('+') | KeyCode::Char('=') => Some(Action::SmoothMore),
            KeyCode::Char('-') | KeyCode::Char('_') => Some(Action::SmoothLess),
            KeyCode::Char('L') => Some(Action::LogY),
            KeyCode::Char('e') => Some(Action::XAxis),
            KeyCode::Char('v') => Some(Action::SecondChart),
            KeyCode::Char('[') | KeyCode::Char('h') | KeyCode::Left => Some(Action::EpochPrev),
            KeyCode::Char(']') | KeyCode::Char('l') | KeyCode::Right => Some(Action::EpochNext),
            KeyCode::Char('$') | KeyCode::End => Some(Action::EpochLatest),
            KeyCode::Char('{') | KeyCode::Char('p') => Some(Action::SamplePrev),
            KeyCode::Char('}') | KeyCode::Char('n') => Some(Action::SampleNext),
            KeyCode::Char(' ') | KeyCode::Char('m') => Some(Action::Mark),
            _ => None,
        },
        View::Gallery => match key.code {
            KeyCode::Char('h') | KeyCode::Left | KeyCode::Char('{') | KeyCode::Char('p') => {
                Some(Action::SamplePrev)
            }
            KeyCode::Char('l') | KeyCode::Right | KeyCode::Char('}') | KeyCode::Char('n') => {
                Some(Action::SampleNext)
            }
            KeyCode::Char('[') => Some(Action::EpochPrev),
            KeyCode::Char(']') => Some(Action::EpochNext),
            KeyCode::Char('$') | KeyCode::End => Some(Action::EpochLatest),
            KeyCode::Char('j') | KeyCode::Down => Some(Action::Down),
            KeyCode::Char('k') | KeyCode::Up => Some(Action::Up),
            _ => None,
        },
        View::Help => match key.code {
            KeyCode::Enter => Some(Action::Back),
            _ => None,
        },
    }
}

/// Help text: (keys, what they do), grouped by view.
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "Everywhere",
        &[
            ("q  Ctrl-c", "quit (training goes on)"),
            ("?", "this help"),
            ("Esc", "back"),
            ("s", "start / resume training"),
            ("x", "stop training (asks)"),
            ("r", "re-read from disk"),
            ("g", "gallery"),
        ],
    ),
    (
        "Table",
        &[
            ("j k ↓ ↑", "move"),
            ("Enter", "open experiment"),
            ("/", "filter (Enter keeps)"),
            ("1-9", "sort by column N"),
            ("o  Tab", "sort by next column"),
            ("Space m", "mark (overlay, a, c)"),
            ("a", "blind 2AFC rating session"),
            ("c", "compare marked side by side"),
        ],
    ),
    (
        "Detail",
        &[
            ("+ -", "loss smoothing (EMA)"),
            ("L", "log / linear y"),
            ("e", "x axis steps / epochs"),
            ("v", "val L1 / learning rate"),
            ("[ ]  h l", "recon epoch ($ latest)"),
            ("n p  { }", "recon sample"),
            ("j k", "other experiment"),
        ],
    ),
    (
        "Gallery",
        &[
            ("h l  n p", "sample"),
            ("[ ]  $", "epoch (default latest)"),
            ("j k", "scroll experiments"),
        ],
    ),
    (
        "Rating (blind 2AFC)",
        &[
            ("1/2 h/l ←→", "pick left / right image"),
            ("u", "take back the last answer"),
            ("s", "skip (asked again later)"),
            ("q Esc", "end; saved, resumable"),
        ],
    ),
    ("Compare", &[("j k", "next / previous image")]),
];
