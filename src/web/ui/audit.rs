//! The audit log page: filters, newest-first table, detail view, export
//! links and chain verification.

use super::filters;
use crate::identity::principals::Names;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::layout::Layout;
use super::render;
use crate::audit::{self, Outcome, Record, VerifyReport};
use crate::web::api::audit::{list_records, run_verify, AuditQuery, READ};
use crate::web::auth::SessionUser;
use crate::web::state;

#[derive(Template)]
#[template(path = "audit/list.html")]
struct ListPage {
    layout: Layout,
    q: AuditQuery,
    error: Option<String>,
    records: Vec<Row>,
    /// Query string of the next (older) page.
    next: Option<String>,
    /// Query string of the current filters (for export links).
    filters: String,
    verify: Option<VerifyReport>,
    outcomes: &'static [Outcome],
    /// Records per hour and outcome over the last 24 hours, as SVG.
    activity: String,
}

/// The last 24 hours of the log as stacked bars by outcome; a click on a
/// segment lists that hour's records with that outcome.
async fn activity_chart(st: &crate::web::state::WebState) -> Result<String, UiError> {
    let now = crate::db::now_ms();
    let hours = crate::audit::activity::last_day(&st.db, &st.activity, now).await?;
    let end = hours.last().map(|h| h.start + 3_600_000).unwrap_or(now);
    let hhmm = super::filters::hh_mm;
    let bars: Vec<(i64, Vec<crate::web::charts::Segment>)> = hours
        .iter()
        .map(|h| {
            let (from, to) = (h.start, h.start + 3_600_000);
            let segs = h
                .counts
                .iter()
                .map(|(o, n)| crate::web::charts::Segment {
                    class: o.as_str(),
                    value: *n as f64,
                    title: format!("{}–{} UTC: {n} {}", hhmm(from), hhmm(to), o.as_str()),
                    href: format!(
                        "/audit?outcome={}&since={}&until={}",
                        o.as_str(),
                        crate::timefmt::rfc3339(from),
                        crate::timefmt::rfc3339(to)
                    ),
                })
                .collect();
            (h.start, segs)
        })
        .collect();
    Ok(crate::web::charts::stacked_bars(
        &bars,
        end,
        720,
        160,
        "audit records per hour by outcome, last 24 hours",
        hhmm,
    ))
}

/// A record as the list shows it: the record, and for a gateway record
/// what it acted on and how it went.
struct Row {
    record: Record,
    glance: Option<String>,
    /// The target as people know it (an agent's or user's name), and its
    /// page; the id when it has no name (or no longer exists).
    target: String,
    target_href: Option<String>,
}

impl Row {
    fn of(record: Record, names: &Names) -> Row {
        let (target, target_href) = target_of(&record, names);
        Row {
            glance: crate::mcp::record::glance(&record.action, &record.details),
            target,
            target_href,
            record,
        }
    }
}

/// How a record's target reads: `agent planner-1` linked to its page.
fn target_of(r: &Record, names: &Names) -> (String, Option<String>) {
    let (Some(kind), Some(id)) = (r.target_type.as_deref(), r.target_id.as_deref()) else {
        return (r.target_type.clone().unwrap_or_default(), None);
    };
    let principal = crate::identity::PrincipalKind::parse(kind);
    match principal.and_then(|k| names.of(k, id)) {
        Some(name) => (format!("{kind} {name}"), Some(format!("/{kind}s/{id}"))),
        None => {
            let href = match kind {
                "role" => Some(format!("/roles/{id}")),
                "instance" => Some(format!("/monitors/{id}")),
                _ => None,
            };
            (format!("{kind} {id}"), href)
        }
    }
}

impl std::ops::Deref for Row {
    type Target = Record;
    fn deref(&self) -> &Record {
        &self.record
    }
}

/// The filters (without paging) as a query string.
fn filter_query(q: &AuditQuery) -> String {
    super::forms::filter_query(&[
        ("actor", q.actor.as_deref()),
        ("action", q.action.as_deref()),
        ("outcome", q.outcome.as_deref()),
        ("target", q.target.as_deref()),
        ("since", q.since.as_deref()),
        ("until", q.until.as_deref()),
    ])
}

async fn list_page(
    req: &HttpRequest,
    user: &SessionUser,
    q: AuditQuery,
    verify: Option<VerifyReport>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(req);
    let caller = user.caller();
    let filters = filter_query(&q);
    let mut page = ListPage {
        layout: Layout::for_session("Audit log", user, "audit"),
        error: None,
        records: Vec::new(),
        next: None,
        filters,
        verify,
        outcomes: Outcome::ALL,
        activity: String::new(),
        q,
    };
    // Bad filters are shown next to the form, keeping what was typed.
    if let Err(e) = page.q.filter() {
        caller.require(&st, READ).await?;
        page.error = Some(e.detail);
        return render(StatusCode::BAD_REQUEST, &page);
    }
    let result = list_records(&st, &caller, &page.q).await;
    match result {
        Ok(p) => {
            page.next = p
                .next_cursor
                .map(|c| super::forms::next_page(&page.filters, &c));
            let names = Names::load(&st.db).await?;
            page.records = p.items.into_iter().map(|r| Row::of(r, &names)).collect();
            page.activity = activity_chart(&st).await?;
            render(StatusCode::OK, &page)
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            page.error = Some(e.detail);
            render(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[get("/audit")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, UiError> {
    list_page(&req, &user, q.into_inner(), None).await
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf_token: String,
}

/// Verification reads the whole log, so it is a POST (with CSRF) rather
/// than a link anyone could make a browser follow.
#[post("/audit/verify")]
pub async fn verify_chain(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    let report = run_verify(&st, &user.caller(), None).await?;
    list_page(&req, &user, AuditQuery::default(), Some(report)).await
}

#[derive(Template)]
#[template(path = "audit/detail.html")]
struct DetailPage {
    layout: Layout,
    r: Record,
    details: String,
    /// The trace of a gateway call, linked.
    trace: Option<String>,
}

#[get("/audit/{seq}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    seq: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let caller = user.caller();
    caller.require(&st, READ).await?;
    let seq: i64 = seq.parse().map_err(|_| {
        UiError::Api(crate::web::problem::ApiError::not_found(
            "no such audit record",
        ))
    })?;
    st.audit
        .record(
            user.ctx
                .event("audit.read", Outcome::Success)
                .detail("seq", seq),
        )
        .await?;
    let r = audit::get(&st.db, seq).await?;
    let details = serde_json::to_string_pretty(&r.details).unwrap_or_default();
    // A gateway call's trace (32 hex digits, as the gateway writes it).
    let trace = r
        .details
        .get("trace_id")
        .and_then(|t| t.as_str())
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let page = DetailPage {
        layout: Layout::for_session(format!("Audit record {seq}"), &user, "audit"),
        r,
        details,
        trace,
    };
    render(StatusCode::OK, &page)
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list).service(verify_chain).service(detail);
}
