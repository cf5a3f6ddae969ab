//! Tokens of the expression language, produced on demand so that the parser
//! can switch to duration scanning after `for` and `in` (a duration such as
//! `1h30m` or `2 minutes` is not a sequence of ordinary tokens).

use super::error::{ErrorKind, ParseError};

/// Keywords; case-insensitive, never metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    And,
    Or,
    Not,
    For,
    In,
}

impl Kw {
    fn from_ident(s: &str) -> Option<Kw> {
        // Longest keyword is 3 characters: cheap rejection first.
        if s.len() > 3 {
            return None;
        }
        [
            ("and", Kw::And),
            ("or", Kw::Or),
            ("not", Kw::Not),
            ("for", Kw::For),
            ("in", Kw::In),
        ]
        .into_iter()
        .find(|(k, _)| s.eq_ignore_ascii_case(k))
        .map(|(_, kw)| kw)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name (`[a-zA-Z_][a-zA-Z0-9_:]*`); `kw` when it spells a keyword.
    Ident {
        text: String,
        kw: Option<Kw>,
    },
    Number(f64),
    Str(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Percent,
    Gt,
    Ge,
    Lt,
    Le,
    EqEq,
    /// `!=`: comparison or matcher.
    Ne,
    /// `=`: matcher only.
    Eq,
    /// `=~`: matcher only.
    Re,
    /// `!~`: matcher only.
    NotRe,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Character index of the first character (column - 1).
    pub start: usize,
    /// Character index just after the token.
    pub end: usize,
}

impl Token {
    pub fn column(&self) -> usize {
        self.start + 1
    }
}

pub(crate) struct Lexer {
    pub src: Vec<char>,
    pub pos: usize,
}

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

impl Lexer {
    pub fn new(src: &str) -> Lexer {
        Lexer {
            src: src.chars().collect(),
            pos: 0,
        }
    }

    /// Source text of `start..end` (character indices), for messages.
    pub fn text(&self, start: usize, end: usize) -> String {
        self.src[start.min(self.src.len())..end.min(self.src.len())]
            .iter()
            .collect()
    }

    fn peek_char(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos + ahead).copied()
    }

    pub fn skip_ws(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    pub fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_ws();
        let start = self.pos;
        let Some(c) = self.peek_char(0) else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let two = |l: &mut Lexer, tok: Tok| {
            l.pos += 2;
            tok
        };
        let one = |l: &mut Lexer, tok: Tok| {
            l.pos += 1;
            tok
        };
        let next = self.peek_char(1);
        let tok = match c {
            '(' => one(self, Tok::LParen),
            ')' => one(self, Tok::RParen),
            '{' => one(self, Tok::LBrace),
            '}' => one(self, Tok::RBrace),
            ',' => one(self, Tok::Comma),
            '%' => one(self, Tok::Percent),
            '>' if next == Some('=') => two(self, Tok::Ge),
            '>' => one(self, Tok::Gt),
            '<' if next == Some('=') => two(self, Tok::Le),
            '<' => one(self, Tok::Lt),
            '=' if next == Some('=') => two(self, Tok::EqEq),
            '=' if next == Some('~') => two(self, Tok::Re),
            '=' => one(self, Tok::Eq),
            '!' if next == Some('=') => two(self, Tok::Ne),
            '!' if next == Some('~') => two(self, Tok::NotRe),
            '\'' | '"' => self.string(c)?,
            c if c.is_ascii_digit() => self.number()?,
            '.' | '-' if next.is_some_and(|n| n.is_ascii_digit() || n == '.') => self.number()?,
            c if ident_start(c) => {
                while self.peek_char(0).is_some_and(ident_continue) {
                    self.pos += 1;
                }
                if let Some(c) = self.peek_char(0).filter(|c| c.is_alphanumeric()) {
                    return Err(ParseError::new(
                        self.pos + 1,
                        ErrorKind::UnexpectedChar,
                        format!(
                            "unexpected character {c:?} in a name; names use ASCII letters, \
                             digits, _ and :"
                        ),
                    ));
                }
                let text = self.text(start, self.pos);
                let kw = Kw::from_ident(&text);
                Tok::Ident { text, kw }
            }
            other => {
                let hint = match other {
                    '!' => " (use != or !~)",
                    '&' => " (use and)",
                    '|' => " (use or)",
                    _ => "",
                };
                return Err(ParseError::new(
                    start + 1,
                    ErrorKind::UnexpectedChar,
                    format!(
                        "unexpected character {other:?}{hint}; expected a metric name, \
                         number, quoted string, operator or parenthesis"
                    ),
                ));
            }
        };
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    /// `-? (digits [. digits*] | . digits) ([eE] [+-]? digits)?`, which must
    /// not run straight into a letter, digit, `_` or `.` (`5m`, `1.2.3`).
    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        if self.peek_char(0) == Some('-') {
            self.pos += 1;
        }
        let digits = |l: &mut Lexer| {
            let s = l.pos;
            while l.peek_char(0).is_some_and(|c| c.is_ascii_digit()) {
                l.pos += 1;
            }
            l.pos - s
        };
        let mut n = digits(self);
        if self.peek_char(0) == Some('.') {
            self.pos += 1;
            n += digits(self);
        }
        let mut ok = n > 0;
        if ok && matches!(self.peek_char(0), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek_char(0), Some('+' | '-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                self.pos = save;
            }
        }
        // Swallow whatever is glued to the number so that the error shows it.
        while self
            .peek_char(0)
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            ok = false;
            self.pos += 1;
        }
        let text = self.text(start, self.pos);
        let value = if ok {
            text.parse::<f64>().ok().filter(|v| v.is_finite())
        } else {
            None
        };
        value.map(Tok::Number).ok_or_else(|| {
            ParseError::new(
                start + 1,
                ErrorKind::BadNumber,
                format!(
                    "malformed number \"{text}\"; numbers look like 10, 0.5, 1e3, -3 or 5% \
                     (durations only follow \"for\" or \"in\")"
                ),
            )
        })
    }

