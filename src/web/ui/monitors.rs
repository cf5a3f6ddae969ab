//! Monitors pages: every instance with its state, a form to add one, and
//! one instance's page with its check history, settings and removal.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{checked, respond, FormErrors};
use super::layout::Layout;
use super::{render, see_other};
use crate::db::check_rollups::{RollupRow, HOUR};
use crate::error::{Error, FieldErrors};
use crate::identity::agents;
use crate::monitor::history::Range;
use crate::monitor::instances::{self, InstanceChanges, InstanceKind, InstanceRow, InstanceSpec};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::api::instances::{CheckView, InstanceView};
use crate::web::auth::SessionUser;
use crate::web::charts;
use crate::web::state::{self, WebState};

const VIEW: &str = Permission::HealthView.as_str();
const MANAGE: &str = Permission::MonitorManage.as_str();

/// Every field as typed, so a refused form comes back as it was.
#[derive(Default, Deserialize)]
pub struct MonitorForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    interval_seconds: String,
    #[serde(default)]
    timeout_ms: String,
    #[serde(default)]
    expected_status: String,
    #[serde(default)]
    body_contains: String,
    #[serde(default)]
    failure_threshold: String,
    #[serde(default)]
    success_threshold: String,
    #[serde(default)]
    degraded_latency_ms: String,
    enabled: Option<String>,
}

impl MonitorForm {
    fn new_defaults() -> MonitorForm {
        MonitorForm {
            kind: InstanceKind::Http.as_str().into(),
            interval_seconds: "30".into(),
            timeout_ms: "5000".into(),
            expected_status: "200-399".into(),
            failure_threshold: "3".into(),
            success_threshold: "2".into(),
            enabled: Some("on".into()),
            ..MonitorForm::default()
        }
    }

    fn of(r: &InstanceRow) -> MonitorForm {
        MonitorForm {
            agent_id: r.agent_id.clone().unwrap_or_default(),
            name: r.name.clone(),
            kind: r.kind.clone(),
            url: r.url.clone().unwrap_or_default(),
            interval_seconds: r.interval_seconds.to_string(),
            timeout_ms: r.timeout_ms.to_string(),
            expected_status: r.expected_status.clone(),
            body_contains: r.body_contains.clone().unwrap_or_default(),
            failure_threshold: r.failure_threshold.to_string(),
            success_threshold: r.success_threshold.to_string(),
            degraded_latency_ms: r
                .degraded_latency_ms
                .map(|d| d.to_string())
                .unwrap_or_default(),
            enabled: r.enabled.then(|| "on".into()),
            ..MonitorForm::default()
        }
    }

    fn optional(text: &str) -> Option<String> {
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    }

    /// The numbers, or a message per field that is not one. A heartbeat's
    /// page has no timeout or latency fields: left out, they stay as they
    /// are.
    fn numbers(&self, http: bool) -> Result<[Option<i64>; 5], Error> {
        let mut errors = FieldErrors::new();
        let mut out = [None; 5];
        let fields = [
            ("interval_seconds", &self.interval_seconds),
            ("timeout_ms", &self.timeout_ms),
            ("failure_threshold", &self.failure_threshold),
            ("success_threshold", &self.success_threshold),
            ("degraded_latency_ms", &self.degraded_latency_ms),
        ];
        for (i, (name, text)) in fields.iter().enumerate() {
            match text.trim() {
                "" if *name == "degraded_latency_ms" => {}
                "" if !http && *name == "timeout_ms" => {}
                t => match t.parse() {
                    Ok(n) => out[i] = Some(n),
                    Err(_) => {
                        errors.insert(name.to_string(), "must be a whole number".into());
                    }
                },
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(Error::fields(errors))
        }
    }
}

/// Monitors listed on one page; beyond it the page says how many it shows.
const LISTED: usize = 5000;

/// A row of the monitors list: the instance, its last 24 hours as a check
/// bar, and its uptime over them.
struct ListRow {
    i: InstanceView,
    bar: String,
    uptime: String,
    /// The uptime as a sortable number (-1 without checks).
    uptime_key: f64,
}

#[derive(Template)]
#[template(path = "monitors/list.html")]
struct ListPage {
    layout: Layout,
    instances: Vec<ListRow>,
    /// What `q` matched, of `total` monitors.
    total: usize,
    q: String,
    /// More monitors exist than are read for one page.
    truncated: bool,
    agents: Vec<(String, String)>,
    may_manage: bool,
    form: MonitorForm,
    errors: FormErrors,
}

async fn list_page(
    st: &WebState,
    user: &SessionUser,
    q: &str,
    form: MonitorForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, VIEW).await?;
    let mut rows = instances::list(&st.db, None, None, LISTED as u32 + 1).await?;
    let truncated = rows.len() > LISTED;
    rows.truncate(LISTED);
    let total = rows.len();
    let needle = q.trim().to_lowercase();
    let now = crate::db::now_ms();
    let mut glances = crate::monitor::history::glances(&st.db, now).await?;
    let instances = rows
        .into_iter()
        .filter(|r| {
            needle.is_empty()
                || r.name.to_lowercase().contains(&needle)
                || r.url
                    .as_deref()
                    .is_some_and(|u| u.to_lowercase().contains(&needle))
                || r.state.contains(&needle)
        })
        .map(|r| {
            let (hours, uptime) = match glances.remove(&r.id) {
                Some(g) => (g.hours, g.uptime),
                None => (crate::monitor::history::empty_day(&r.id, now), None),
            };
            ListRow {
                bar: charts::check_strip(
                    &hours,
                    120,
                    16,
                    &format!("{}: checks over the last 24 hours", r.name),
                    |t| format!("{} UTC", crate::web::ui::filters::hh_mm(t)),
                ),
                uptime: percent(uptime),
                uptime_key: uptime.unwrap_or(-1.0),
                i: InstanceView::from(r),
            }
        })
        .collect();
    let agents = agents::list(&st.db, None, 1000)
        .await?
        .into_iter()
        .map(|a| (a.id, format!("{} ({})", a.name, a.agent_type)))
        .collect();
    let page = ListPage {
        layout: Layout::for_session("Monitors", user, "monitors"),
        instances,
        total,
        q: q.to_string(),
        truncated,
        agents,
        may_manage: user.nav.monitor,
        form,
        errors,
    };
    render(status, &page)
}

