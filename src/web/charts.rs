//! Charts drawn on the server as SVG, readable without JavaScript: the
//! pages put the markup in as it is (every text in it is escaped here).
//!
//! - [`check_bar`]: one mark per history bucket, coloured by how its checks
//!   went, each with its time and counts as a tooltip.
//! - [`sparkline`]: a small line from zero to a fixed, named ceiling, so
//!   1 ms of jitter stays flat and a scale is never implied.
//! - [`time_chart`]: lines over a time range with labelled axes, an
//!   optional threshold line and marks where something failed.
//!
//! Scales always start at zero and end at a "nice" ceiling ([`ceiling`]).

use crate::db::check_rollups::RollupRow;

/// Escapes text for SVG (XML) content and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The opening tag every chart shares: its class, size and the name a
/// screen reader says.
fn svg_open(class: &str, width: u32, height: u32, label: &str) -> String {
    format!(
        r#"<svg class="{}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{}">"#,
        esc(class),
        esc(label)
    )
}

/// How a bucket's checks went: every one passed, some failed, all failed,
/// or none ran.
fn class_of(b: &RollupRow) -> &'static str {
    match (b.checks, b.failures) {
        (0, _) => "none",
        (_, 0) => "ok",
        (c, f) if f >= c => "fail",
        _ => "partial",
    }
}

/// A check bar of `buckets` (oldest first), `width` × `height` px; marks
/// are spaced evenly with a 1 px gap. `label` names the chart for screen
/// readers; `time` formats a bucket's start for its tooltip.
pub fn check_bar(
    buckets: &[RollupRow],
    width: u32,
    height: u32,
    label: &str,
    time: impl Fn(i64) -> String,
) -> String {
    let n = buckets.len().max(1) as f64;
    let step = f64::from(width) / n;
    let w = (step - 1.0).max(1.0);
    let mut out = svg_open("check-bar", width, height, label);
    for (i, b) in buckets.iter().enumerate() {
        let mark = Mark {
            class: class_of(b),
            x: i as f64 * step,
            width: w,
            height,
        };
        mark.draw(&mut out, &time(b.start), b.checks, b.failures);
    }
    out.push_str("</svg>");
    out
}

/// One mark of a check bar or strip, with its tooltip.
struct Mark {
    class: &'static str,
    x: f64,
    width: f64,
    height: u32,
}

impl Mark {
    /// Appends the mark; `when` names the time it covers.
    fn draw(&self, out: &mut String, when: &str, checks: i64, failures: i64) {
        let title = match checks {
            0 => format!("{when}: no checks"),
            c => format!("{when}: {failures} of {c} checks failed"),
        };
        out.push_str(&format!(
            r#"<rect class="{}" x="{:.1}" y="0" width="{:.1}" height="{}"><title>{}</title></rect>"#,
            self.class,
            self.x,
            self.width,
            self.height,
            esc(&title)
        ));
    }
}

/// A check strip for a row of a list: like [`check_bar`], but runs of
/// buckets that went the same way are one mark (a healthy day is one green
/// mark, not 24), which keeps a list of thousands of monitors small. Each
/// mark's tooltip gives its span and counts; `time` formats a bucket edge.
pub fn check_strip(
    buckets: &[RollupRow],
    width: u32,
    height: u32,
    label: &str,
    time: impl Fn(i64) -> String,
) -> String {
    let step = f64::from(width) / buckets.len().max(1) as f64;
    let mut out = svg_open("check-bar", width, height, label);
    let mut at = 0;
    for run in buckets.chunk_by(|a, b| class_of(a) == class_of(b)) {
        let (checks, failures) = run
            .iter()
            .fold((0, 0), |(c, f), b| (c + b.checks, f + b.failures));
        let end = run[run.len() - 1].start + run[run.len() - 1].bucket_ms;
        let mark = Mark {
            class: class_of(&run[0]),
            x: at as f64 * step,
            width: run.len() as f64 * step,
            height,
        };
        let span = format!("{} to {}", time(run[0].start), time(end));
        mark.draw(&mut out, &span, checks, failures);
        at += run.len();
    }
    out.push_str("</svg>");
    out
}

