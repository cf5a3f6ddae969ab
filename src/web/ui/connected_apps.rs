//! "Connected apps": the signed-in user's own grants (the clients they
//! allowed, for which MCP server, with which scopes, last used) and revoking
//! one. Every user has this page, whatever their roles.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::layout::Layout;
use super::{render, see_other};
use crate::oauth::grants::GrantView;
use crate::web::auth::SessionUser;
use crate::web::state;

#[derive(Template)]
#[template(path = "connected_apps.html")]
struct AppsPage {
    layout: Layout,
    grants: Vec<GrantView>,
}

#[get("/account/apps")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let grants = st.grants().of_user(&user.session.user.id).await?;
    let page = AppsPage {
        layout: Layout::for_session("Connected apps", &user, "apps"),
        grants,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf_token: String,
}

/// Revokes one of the user's own grants.
#[post("/account/apps/{grant_id}/revoke")]
pub async fn revoke(
    req: HttpRequest,
    user: SessionUser,
    grant_id: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    st.grants()
        .revoke(&user.ctx, &user.session.user.id, &grant_id)
        .await?;
    Ok(see_other("/account/apps"))
}

/// Registers this page's routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list).service(revoke);
}
