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
    /// Run `brainscope eval` on the selected experiment in the background.
    Eval,
    /// Run `brainscope recon` (guided reconstruction) on the selected experiment in the background.
    Recon,
    /// Switch which columns the table keeps when not all fit (training / evaluation).
    Columns,
    /// Clone the selected experiment through an edit form.
    Clone,
    /// A key typed into the clone form.
    Form(FormInput),
    /// Answer "local" to "local or Slurm?".
    StartLocal,
    /// Answer "Slurm" to "local or Slurm?".
    StartSlurm,
    /// Start nothing.
    StartCancel,
}

/// Keys of the clone form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormInput {
    /// A character typed into the field.
    Char(char),
    /// Delete the last character.
    Backspace,
    /// Next field.
    Next,
    /// Previous field.
    Prev,
    /// Create the experiment.
    Save,
    /// Close the form writing nothing.
    Cancel,
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
    /// The clone form is open.
    Form,
    /// "local or Slurm?" is open.
    AskWhere,
}

/// A key as the binding tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A key pressed without Ctrl.
    Code(KeyCode),
    /// Ctrl + a letter.
    Ctrl(char),
    /// The digits 1-9: [`Action::SortBy`] of column N-1 (the table holds `SortBy(0)`).
    Digits,
}

impl Key {
    /// The action this key gives when pressed as `code` (with Ctrl when `ctrl`).
    fn action(self, bound: Action, code: KeyCode, ctrl: bool) -> Option<Action> {
        match self {
            Key::Code(c) if !ctrl && c == code => Some(bound),
            Key::Ctrl(c) if ctrl && code == KeyCode::Char(c) => Some(bound),
            Key::Digits if !ctrl => match code {
                KeyCode::Char(d @ '1'..='9') => Some(Action::SortBy(d as usize - '1' as usize)),
                _ => None,
            },
            _ => None,
        }
    }

    /// How the help writes the key: `j`, `↓`, `Enter`, `Ctrl-c`, `1-9`.
    pub fn label(self) -> String {
        match self {
            Key::Ctrl(c) => format!("Ctrl-{c}"),
            Key::Digits => "1-9".into(),
            Key::Code(code) => match code {
                KeyCode::Char(' ') => "Space".into(),
                KeyCode::Char(c) => c.to_string(),
                KeyCode::Up => "↑".into(),
                KeyCode::Down => "↓".into(),
                KeyCode::Left => "←".into(),
                KeyCode::Right => "→".into(),
                KeyCode::Enter => "Enter".into(),
                KeyCode::Esc => "Esc".into(),
                KeyCode::Backspace => "Bksp".into(),
                KeyCode::Tab => "Tab".into(),
                KeyCode::Home => "Home".into(),
                KeyCode::End => "End".into(),
                KeyCode::PageUp => "PgUp".into(),
                KeyCode::PageDown => "PgDn".into(),
                KeyCode::F(n) => format!("F{n}"),
                other => format!("{other:?}"),
            },
        }
    }
}

/// One line of the help: related keys, each bound to its action, and what they do.
#[derive(Debug)]
pub struct Binding {
    /// Keys and the action each gives, in the order the help lists them.
    pub keys: &'static [(Key, Action)],
    /// What they do, as the help says it.
    pub help: &'static str,
}

impl Binding {
    /// The keys as the help writes them: `j k ↓ ↑`.
    pub fn label(&self) -> String {
        let labels: Vec<String> = self.keys.iter().map(|(k, _)| k.label()).collect();
        labels.join(" ")
    }
}

/// Bindings of one view (or of every view): a group of the help.
#[derive(Debug)]
pub struct Group {
    /// Heading in the help.
    pub title: &'static str,
    /// The view these bindings belong to; `None` for every view (looked up first).
    pub view: Option<View>,
    /// The bindings.
    pub bindings: &'static [Binding],
}

use crate::eval::human::Side;
use Action as A;
use Key::{Code as C, Ctrl};
use KeyCode as K;

