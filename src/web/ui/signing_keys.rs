//! Signing keys page: the published keys and on-demand rotation.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::layout::Layout;
use super::{render, see_other};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::SessionUser;
use crate::web::state;

const MANAGE: &str = Permission::KeyManage.as_str();

struct KeyRow {
    kid: String,
    active: bool,
    created_at: String,
    published_until: String,
}

#[derive(Template)]
#[template(path = "signing_keys.html")]
struct Page {
    layout: Layout,
    keys: Vec<KeyRow>,
    lifetime_seconds: u32,
    rotation_days: u32,
}

#[get("/signing-keys")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, MANAGE).await?;
    let keys = st
        .signing_keys
        .entries()
        .into_iter()
        .map(|e| KeyRow {
            active: e.retired_at.is_none(),
            kid: e.kid,
            created_at: rfc3339(e.created_at),
            published_until: e.publish_until.map(rfc3339).unwrap_or_default(),
        })
        .collect();
    let page = Page {
        layout: Layout::for_session("Signing keys", &user, "signing-keys"),
        keys,
        lifetime_seconds: st.config.tokens.lifetime_seconds,
        rotation_days: st.config.tokens.signing_key_rotation_days,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf_token: String,
}

#[post("/signing-keys/rotate")]
pub async fn rotate(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let max_token_ms = i64::from(st.config.tokens.lifetime_seconds) * 1000;
    st.signing_keys
        .rotate(&st.db, &st.audit, &user.ctx, max_token_ms)
        .await?;
    Ok(see_other("/signing-keys"))
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list).service(rotate);
}