/// A segment of a [`stacked_bars`] bar: its CSS class, size, tooltip and
/// where a click on it goes.
pub struct Segment {
    pub class: &'static str,
    pub value: f64,
    pub title: String,
    pub href: String,
}

/// Bars of stacked segments (one bar per slot, oldest first) on a y axis
/// from 0 to a nice ceiling, x ticks labelled by `time` (`starts` holds
/// each bar's start, `end` the end of the last); each segment is a link.
pub fn stacked_bars(
    bars: &[(i64, Vec<Segment>)],
    end: i64,
    width: u32,
    height: u32,
    label: &str,
    time: impl Fn(i64) -> String,
) -> String {
    let (w, h) = (f64::from(width), f64::from(height));
    let (pw, ph) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
    let highest = bars
        .iter()
        .map(|(_, segs)| segs.iter().map(|s| s.value).sum::<f64>())
        .fold(0.0, f64::max);
    let max = ceiling(highest * HEADROOM, 0.0);
    let slot = pw / bars.len().max(1) as f64;
    let mut out = svg_open("time-chart bars", width, height, label);
    out.push_str(r#"<g class="axis y">"#);
    for k in 0..=Y_TICKS {
        let v = max * f64::from(k) / f64::from(Y_TICKS);
        let yy = TOP + ph - v / max * ph;
        out.push_str(&format!(
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            w - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            tick(v)
        ));
    }
    out.push_str(r#"</g><g class="axis x">"#);
    let every = (bars.len() / 6).max(1);
    for (i, (start, _)) in bars.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let xx = LEFT + i as f64 * slot;
        out.push_str(&format!(
            r#"<text x="{xx:.1}" y="{:.1}" text-anchor="start">{}</text>"#,
            h - 6.0,
            esc(&time(*start))
        ));
    }
    out.push_str(&format!(
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text></g>"#,
        w - RIGHT,
        h - 6.0,
        esc(&time(end))
    ));
    for (i, (_, segs)) in bars.iter().enumerate() {
        let x = LEFT + i as f64 * slot + 1.0;
        let mut top = TOP + ph;
        for s in segs.iter().filter(|s| s.value > 0.0) {
            let hh = s.value / max * ph;
            top -= hh;
            out.push_str(&format!(
                r#"<a href="{}"><rect class="{}" x="{x:.1}" y="{top:.1}" width="{:.1}" height="{hh:.1}"><title>{}</title></rect></a>"#,
                esc(&s.href),
                s.class,
                (slot - 2.0).max(1.0),
                esc(&s.title)
            ));
        }
    }
    out.push_str("</svg>");
    out
}

/// A span of time in one state, for [`state_strip`].
pub struct Span {
    pub from: i64,
    pub to: i64,
    pub class: &'static str,
    pub title: String,
}

/// States over `[from, to)` as one strip, a mark per span placed by time
/// (what an alert was, when), `width` × `height` px.
pub fn state_strip(
    spans: &[Span],
    from: i64,
    to: i64,
    width: u32,
    height: u32,
    label: &str,
) -> String {
    let w = f64::from(width);
    let total = (to - from).max(1) as f64;
    let x = |t: i64| ((t - from) as f64 / total).clamp(0.0, 1.0) * w;
    let mut out = svg_open("state-strip", width, height, label);
    out.push_str(&format!(
        r#"<rect class="none" x="0" y="0" width="{width}" height="{height}"/>"#
    ));
    for s in spans.iter().filter(|s| s.to > from && s.from < to) {
        out.push_str(&format!(
            r#"<rect class="{}" x="{:.1}" y="0" width="{:.1}" height="{height}"><title>{}</title></rect>"#,
            s.class,
            x(s.from),
            (x(s.to) - x(s.from)).max(1.0),
            esc(&s.title)
        ));
    }
    out.push_str("</svg>");
    out
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `v` (and at least `floor`):
/// a scale's top that reads as a round number.
pub fn ceiling(v: f64, floor: f64) -> f64 {
    let v = if v.is_finite() { v.max(floor) } else { floor };
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|c| *c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// Room above the highest value, so a steady line does not sit on the
/// chart's top edge.
pub const HEADROOM: f64 = 1.2;

/// A number as an axis label: `250`, `1.5`, `0.25`, `2k`.
pub fn tick(v: f64) -> String {
    if v >= 10_000.0 {
        return format!("{}k", trim(v / 1000.0));
    }
    trim(v)
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A sparkline of `values` (oldest first, `None` where nothing was
/// measured) on the scale 0..`max`, `width` × `height` px, with `label` for
/// screen readers. `class` styles the line (`spark`, `spark err`, ...).
pub fn sparkline(
    values: &[Option<f64>],
    max: f64,
    width: u32,
    height: u32,
    class: &str,
    label: &str,
) -> String {
    let (w, h) = (f64::from(width), f64::from(height));
    let step = w / (values.len().max(2) - 1) as f64;
    let mut out = svg_open(class, width, height, label);
    out.push_str(&format!(
        r#"<line class="base" x1="0" y1="{:.1}" x2="{w}" y2="{:.1}"/>"#,
        h - 1.0,
        h - 1.0
    ));
    for run in runs(values) {
        let pts: Vec<String> = run
            .iter()
            .map(|(i, v)| {
                let y = h - 1.0 - (v / max).clamp(0.0, 1.0) * (h - 3.0);
                format!("{:.1},{y:.1}", *i as f64 * step)
            })
            .collect();
        out.push_str(&format!(r#"<polyline points="{}"/>"#, pts.join(" ")));
    }
    out.push_str("</svg>");
    out
}

/// Consecutive measured values, with their index: a gap breaks the line
/// rather than being drawn as zero.
fn runs(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => out.last_mut().unwrap().push((i, *v)),
            _ => {
                if !out.last().unwrap().is_empty() {
                    out.push(Vec::new());
                }
            }
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// A line of a [`TimeChart`]: points at times (ms), `None` for a gap.
pub struct Line {
    pub name: String,
    /// CSS class of the line (`p50`, `p95`, `value`, ...).
    pub class: &'static str,
    pub points: Vec<(i64, Option<f64>)>,
}

/// Lines over `[from, to)` with a y axis from 0 to a nice ceiling in
/// `unit`, x ticks labelled by `time`, a threshold line, and failure marks
/// (spans of time drawn under the lines).
pub struct TimeChart<'a> {
    pub label: &'a str,
    pub from: i64,
    pub to: i64,
    pub unit: &'a str,
    pub lines: Vec<Line>,
    pub threshold: Option<(f64, String)>,
    pub failures: Vec<(i64, i64)>,
    pub width: u32,
    pub height: u32,
}

const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;
const Y_TICKS: u32 = 4;
const X_TICKS: i64 = 6;

/// Draws `c`; `time` formats an x tick.
pub fn time_chart(c: &TimeChart<'_>, time: impl Fn(i64) -> String) -> String {
    let (w, h) = (f64::from(c.width), f64::from(c.height));
    let (pw, ph) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
    let span = (c.to - c.from).max(1) as f64;
    let highest = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .chain(c.threshold.as_ref().map(|t| t.0))
        .fold(0.0, f64::max);
    let max = ceiling(highest * HEADROOM, 0.0);
    let x = |t: i64| LEFT + ((t - c.from) as f64 / span).clamp(0.0, 1.0) * pw;
    let y = |v: f64| TOP + ph - (v / max).clamp(0.0, 1.0) * ph;
    let mut out = svg_open("time-chart", c.width, c.height, c.label);
    for (a, b) in &c.failures {
        out.push_str(&format!(
            r#"<rect class="failed" x="{:.1}" y="{TOP}" width="{:.1}" height="{ph:.1}"><title>failed checks</title></rect>"#,
            x(*a),
            (x(*b) - x(*a)).max(1.5)
        ));
    }
    out.push_str(r#"<g class="axis y">"#);
    for k in 0..=Y_TICKS {
        let v = max * f64::from(k) / f64::from(Y_TICKS);
        let yy = y(v);
        out.push_str(&format!(
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            w - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            esc(format!("{} {}", tick(v), c.unit).trim_end())
        ));
    }
    out.push_str(r#"</g><g class="axis x">"#);
    for k in 0..=X_TICKS {
        let t = c.from + (c.to - c.from) * k / X_TICKS;
        let anchor = match k {
            0 => "start",
            X_TICKS => "end",
            _ => "middle",
        };
        out.push_str(&format!(
            r#"<line class="tick" x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}"/><text x="{xx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            TOP + ph,
            TOP + ph + 4.0,
            h - 6.0,
            esc(&time(t)),
            xx = x(t)
        ));
    }
    out.push_str("</g>");
    if let Some((v, name)) = &c.threshold {
        let yy = y(*v);
        out.push_str(&format!(
            r#"<g class="threshold"><line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text></g>"#,
            w - RIGHT,
            w - RIGHT - 2.0,
            yy - 4.0,
            esc(name)
        ));
    }
    for line in &c.lines {
        let pts: Vec<Option<f64>> = line.points.iter().map(|p| p.1).collect();
        out.push_str(&format!(r#"<g class="line {}">"#, line.class));
        for run in runs(&pts) {
            let coords: Vec<String> = run
                .iter()
                .map(|(i, v)| format!("{:.1},{:.1}", x(line.points[*i].0), y(*v)))
                .collect();
            if coords.len() == 1 {
                let (cx, cy) = coords[0].split_once(',').unwrap_or(("0", "0"));
                out.push_str(&format!(r#"<circle cx="{cx}" cy="{cy}" r="1.5"/>"#));
            } else {
                out.push_str(&format!(r#"<polyline points="{}"/>"#, coords.join(" ")));
            }
        }
        out.push_str(&format!("<title>{}</title></g>", esc(&line.name)));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(start: i64, checks: i64, failures: i64) -> RollupRow {
        RollupRow {
            instance_id: "i".into(),
            bucket_ms: 60_000,
            start,
            checks,
            failures,
            p50_ms: None,
            p95_ms: None,
        }
    }

    #[test]
    fn a_check_bar_marks_each_bucket_by_how_it_went() {
        let svg = check_bar(
            &[b(0, 2, 0), b(1, 2, 1), b(2, 2, 2), b(3, 0, 0)],
            100,
            20,
            "checks <1h>",
            |t| format!("t{t}"),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        for class in ["ok", "partial", "fail", "none"] {
            assert_eq!(
                svg.matches(&format!(r#"class="{class}""#)).count(),
                1,
                "{class}"
            );
        }
        assert!(svg.contains("<title>t1: 1 of 2 checks failed</title>"));
        assert!(svg.contains("<title>t3: no checks</title>"));
        // Evenly spaced: four marks of 24 px in 100.
        assert!(svg.contains(r#"x="75.0" y="0" width="24.0""#), "{svg}");
        // Text is escaped.
        assert!(svg.contains(r#"aria-label="checks &lt;1h&gt;""#));
    }

    #[test]
    fn scales_end_at_round_numbers() {
        assert_eq!(ceiling(0.0, 1.0), 1.0);
        assert_eq!(ceiling(21.0, 1.0), 50.0);
        assert_eq!(ceiling(20.0, 1.0), 20.0);
        assert_eq!(ceiling(101.0, 1.0), 200.0);
        assert_eq!(ceiling(3.0, 10.0), 10.0);
        assert_eq!(ceiling(0.37, 0.0), 0.5);
        assert_eq!(ceiling(f64::NAN, 5.0), 5.0);
        assert_eq!(tick(250.0), "250");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(20_000.0), "20k");
    }

    #[test]
    fn a_sparkline_starts_at_zero_and_breaks_at_gaps() {
        // 20 and 21 ms on a 0..50 scale: nearly flat, not floor to ceiling.
        let svg = sparkline(
            &[Some(20.0), Some(21.0), None, Some(50.0), Some(99.0)],
            50.0,
            100,
            20,
            "spark",
            "latency",
        );
        let lines: Vec<&str> = svg.matches("<polyline").collect();
        assert_eq!(lines.len(), 2, "{svg}");
        assert!(svg.contains(r#"points="0.0,12.2 25.0,11.9""#), "{svg}");
        // Above the scale is drawn at its top, not outside the box.
        assert!(svg.contains(r#"75.0,2.0 100.0,2.0""#), "{svg}");
    }

    #[test]
    fn a_time_chart_has_axes_a_threshold_and_failure_marks() {
        let c = TimeChart {
            label: "latency <1h>",
            from: 0,
            to: 600,
            unit: "ms",
            lines: vec![Line {
                name: "p95".into(),
                class: "p95",
                points: vec![
                    (0, Some(40.0)),
                    (100, Some(60.0)),
                    (200, None),
                    (300, Some(80.0)),
                ],
            }],
            threshold: Some((150.0, "degraded above 150 ms".into())),
            failures: vec![(200, 300)],
            width: 400,
            height: 200,
        };
        let svg = time_chart(&c, |t| format!("t{t}"));
        // y from 0 to 200 ms (the threshold counts), five labelled ticks.
        for label in ["0 ms", "50 ms", "100 ms", "150 ms", "200 ms"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}: {svg}");
        }
        // x: seven ticks from the start to the end of the range.
        for t in ["t0", "t300", "t600"] {
            assert!(svg.contains(&format!(">{t}</text>")), "{t}");
        }
        assert_eq!(svg.matches("<text").count(), 5 + 7 + 1);
        assert!(svg.contains("degraded above 150 ms"));
        assert_eq!(svg.matches(r#"class="failed""#).count(), 1);
        // The gap splits the line; the lone point after it is a dot.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains(r#"aria-label="latency &lt;1h&gt;""#));
    }

    #[test]
    fn a_check_strip_joins_buckets_that_went_the_same_way() {
        let hour = |start, checks, failures| RollupRow {
            bucket_ms: 10,
            ..b(start, checks, failures)
        };
        let svg = check_strip(
            &[
                hour(0, 2, 0),
                hour(10, 2, 0),
                hour(20, 2, 1),
                hour(30, 0, 0),
                hour(40, 3, 0),
            ],
            100,
            10,
            "day",
            |t| format!("t{t}"),
        );
        assert_eq!(svg.matches("<rect").count(), 4, "{svg}");
        assert!(svg.contains(r#"<rect class="ok" x="0.0" y="0" width="40.0" height="10"><title>t0 to t20: 0 of 4 checks failed</title>"#), "{svg}");
        assert!(svg.contains("<title>t20 to t30: 1 of 2 checks failed</title>"));
        assert!(svg.contains("<title>t30 to t40: no checks</title>"));
        assert!(svg.contains(r#"x="80.0" y="0" width="20.0""#));
    }

    #[test]
    fn stacked_bars_stack_linked_segments_on_a_labelled_scale() {
        let seg = |class, value: f64| Segment {
            class,
            value,
            title: format!("{value} {class}"),
            href: format!("/audit?outcome={class}&x=<y>"),
        };
        let svg = stacked_bars(
            &[
                (0, vec![seg("success", 30.0), seg("denied", 10.0)]),
                (10, vec![seg("success", 0.0)]),
            ],
            20,
            200,
            100,
            "activity",
            |t| format!("t{t}"),
        );
        // 40 at most, scale to 50 (with headroom): five y labels.
        for l in [">0<", ">12.5<", ">25<", ">37.5<", ">50<"] {
            assert!(svg.contains(l), "{l}: {svg}");
        }
        // Empty segments are not drawn; each drawn one is a link, escaped.
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(
            svg.contains(r#"<a href="/audit?outcome=denied&amp;x=&lt;y&gt;"><rect class="denied""#)
        );
        assert!(svg.contains(">t0<") && svg.contains(">t20<"));
    }

    #[test]
    fn a_state_strip_places_spans_by_time() {
        let span = |from, to, class| Span {
            from,
            to,
            class,
            title: format!("{class} <{from}>"),
        };
        let svg = state_strip(
            &[
                span(-50, 20, "pending"),
                span(20, 70, "firing"),
                span(200, 300, "resolved"),
            ],
            0,
            100,
            200,
            10,
            "states",
        );
        // Clipped to the window; outside it, nothing.
        assert!(
            svg.contains(r#"<rect class="pending" x="0.0" y="0" width="40.0""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<rect class="firing" x="40.0" y="0" width="100.0""#),
            "{svg}"
        );
        assert!(!svg.contains("resolved"));
        assert!(svg.contains("<title>firing &lt;20&gt;</title>"));
    }
}
