//! Progress of `eval` and `vote` on stderr (results go to stdout): an indicatif bar on a
//! terminal, one plain line per stage otherwise (a log file, or the console showing the stderr
//! of a background `brainscope eval`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Stage-wise progress on stderr.
pub struct Progress {
    bar: ProgressBar,
    /// Plain lines instead of a bar (stderr is not a terminal).
    plain: bool,
    /// Printed before each plain line (`eval 92`, `vote`).
    label: String,
    /// Whether anything is shown at all.
    enabled: bool,
}

impl Progress {
    /// Progress labelled `label`: a bar when stderr is a terminal, plain lines otherwise.
    pub fn stderr(label: impl Into<String>) -> Self {
        let plain = !std::io::stderr().is_terminal();
        let bar = if plain {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{msg:<24} [{bar:30}] {pos}/{len} ({elapsed})")
                    .expect("valid template")
                    .progress_chars("=> "),
            )
        };
        Self { bar, plain, label: label.into(), enabled: true }
    }

    /// No output at all (library callers, tests).
    pub fn hidden() -> Self {
        Self { bar: ProgressBar::hidden(), plain: true, label: String::new(), enabled: false }
    }

    /// Start a stage of `len` items.
    pub fn stage(&self, name: &str, len: usize) {
        if !self.enabled {
            return;
        }
        if self.plain {
            eprintln!("{}: {name} ({len})", self.label);
        } else {
            self.bar.reset();
            self.bar.set_length(len as u64);
            self.bar.set_message(name.to_string());
        }
    }

    /// `n` more items of the current stage done.
    pub fn inc(&self, n: usize) {
        self.bar.inc(n as u64);
    }

    /// A note on stderr (above the bar on a terminal).
    pub fn note(&self, msg: &str) {
        if !self.enabled {
            return;
        }
        if self.plain {
            eprintln!("{}: {msg}", self.label);
        } else {
            self.bar.suspend(|| eprintln!("{}: {msg}", self.label));
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
