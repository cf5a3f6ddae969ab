//! `/api/v1/users`: human accounts.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::double_option;
use super::keys::{CreateKey, CreatedKey, KeyList};
use crate::identity::api_keys::{self, Owner};
use crate::identity::users::{self, NewUser, UserChanges, UserRow};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{AuthMethod, Caller, Guarded, Required, UserManage};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

const MANAGE: &str = Permission::UserManage.as_str();

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub enabled: bool,
    /// True while a brute-force lockout is in force.
    pub locked: bool,
    pub locked_until: Option<String>,
    pub password_changed_at: String,
    pub created_at: String,
    pub updated_at: String,
    /// The subject (`sub`) the user signs on as at the `[oidc]` provider.
    pub sso_subject: Option<String>,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        let now = crate::db::now_ms();
        UserView {
            locked: u.locked_until.is_some_and(|t| t > now),
            locked_until: u.locked_until.filter(|t| *t > now).map(rfc3339),
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            email: u.email,
            enabled: u.enabled,
            password_changed_at: rfc3339(u.password_changed_at),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            // Stored as `{issuer} {sub}`: the sub is what people know.
            sso_subject: u.oidc_subject.map(|s| {
                s.split_once(' ')
                    .map_or(s.clone(), |(_, sub)| sub.to_string())
            }),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "ops.jane", "password": "correct horse battery staple", "display_name": "Jane Ops", "email": "jane@example.com"}))]
pub struct CreateUser {
    #[schema(value_type = crate::formats::Username)]
    pub username: String,
    /// At least 12 characters, not the user name, not a common password.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub display_name: String,
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Create a user.
#[utoipa::path(
    operation_id = "users.create",
    tag = "identity",
    request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 409, body = Problem), (status = 422, body = Problem))
)]
#[post("/users")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<UserManage>,
    body: Body<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let new = NewUser {
        username: b.username,
        password: Zeroizing::new(b.password),
        display_name: b.display_name,
        email: b.email,
        enabled: b.enabled,
    };
    let user = users::create(&st.audit, &st.hasher, &caller.ctx, new).await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// List users, oldest first.
#[utoipa::path(
    operation_id = "users.list",
    tag = "identity",
    params(PageParams),
    responses((status = 200, body = Page<UserView>), (status = 400, body = Problem))
)]
#[get("/users")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<UserManage>,
    q: web::Query<PageParams>,
) -> Result<web::Json<Page<UserView>>, ApiError> {
    let st = state::of(&req);
    let page = q.resolve()?;
    let rows = users::list(&st.db, page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |u| u.id.clone(),
        UserView::from,
    )))
}

/// Callers may read and change their own account; others need user:manage.
pub(crate) async fn require_self_or_manage(
    st: &state::WebState,
    caller: &Caller,
    id: &str,
) -> Result<(), ApiError> {
    if caller.principal.id == id {
        return Ok(());
    }
    caller.require(st, MANAGE).await
}

/// Get a user.
#[utoipa::path(
    operation_id = "users.get",
    tag = "identity",
    responses((status = 200, body = UserView), (status = 404, body = Problem))
)]
#[get("/users/{id}")]
pub async fn get(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<UserView>, ApiError> {
    let st = state::of(&req);
    require_self_or_manage(&st, &caller, &id).await?;
    Ok(web::Json(users::get(&st.db, &id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(max_length = 128)]
    pub display_name: Option<String>,
    /// `null` removes the address.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// Disabling a user ends its sessions.
    pub enabled: Option<bool>,
    /// Link the user to the subject (`sub`) of the `[oidc]` provider, so
    /// that signing on as it signs in as this user; `null` unlinks.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255)]
    pub sso_subject: Option<Option<String>>,
}

/// Update a user's profile or enabled flag.
#[utoipa::path(
    operation_id = "users.update",
    tag = "identity",
    request_body = UpdateUser,
    responses((status = 200, body = UserView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
#[patch("/users/{id}")]
pub async fn update(
    req: HttpRequest,
    caller: Guarded<UserManage>,
    id: web::Path<String>,
    body: Body<UpdateUser>,
) -> Result<web::Json<UserView>, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let oidc_subject = match b.sso_subject {
        Some(Some(sub)) => Some(Some(crate::identity::oidc::linked_subject(
            &st.config.oidc,
            &sub,
        )?)),
        Some(None) => Some(None),
        None => None,
    };
    let changes = UserChanges {
        display_name: b.display_name,
        email: b.email,
        enabled: b.enabled,
        oidc_subject,
    };
    Ok(web::Json(
        users::update(&st.audit, &caller.ctx, &id, changes)
            .await?
            .into(),
    ))
}

/// Delete a user (never the last enabled system_admin).
#[utoipa::path(
    operation_id = "users.remove",
    tag = "identity",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem))
)]
#[delete("/users/{id}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<UserManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    users::delete(&st.audit, &caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    /// Required when changing your own password (it must verify); ignored
    /// when an administrator sets another user's.
    pub current_password: Option<String>,
}