/// Every key of normal mode, grouped by view: [`map`] looks keys up here and the help view
/// draws these tables, so the help cannot drift from the keys. (Typing a filter and answering
/// the stop question are modes with their own few keys, in [`map`]; the filter's binding and the
/// stop question say them.)
pub const GROUPS: &[Group] = &[
    Group {
        title: "Everywhere",
        view: None,
        bindings: &[
            Binding {
                keys: &[(C(K::Char('q')), A::Quit), (Ctrl('c'), A::Quit)],
                help: "quit (training goes on)",
            },
            Binding {
                keys: &[(C(K::Char('?')), A::Help), (C(K::F(1)), A::Help)],
                help: "this help",
            },
            Binding { keys: &[(C(K::Esc), A::Back), (C(K::Backspace), A::Back)], help: "back" },
            Binding { keys: &[(C(K::Char('s')), A::Start)], help: "start / resume training" },
            Binding { keys: &[(C(K::Char('x')), A::Stop)], help: "stop training (asks)" },
            Binding {
                keys: &[(C(K::Char('g')), A::Gallery), (C(K::Char('r')), A::Refresh)],
                help: "gallery / re-read disk",
            },
            Binding {
                keys: &[(Ctrl('d'), A::PageDown), (Ctrl('u'), A::PageUp)],
                help: "page down / up",
            },
        ],
    },
    Group {
        title: "Table",
        view: Some(View::Table),
        bindings: &[
            Binding {
                keys: &[
                    (C(K::Char('j')), A::Down),
                    (C(K::Char('k')), A::Up),
                    (C(K::Down), A::Down),
                    (C(K::Up), A::Up),
                ],
                help: "move",
            },
            Binding {
                keys: &[(C(K::Home), A::Top), (C(K::End), A::Bottom), (C(K::Char('G')), A::Bottom)],
                help: "first / last",
            },
            Binding {
                keys: &[(C(K::PageUp), A::PageUp), (C(K::PageDown), A::PageDown)],
                help: "page up / down",
            },
            Binding {
                keys: &[(C(K::Enter), A::Open), (C(K::Char('l')), A::Open), (C(K::Right), A::Open)],
                help: "open experiment",
            },
            Binding { keys: &[(C(K::Char('/')), A::Filter)], help: "filter (Enter keeps)" },
            Binding { keys: &[(Key::Digits, A::SortBy(0))], help: "sort by column N" },
            Binding {
                keys: &[(C(K::Char('o')), A::SortNext), (C(K::Tab), A::SortNext)],
                help: "sort by next column",
            },
            Binding {
                keys: &[(C(K::Char(' ')), A::Mark), (C(K::Char('m')), A::Mark)],
                help: "mark (overlay, a, c)",
            },
            Binding {
                keys: &[(C(K::Char('a')), A::Rate), (C(K::Char('c')), A::Compare)],
                help: "2-AFC rating / compare",
            },
            Binding {
                keys: &[
                    (C(K::Char('e')), A::Eval),
                    (C(K::Char('R')), A::Recon),
                    (C(K::Char('n')), A::Clone),
                ],
                help: "eval / recon / clone",
            },
            Binding { keys: &[(C(K::Char('v')), A::Columns)], help: "training / eval columns" },
        ],
    },
    Group {
        title: "Detail",
        view: Some(View::Detail),
        bindings: &[
            Binding {
                keys: &[
                    (C(K::Char('+')), A::SmoothMore),
                    (C(K::Char('=')), A::SmoothMore),
                    (C(K::Char('-')), A::SmoothLess),
                    (C(K::Char('_')), A::SmoothLess),
                ],
                help: "loss smoothing",
            },
            Binding {
                keys: &[
                    (C(K::Char('L')), A::LogY),
                    (C(K::Char('X')), A::XAxis),
                    (C(K::Char('v')), A::SecondChart),
                ],
                help: "log y / x / chart",
            },
            Binding {
                keys: &[(C(K::Char('e')), A::Eval), (C(K::Char('R')), A::Recon)],
                help: "run eval / recon",
            },
            Binding {
                keys: &[
                    (C(K::Char('[')), A::EpochPrev),
                    (C(K::Char(']')), A::EpochNext),
                    (C(K::Char('h')), A::EpochPrev),
                    (C(K::Char('l')), A::EpochNext),
                    (C(K::Left), A::EpochPrev),
                    (C(K::Right), A::EpochNext),
                    (C(K::Char('$')), A::EpochLatest),
                    (C(K::End), A::EpochLatest),
                ],
                help: "recon epoch / latest",
            },
            Binding {
                keys: &[
                    (C(K::Char('{')), A::SamplePrev),
                    (C(K::Char('}')), A::SampleNext),
                    (C(K::Char('p')), A::SamplePrev),
                    (C(K::Char('n')), A::SampleNext),
                ],
                help: "recon sample",
            },
            Binding {
                keys: &[
                    (C(K::Char('j')), A::Down),
                    (C(K::Char('k')), A::Up),
                    (C(K::Down), A::Down),
                    (C(K::Up), A::Up),
                ],
                help: "other experiment",
            },
            Binding {
                keys: &[(C(K::Char(' ')), A::Mark), (C(K::Char('m')), A::Mark)],
                help: "mark for overlay",
            },
        ],
    },
    Group {
        title: "Gallery",
        view: Some(View::Gallery),
        bindings: &[
            Binding {
                keys: &[
                    (C(K::Char('h')), A::SamplePrev),
                    (C(K::Char('l')), A::SampleNext),
                    (C(K::Left), A::SamplePrev),
                    (C(K::Right), A::SampleNext),
                    (C(K::Char('{')), A::SamplePrev),
                    (C(K::Char('}')), A::SampleNext),
                    (C(K::Char('p')), A::SamplePrev),
                    (C(K::Char('n')), A::SampleNext),
                ],
                help: "sample",
            },
            Binding {
                keys: &[
                    (C(K::Char('[')), A::EpochPrev),
                    (C(K::Char(']')), A::EpochNext),
                    (C(K::Char('$')), A::EpochLatest),
                    (C(K::End), A::EpochLatest),
                ],
                help: "epoch / latest",
            },
            Binding {
                keys: &[
                    (C(K::Char('j')), A::Down),
                    (C(K::Char('k')), A::Up),
                    (C(K::Down), A::Down),
                    (C(K::Up), A::Up),
                ],
                help: "scroll experiments",
            },
        ],
    },
    Group {
        title: "Compare",
        view: Some(View::Compare),
        bindings: &[Binding {
            keys: &[
                (C(K::Char('j')), A::SampleNext),
                (C(K::Char('k')), A::SamplePrev),
                (C(K::Down), A::SampleNext),
                (C(K::Up), A::SamplePrev),
                (C(K::Char('n')), A::SampleNext),
                (C(K::Char('p')), A::SamplePrev),
            ],
            help: "sample",
        }],
    },
    Group {
        title: "Rating (2-AFC)",
        view: Some(View::Rate),
        bindings: &[
            Binding {
                keys: &[
                    (C(K::Char('1')), A::RateChoose(Side::Left)),
                    (C(K::Char('2')), A::RateChoose(Side::Right)),
                    (C(K::Char('h')), A::RateChoose(Side::Left)),
                    (C(K::Char('l')), A::RateChoose(Side::Right)),
                    (C(K::Left), A::RateChoose(Side::Left)),
                    (C(K::Right), A::RateChoose(Side::Right)),
                ],
                help: "left / right",
            },
            Binding {
                keys: &[(C(K::Char('u')), A::RateUndo), (C(K::Char('s')), A::RateSkip)],
                help: "undo / skip",
            },
            Binding {
                keys: &[
                    (C(K::Char('q')), A::RateEnd),
                    (C(K::Esc), A::RateEnd),
                    (C(K::Enter), A::RateEnd),
                ],
                help: "end and save",
            },
        ],
    },
    Group {
        title: "Help",
        view: Some(View::Help),
        bindings: &[Binding { keys: &[(C(K::Enter), A::Back)], help: "back" }],
    },
];

