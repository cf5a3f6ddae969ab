//! Recursive-descent parser and type checker. Recursion happens only
//! through parentheses, and parentheses plus `not` are limited to
//! [`MAX_DEPTH`] levels, so no input can overflow the stack.

use std::time::Duration;

use super::ast::{CmpOp, Comparison, Expr, Literal, MatchOp, Matcher, MetricKind, Rule, Selector};
use super::duration;
use super::error::{ErrorKind, ParseError};
use super::lexer::{Kw, Lexer, Tok, Token};

/// Longest accepted expression, in characters.
pub const MAX_LEN: usize = 2_000;
/// Deepest accepted nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;

/// Parses and type-checks a rule. `catalog` says whether a metric name
/// exists and what kind it is.
pub fn parse(src: &str, catalog: &dyn Fn(&str) -> Option<MetricKind>) -> Result<Rule, ParseError> {
    if src.chars().nth(MAX_LEN).is_some() {
        return Err(ParseError::new(
            MAX_LEN + 1,
            ErrorKind::TooLong,
            format!(
                "expression is {} characters long; the limit is {MAX_LEN}",
                src.chars().count()
            ),
        ));
    }
    let mut p = Parser {
        lex: Lexer::new(src),
        peeked: None,
        depth: 0,
        parens: 0,
        catalog,
    };
    let condition = p.expr()?;
    let mut for_duration = None;
    if p.peek_kw(Kw::For)? {
        p.bump()?;
        for_duration = Some(p.duration()?);
    }
    let t = p.peek()?.clone();
    match t.tok {
        Tok::Eof => Ok(Rule {
            condition,
            for_duration,
        }),
        Tok::RParen => Err(ParseError::new(
            t.column(),
            ErrorKind::UnbalancedParenthesis,
            "\")\" has no matching \"(\"",
        )),
        _ => {
            let text = p.lex.text(t.start, t.end).escape_debug().to_string();
            let msg = if for_duration.is_some() {
                format!(
                    "unexpected \"{text}\" after the for clause; \"for\" comes last and \
                     applies to the whole condition"
                )
            } else {
                format!(
                    "unexpected \"{text}\" after a complete comparison; expected \"and\", \
                     \"or\", \"for\" or the end of the expression"
                )
            };
            Err(ParseError::new(t.column(), ErrorKind::TrailingInput, msg))
        }
    }
}

struct Parser<'c> {
    lex: Lexer,
    peeked: Option<Token>,
    /// Current nesting of parentheses and `not`.
    depth: usize,
    /// Currently open parentheses.
    parens: usize,
    catalog: &'c dyn Fn(&str) -> Option<MetricKind>,
}

