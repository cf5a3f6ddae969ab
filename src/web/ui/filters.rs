//! Template filters shared by the pages. askama looks a custom filter up as
//! `filters::name` in the template struct's module, so a page module that
//! uses one says `use super::filters;`.
//!
//! `{{ t|when }}` shows a time as "5 m ago" with the exact UTC time on hover
//! and a machine-readable `datetime` (the page script keeps the relative text
//! current); `{{ t|when_or("never") }}` names what an absent time means.

use std::fmt;

use askama::filters::HtmlSafe;

/// Something that may name an instant: stored milliseconds, or the RFC 3339
/// strings the pages' view models already carry.
pub trait Instant {
    fn epoch_ms(&self) -> Option<i64>;
}

impl Instant for i64 {
    fn epoch_ms(&self) -> Option<i64> {
        Some(*self)
    }
}

impl Instant for str {
    fn epoch_ms(&self) -> Option<i64> {
        crate::timefmt::parse_rfc3339(self)
    }
}

impl Instant for String {
    fn epoch_ms(&self) -> Option<i64> {
        self.as_str().epoch_ms()
    }
}

impl<T: Instant> Instant for Option<T> {
    fn epoch_ms(&self) -> Option<i64> {
        self.as_ref().and_then(Instant::epoch_ms)
    }
}

impl<T: Instant + ?Sized> Instant for &T {
    fn epoch_ms(&self) -> Option<i64> {
        (**self).epoch_ms()
    }
}

/// A time as HTML: `<time datetime title>relative</time>`, or the fallback.
pub struct When {
    at: Option<i64>,
    now: i64,
    none: &'static str,
}

impl When {
    pub fn new(at: Option<i64>, now: i64, none: &'static str) -> When {
        When { at, now, none }
    }
}

// Everything written is digits, fixed words and a static fallback chosen in
// a template: nothing from input reaches the page unescaped.
impl HtmlSafe for When {}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(at) = self.at else {
            return f.write_str(
                &askama::filters::escape(self.none, askama::filters::Html)
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            );
        };
        write!(
            f,
            "<time datetime=\"{}\" title=\"{}\">{}</time>",
            crate::timefmt::rfc3339(at),
            exact_utc(at),
            relative(at, self.now)
        )
    }
}

/// `2026-12-02 16:10:05 UTC`.
pub fn exact_utc(ms: i64) -> String {
    let s = crate::timefmt::rfc3339(ms - ms.rem_euclid(1000));
    match s.strip_suffix('Z') {
        Some(t) => format!("{} UTC", t.replacen('T', " ", 1)),
        None => s,
    }
}

/// `16:10`: the UTC hour and minute, for chart axes and tooltips.
pub fn hh_mm(ms: i64) -> String {
    utc_format(ms, time::macros::format_description!("[hour]:[minute]"))
}

/// `12-02`: the UTC month and day, for axes of ranges over days.
pub fn month_day(ms: i64) -> String {
    utc_format(ms, time::macros::format_description!("[month]-[day]"))
}

/// How a chart's x axis names its times: the minute for a range of up to
/// two days, the day beyond.
pub fn axis_time(span_ms: i64) -> fn(i64) -> String {
    if span_ms <= 2 * 86_400_000 {
        hh_mm
    } else {
        month_day
    }
}

fn utc_format(ms: i64, f: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(f).ok())
        .unwrap_or_default()
}

/// "just now", "42 s ago", "5 m ago", "3 h ago", "2 d ago", "in 4 m", and
/// the date itself beyond 30 days (a relative "412 d ago" helps nobody).
/// The page script uses the same steps.
pub fn relative(at: i64, now: i64) -> String {
    let diff = (now - at) / 1000;
    let secs = diff.unsigned_abs();
    if secs < 5 {
        return "just now".into();
    }
    if secs >= 30 * 86_400 {
        return crate::timefmt::rfc3339(at).chars().take(10).collect();
    }
    let span = match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} m", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    };
    if diff >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// How long since a time, as HTML: `<time … data-for>7 m</time>`, for
/// "firing for 7 m" (the page script keeps it current as it does "ago").
pub struct Lasted {
    at: i64,
    now: i64,
}

