//! The traces pages (SPEC §15): the list (filters as the API's) and one
//! trace as a waterfall, each span's bar placed on the trace's time, its
//! attributes and events a click away.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;

use super::error::UiError;
use super::filters;
use super::layout::Layout;
use super::render;
use crate::db::spans::SpanRow;
use crate::rbac::Permission;
use crate::web::api::traces::{list_traces, read_trace, status_name, TraceQuery, TraceSummary};
use crate::web::auth::SessionUser;
use crate::web::state;

#[derive(Template)]
#[template(path = "traces/list.html")]
struct ListPage {
    layout: Layout,
    q: TraceQuery,
    error: Option<String>,
    traces: Vec<TraceSummary>,
    next: Option<String>,
}

/// The filters (without paging) as a query string.
fn filter_query(q: &TraceQuery) -> String {
    let min = q.min_duration_ms.map(|m| m.to_string());
    super::forms::filter_query(&[
        ("service", q.service.as_deref()),
        ("name", q.name.as_deref()),
        ("status", q.status.as_deref()),
        ("min_duration_ms", min.as_deref()),
        ("since", q.since.as_deref()),
        ("until", q.until.as_deref()),
    ])
}

#[get("/traces")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<TraceQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller()
        .require(&st, Permission::TelemetryRead.as_str())
        .await?;
    let mut page = ListPage {
        layout: Layout::for_session("Traces", &user, "traces"),
        q: q.into_inner(),
        error: None,
        traces: Vec::new(),
        next: None,
    };
    match list_traces(&st, &page.q).await {
        Ok(p) => {
            let filters = filter_query(&page.q);
            page.next = p.next_cursor.map(|c| super::forms::next_page(&filters, &c));
            page.traces = p.items;
            render(StatusCode::OK, &page)
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            page.error = Some(e.detail);
            render(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// One span as the waterfall draws it.
struct Bar {
    span: SpanRow,
    depth: usize,
    /// Start and width on the trace's time, in thousandths.
    x: i64,
    width: i64,
    duration_ms: f64,
    status: &'static str,
    attributes: String,
    events: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "traces/detail.html")]
struct DetailPage {
    layout: Layout,
    trace_id: String,
    bars: Vec<Bar>,
    total_ms: f64,
    services: Vec<String>,
    errors: usize,
}

/// Spans in tree order (each after its parent, siblings by start), with
/// their depth; spans whose parent is not stored start at depth 0.
fn tree(mut spans: Vec<SpanRow>) -> Vec<(SpanRow, usize)> {
    use std::collections::HashMap;
    spans.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
    let ids: std::collections::HashSet<String> = spans.iter().map(|s| s.span_id.clone()).collect();
    let mut children: HashMap<Option<String>, Vec<SpanRow>> = HashMap::new();
    for s in spans {
        let parent = s.parent_span_id.clone().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(s);
    }
    let mut out = Vec::new();
    // Depth-first without recursion: a hostile trace may nest deeply.
    let mut stack: Vec<(SpanRow, usize)> = children
        .remove(&None)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .map(|s| (s, 0))
        .collect();
    while let Some((s, depth)) = stack.pop() {
        if let Some(kids) = children.remove(&Some(s.span_id.clone())) {
            stack.extend(kids.into_iter().rev().map(|k| (k, depth + 1)));
        }
        out.push((s, depth));
    }
    // Spans in a parent cycle (ids reused) are shown at the end, flat.
    for rest in children.into_values() {
        out.extend(rest.into_iter().map(|s| (s, 0)));
    }
    out
}

#[get("/traces/{trace_id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    path: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller()
        .require(&st, Permission::TelemetryRead.as_str())
        .await?;
    let (id, spans) = read_trace(&st, &path).await?;
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(start);
    let total = (end - start).max(1);
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    let errors = spans.iter().filter(|s| s.status == 2).count();
    let bars = tree(spans)
        .into_iter()
        .map(|(s, depth)| {
            let x = (s.start_ns - start) * 1000 / total;
            let width = ((s.end_ns - s.start_ns) * 1000 / total).max(2);
            let events = s
                .events
                .as_array()
                .map(|evs| {
                    evs.iter()
                        .map(|e| {
                            let at = e["time_unix_nano"].as_u64().unwrap_or(0) as i64;
                            let offset = (at - start) as f64 / 1e6;
                            (
                                format!("{} at +{offset:.3} ms", e["name"].as_str().unwrap_or("")),
                                e["attributes"].to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Bar {
                depth: depth.min(40),
                x: x.min(998),
                width: width.min(1000 - x.min(998)),
                duration_ms: (s.end_ns - s.start_ns) as f64 / 1e6,
                status: status_name(s.status),
                attributes: serde_json::to_string_pretty(&s.attributes).unwrap_or_default(),
                events,
                span: s,
            }
        })
        .collect();
    let page = DetailPage {
        layout: Layout::for_session(format!("Trace {id}"), &user, "traces"),
        trace_id: id,
        bars,
        total_ms: total as f64 / 1e6,
        services,
        errors,
    };
    render(StatusCode::OK, &page)
}

/// Where to read what happened around something (an alert, an
/// instance): its service's failed traces and its warnings and worse over
/// `since`..`until` (ms), as (traces, logs) links. Spans are matched by
/// their `service.name`, which agents set to their agent's name.
pub fn links_around(service: Option<&str>, since: i64, until: Option<i64>) -> (String, String) {
    let since = crate::timefmt::rfc3339(since);
    let until = until.map(crate::timefmt::rfc3339);
    let query = |extra: (&str, &str)| {
        super::forms::filter_query(&[
            ("since", Some(since.as_str())),
            ("until", until.as_deref()),
            ("service", service),
            (extra.0, Some(extra.1)),
        ])
    };
    (
        format!("/traces?{}", query(("status", "error"))),
        format!("/logs?{}", query(("severity", "warn"))),
    )
}

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list).service(detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: Option<&str>, start: i64) -> SpanRow {
        SpanRow {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_string),
            service: "s".into(),
            name: id.into(),
            kind: 1,
            start_ns: start,
            end_ns: start + 1,
            status: 0,
            status_message: String::new(),
            attributes: serde_json::json!({}),
            events: serde_json::json!([]),
            resource: serde_json::json!({}),
            scope: String::new(),
            dropped_attributes: 0,
            entry: parent.is_none(),
        }
    }

    #[test]
    fn spans_follow_their_parents_and_orphans_start_at_the_left() {
        let got: Vec<(String, usize)> = tree(vec![
            span("root", None, 0),
            span("b", Some("root"), 5),
            span("a", Some("root"), 1),
            span("a1", Some("a"), 2),
            span("orphan", Some("gone"), 3),
            span("x", Some("y"), 4),
            span("y", Some("x"), 4),
        ])
        .into_iter()
        .map(|(s, d)| (s.span_id, d))
        .collect();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..5], ["root", "a", "a1", "b", "orphan"]);
        assert_eq!(got[2].1, 2);
        assert_eq!(got.len(), 7, "a parent cycle is still shown");
    }
}