    /// A string quoted with `quote`; escapes `\\ \' \" \n \t`; any other
    /// backslash is kept as is.
    fn string(&mut self, quote: char) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_char(0) else {
                return Err(ParseError::new(
                    start + 1,
                    ErrorKind::UnterminatedString,
                    format!("string is not terminated: expected a closing {quote}"),
                ));
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(Tok::Str(out)),
                '\\' => {
                    let Some(esc) = self.peek_char(0) else {
                        return Err(ParseError::new(
                            start + 1,
                            ErrorKind::UnterminatedString,
                            format!("string is not terminated: expected a closing {quote}"),
                        ));
                    };
                    self.pos += 1;
                    match esc {
                        '\\' | '\'' | '"' => out.push(esc),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        // Kept as written, so that regexes such as '\d+'
                        // need no doubling.
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let mut l = Lexer::new(s);
        let mut out = vec![];
        loop {
            let t = l.next_token().unwrap();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks("a:b{x=~'y'} >= -1.5e3 % != <= < > == = !~ , AND"),
            vec![
                Tok::Ident {
                    text: "a:b".into(),
                    kw: None
                },
                Tok::LBrace,
                Tok::Ident {
                    text: "x".into(),
                    kw: None
                },
                Tok::Re,
                Tok::Str("y".into()),
                Tok::RBrace,
                Tok::Ge,
                Tok::Number(-1500.0),
                Tok::Percent,
                Tok::Ne,
                Tok::Le,
                Tok::Lt,
                Tok::Gt,
                Tok::EqEq,
                Tok::Eq,
                Tok::NotRe,
                Tok::Comma,
                Tok::Ident {
                    text: "AND".into(),
                    kw: Some(Kw::And)
                },
            ]
        );
        assert_eq!(
            toks(r#"'a\'b\\c\n' "d\"e\t" '\d+\.'"#),
            vec![
                Tok::Str("a'b\\c\n".into()),
                Tok::Str("d\"e\t".into()),
                Tok::Str("\\d+\\.".into())
            ]
        );
        assert_eq!(
            toks(".5 5. 1E+2"),
            vec![Tok::Number(0.5), Tok::Number(5.0), Tok::Number(100.0)]
        );
    }

    #[test]
    fn lexer_errors() {
        for (src, kind, col) in [
            ("a # b", ErrorKind::UnexpectedChar, 3),
            ("x > 5m", ErrorKind::BadNumber, 5),
            ("x > 1.2.3", ErrorKind::BadNumber, 5),
            ("x > 1e999", ErrorKind::BadNumber, 5),
            ("x == 'abc", ErrorKind::UnterminatedString, 6),
            ("é", ErrorKind::UnexpectedChar, 1),
            ("'a\\", ErrorKind::UnterminatedString, 1),
            ("abé", ErrorKind::UnexpectedChar, 3),
        ] {
            let mut l = Lexer::new(src);
            let err = loop {
                match l.next_token() {
                    Ok(t) if t.tok == Tok::Eof => panic!("{src}: no error"),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert_eq!((err.kind, err.column), (kind, col), "{src}: {err}");
        }
    }
}
