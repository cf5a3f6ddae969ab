//! Durations of `for` and `in` clauses: `30s`, `2m`, `2 minutes`, `1h30m`,
//! `1 hour 30 minutes`, `1 day`, `1m500ms`. Whole numbers only; the parts
//! are added; the total must lie within [`MIN_DURATION`]..=[`MAX_DURATION`].

use std::time::Duration;

use super::error::{ErrorKind, ParseError};

/// The shortest accepted duration: 1 s.
pub const MIN_DURATION: Duration = Duration::from_secs(1);
/// The longest accepted duration: 90 days.
pub const MAX_DURATION: Duration = Duration::from_secs(90 * 86_400);

const MS: u64 = 1;
const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;

/// Milliseconds per unit; units are matched case-insensitively.
fn unit_ms(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" => MS,
        "s" | "sec" | "secs" | "second" | "seconds" => SEC,
        "m" | "min" | "mins" | "minute" | "minutes" => MIN,
        "h" | "hr" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        _ => return None,
    })
}

const HINT: &str = "use e.g. 30s, 2m, 2 minutes, 1h30m or 1 day (between 1s and 90 days)";

/// Scans a duration in `src` from index `start` (which must not be
/// whitespace). Returns the duration and the index just after it. Errors
/// carry the column of `start`.
pub(crate) fn scan(src: &[char], start: usize) -> Result<(Duration, usize), ParseError> {
    let col = start + 1;
    let text = |end: usize| -> String { src[start..end.min(src.len())].iter().collect() };
    let bad = |end: usize, why: &str| {
        ParseError::new(
            col,
            ErrorKind::BadDuration,
            format!(
                "bad duration \"{}\": {why}; {HINT}",
                text(end).escape_debug()
            ),
        )
    };
    if start >= src.len() {
        return Err(ParseError::new(
            col,
            ErrorKind::UnexpectedEnd,
            format!("unexpected end of expression: expected a duration; {HINT}"),
        ));
    }
    if !src[start].is_ascii_digit() {
        let mut end = start + 1;
        while end < src.len() && (src[end].is_alphanumeric() || src[end] == '_') {
            end += 1;
        }
        return Err(bad(end, "a duration starts with a whole number"));
    }
    let mut pos = start;
    let mut total: u64 = 0;
    loop {
        // Number part.
        let num_start = pos;
        while pos < src.len() && src[pos].is_ascii_digit() {
            pos += 1;
        }
        let digits: String = src[num_start..pos].iter().collect();
        if pos + 1 < src.len() && src[pos] == '.' && src[pos + 1].is_ascii_digit() {
            return Err(bad(
                pos + 1,
                "durations use whole numbers (write 1h30m rather than 1.5h)",
            ));
        }
        let n: u64 = digits.parse().map_err(|_| bad(pos, "number too large"))?;
        // Optional whitespace, then the unit.
        let before_ws = pos;
        while pos < src.len() && src[pos].is_whitespace() {
            pos += 1;
        }
        let unit_start = pos;
        while pos < src.len() && src[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        if unit_start == pos {
            return Err(bad(before_ws, &format!("missing unit after {digits}")));
        }
        let unit: String = src[unit_start..pos].iter().collect();
        let Some(mult) = unit_ms(&unit) else {
            let keyword = ["and", "or", "not", "for", "in"]
                .iter()
                .any(|k| unit.eq_ignore_ascii_case(k));
            if keyword && unit_start > before_ws {
                return Err(bad(before_ws, &format!("missing unit after {digits}")));
            }
            return Err(bad(pos, &format!("unknown unit \"{unit}\"")));
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| v.checked_add(total))
            .ok_or_else(|| bad(pos, "too long"))?;
        // Another part follows when the next non-blank character is a digit.
        let mut look = pos;
        while look < src.len() && src[look].is_whitespace() {
            look += 1;
        }
        if look < src.len() && src[look].is_ascii_digit() {
            pos = look;
        } else {
            break;
        }
    }
    let d = Duration::from_millis(total);
    if d < MIN_DURATION {
        return Err(bad(pos, "shorter than the minimum of 1s"));
    }
    if d > MAX_DURATION {
        return Err(bad(pos, "longer than the maximum of 90 days"));
    }
    Ok((d, pos))
}

/// Compact display of a duration: `2m`, `1h30m`, `1d12h`, `1m500ms`, `0s`.
/// Sub-millisecond parts are dropped.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", DAY as u128),
        ("h", HOUR as u128),
        ("m", MIN as u128),
        ("s", SEC as u128),
        ("ms", MS as u128),
    ] {
        if ms >= size {
            out.push_str(&(ms / size).to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<Duration, ParseError> {
        let chars: Vec<char> = s.chars().collect();
        scan(&chars, 0).map(|(d, end)| {
            assert_eq!(end, chars.len(), "{s}: stopped early");
            d
        })
    }

    #[test]
    fn forms() {
        assert_eq!(d("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(d("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(d("2 minutes").unwrap(), Duration::from_secs(120));
        assert_eq!(d("1 minute").unwrap(), Duration::from_secs(60));
        assert_eq!(d("90 seconds").unwrap(), Duration::from_secs(90));
        assert_eq!(d("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(d("3 hours").unwrap(), Duration::from_secs(3 * 3600));
        assert_eq!(d("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(d("1 hour 30 minutes").unwrap(), Duration::from_secs(5400));
        assert_eq!(d("1 day").unwrap(), Duration::from_secs(86_400));
        assert_eq!(d("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(d("2 Minutes").unwrap(), Duration::from_secs(120));
        assert_eq!(d("1s500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(d("10 mins").unwrap(), Duration::from_secs(600));
        assert_eq!(d("2hr").unwrap(), Duration::from_secs(7200));
        assert_eq!(d("90d").unwrap(), MAX_DURATION);
        assert_eq!(d("1s").unwrap(), MIN_DURATION);
    }

    #[test]
    fn refusals() {
        for bad in [
            "500ms",
            "0s",
            "5",
            "5 fortnights",
            "91d",
            "1.5h",
            "99999999999999999999999s",
            "1h 5",
        ] {
            let e = d(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadDuration, "{bad}: {e}");
            assert_eq!(e.column, 1, "{bad}");
        }
        let e = d("5 fortnights").unwrap_err();
        assert!(e.message.contains("\"fortnights\""), "{e}");
    }

    #[test]
    fn display() {
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(86_400 + 3600)), "1d1h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for s in ["2m", "1h30m", "1d1h", "1s500ms", "90d", "1m1s"] {
            assert_eq!(format_duration(d(s).unwrap()), s);
        }
    }
}
