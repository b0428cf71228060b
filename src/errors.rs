//! Printing an error with its causes, once each.
//!
//! The house pattern: a library error's message says what failed and how to fix it, and keeps
//! the underlying error as its `source` (`#[source]`/`#[from]`) without repeating that error's
//! text in its own message. Whoever prints an error for a person (the CLI's `main`, a run's
//! `crashed` message in status.json) prints the chain with [`chain`]. Some third-party errors
//! repeat their source in their own text (the `image` crate's decoding errors do); `chain` skips
//! a cause whose text is already in what it has written, so no text appears twice
//! ("Invalid PNG signature.: Invalid PNG signature.").

use std::error::Error;

/// `err` and its causes joined by `": "`, skipping causes whose text was already written.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read image x.png; expected a PNG or JPEG file")]
    struct Outer(#[source] Middle);

    /// Like `image::ImageError`: its text includes its source's.
    #[derive(Debug, thiserror::Error)]
    #[error("Format error decoding Png: {0}")]
    struct Middle(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("Invalid PNG signature.")]
    struct Inner;

    #[test]
    fn every_cause_appears_once() {
        assert_eq!(
            chain(&Outer(Middle(Inner))),
            "cannot read image x.png; expected a PNG or JPEG file: Format error decoding Png: Invalid PNG signature."
        );
        assert_eq!(chain(&Inner), "Invalid PNG signature.");
    }
}