/// How a token reads in a message.
fn describe(lex: &Lexer, t: &Token) -> String {
    match t.tok {
        Tok::Eof => "the end of the expression".to_string(),
        Tok::Ident { kw: Some(_), .. } => format!("keyword \"{}\"", lex.text(t.start, t.end)),
        _ => format!("\"{}\"", lex.text(t.start, t.end).escape_debug()),
    }
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn bump(&mut self) -> Result<Token, ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.next_token(),
        }
    }

    fn peek_kw(&mut self, kw: Kw) -> Result<bool, ParseError> {
        Ok(matches!(self.peek()?.tok, Tok::Ident { kw: Some(k), .. } if k == kw))
    }

    /// `expected` is what should have come; refuses `t` with UnexpectedEnd
    /// at end of input, UnexpectedToken otherwise.
    fn unexpected(&self, t: &Token, expected: &str) -> ParseError {
        if t.tok == Tok::Eof {
            ParseError::new(
                t.column(),
                ErrorKind::UnexpectedEnd,
                format!("unexpected end of expression: expected {expected}"),
            )
        } else {
            ParseError::new(
                t.column(),
                ErrorKind::UnexpectedToken,
                format!("expected {expected}, found {}", describe(&self.lex, t)),
            )
        }
    }

    fn enter(&mut self, t: &Token) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                t.column(),
                ErrorKind::TooDeep,
                format!(
                    "expression nested too deeply: at most {MAX_DEPTH} levels of \
                     parentheses and \"not\""
                ),
            ));
        }
        Ok(())
    }

    /// A duration right after `for`/`in` (already consumed).
    fn duration(&mut self) -> Result<Duration, ParseError> {
        debug_assert!(self.peeked.is_none());
        self.lex.skip_ws();
        let (d, end) = duration::scan(&self.lex.src, self.lex.pos)?;
        self.lex.pos = end;
        Ok(d)
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.and_expr()?;
        while self.peek_kw(Kw::Or)? {
            self.bump()?;
            let rhs = self.and_expr()?;
            lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.not_expr()?;
        while self.peek_kw(Kw::And)? {
            self.bump()?;
            let rhs = self.not_expr()?;
            lhs = Expr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn not_expr(&mut self) -> Result<Expr, ParseError> {
        let outer = self.depth;
        let mut nots = 0;
        while self.peek_kw(Kw::Not)? {
            let t = self.bump()?;
            self.enter(&t)?;
            nots += 1;
        }
        let mut e = self.primary()?;
        for _ in 0..nots {
            e = Expr::Not(Box::new(e));
        }
        self.depth = outer;
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        if self.peek()?.tok != Tok::LParen {
            return Ok(Expr::Cmp(self.comparison()?));
        }
        let open = self.bump()?;
        self.enter(&open)?;
        self.parens += 1;
        let e = self.expr()?;
        let t = self.peek()?.clone();
        match t.tok {
            Tok::RParen => {
                self.bump()?;
            }
            Tok::Eof => {
                return Err(ParseError::new(
                    open.column(),
                    ErrorKind::UnbalancedParenthesis,
                    "\"(\" is never closed: expected \")\"",
                ))
            }
            _ => {
                let extra = if matches!(
                    t.tok,
                    Tok::Ident {
                        kw: Some(Kw::For),
                        ..
                    }
                ) {
                    " (\"for\" goes at the very end, outside parentheses)"
                } else {
                    ""
                };
                return Err(ParseError::new(
                    t.column(),
                    ErrorKind::UnexpectedToken,
                    format!(
                        "expected \"and\", \"or\" or \")\" to close the \"(\" at column {}, \
                         found {}{extra}",
                        open.column(),
                        describe(&self.lex, &t)
                    ),
                ));
            }
        }
        self.depth -= 1;
        self.parens -= 1;
        Ok(e)
    }

    fn comparison(&mut self) -> Result<Comparison, ParseError> {
        let name_tok = self.bump()?;
        let metric = match &name_tok.tok {
            Tok::Ident { text, kw: None } => text.clone(),
            Tok::RParen if self.parens == 0 => {
                return Err(ParseError::new(
                    name_tok.column(),
                    ErrorKind::UnbalancedParenthesis,
                    "\")\" has no matching \"(\"",
                ))
            }
            _ => return Err(self.unexpected(&name_tok, "a metric name, \"not\" or \"(\"")),
        };
        let Some(kind) = (self.catalog)(&metric) else {
            return Err(ParseError::new(
                name_tok.column(),
                ErrorKind::UnknownMetric,
                format!("unknown metric \"{metric}\""),
            ));
        };
        let matchers = if self.peek()?.tok == Tok::LBrace {
            self.matchers()?
        } else {
            Vec::new()
        };

        let op_tok = self.bump()?;
        let op = match op_tok.tok {
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::EqEq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Eq => {
                return Err(ParseError::new(
                    op_tok.column(),
                    ErrorKind::UnexpectedToken,
                    format!(
                        "\"=\" is for label matchers; compare with \"==\" \
                         (expected >, >=, <, <=, == or != after \"{metric}\")"
                    ),
                ))
            }
            _ => {
                return Err(self.unexpected(
                    &op_tok,
                    &format!("a comparison operator (>, >=, <, <=, ==, !=) after \"{metric}\""),
                ))
            }
        };

        let lit_tok = self.bump()?;
        let literal = match &lit_tok.tok {
            Tok::Number(n) => {
                if self.peek()?.tok == Tok::Percent {
                    self.bump()?;
                    Literal::Number(n / 100.0)
                } else {
                    Literal::Number(*n)
                }
            }
            Tok::Str(s) => Literal::Text(s.clone()),
            _ => {
                return Err(self.unexpected(
                    &lit_tok,
                    &format!(
                        "a number (such as 10, 0.5 or 5%) or a quoted string after \"{}\"",
                        op.as_str()
                    ),
                ))
            }
        };

        let window_tok = if self.peek_kw(Kw::In)? {
            Some(self.bump()?)
        } else {
            None
        };

        // Type rules.
        match kind {
            MetricKind::State => {
                let example = format!("e.g. {metric} == 'unhealthy'");
                if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    return Err(ParseError::new(
                        op_tok.column(),
                        ErrorKind::TypeMismatch,
                        format!(
                            "\"{metric}\" is a state metric: it can only be compared with \
                             == or != and a quoted string ({example}), not with \"{}\"",
                            op.as_str()
                        ),
                    ));
                }
                if let Literal::Number(_) = literal {
                    return Err(ParseError::new(
                        lit_tok.column(),
                        ErrorKind::TypeMismatch,
                        format!(
                            "\"{metric}\" is a state metric: compare it with a quoted \
                             string ({example}), not a number"
                        ),
                    ));
                }
                if let Some(t) = &window_tok {
                    return Err(ParseError::new(
                        t.column(),
                        ErrorKind::TypeMismatch,
                        format!(
                            "\"{metric}\" is a state metric: \"in\" windows sum numeric \
                             samples and do not apply to it"
                        ),
                    ));
                }
            }
            MetricKind::Numeric => {
                if let Literal::Text(_) = literal {
                    return Err(ParseError::new(
                        lit_tok.column(),
                        ErrorKind::TypeMismatch,
                        format!(
                            "\"{metric}\" is numeric: compare it with a number such as 10, \
                             0.5 or 5%, not a string"
                        ),
                    ));
                }
            }
        }

        let window = match window_tok {
            Some(_) => Some(self.duration()?),
            None => None,
        };
        Ok(Comparison {
            selector: Selector { metric, matchers },
            op,
            literal,
            window,
            column: name_tok.column(),
        })
    }

    /// `{ [matcher {, matcher} [,]] }`, the `{` being next.
    fn matchers(&mut self) -> Result<Vec<Matcher>, ParseError> {
        let open = self.bump()?;
        let mut out = Vec::new();
        loop {
            let t = self.bump()?;
            let name = match &t.tok {
                Tok::RBrace => return Ok(out),
                Tok::Ident { text, .. } => text.clone(),
                _ => {
                    return Err(self.unexpected(
                        &t,
                        &format!(
                            "a label name or \"}}\" to close the \"{{\" at column {}",
                            open.column()
                        ),
                    ))
                }
            };
            if name.contains(':') {
                return Err(ParseError::new(
                    t.column(),
                    ErrorKind::BadLabel,
                    format!(
                        "\"{name}\" is not a valid label name: label names use letters, \
                         digits and _ only"
                    ),
                ));
            }
            if name.starts_with("__") {
                return Err(ParseError::new(
                    t.column(),
                    ErrorKind::BadLabel,
                    format!("label name \"{name}\" is reserved (names starting with \"__\")"),
                ));
            }
            let op_tok = self.bump()?;
            let op = match op_tok.tok {
                Tok::Eq => MatchOp::Eq,
                Tok::Ne => MatchOp::Ne,
                Tok::Re => MatchOp::Re,
                Tok::NotRe => MatchOp::NotRe,
                _ => {
                    return Err(self.unexpected(
                        &op_tok,
                        &format!("a label matcher operator (=, !=, =~ or !~) after \"{name}\""),
                    ))
                }
            };
            let v_tok = self.bump()?;
            let Tok::Str(value) = &v_tok.tok else {
                return Err(self.unexpected(
                    &v_tok,
                    &format!("a quoted string after \"{name}{}\"", op.as_str()),
                ));
            };
            let m = Matcher::new(name, op, value.clone()).map_err(|e| {
                let why = match e {
                    regex::Error::CompiledTooBig(limit) => format!(
                        "regular expression \"{}\" is too large once compiled \
                         (limit {limit} bytes)",
                        value.escape_debug()
                    ),
                    // The syntax error is several lines (pattern, caret,
                    // reason); keep the reason, on one line.
                    other => {
                        let text = other.to_string();
                        let reason = text
                            .rsplit_once("error: ")
                            .map_or(text.as_str(), |(_, r)| r)
                            .trim()
                            .replace('\n', " ");
                        format!(
                            "invalid regular expression \"{}\": {reason}",
                            value.escape_debug()
                        )
                    }
                };
                ParseError::new(v_tok.column(), ErrorKind::BadRegex, why)
            })?;
            out.push(m);
            let sep = self.bump()?;
            match sep.tok {
                Tok::Comma => {}
                Tok::RBrace => return Ok(out),
                _ => {
                    return Err(self.unexpected(
                        &sep,
                        &format!(
                            "\",\" or \"}}\" to close the \"{{\" at column {}",
                            open.column()
                        ),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "parser_props.rs"]
mod props;
