//! The alert rule expression language (README, "Alerting"; reference in
//! `docs/alert-expressions.md`).
//!
//! A rule such as `cpu_utilization > 90% or memory_utilization > 95% for 3 minutes`
//! is parsed once ([`parse`]) against a catalog of known metrics, which
//! type-checks it and compiles its regex matchers, and is then evaluated every
//! cycle ([`evaluate`]) against a [`Source`] of current values and window
//! sums, giving one [`Hit`] per series (label set) for which the condition
//! holds now. The `for` clause is applied by the caller, which keeps per-series
//! pending state.
//!
//! Pure code: no I/O, no clock, no database.

mod ast;
mod duration;
mod error;
mod eval;
mod lexer;
mod parser;

pub use ast::{CmpOp, Comparison, Expr, Literal, MatchOp, Matcher, MetricKind, Rule, Selector};
pub use duration::{format_duration, MAX_DURATION, MIN_DURATION};
pub use error::{ErrorKind, ParseError};
pub use eval::{evaluate, Hit, Labels, MemorySource, Source, Value, WindowSums};
pub use parser::{parse, MAX_DEPTH, MAX_LEN};
