//! The metrics page (`/series`): any reported series over a range, drawn
//! by the server on a labelled scale from zero, with a rule's threshold
//! when opened from a rule (or from "test this expression now").

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::filters;
use super::layout::Layout;
use super::render;
use crate::monitor::history::Range;
use crate::monitor::metrics;
use crate::rbac::Permission;
use crate::timefmt::{parse_filter_time, Edge};
use crate::web::auth::SessionUser;
use crate::web::charts;
use crate::web::state;

const VIEW: &str = Permission::HealthView.as_str();
/// Lines drawn on one chart; the page says how many more matched.
const LINES: usize = 12;
/// Points per line: the range is folded into this many buckets.
const BUCKETS: i64 = 240;

#[derive(Default, Deserialize)]
pub struct SeriesQuery {
    #[serde(default)]
    name: String,
    /// Label matchers: `agent="planner", instance=~"eu-.*"`.
    #[serde(default)]
    labels: String,
    /// `1h`, `24h` (default), `7d`, `30d`; or `from` and `to`.
    #[serde(default)]
    range: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// A rule's threshold, drawn as a line.
    #[serde(default)]
    threshold: String,
    /// The rule it came from, named on the page.
    #[serde(default)]
    rule: String,
}

/// One line's legend entry: its labels and reporter, and its class.
struct LegendItem {
    class: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "series.html")]
struct SeriesPage {
    layout: Layout,
    q: SeriesQuery,
    names: Vec<String>,
    ranges: &'static [Range],
    range: String,
    chart: String,
    legend: Vec<LegendItem>,
    matched: usize,
    error: Option<String>,
    /// When the chart was drawn (ms).
    now: i64,
}

/// Line classes, one colour each (see app.css).
const CLASSES: [&str; LINES] = [
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
];

#[get("/series")]
pub async fn show(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<SeriesQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let q = q.into_inner();
    let now = crate::db::now_ms();
    let mut page = SeriesPage {
        layout: Layout::for_session("Metrics", &user, "series"),
        names: metrics::names(&st.db).await?,
        ranges: Range::ALL,
        range: String::new(),
        chart: String::new(),
        legend: Vec::new(),
        matched: 0,
        error: None,
        now,
        q,
    };
    let name = page.q.name.trim().to_string();
    if name.is_empty() {
        return render(StatusCode::OK, &page);
    }
    match window(&page.q, now) {
        Err(e) => page.error = Some(e),
        Ok((from, to, label)) => {
            page.range = label;
            if let Err(e) = draw(&st, &mut page, name, from, to).await? {
                page.error = Some(e);
            }
        }
    }
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(status, &page)
}

/// The window asked for: `from`/`to` when given (dates, times or spans
/// back from now), else the range (24 h by default), and its label.
fn window(q: &SeriesQuery, now: i64) -> Result<(i64, i64, String), String> {
    let (from, to) = (q.from.trim(), q.to.trim());
    if !from.is_empty() || !to.is_empty() {
        let from = parse_filter_time(from, Edge::Start, now).ok_or(
            "from: give a date (2026-12-01), an RFC 3339 time or a span back from now (24h)",
        )?;
        let to = match to {
            "" => now,
            t => parse_filter_time(t, Edge::End, now)
                .ok_or("to: give a date, an RFC 3339 time or a span back from now")?,
        };
        if from >= to {
            return Err("from must be before to".into());
        }
        return Ok((from, to, String::new()));
    }
    let range = Range::parse(q.range.trim()).unwrap_or(Range::Day);
    Ok((now - range.span_ms(), now, range.as_str().to_string()))
}

