//! The logs page (SPEC §15): search with the API's filters, newest first;
//! "Follow" keeps the first page current (every 5 s, in place).

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::filters;
use super::layout::Layout;
use super::render;
use crate::rbac::Permission;
use crate::web::api::logs::{search_logs, LogQuery, LogView};
use crate::web::auth::SessionUser;
use crate::web::state;

/// The API's filters, and whether to follow.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    q: Option<String>,
    service: Option<String>,
    severity: Option<String>,
    trace_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    follow: Option<String>,
}

#[derive(Template)]
#[template(path = "logs/list.html")]
struct ListPage {
    layout: Layout,
    q: LogQuery,
    follow: bool,
    error: Option<String>,
    records: Vec<LogView>,
    next: Option<String>,
    /// The filters as a query string (for Follow and paging).
    filters: String,
    severities: Vec<&'static str>,
    now: i64,
}

#[get("/logs")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller()
        .require(&st, Permission::TelemetryRead.as_str())
        .await?;
    let p = q.into_inner();
    let filters = super::forms::filter_query(&[
        ("q", p.q.as_deref()),
        ("service", p.service.as_deref()),
        ("severity", p.severity.as_deref()),
        ("trace_id", p.trace_id.as_deref()),
        ("since", p.since.as_deref()),
        ("until", p.until.as_deref()),
    ]);
    let follow = p.follow.is_some() && p.cursor.is_none();
    let mut page = ListPage {
        layout: Layout::for_session("Logs", &user, "logs"),
        q: LogQuery {
            q: p.q,
            service: p.service,
            severity: p.severity,
            trace_id: p.trace_id,
            since: p.since,
            until: p.until,
            limit: Some(200),
            cursor: p.cursor,
        },
        follow,
        error: None,
        records: Vec::new(),
        next: None,
        filters,
        severities: crate::db::logs::SEVERITIES
            .iter()
            .map(|(n, _)| *n)
            .collect(),
        now: crate::db::now_ms(),
    };
    match search_logs(&st, &page.q).await {
        Ok(r) => {
            page.next = r
                .next_cursor
                .map(|c| super::forms::next_page(&page.filters, &c));
            page.records = r.items;
            render(StatusCode::OK, &page)
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            page.error = Some(e.detail);
            render(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list);
}