/// `?q=` of the monitors list: part of a name, target or state.
#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[get("/monitors")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let form = MonitorForm::new_defaults();
    let q = crate::web::ui::forms::bounded(&query.q);
    list_page(&st, &user, q, form, FormErrors::default(), StatusCode::OK).await
}

#[post("/monitors")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<MonitorForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let http = InstanceKind::parse(&form.kind) == Some(InstanceKind::Http);
    let result = match form.numbers(http) {
        Ok([interval, timeout, failures, successes, degraded]) => {
            let spec = InstanceSpec {
                agent_id: form.agent_id.clone(),
                name: form.name.trim().to_string(),
                kind: form.kind.clone(),
                url: MonitorForm::optional(&form.url),
                interval_seconds: interval.unwrap_or_default(),
                timeout_ms: timeout.unwrap_or(instances::DEFAULT_TIMEOUT_MS),
                expected_status: form.expected_status.trim().to_string(),
                body_contains: MonitorForm::optional(&form.body_contains),
                failure_threshold: failures.unwrap_or_default(),
                success_threshold: successes.unwrap_or_default(),
                degraded_latency_ms: degraded,
                enabled: checked(&form.enabled),
            };
            instances::create(&st.audit, &user.ctx, &st.outbound_rules, spec).await
        }
        Err(e) => Err(e),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |row| format!("/monitors/{}", row.id),
        |errors| list_page(&st, &user, "", form, errors, status),
    )
    .await
}

struct HourRow {
    start: String,
    checks: i64,
    failures: i64,
    p50: String,
    p95: String,
}

#[derive(Template)]
#[template(path = "monitors/detail.html")]
struct DetailPage {
    layout: Layout,
    i: InstanceView,
    agent_name: String,
    checks: Vec<CheckView>,
    hours: Vec<HourRow>,
    /// Response times over the range with axes, threshold and failures.
    latency_chart: String,
    may_manage: bool,
    form: MonitorForm,
    errors: FormErrors,
    /// The check bar of the chosen range, as SVG.
    check_bar: String,
    range: &'static str,
    ranges: &'static [Range],
    /// The range's uptime, and over 24 h, 7 d, 30 d ("" without checks).
    uptime: String,
    uptimes: [String; 3],
    /// The agent's failed traces and warnings over the last day.
    around: (String, String),
}

