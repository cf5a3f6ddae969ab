//! The dashboard: who is signed in and the appliance's vital signs.

use actix_web::http::StatusCode;
use actix_web::{get, HttpRequest, HttpResponse};
use askama::Template;

use super::error::UiError;
use super::layout::Layout;
use super::render;
use crate::db::{migrate, roles};
use crate::identity::auth_stats::{self, AuthStats};
use crate::web::auth::SessionUser;
use crate::web::state;

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
    };
    render(StatusCode::OK, &page)
}