fn lookup(group: &Group, code: KeyCode, ctrl: bool) -> Option<Action> {
    group.bindings.iter().flat_map(|b| b.keys).find_map(|&(k, a)| k.action(a, code, ctrl))
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
        Mode::Form => {
            let input = match key.code {
                KeyCode::Enter => FormInput::Save,
                KeyCode::Esc => FormInput::Cancel,
                KeyCode::Backspace => FormInput::Backspace,
                KeyCode::Tab | KeyCode::Down => FormInput::Next,
                KeyCode::BackTab | KeyCode::Up => FormInput::Prev,
                KeyCode::Char(c) if !ctrl => FormInput::Char(c),
                _ => return None,
            };
            return Some(Action::Form(input));
        }
        Mode::AskWhere => {
            return match key.code {
                KeyCode::Char('l') | KeyCode::Char('L') => Some(Action::StartLocal),
                KeyCode::Char('s') | KeyCode::Char('S') => Some(Action::StartSlurm),
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('n') => Some(Action::StartCancel),
                _ => None,
            };
        }
        Mode::Normal => {}
    }
    if view == View::Rate {
        // The rating view owns every key (q ends the session, s skips): no common binding.
        return GROUPS
            .iter()
            .filter(|g| g.view == Some(view))
            .find_map(|g| lookup(g, key.code, ctrl));
    }
    let everywhere = GROUPS.iter().filter(|g| g.view.is_none());
    let this_view = GROUPS.iter().filter(|g| g.view == Some(view));
    everywhere.chain(this_view).find_map(|g| lookup(g, key.code, ctrl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(view: View, code: KeyCode, mods: KeyModifiers) -> Option<Action> {
        map(view, Mode::Normal, KeyEvent::new(code, mods))
    }

    #[test]
    fn every_binding_in_the_help_gives_its_action() {
        for g in GROUPS {
            let views = match g.view {
                Some(v) => vec![v],
                None => vec![View::Table, View::Detail, View::Gallery, View::Help, View::Compare],
            };
            for b in g.bindings {
                for &(k, a) in b.keys {
                    let (code, mods) = match k {
                        Key::Code(c) => (c, KeyModifiers::NONE),
                        Key::Ctrl(c) => (KeyCode::Char(c), KeyModifiers::CONTROL),
                        Key::Digits => (KeyCode::Char('1'), KeyModifiers::NONE),
                    };
                    for &v in &views {
                        assert_eq!(press(v, code, mods), Some(a), "{} in {v:?}", k.label());
                    }
                }
            }
        }
    }

    #[test]
    fn no_key_is_bound_twice_in_one_view() {
        for view in [View::Table, View::Detail, View::Gallery, View::Help, View::Compare] {
            let mut seen = Vec::new();
            for g in GROUPS.iter().filter(|g| g.view.is_none() || g.view == Some(view)) {
                for b in g.bindings {
                    for (k, _) in b.keys {
                        assert!(!seen.contains(k), "{} bound twice in {view:?}", k.label());
                        seen.push(*k);
                    }
                }
            }
        }
    }

    #[test]
    fn keys_map_as_before() {
        let none = KeyModifiers::NONE;
        assert_eq!(press(View::Table, KeyCode::Char('7'), none), Some(Action::SortBy(6)));
        assert_eq!(press(View::Table, KeyCode::Char('l'), none), Some(Action::Open));
        assert_eq!(press(View::Detail, KeyCode::Char('l'), none), Some(Action::EpochNext));
        assert_eq!(press(View::Gallery, KeyCode::Char('l'), none), Some(Action::SampleNext));
        assert_eq!(press(View::Detail, KeyCode::End, none), Some(Action::EpochLatest));
        assert_eq!(press(View::Table, KeyCode::End, none), Some(Action::Bottom));
        assert_eq!(press(View::Help, KeyCode::Enter, none), Some(Action::Back));
        assert_eq!(press(View::Table, KeyCode::Char('z'), none), None);
        assert_eq!(
            press(View::Detail, KeyCode::Char('d'), KeyModifiers::CONTROL),
            Some(Action::PageDown)
        );
        assert_eq!(press(View::Table, KeyCode::Char('j'), KeyModifiers::CONTROL), None);
        let typing = |c| map(View::Table, Mode::Filtering, KeyEvent::new(KeyCode::Char(c), none));
        assert_eq!(typing('q'), Some(Action::FilterChar('q')));
        let confirm = |c| map(View::Table, Mode::Confirm, KeyEvent::new(KeyCode::Char(c), none));
        assert_eq!(
            (confirm('y'), confirm('q'), confirm('s')),
            (Some(Action::Yes), Some(Action::No), None)
        );
    }
}
