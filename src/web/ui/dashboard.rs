//! The dashboard (the landing page): fleet health and score, agent types,
//! instances with their recent response times, active alerts, recent audit
//! events, security figures and the signed-in user.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, HttpRequest, HttpResponse};
use askama::Template;

use super::alerts::{AlertItem, InForce};
use super::error::UiError;
use super::layout::Layout;
use super::render;
use crate::audit::Record;
use crate::db::{migrate, roles};
use crate::identity::auth_stats::{self, AuthStats};
use crate::monitor::health::{self, HealthReport, InstanceHealth};
use crate::monitor::instances;
use crate::web::auth::SessionUser;
use crate::web::charts;
use crate::web::state;

/// Instances drawn with a chart (the rest are listed without one).
const CHARTED: usize = 50;
/// Checks per chart.
const CHART_POINTS: u32 = 30;
/// Firing alerts listed (newest first); the alerts page has the rest.
const ALERTS_SHOWN: u32 = 10;
/// Pending approval requests listed; the Approvals page has the rest.
const APPROVALS_SHOWN: usize = 5;

struct InstanceRow {
    id: String,
    name: String,
    agent_type: String,
    status: String,
    response_time: String,
    last_check: String,
    last_error: String,
    /// Response times, as an SVG sparkline on the scale `scale`.
    chart: String,
    /// Rolling failure rate (last 5 checks) on 0..100 %, as an SVG sparkline.
    err_chart: String,
    scale: String,
    failed: usize,
    checks: usize,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    username: String,
    display_name: String,
    roles: Vec<String>,
    session_expires: String,
    version: &'static str,
    schema_version: u32,
    auth: AuthStats,
    health: Option<HealthReport>,
    instances: Vec<InstanceRow>,
    recent: Vec<Record>,
    /// Firing alerts, when the user may read alerts.
    alerts: Option<Vec<AlertItem>>,
    /// More are firing than listed.
    alerts_more: bool,
    /// Instances left to the monitors list.
    more_instances: usize,
    /// When the page was drawn (ms), for "updated …".
    now: i64,
    /// Calls waiting for this user's approval (or their own), shown first.
    approvals: Vec<super::approvals::RequestItem>,
    /// Pending requests beyond those shown.
    approvals_more: usize,
    /// No notification link on this page (the decision forms carry none).
    link: &'static str,
}

#[get("/")]
pub async fn show(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let uid = user.session.user.id.clone();
    let (roles, schema_version) = st
        .db
        .read(move |c| {
            Ok((
                roles::unscoped_roles_of_user(c, &uid)?,
                migrate::current_version(c)?,
            ))
        })
        .await?;
    let auth = auth_stats::current(&st.db).await?;
    let (health, instances, more_instances) = if user.nav.health {
        let report = health::report(&st.watched()).await?;
        let (rows, more) = instance_rows(&st, &report).await?;
        (Some(report), rows, more)
    } else {
        (None, Vec::new(), 0)
    };
    let recent = if user.nav.audit {
        crate::audit::search(&st.db, Default::default(), None, 8).await?
    } else {
        Vec::new()
    };
    let (alerts, alerts_more) = if user.nav.alerts {
        let firing = Some(crate::alerts::AlertState::Firing);
        let rows =
            crate::alerts::engine::list(&st.db, firing, None, None, ALERTS_SHOWN + 1).await?;
        let more = rows.len() > ALERTS_SHOWN as usize;
        let in_force = InForce::load(&st).await?;
        let items = rows
            .iter()
            .take(ALERTS_SHOWN as usize)
            .map(|a| AlertItem::new(a, &in_force))
            .collect();
        (Some(items), more)
    } else {
        (None, false)
    };
    let mut approvals = super::approvals::pending_for(&st, &user).await?;
    let approvals_more = approvals.len().saturating_sub(APPROVALS_SHOWN);
    approvals.truncate(APPROVALS_SHOWN);
    let u = &user.session.user;
    let page = DashboardPage {
        layout: Layout::for_session("Dashboard", &user, "dashboard"),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        roles,
        session_expires: crate::timefmt::rfc3339(user.session.expires_at),
        version: env!("CARGO_PKG_VERSION"),
        schema_version,
        auth,
        health,
        instances,
        recent,
        alerts,
        alerts_more,
        more_instances,
        now: crate::db::now_ms(),
        approvals,
        approvals_more,
        link: "",
    };
    render(StatusCode::OK, &page)
}

/// The instances the dashboard shows (trouble first, at most [`CHARTED`]),
/// each with its last checks on fixed scales, and how many it leaves to
/// the monitors list.
async fn instance_rows(
    st: &crate::web::state::WebState,
    report: &HealthReport,
) -> Result<(Vec<InstanceRow>, usize), UiError> {
    let rank = |s: &str| match s {
        "unhealthy" => 0,
        "degraded" => 1,
        "unknown" => 2,
        "healthy" => 3,
        _ => 4,
    };
    let mut all: Vec<(&String, &InstanceHealth)> = report
        .component_health
        .agents
        .iter()
        .flat_map(|(t, g)| g.instances.iter().map(move |i| (t, i)))
        .collect();
    all.sort_by(|a, b| {
        rank(&a.1.status)
            .cmp(&rank(&b.1.status))
            .then(a.1.name.cmp(&b.1.name))
    });
    let more = all.len().saturating_sub(CHARTED);
    let mut rows = Vec::new();
    for (agent_type, i) in all.into_iter().take(CHARTED) {
        let mut recent = instances::checks(&st.db, &i.instance_id, None, CHART_POINTS).await?;
        recent.reverse();
        let latencies: Vec<Option<f64>> = recent
            .iter()
            .map(|c| c.latency_ms.map(|v| v as f64))
            .collect();
        let failed = recent.iter().filter(|c| !c.ok).count();
        // Failure rate over a rolling window of five checks, 0..1.
        let rates: Vec<Option<f64>> = (0..recent.len())
            .map(|k| {
                let window = &recent[k.saturating_sub(4)..=k];
                Some(window.iter().filter(|c| !c.ok).count() as f64 / window.len() as f64)
            })
            .collect();
        let highest = latencies.iter().flatten().fold(0.0, |a: f64, b| a.max(*b));
        let top = charts::ceiling(highest * charts::HEADROOM, 10.0);
        let n = recent.len();
        let (chart, err_chart) = if n < 2 {
            (String::new(), String::new())
        } else {
            (
                charts::sparkline(
                    &latencies,
                    top,
                    120,
                    28,
                    "spark",
                    &format!(
                        "response times of the last {n} checks, 0 to {} ms",
                        charts::tick(top)
                    ),
                ),
                charts::sparkline(
                    &rates,
                    1.0,
                    120,
                    28,
                    if failed > 0 {
                        "spark err"
                    } else {
                        "spark quiet"
                    },
                    &format!("failure rate over the last {n} checks, 0 to 100 %"),
                ),
            )
        };
        rows.push(InstanceRow {
            id: i.instance_id.clone(),
            name: i.name.clone(),
            agent_type: agent_type.clone(),
            status: i.status.clone(),
            response_time: i
                .response_time
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
            last_check: i.last_check.clone().unwrap_or_default(),
            last_error: i.last_error.clone().unwrap_or_default(),
            chart,
            err_chart,
            scale: format!("0–{} ms", charts::tick(top)),
            failed,
            checks: n,
        });
    }
    Ok((rows, more))
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(show);
}
