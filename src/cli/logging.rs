//! The process log: plain lines or JSON on stderr.
//!
//! Values a client controls (user names, paths, agent names, URLs) reach the
//! log as fields. In the plain format every field value and the message are
//! written with control characters escaped (`\n`, `\r`, `\u{1b}`, ...), so a
//! user name holding a newline cannot forge a second log line and none can
//! send escape sequences to a terminal; JSON escapes them by itself. Colour
//! codes are written only when stderr is a terminal.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, Writer};

use crate::config::{Config, LogFormat};

/// The scheduler library logs at info level on every job it creates
/// ("Job creator created", six times at each start); its own lines are kept
/// to warnings unless the configured filter names it.
pub fn directives(level: &str) -> String {
    if level.contains("tokio_cron_scheduler") {
        level.to_string()
    } else {
        format!("{level},tokio_cron_scheduler=warn")
    }
}

/// `text` with every control character (and the Unicode line and paragraph
/// separators) written as an escape, so it stays on one line and cannot
/// drive a terminal.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let needs = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\\';
    if !text.chars().any(needs) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if needs(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One field of a plain line: `name=value`, or the bare message.
fn write_field(
    w: &mut Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn fmt::Debug,
) -> fmt::Result {
    let text = format!("{value:?}");
    if field.name() == "message" {
        w.write_str(&escape_controls(&text))
    } else {
        write!(w, "{}={}", field.name(), escape_controls(&text))
    }
}

pub fn init(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(directives(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Plain => builder
            .fmt_fields(format::debug_fn(write_field).delimited(" "))
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("admin"), "admin");
        assert_eq!(
            escape_controls("mallory\n2026-12-01T00:00:00Z INFO login succeeded user=admin"),
            "mallory\\n2026-12-01T00:00:00Z INFO login succeeded user=admin"
        );
        assert_eq!(
            escape_controls("a\rb\u{1b}[31mc\td"),
            "a\\rb\\u{1b}[31mc\\td"
        );
        assert_eq!(escape_controls("x\u{2028}y\\n"), "x\\u{2028}y\\\\n");
        assert_eq!(escape_controls("é ü 日本"), "é ü 日本");
    }

    #[test]
    fn the_scheduler_library_is_quiet_unless_named() {
        assert_eq!(directives("info"), "info,tokio_cron_scheduler=warn");
        assert_eq!(
            directives("agentry=debug"),
            "agentry=debug,tokio_cron_scheduler=warn"
        );
        assert_eq!(
            directives("debug,tokio_cron_scheduler=debug"),
            "debug,tokio_cron_scheduler=debug"
        );
        for level in ["info", "agentry=debug,actix_web=info"] {
            tracing_subscriber::EnvFilter::try_new(directives(level)).unwrap();
        }
    }
}
