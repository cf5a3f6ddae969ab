//! `/api/v1/audit`: search, export, verify, head. Every read is itself
//! audited, and needs `audit:read`.

use actix_web::{get, web, HttpRequest, HttpResponse};
use futures_util::stream;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::audit::store::Filter;
use crate::audit::{self, export, Head, Outcome, Record, VerifyReport};
use crate::rbac::Permission;
use crate::web::auth::Caller;
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Problem};
use crate::web::query;
use crate::web::state::{self, WebState};

pub const READ: &str = Permission::AuditRead.as_str();
const MAX_FILTER_LEN: usize = 256;

/// Filters shared by the list and the export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Actor id or name.
    #[param(max_length = 256)]
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `*` (`auth.*`).
    #[param(max_length = 256)]
    pub action: Option<String>,
    /// `success`, `failure`, `denied` or `error`.
    #[param(value_type = Option<crate::formats::OutcomeFilter>)]
    pub outcome: Option<String>,
    /// Target id.
    #[param(max_length = 256)]
    pub target: Option<String>,
    /// RFC 3339; records at or after.
    #[param(value_type = Option<crate::formats::TimeBound>)]
    pub since: Option<String>,
    /// RFC 3339; records before.
    #[param(value_type = Option<crate::formats::TimeBound>)]
    pub until: Option<String>,
    /// Items per page, 1-1000 (list only).
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (list only).
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
    /// `jsonl` or `csv` (export only).
    #[param(value_type = Option<crate::formats::ExportFormat>)]
    pub format: Option<String>,
}

impl AuditQuery {
    /// Validates the filters; a bad value is a 400 naming the parameter.
    pub fn filter(&self) -> Result<Filter, ApiError> {
        let text = |name: &str, v: &Option<String>| query::text(name, v.as_deref(), MAX_FILTER_LEN);
        let now = crate::db::now_ms();
        let time =
            |name: &str, v: &Option<String>, edge| query::time_bound(name, v.as_deref(), edge, now);
        let outcome = match self.outcome.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
                ApiError::bad_request(
                    "bad_query",
                    "outcome must be one of success, failure, denied, error",
                )
            })?),
        };
        let filter = Filter {
            actor: text("actor", &self.actor)?,
            action: text("action", &self.action)?,
            outcome,
            target: text("target", &self.target)?,
            since: time("since", &self.since, crate::timefmt::Edge::Start)?,
            until: time("until", &self.until, crate::timefmt::Edge::End)?,
        };
        query::ordered(filter.since, filter.until)?;
        Ok(filter)
    }

    /// The filters as given, for the audit record of this read.
    pub fn described(&self) -> serde_json::Value {
        serde_json::json!({
            "actor": self.actor, "action": self.action, "outcome": self.outcome,
            "target": self.target, "since": self.since, "until": self.until,
        })
    }
}

/// Validated page request: `(before_seq, limit)`.
pub fn page_of(q: &AuditQuery) -> Result<(Option<i64>, u32), ApiError> {
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .resolve()?;
    let before = match page.after {
        None => None,
        Some(k) => Some(
            k.parse::<i64>()
                .map_err(|_| ApiError::bad_request("bad_query", "cursor is not valid"))?,
        ),
    };
    Ok((before, page.limit))
}

/// Lists matching records newest first (shared by the API and the UI page).
pub async fn list_records(
    st: &WebState,
    caller: &Caller,
    q: &AuditQuery,
) -> Result<Page<Record>, ApiError> {
    caller.require(st, READ).await?;
    let filter = q.filter()?;
    let (before, limit) = page_of(q)?;
    st.audit
        .record(
            caller
                .ctx
                .event("audit.read", Outcome::Success)
                .detail("filters", q.described()),
        )
        .await?;
    let rows = audit::search(&st.db, filter, before, limit + 1).await?;
    let req = crate::web::pagination::PageRequest { after: None, limit };
    Ok(Page::from_rows(rows, &req, |r| r.seq.to_string(), |r| r))
}