/// Set a user's password. Changing your own needs `current_password`;
/// an administrator resetting another user's does not. Ends the user's other
/// sessions and clears any lockout.
#[utoipa::path(
    operation_id = "users.set_password",
    tag = "identity",
    request_body = SetPassword,
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[post("/users/{id}/password")]
pub async fn set_password(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: Result<web::Json<SetPassword>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let st = state::of(&req);
    let own = caller.principal.id == *id;
    // The permission is decided before the body is looked at, so a caller
    // without it gets 403 whatever it sent.
    if !own {
        caller.require(&st, UserManage::NAME).await?;
    }
    let b = body?.into_inner();
    let current = if own {
        let Some(c) = b.current_password else {
            let e: ApiError = crate::error::Error::field(
                "current_password",
                "is required to change your own password",
            )
            .into();
            return Err(e.into());
        };
        Some(Zeroizing::new(c))
    } else {
        None
    };
    let keep = match &caller.method {
        AuthMethod::Session { id_hash } if own => Some(id_hash.clone()),
        _ => None,
    };
    let user = users::get(&st.db, &id).await.map_err(ApiError::from)?;
    let new_password = Zeroizing::new(b.password);
    users::set_password(
        &st.audit,
        &st.hasher,
        &caller.ctx,
        &user,
        new_password,
        current,
        keep,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Clear a brute-force lockout.
#[utoipa::path(
    operation_id = "users.unlock",
    tag = "identity",
    responses((status = 204), (status = 404, body = Problem))
)]
#[post("/users/{id}/unlock")]
pub async fn unlock(
    req: HttpRequest,
    caller: Guarded<UserManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    users::unlock(&st.audit, &caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct SessionsEnded {
    pub ended: usize,
}

/// End every session of a user.
#[utoipa::path(
    operation_id = "users.revoke_sessions",
    tag = "identity",
    responses((status = 200, body = SessionsEnded), (status = 404, body = Problem))
)]
#[delete("/users/{id}/sessions")]
pub async fn revoke_sessions(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<SessionsEnded>, ApiError> {
    let st = state::of(&req);
    require_self_or_manage(&st, &caller, &id).await?;
    let ended = users::revoke_sessions(&st.audit, &caller.ctx, &id).await?;
    Ok(web::Json(SessionsEnded { ended }))
}

#[derive(Serialize, ToSchema)]
pub struct FactorsReset {
    /// Second factors removed (the user's recovery codes go too).
    pub removed: usize,
}

/// Clear a user's second factors and recovery codes and end their
/// sessions (a lost device). A user whose role requires a second factor
/// enrols a new one at their next sign-in.
#[utoipa::path(
    operation_id = "users.reset_factors",
    tag = "identity",
    responses((status = 200, body = FactorsReset), (status = 404, body = Problem))
)]
#[delete("/users/{id}/factors")]
pub async fn reset_factors(
    req: HttpRequest,
    caller: Guarded<UserManage>,
    id: web::Path<String>,
) -> Result<web::Json<FactorsReset>, ApiError> {
    let st = state::of(&req);
    let removed = st.factors().reset(&caller.ctx, &id).await?;
    Ok(web::Json(FactorsReset { removed }))
}

/// List a user's personal API keys (the user themself, or user:manage).
#[utoipa::path(
    operation_id = "users.list_keys",
    tag = "identity",
    responses((status = 200, body = KeyList), (status = 404, body = Problem))
)]
#[get("/users/{id}/keys")]
pub async fn list_keys(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<KeyList>, ApiError> {
    let st = state::of(&req);
    require_self_or_manage(&st, &caller, &id).await?;
    users::get(&st.db, &id).await?;
    let keys = api_keys::list(&st.db, Owner::User(id.into_inner())).await?;
    Ok(web::Json(KeyList {
        items: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Create a personal API key (same format as agents' keys); shown once.
#[utoipa::path(
    operation_id = "users.create_key",
    tag = "identity",
    request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[post("/users/{id}/keys")]
pub async fn create_key(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: Body<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    require_self_or_manage(&st, &caller, &id).await?;
    let b = body?.into_inner();
    let max = st.config.api_keys.max_lifetime_days;
    let key = api_keys::create(
        &st.audit,
        &caller.ctx,
        Owner::User(id.into_inner()),
        b.name,
        b.expires_in_days,
        max,
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedKey::from(key)))
}

/// Revoke a personal API key.
#[utoipa::path(
    operation_id = "users.revoke_key",
    tag = "identity",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem))
)]
#[delete("/users/{id}/keys/{key_id}")]
pub async fn revoke_key(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let (id, key_id) = path.into_inner();
    require_self_or_manage(&st, &caller, &id).await?;
    api_keys::revoke(&st.audit, &caller.ctx, Owner::User(id), &key_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::UserManage, create))
        .service(needs(Permission::UserManage, list))
        .service(needs(Permission::UserManage, get))
        .service(needs(Permission::UserManage, update))
        .service(needs(Permission::UserManage, remove))
        .service(needs(Permission::UserManage, set_password))
        .service(needs(Permission::UserManage, unlock))
        .service(needs(Permission::UserManage, revoke_sessions))
        .service(needs(Permission::UserManage, reset_factors))
        .service(needs(Permission::UserManage, list_keys))
        .service(needs(Permission::UserManage, create_key))
        .service(needs(Permission::UserManage, revoke_key));
}