/// Reads and draws the series; `Ok(Err(message))` for what the user must
/// fix (an unreadable label filter or threshold).
async fn draw(
    st: &crate::web::state::WebState,
    page: &mut SeriesPage,
    name: String,
    from: i64,
    to: i64,
) -> Result<Result<(), String>, UiError> {
    let matchers = match super::silences::parse_filter(&page.q.labels)
        .and_then(|m| super::silences::compile_all(&m))
    {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("labels: {e}"))),
    };
    let threshold = match page.q.threshold.trim() {
        "" => None,
        t => match t.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => return Ok(Err("threshold must be a number".into())),
        },
    };
    let bucket = ((to - from) / BUCKETS).max(1000);
    let keep = move |labels: &BTreeMap<String, String>| matchers.iter().all(|m| m.matches(labels));
    let (lines, matched) =
        metrics::plot(&st.db, name.clone(), keep, from, to, bucket, LINES).await?;
    page.matched = matched;
    let rule = page.q.rule.trim();
    // Reporters are principals: named as the other pages name them.
    let names = crate::identity::principals::Names::load(&st.db).await?;
    let reporter = |id: &str| names.of_either(id).unwrap_or(id).to_string();
    page.legend = lines
        .iter()
        .zip(CLASSES)
        .map(|(l, class)| LegendItem {
            class,
            text: label_text(&l.labels, &reporter(&l.reporter)),
        })
        .collect();
    // Each line is named as its legend entry.
    let chart_lines = lines
        .iter()
        .zip(&page.legend)
        .map(|(l, item)| charts::Line {
            name: item.text.clone(),
            class: item.class,
            points: with_gaps(&l.points, bucket),
        })
        .collect();
    let time = filters::axis_time(to - from);
    page.chart = charts::time_chart(
        &charts::TimeChart {
            label: &format!("{name} (largest value per {} s)", bucket / 1000),
            from,
            to,
            unit: "",
            lines: chart_lines,
            threshold: threshold.map(|v| {
                let by = if rule.is_empty() {
                    String::new()
                } else {
                    format!(" of {rule}")
                };
                (v, format!("threshold{by}: {}", charts::tick(v)))
            }),
            failures: Vec::new(),
            width: 900,
            height: 320,
        },
        time,
    );
    Ok(Ok(()))
}

/// `{agent="planner"} from planner-1`.
fn label_text(labels: &BTreeMap<String, String>, reporter: &str) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}} from {reporter}", inner.join(", "))
}

/// The points as drawn: each bucket with a value at its middle, and a
/// break (`None`) where nothing was reported for longer than [`GAP_MS`] or
/// four buckets, so a line stops where reports stopped rather than
/// bridging the silence, yet a series reported once a minute on a range
/// cut in 15-second buckets is still a line.
fn with_gaps(points: &[(i64, f64)], bucket: i64) -> Vec<(i64, Option<f64>)> {
    let gap = GAP_MS.max(4 * bucket);
    let mut out = Vec::with_capacity(points.len() + 4);
    let mut last: Option<i64> = None;
    for (start, v) in points {
        if last.is_some_and(|l| start - l > gap) {
            out.push((start - bucket / 2, None));
        }
        out.push((start + bucket / 2, Some(*v)));
        last = Some(*start);
    }
    out
}

/// Silence longer than this breaks a line.
const GAP_MS: i64 = 5 * 60_000;

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(show);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_silences_break_the_line() {
        let m = 60_000;
        let p = with_gaps(&[(0, 1.0), (m, 3.0), (2 * m, 2.0), (20 * m, 4.0)], 1000);
        assert_eq!(
            p,
            [
                (500, Some(1.0)),
                (m + 500, Some(3.0)),
                (2 * m + 500, Some(2.0)),
                (20 * m - 500, None),
                (20 * m + 500, Some(4.0))
            ]
        );
    }

    #[test]
    fn windows_take_ranges_dates_and_spans() {
        let now = 1_764_691_805_000;
        let q = |range: &str, from: &str, to: &str| SeriesQuery {
            range: range.into(),
            from: from.into(),
            to: to.into(),
            ..SeriesQuery::default()
        };
        assert_eq!(window(&q("", "", ""), now).unwrap().2, "24h");
        assert_eq!(
            window(&q("7d", "", ""), now).unwrap().0,
            now - 7 * 86_400_000
        );
        let (from, to, _) = window(&q("", "2025-12-01", "2025-12-01"), now).unwrap();
        assert_eq!(to - from, 86_400_000);
        assert!(window(&q("", "2h", "3h"), now)
            .unwrap_err()
            .contains("before"));
        assert!(window(&q("", "soon", ""), now)
            .unwrap_err()
            .starts_with("from"));
    }
}
