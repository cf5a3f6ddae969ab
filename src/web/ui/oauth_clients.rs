//! The OAuth clients page: every client that signs users in, how it was
//! registered, when it was last used and how many grants it has; a form to
//! register one (a confidential client's secret is shown once, after the
//! redirect), enable, disable and delete.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{checked, respond, FormErrors};
use super::layout::Layout;
use super::{render, see_other};
use crate::oauth::clients::{ClientChanges, ClientSpec, ClientView};
use crate::rbac::Permission;
use crate::web::auth::SessionUser;
use crate::web::state::{self, WebState};

const MANAGE: &str = Permission::OAuthClientManage.as_str();

#[derive(Default, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    /// One per line.
    #[serde(default)]
    redirect_uris: String,
    confidential: Option<String>,
}

/// A new client's secret, shown once.
pub struct NewSecret {
    client_id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "oauth_clients/list.html")]
struct ListPage {
    layout: Layout,
    clients: Vec<ClientView>,
    new_secret: Option<NewSecret>,
    form: ClientForm,
    errors: FormErrors,
}

/// The form has one field for the redirect list: a message about one
/// entry (`redirect_uris[1]`) is shown there.
fn on_the_form(mut errors: FormErrors) -> FormErrors {
    let keys: Vec<String> = errors
        .fields
        .keys()
        .filter(|k| k.starts_with("redirect_uris["))
        .cloned()
        .collect();
    for k in keys {
        if let Some(m) = errors.fields.remove(&k) {
            errors.fields.entry("redirect_uris".into()).or_insert(m);
        }
    }
    errors
}

async fn list_page(
    st: &WebState,
    user: &SessionUser,
    new_secret: Option<NewSecret>,
    form: ClientForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, MANAGE).await?;
    let page = ListPage {
        layout: Layout::for_session("OAuth clients", user, "oauth-clients"),
        clients: st.oauth_clients.list(None, 1000).await?,
        new_secret,
        form,
        errors: on_the_form(errors),
    };
    render(status, &page)
}

#[get("/oauth-clients")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    list_page(
        &st,
        &user,
        None,
        ClientForm::default(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// The page after registering a confidential client: its secret, once.
#[get("/oauth-clients/{id}/secret")]
pub async fn show_secret(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let shown = st
        .show_once
        .take(&user.session.id_hash, &id)
        .map(|s| NewSecret {
            client_id: id.clone(),
            secret: s.to_string(),
        });
    list_page(
        &st,
        &user,
        shown,
        ClientForm::default(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[post("/oauth-clients")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<ClientForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let spec = ClientSpec {
        name: form.name.trim().to_string(),
        redirect_uris: form
            .redirect_uris
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        confidential: checked(&form.confidential),
    };
    let result = st.oauth_clients.create(&user.ctx, spec).await;
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let session = user.session.id_hash.clone();
    respond(
        result,
        |new| match new.client_secret {
            Some(secret) => {
                // Shown by the page the redirect leads to, once.
                st.show_once.put(&session, &new.client.client_id, secret);
                format!("/oauth-clients/{}/secret", new.client.client_id)
            }
            None => "/oauth-clients".to_string(),
        },
        |errors| list_page(&st, &user, None, form, errors, status),
    )
    .await
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
}

async fn set_enabled(
    req: HttpRequest,
    user: SessionUser,
    id: &str,
    token: &str,
    enabled: bool,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, token, MANAGE).await?;
    let changes = ClientChanges {
        enabled: Some(enabled),
        ..ClientChanges::default()
    };
    st.oauth_clients.update(&user.ctx, id, changes).await?;
    Ok(see_other("/oauth-clients"))
}

#[post("/oauth-clients/{id}/enable")]
pub async fn enable(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    set_enabled(req, user, &id, &form.csrf_token, true).await
}

/// Disabling revokes the client's refresh tokens.
#[post("/oauth-clients/{id}/disable")]
pub async fn disable(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    set_enabled(req, user, &id, &form.csrf_token, false).await
}

#[post("/oauth-clients/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    st.oauth_clients.delete(&user.ctx, &id).await?;
    Ok(see_other("/oauth-clients"))
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(show_secret)
        .service(enable)
        .service(disable)
        .service(delete);
}
