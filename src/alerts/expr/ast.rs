//! The parsed form of a rule. `Display` writes the canonical source of a
//! rule (numbers as ratios, durations compact, minimal parentheses), which
//! parses back to the same tree.

use std::fmt;
use std::time::Duration;

use regex::{Regex, RegexBuilder};

use super::duration::format_duration;
/// The labels of a series.
pub type Labels = std::collections::BTreeMap<String, String>;

/// What the catalog says a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Numbers (ratios, counts, seconds...): compared with numbers, may have
    /// an `in` window.
    Numeric,
    /// Strings such as `agent_health`'s `'unhealthy'`: only `==`/`!=` with a
    /// string, no window.
    State,
}

/// A whole rule: a condition and how long it must hold before firing.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub condition: Expr,
    /// `for D`: applies to the whole condition (the caller keeps the
    /// per-series pending state).
    pub for_duration: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Comparison),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub selector: Selector,
    pub op: CmpOp,
    pub literal: Literal,
    /// `in D`: compare the sum of each series' samples over the last D.
    pub window: Option<Duration>,
    /// 1-based column (in characters) of the metric name in the source.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

/// A label matcher `name op "value"`. For `=~`/`!~` the regex is compiled
/// once, anchored at both ends (`^(?:value)$`, as in Prometheus).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

pub use crate::label_match::MatchOp;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Percentages are already divided by 100 (`5%` is `0.05`).
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// Compiled size limit of one matcher regex.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// How deeply a matcher's regex may nest (groups, repetitions of
/// repetitions): the parser recurses per level, and a value such as `a`
/// followed by 240 `*` overflowed a worker's stack at the library's
/// default of 250. Label matchers never need more than a few levels.
pub(crate) const REGEX_NEST_LIMIT: u32 = 32;

impl Matcher {
    /// A matcher; compiles the regex of `=~`/`!~` (anchored). Also usable
    /// outside expressions (silences use the same matchers).
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, regex::Error> {
        let value = value.into();
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .nest_limit(REGEX_NEST_LIMIT)
                    .build()?,
            ),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// The compiled, anchored regex of a `=~`/`!~` matcher.
    pub fn regex(&self) -> Option<&Regex> {
        self.re.as_ref()
    }

    pub(crate) fn is_regex(&self) -> bool {
        self.re.is_some()
    }

    /// Whether a label value satisfies the matcher (a missing label is "").
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            // Unreachable through `new`; be strict rather than panic.
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }

    /// Whether a label set satisfies the matcher (a missing label is "").
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Selector {
    /// Whether a series' label set satisfies every matcher (Prometheus
    /// semantics: a missing label is the empty string). Equality matchers
    /// are tried before regexes.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .filter(|m| !m.is_regex())
            .all(|m| m.matches(labels))
            && self
                .matchers
                .iter()
                .filter(|m| m.is_regex())
                .all(|m| m.matches(labels))
    }
}

impl CmpOp {
    /// Numeric comparison; NaN on either side compares false (even `!=`).
    pub fn compare(self, lhs: f64, rhs: f64) -> bool {
        if lhs.is_nan() || rhs.is_nan() {
            return false;
        }
        match self {
            CmpOp::Gt => lhs > rhs,
            CmpOp::Ge => lhs >= rhs,
            CmpOp::Lt => lhs < rhs,
            CmpOp::Le => lhs <= rhs,
            CmpOp::Eq => lhs == rhs,
            CmpOp::Ne => lhs != rhs,
        }
    }

    /// Text comparison: exact `==`/`!=`; the ordering operators (refused by
    /// the parser for state metrics) are false.
    pub fn compare_text(self, lhs: &str, rhs: &str) -> bool {
        match self {
            CmpOp::Eq => lhs == rhs,
            CmpOp::Ne => lhs != rhs,
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

impl Rule {
    /// Each distinct `(metric, window)` the rule reads, in order of first
    /// appearance: what the engine must prefetch (current values for
    /// `None`, window sums for `Some`).
    pub fn metrics(&self) -> Vec<(String, Option<Duration>)> {
        let mut out: Vec<(String, Option<Duration>)> = Vec::new();
        let mut stack = vec![&self.condition];
        // Depth-first, left to right.
        while let Some(e) = stack.pop() {
            match e {
                Expr::Or(l, r) | Expr::And(l, r) => {
                    stack.push(r);
                    stack.push(l);
                }
                Expr::Not(inner) => stack.push(inner),
                Expr::Cmp(c) => {
                    if !out
                        .iter()
                        .any(|(m, w)| *m == c.selector.metric && *w == c.window)
                    {
                        out.push((c.selector.metric.clone(), c.window));
                    }
                }
            }
        }
        out
    }
}

/// Writes a number the short way: `0.07`, `12`, `-3`, and exponent form
/// for very large or small magnitudes (`1e20`, `1.5e-9`). Re-parses to the
/// same value.
pub(crate) fn write_number(f: &mut fmt::Formatter<'_>, n: f64) -> fmt::Result {
    let a = n.abs();
    if n.is_finite() && a != 0.0 && !(1e-6..1e15).contains(&a) {
        write!(f, "{n:e}")
    } else {
        write!(f, "{n}")
    }
}

/// Writes `s` as a single-quoted string literal.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\'' => f.write_str("\\'")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("'")
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number(n) => write_number(f, *n),
            Literal::Text(s) => write_quoted(f, s),
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.op.as_str())?;
        write_quoted(f, &self.value)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.matchers.is_empty() {
            f.write_str("{")?;
            for (i, m) in self.matchers.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{m}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.selector, self.op.as_str(), self.literal)?;
        if let Some(w) = self.window {
            write!(f, " in {}", format_duration(w))?;
        }
        Ok(())
    }
}

impl Expr {
    /// Binding strength: or < and < not/comparison.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(..) => 1,
            Expr::And(..) => 2,
            Expr::Not(_) | Expr::Cmp(_) => 3,
        }
    }

    /// Writes `e`, parenthesised when it binds looser than `min`.
    fn write_operand(f: &mut fmt::Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
        if e.precedence() < min {
            write!(f, "({e})")
        } else {
            write!(f, "{e}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Left-associative: the right operand needs parentheses when it
            // is of the same level.
            Expr::Or(l, r) => {
                Expr::write_operand(f, l, 1)?;
                f.write_str(" or ")?;
                Expr::write_operand(f, r, 2)
            }
            Expr::And(l, r) => {
                Expr::write_operand(f, l, 2)?;
                f.write_str(" and ")?;
                Expr::write_operand(f, r, 3)
            }
            Expr::Not(inner) => {
                f.write_str("not ")?;
                Expr::write_operand(f, inner, 3)
            }
            Expr::Cmp(c) => write!(f, "{c}"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.condition)?;
        if let Some(d) = self.for_duration {
            write!(f, " for {}", format_duration(d))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_regexes_are_refused_not_recursed_into() {
        let hostile = format!("é{}", "*".repeat(240));
        // On a small stack, as a worker thread has: refused, no overflow.
        let r = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || Matcher::new("a", MatchOp::NotRe, hostile).is_err())
            .unwrap()
            .join()
            .unwrap();
        assert!(r);
        assert!(Matcher::new("a", MatchOp::Re, "(eu|us)-.*").is_ok());
    }
}