/// An uptime as shown: "99.95 %", or "" without checks.
fn percent(u: Option<f64>) -> String {
    u.map(|v| format!("{:.2} %", v * 100.0)).unwrap_or_default()
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    range: Range,
    form: Option<MonitorForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, VIEW).await?;
    let row = instances::get(&st.db, id).await?;
    let agent_name = match &row.agent_id {
        Some(a) => agents::get(&st.db, a)
            .await
            .map(|a| a.name)
            .unwrap_or_default(),
        None => match &row.mcp_server_id {
            Some(m) => st
                .mcp_servers
                .row(m)
                .await
                .map(|r| r.name)
                .unwrap_or_default(),
            None => String::new(),
        },
    };
    let checks = instances::checks(&st.db, id, None, 100).await?;
    let since = crate::db::now_ms() - 7 * 24 * HOUR;
    let hours = instances::history(&st.db, id, since)
        .await?
        .into_iter()
        .map(|r: RollupRow| HourRow {
            start: rfc3339(r.start),
            checks: r.checks,
            failures: r.failures,
            p50: r.p50_ms.map(|v| format!("{v} ms")).unwrap_or_default(),
            p95: r.p95_ms.map(|v| format!("{v} ms")).unwrap_or_default(),
        })
        .collect();
    let now = crate::db::now_ms();
    let history = crate::monitor::history::load(&st.db, id, range, now).await?;
    let uptimes = crate::monitor::history::uptimes(&st.db, id, now).await?;
    let check_bar = charts::check_bar(
        &history.buckets,
        720,
        28,
        &format!("checks over the last {}", range.as_str()),
        rfc3339,
    );
    let latency_chart = latency_chart(&history, row.degraded_latency_ms);
    let around = super::traces::links_around(
        row.agent_id.as_ref().map(|_| agent_name.as_str()),
        crate::db::now_ms() - 86_400_000,
        None,
    );
    let page = DetailPage {
        around,
        check_bar,
        latency_chart,
        range: range.as_str(),
        ranges: Range::ALL,
        uptime: percent(history.uptime()),
        uptimes: uptimes.map(percent),
        layout: Layout::for_session(format!("Monitor {}", row.name), user, "monitors"),
        form: form.unwrap_or_else(|| MonitorForm::of(&row)),
        i: InstanceView::from(row),
        agent_name,
        checks: checks.into_iter().map(CheckView::from).collect(),
        hours,
        may_manage: user.nav.monitor,
        errors,
    };
    render(status, &page)
}

/// A history's response times as a chart: p95 and median per bucket (at
/// the bucket's middle), buckets with failed checks marked, and the
/// instance's degraded threshold as a line.
fn latency_chart(h: &crate::monitor::history::History, degraded: Option<i64>) -> String {
    let half = h.range.bucket_ms() / 2;
    let line = |name: &str, class, f: fn(&RollupRow) -> Option<i64>| charts::Line {
        name: name.to_string(),
        class,
        points: h
            .buckets
            .iter()
            .map(|b| (b.start + half, f(b).map(|v| v as f64)))
            .collect(),
    };
    let time = crate::web::ui::filters::axis_time(h.to - h.from);
    charts::time_chart(
        &charts::TimeChart {
            label: &format!("response time over the last {}", h.range.as_str()),
            from: h.from,
            to: h.to,
            unit: "ms",
            lines: vec![
                line("median", "p50", |b| b.p50_ms),
                line("p95", "p95", |b| b.p95_ms),
            ],
            threshold: degraded.map(|d| (d as f64, format!("degraded above {d} ms"))),
            failures: h
                .buckets
                .iter()
                .filter(|b| b.failures > 0)
                .map(|b| (b.start, b.start + h.range.bucket_ms()))
                .collect(),
            width: 720,
            height: 220,
        },
        time,
    )
}

/// `?range=` of a monitor's page (an unknown one is the default).
#[derive(Deserialize)]
pub struct RangeQuery {
    range: Option<String>,
}

#[get("/monitors/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let range = q
        .range
        .as_deref()
        .and_then(Range::parse)
        .unwrap_or(Range::Day);
    detail_page(
        &st,
        &user,
        &id,
        range,
        None,
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[post("/monitors/{id}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<MonitorForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let http = instances::get(&st.db, &id).await?.polled();
    // Fields only an http check has are not on a heartbeat's form.
    let result = match form.numbers(http) {
        Ok([interval, timeout, failures, successes, degraded]) => {
            let changes = InstanceChanges {
                name: Some(form.name.trim().to_string()),
                url: http.then_some(MonitorForm::optional(&form.url)),
                interval_seconds: interval,
                timeout_ms: timeout,
                expected_status: http.then_some(form.expected_status.trim().to_string()),
                body_contains: http.then_some(MonitorForm::optional(&form.body_contains)),
                failure_threshold: failures,
                success_threshold: successes,
                degraded_latency_ms: http.then_some(degraded),
                enabled: Some(checked(&form.enabled)),
            };
            instances::update(
                &st.db,
                &st.audit,
                &user.ctx,
                &st.outbound_rules,
                &id,
                changes,
            )
            .await
            .map(|_| ())
        }
        Err(e) => Err(e),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |()| format!("/monitors/{id}"),
        |errors| detail_page(&st, &user, &id, Range::Day, Some(form), errors, status),
    )
    .await
}

#[post("/monitors/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<MonitorForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    instances::delete(&st.audit, &user.ctx, &id).await?;
    Ok(see_other("/monitors"))
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(detail)
        .service(update)
        .service(delete);
}
