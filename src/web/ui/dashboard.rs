//! The dashboard (the landing page): fleet health and score, agent types,
//! instances with their recent response times, active alerts, recent audit
//! events, security figures and the signed-in user.

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
use crate::monitor::health::{self, HealthReport};
use crate::monitor::{instances, sparkline};
use crate::web::auth::SessionUser;
use crate::web::state;

/// Instances drawn with a chart (the rest are listed without one).
const CHARTED: usize = 50;
/// Checks per chart.
const CHART_POINTS: u32 = 30;
/// Firing alerts listed (newest first); the alerts page has the rest.
const ALERTS_SHOWN: u32 = 10;

struct InstanceRow {
    id: String,
    name: String,
    agent_type: String,
    status: String,
    response_time: String,
    last_check: String,
    last_error: String,
    chart: String,
    /// Rolling failure rate (last 5 checks), 0..1.
    err_chart: String,
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
    chart_w: f64,
    chart_h: f64,
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
    let (health, instances) = if user.nav.health {
        let report = health::report(&st.watched()).await?;
        let rows = instance_rows(&st, &report).await?;
        (Some(report), rows)
    } else {
        (None, Vec::new())
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
        chart_w: sparkline::WIDTH,
        chart_h: sparkline::HEIGHT,
    };
    render(StatusCode::OK, &page)
}

async fn instance_rows(
    st: &crate::web::state::WebState,
    report: &HealthReport,
) -> Result<Vec<InstanceRow>, UiError> {
    let mut rows = Vec::new();
    for (agent_type, group) in &report.component_health.agents {
        for i in &group.instances {
            let (chart, err_chart, failed, checks) = if rows.len() < CHARTED {
                let mut recent =
                    instances::checks(&st.db, &i.instance_id, None, CHART_POINTS).await?;
                recent.reverse();
                let latencies: Vec<f64> = recent
                    .iter()
                    .map(|c| c.latency_ms.unwrap_or(0) as f64)
                    .collect();
                let failed = recent.iter().filter(|c| !c.ok).count();
                let rates: Vec<f64> = (0..recent.len())
                    .map(|k| {
                        let window = &recent[k.saturating_sub(4)..=k];
                        window.iter().filter(|c| !c.ok).count() as f64 / window.len() as f64
                    })
                    .collect();
                (
                    sparkline::points(&latencies),
                    sparkline::points(&rates),
                    failed,
                    recent.len(),
                )
            } else {
                (String::new(), String::new(), 0, 0)
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
                failed,
                checks,
            });
        }
    }
    // Trouble first.
    let rank = |s: &str| match s {
        "unhealthy" => 0,
        "degraded" => 1,
        "unknown" => 2,
        "healthy" => 3,
        _ => 4,
    };
    rows.sort_by(|a, b| {
        rank(&a.status)
            .cmp(&rank(&b.status))
            .then(a.name.cmp(&b.name))
    });
    Ok(rows)
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(show);
}
