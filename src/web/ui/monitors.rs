//! Monitors pages: every instance with its state, a form to add one, and
//! one instance's page with its check history, settings and removal.

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
use crate::monitor::sparkline;
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::api::instances::{CheckView, InstanceView};
use crate::web::auth::SessionUser;
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

#[derive(Template)]
#[template(path = "monitors/list.html")]
struct ListPage {
    layout: Layout,
    instances: Vec<InstanceView>,
    agents: Vec<(String, String)>,
    may_manage: bool,
    form: MonitorForm,
    errors: FormErrors,
}

async fn list_page(
    st: &WebState,
    user: &SessionUser,
    form: MonitorForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, VIEW).await?;
    let rows = instances::list(&st.db, None, None, 1000).await?;
    let agents = agents::list(&st.db, None, 1000)
        .await?
        .into_iter()
        .map(|a| (a.id, format!("{} ({})", a.name, a.agent_type)))
        .collect();
    let page = ListPage {
        layout: Layout::for_session("Monitors", user, "monitors"),
        instances: rows.into_iter().map(InstanceView::from).collect(),
        agents,
        may_manage: user.nav.monitor,
        form,
        errors,
    };
    render(status, &page)
}

#[get("/monitors")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let form = MonitorForm::new_defaults();
    list_page(&st, &user, form, FormErrors::default(), StatusCode::OK).await
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
        |errors| list_page(&st, &user, form, errors, status),
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
    chart: String,
    hours: Vec<HourRow>,
    chart_w: f64,
    chart_h: f64,
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
    let mut latencies: Vec<f64> = checks
        .iter()
        .map(|c| c.latency_ms.unwrap_or(0) as f64)
        .collect();
    latencies.reverse();
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
    let check_bar = crate::web::charts::check_bar(
        &history.buckets,
        720,
        28,
        &format!("checks over the last {}", range.as_str()),
        rfc3339,
    );
    let page = DetailPage {
        check_bar,
        range: range.as_str(),
        ranges: Range::ALL,
        uptime: percent(history.uptime()),
        uptimes: uptimes.map(percent),
        layout: Layout::for_session(format!("Monitor {}", row.name), user, "monitors"),
        form: form.unwrap_or_else(|| MonitorForm::of(&row)),
        i: InstanceView::from(row),
        agent_name,
        chart: sparkline::points(&latencies),
        checks: checks.into_iter().map(CheckView::from).collect(),
        hours,
        chart_w: sparkline::WIDTH * 4.0,
        chart_h: sparkline::HEIGHT * 2.0,
        may_manage: user.nav.monitor,
        errors,
    };
    render(status, &page)
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