/// Search the audit log, newest first.
#[utoipa::path(
    operation_id = "audit.list",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, body = Page<Record>), (status = 400, body = Problem), (status = 403, body = Problem))
)]
#[get("/audit")]
pub async fn list(
    req: HttpRequest,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> Result<web::Json<Page<Record>>, ApiError> {
    let st = state::of(&req);
    if q.format.is_some() {
        return Err(ApiError::bad_request(
            "bad_query",
            "format applies to /audit/export only",
        ));
    }
    Ok(web::Json(list_records(&st, &caller, &q).await?))
}

/// Export matching records, oldest first, streamed as JSON Lines
/// (`format=jsonl`, the default; each line verifiable) or CSV. Each running
/// export holds a database connection until its download ends; a quarter of
/// the pool (at least one) may be held that way at once.
#[utoipa::path(
    operation_id = "audit.export_records",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "The records, streamed (JSON Lines, or CSV with format=csv)",
            content(("application/jsonl"), ("text/csv"))),
        (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 503, description = "Too many exports are running at once (a quarter of `database.pool_size`); retry after Retry-After", body = Problem)
    )
)]
#[get("/audit/export")]
pub async fn export_records(
    req: HttpRequest,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    caller.require(&st, READ).await?;
    let format = match q.format.as_deref() {
        None | Some("jsonl") => export::Format::Jsonl,
        Some(f) => export::Format::parse(f)
            .ok_or_else(|| ApiError::bad_request("bad_query", "format must be jsonl or csv"))?,
    };
    if q.limit.is_some() || q.cursor.is_some() {
        return Err(ApiError::bad_request(
            "bad_query",
            "the export takes no limit or cursor; it streams every match",
        ));
    }
    let filter = q.filter()?;
    let held = st.db.long_read()?;
    st.audit
        .record(
            caller
                .ctx
                .event("audit.export", Outcome::Success)
                .detail("format", format.extension())
                .detail("filters", q.described()),
        )
        .await?;
    let rx = export::start(&st.db, held, filter, format);
    let body = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| {
            let item = chunk
                .map(actix_web::web::Bytes::from)
                .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()));
            (item, rx)
        })
    });
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"agentry-audit.{}\"",
                format.extension()
            ),
        ))
        .streaming(body))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Sequence number of a head saved earlier.
    #[param(minimum = 1)]
    pub head_seq: Option<i64>,
    /// Hash of that head (64 hex characters).
    #[param(pattern = r"^[0-9a-f]{64}$")]
    pub head_hash: Option<String>,
}

impl VerifyQuery {
    pub fn saved_head(&self) -> Result<Option<Head>, ApiError> {
        match (&self.head_seq, &self.head_hash) {
            (None, None) => Ok(None),
            (Some(seq), Some(hash))
                if *seq >= 1 && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Some(Head {
                    seq: *seq,
                    hash: hash.to_ascii_lowercase(),
                }))
            }
            _ => Err(ApiError::bad_request(
                "bad_query",
                "head_seq (a positive integer) and head_hash (64 hex characters) go together",
            )),
        }
    }
}

/// Runs verification and records that it was run, with its verdict.
pub async fn run_verify(
    st: &WebState,
    caller: &Caller,
    saved: Option<Head>,
) -> Result<VerifyReport, ApiError> {
    caller.require(st, READ).await?;
    let report = audit::verify(&st.db, st.audit.key(), saved).await?;
    let mut ev = caller
        .ctx
        .event(
            "audit.verify",
            if report.ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .detail("checked", report.checked);
    if let Some(bad) = &report.first_bad {
        ev = ev.reason(format!("record {}: {}", bad.seq, bad.problem));
    }
    st.audit.record(ev).await?;
    Ok(report)
}

/// Verify the whole retained chain (and, given a saved head, that no newer
/// record was removed).
#[utoipa::path(
    operation_id = "audit.verify",
    tag = "audit",
    params(VerifyQuery),
    responses((status = 200, body = VerifyReport), (status = 400, body = Problem), (status = 403, body = Problem))
)]
#[get("/audit/verify")]
pub async fn verify(
    req: HttpRequest,
    caller: Caller,
    q: web::Query<VerifyQuery>,
) -> Result<web::Json<VerifyReport>, ApiError> {
    let st = state::of(&req);
    let saved = q.saved_head()?;
    Ok(web::Json(run_verify(&st, &caller, saved).await?))
}

/// The newest record's seq and hash (including the record of this read):
/// keep it off the box to detect truncation later.
#[utoipa::path(
    operation_id = "audit.head",
    tag = "audit",
    responses((status = 200, body = Head), (status = 403, body = Problem))
)]
#[get("/audit/head")]
pub async fn head(req: HttpRequest, caller: Caller) -> Result<web::Json<Head>, ApiError> {
    let st = state::of(&req);
    caller.require(&st, READ).await?;
    st.audit
        .record(caller.ctx.event("audit.head", Outcome::Success))
        .await?;
    let head = audit::head(&st.db)
        .await?
        .ok_or_else(|| ApiError::not_found("the audit log is empty"))?;
    Ok(web::Json(head))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AuditRead, list))
        .service(needs(Permission::AuditRead, export_records))
        .service(needs(Permission::AuditRead, verify))
        .service(needs(Permission::AuditRead, head));
}