impl HtmlSafe for Lasted {}

impl fmt::Display for Lasted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<time datetime=\"{}\" title=\"since {}\" data-for>{}</time>",
            crate::timefmt::rfc3339(self.at),
            exact_utc(self.at),
            span(self.now - self.at)
        )
    }
}

/// A duration in the relative times' steps: "12 s", "7 m", "3 h", "2 d".
pub fn span(ms: i64) -> String {
    match ms.max(0) / 1000 {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} m", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// `{{ since|lasted }}`.
pub fn lasted<T: Instant>(t: T, _: &dyn askama::Values) -> askama::Result<Lasted> {
    let now = crate::db::now_ms();
    Ok(Lasted {
        at: t.epoch_ms().unwrap_or(now),
        now,
    })
}

/// `{{ t|when }}`: an absent or unreadable time shows as an empty cell.
pub fn when<T: Instant>(t: T, _: &dyn askama::Values) -> askama::Result<When> {
    Ok(When::new(t.epoch_ms(), crate::db::now_ms(), ""))
}

/// `{{ t|when_or("never") }}`.
pub fn when_or<T: Instant>(
    t: T,
    _: &dyn askama::Values,
    none: &'static str,
) -> askama::Result<When> {
    Ok(When::new(t.epoch_ms(), crate::db::now_ms(), none))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_691_805_000; // 2025-12-02T16:10:05Z

    #[test]
    fn relative_steps() {
        assert_eq!(relative(NOW - 2_000, NOW), "just now");
        assert_eq!(relative(NOW - 42_000, NOW), "42 s ago");
        assert_eq!(relative(NOW - 7 * 60_000 - 5_000, NOW), "7 m ago");
        assert_eq!(relative(NOW - 3 * 3_600_000, NOW), "3 h ago");
        assert_eq!(relative(NOW - 2 * 86_400_000, NOW), "2 d ago");
        assert_eq!(relative(NOW + 4 * 60_000, NOW), "in 4 m");
        assert_eq!(relative(NOW - 40 * 86_400_000, NOW), "2025-10-23");
    }

    #[test]
    fn renders_a_time_element_with_the_exact_time() {
        let w = When::new(Some(NOW - 60_000), NOW, "never");
        assert_eq!(
            w.to_string(),
            "<time datetime=\"2025-12-02T16:09:05Z\" title=\"2025-12-02 16:09:05 UTC\">1 m ago</time>"
        );
        assert_eq!(When::new(None, NOW, "never").to_string(), "never");
        assert_eq!(When::new(None, NOW, "<b>").to_string(), "&#60;b&#62;");
    }

    #[test]
    fn axis_times_are_minutes_or_days() {
        assert_eq!(hh_mm(NOW), "16:10");
        assert_eq!(month_day(NOW), "12-02");
        assert_eq!(axis_time(86_400_000)(NOW), "16:10");
        assert_eq!(axis_time(7 * 86_400_000)(NOW), "12-02");
        // Out of range: empty, not a panic.
        assert_eq!(hh_mm(i64::MAX), "");
    }

    #[test]
    fn lasted_says_for_how_long() {
        let l = Lasted {
            at: NOW - 7 * 60_000 - 1,
            now: NOW,
        };
        assert_eq!(
            l.to_string(),
            "<time datetime=\"2025-12-02T16:03:04.999Z\" title=\"since 2025-12-02 16:03:04 UTC\" data-for>7 m</time>"
        );
        assert_eq!(span(-5), "0 s");
        assert_eq!(span(26 * 3_600_000), "1 d");
    }

    #[test]
    fn reads_stored_and_formatted_times() {
        assert_eq!("2025-12-02T16:10:05Z".epoch_ms(), Some(NOW));
        assert_eq!(
            Some(String::from("2025-12-02T16:10:05Z")).epoch_ms(),
            Some(NOW)
        );
        assert_eq!(None::<String>.epoch_ms(), None);
        assert_eq!("yesterday".epoch_ms(), None);
        let by_ref: &i64 = &NOW;
        assert_eq!(Instant::epoch_ms(&by_ref), Some(NOW));
    }
}
