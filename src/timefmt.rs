//! Stored times are milliseconds since the epoch; the API and UI show them
//! as RFC 3339 UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `20261125T143005Z`: a UTC time for file names.
pub fn compact_utc(ms: i64) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Parses RFC 3339 into milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Which end of a filter's window a typed time stands for: a date alone is
/// its first moment as a start and its last (the next midnight) as an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Start,
    End,
}

/// A time as people type it into a filter: RFC 3339; a UTC date
/// (`2026-12-01`) or date and minute (`2026-12-01T14:30`); or a span back
/// from `now` (`90m`, `24h`, `7d`: "the last 24 hours").
pub fn parse_filter_time(s: &str, edge: Edge, now: i64) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    if let Some(ago) = span_ms(s) {
        return Some(now - ago);
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date) {
        let day = d.midnight().assume_utc().unix_timestamp() * 1000;
        return Some(match edge {
            Edge::Start => day,
            Edge::End => day + 86_400_000,
        });
    }
    let minute = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(s, &minute)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp() * 1000)
}

/// Whether `s` is a span such as `24h` (see [`parse_filter_time`]).
pub fn is_span(s: &str) -> bool {
    span_ms(s).is_some()
}

/// `90m`, `24h`, `7d` as milliseconds: 1 to 9999 minutes, hours or days
/// (`formats::SPAN`).
fn span_ms(s: &str) -> Option<i64> {
    // ASCII only: the split below is by bytes.
    if !s.is_ascii() {
        return None;
    }
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    if n.is_empty() || n.len() > 4 || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = n.parse().ok()?;
    Some(match unit {
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_filter_time, Edge};

    #[test]
    fn filter_times_take_dates_and_spans() {
        let now = 1_764_691_805_000; // 2025-12-02T16:10:05Z
        let day = 1_764_633_600_000; // 2025-12-02T00:00:00Z
        assert_eq!(parse_filter_time("2025-12-02", Edge::Start, now), Some(day));
        assert_eq!(
            parse_filter_time("2025-12-02", Edge::End, now),
            Some(day + 86_400_000)
        );
        assert_eq!(
            parse_filter_time(" 2025-12-02T14:30 ", Edge::Start, now),
            Some(day + 52_200_000)
        );
        assert_eq!(
            parse_filter_time("24h", Edge::Start, now),
            Some(now - 86_400_000)
        );
        assert_eq!(
            parse_filter_time("90m", Edge::End, now),
            Some(now - 5_400_000)
        );
        assert_eq!(
            parse_filter_time("9999d", Edge::End, now),
            Some(now - 9999 * 86_400_000)
        );
        assert_eq!(
            parse_filter_time("2025-12-02T16:10:05Z", Edge::End, now),
            Some(now)
        );
        for bad in [
            "",
            "yesterday",
            "0h",
            "-5h",
            "+5h",
            "05h",
            "5w",
            "2025-13-01",
            "99999d",
            "h",
        ] {
            assert_eq!(parse_filter_time(bad, Edge::Start, now), None, "{bad}");
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        let ms = 1_764_000_000_123;
        assert_eq!(super::parse_rfc3339(&super::rfc3339(ms)), Some(ms));
        assert_eq!(super::parse_rfc3339("yesterday"), None);
        assert_eq!(super::compact_utc(ms), "20251124T160000Z");
    }
}
