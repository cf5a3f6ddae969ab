//! The notification log: every notification queued, newest first, with
//! its delivery status, attempts and last error; failed ones stand out.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::alerts::{page_request, VIEW};
use super::error::UiError;
use super::layout::Layout;
use super::render;
use crate::db::notifications::NotificationRow;
use crate::notify::outbox;
use crate::notify::DeliveryStatus;
use crate::timefmt::rfc3339;
use crate::web::auth::SessionUser;
use crate::web::pagination::Page;
use crate::web::state;

/// A notification as the tables show it (here and on an alert's page).
pub struct NotificationItem {
    pub id: String,
    pub time: String,
    pub alert_id: Option<String>,
    /// The alert's rule, read from the stored message.
    pub rule: String,
    pub channel: String,
    pub channel_id: Option<String>,
    pub kind: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: String,
    pub delivered_at: String,
    /// When a pending one is tried next.
    pub next_attempt: String,
}

impl From<NotificationRow> for NotificationItem {
    fn from(n: NotificationRow) -> Self {
        let rule = serde_json::from_str::<serde_json::Value>(&n.message)
            .ok()
            .and_then(|m| m.pointer("/alert/rule")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "alert".into());
        NotificationItem {
            rule,
            next_attempt: if n.status == DeliveryStatus::Pending {
                rfc3339(n.next_attempt_at)
            } else {
                String::new()
            },
            id: n.id,
            time: rfc3339(n.created_at),
            alert_id: n.alert_id,
            channel: n.channel,
            channel_id: n.channel_id,
            kind: n.kind,
            status: n.status,
            attempts: n.attempts,
            last_error: n.last_error.unwrap_or_default(),
            delivered_at: n.delivered_at.map(rfc3339).unwrap_or_default(),
        }
    }
}

const FILTERS: [&str; 4] = [
    "all",
    DeliveryStatus::Pending.as_str(),
    DeliveryStatus::Delivered.as_str(),
    DeliveryStatus::Failed.as_str(),
];

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications/list.html")]
struct ListPage {
    layout: Layout,
    status: String,
    filters: [&'static str; 4],
    notifications: Vec<NotificationItem>,
    next: Option<String>,
}

#[get("/notifications")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let q = q.into_inner();
    let status = q
        .status
        .filter(|s| FILTERS.contains(&s.as_str()))
        .unwrap_or_else(|| "all".into());
    let page = page_request(q.cursor)?;
    // Every filter but "all" is a status.
    let filter = DeliveryStatus::parse(&status);
    let rows = outbox::list(&st.db, filter, None, page.after.clone(), page.limit + 1).await?;
    let p = Page::from_rows(rows, &page, |n| n.id.clone(), NotificationItem::from);
    let page = ListPage {
        layout: Layout::for_session("Notification log", &user, "notifications"),
        status,
        filters: FILTERS,
        notifications: p.items,
        next: p.next_cursor,
    };
    render(StatusCode::OK, &page)
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list);
}
