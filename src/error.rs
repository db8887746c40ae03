//! Errors of the library, each mapped to the exit code SPEC gives it.

use std::io;

/// Everything that can end a run early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flag, bad metric name, a metric impossible at the input's size,
    /// an output path that cannot be created: exit 2.
    #[error("{0}")]
    Usage(String),
    /// A malformed config file: exit 2.
    #[error("{path}:{line}:{column}: {message}")]
    Config {
        /// The config file.
        path: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An input that cannot be opened, has no video or no decodable frame: exit 1.
    #[error("input '{input}': {cause}")]
    Input {
        /// The input as given, its credentials hidden.
        input: String,
        /// Why it failed.
        cause: String,
    },
    /// An output that fails while being written: exit 1.
    #[error("output '{path}': {source}")]
    Output {
        /// The output as given.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A signal ended the run while an input was still being opened
    /// (nothing was measured, no output touched): exit 130.
    #[error("{0}")]
    Interrupted(String),
    /// Standard output was closed by its reader: a quiet exit 0.
    #[error("standard output closed")]
    StdoutClosed,
    /// A bug: an invariant of the pipeline did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An input error (exit 1) naming `input` and its cause, each with
    /// the credentials it holds hidden ([`crate::redact`]).
    pub fn input(input: &str, cause: impl std::fmt::Display) -> Self {
        use crate::redact::redact;
        Error::Input {
            input: redact(input).into_owned(),
            cause: redact(&cause.to_string()).into_owned(),
        }
    }

    /// The process exit code SPEC assigns to this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config { .. } => 2,
            Error::Input { .. } | Error::Output { .. } | Error::Internal(_) => 1,
            Error::StdoutClosed => 0,
            Error::Interrupted(_) => 130,
        }
    }
}

/// Called with each warning (one line, no prefix).
pub type Warn = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// `text` on one line: each control character (a line break, a tab, ...)
/// that a user's value brought into a message is shown escaped, so that
/// an error or a warning is always one line. Borrowed when there is none.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod one_line_tests {
    use super::one_line;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert!(matches!(one_line("plain ✓"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb\rc\td\u{7}"), "a\\nb\\rc\\td\\u{7}");
    }
}
