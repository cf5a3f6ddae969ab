//! Parse errors: a class, the 1-based column (in characters) of the
//! offending place, and a message for the operator that says what was
//! expected.

use std::fmt;

/// The class of a [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A character that cannot start any token (`#`, `!` alone, `é`, ...).
    UnexpectedChar,
    /// A token in a place where it cannot appear (`error_rate = 5`).
    UnexpectedToken,
    /// The expression stops where more was required (`error_rate >`).
    UnexpectedEnd,
    /// A `(` never closed (column of the `(`) or a `)` without its `(`
    /// (column of the `)`).
    UnbalancedParenthesis,
    /// A quoted string without its closing quote (column of the opening
    /// quote), or with an unknown escape (column of the backslash).
    UnterminatedString,
    /// A malformed or non-finite number (`5m`, `1.2.3`, `1e999`).
    BadNumber,
    /// A malformed duration or one outside 1s..=90d (column of its start).
    BadDuration,
    /// A metric name the catalog does not know.
    UnknownMetric,
    /// A comparison that does not fit the metric's kind (state metrics take
    /// `==`/`!=` and a string, numeric metrics take numbers).
    TypeMismatch,
    /// A regex matcher that does not compile (column of the string).
    BadRegex,
    /// Something after a complete rule (column of the first extra token).
    TrailingInput,
    /// The expression is longer than [`super::MAX_LEN`] characters.
    TooLong,
    /// More than [`super::MAX_DEPTH`] nested parentheses or `not`s.
    TooDeep,
    /// A label name that is not allowed (reserved `__` prefix, or `:`).
    BadLabel,
}

/// Why an expression was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column, counted in characters (not bytes). One past the last
    /// character for [`ErrorKind::UnexpectedEnd`].
    pub column: usize,
    pub kind: ErrorKind,
    /// What is wrong and what was expected, without the column.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(column: usize, kind: ErrorKind, message: impl Into<String>) -> Self {
        ParseError {
            column,
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}
