//! `/api/v1/roles` and `/api/v1/role-assignments`.

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::authz::SubjectRef;
use crate::identity::PrincipalKind;
use crate::rbac::assignments::{self, AssignmentRow, NewAssignment};
use crate::rbac::roles::{self, RoleInput, RoleRow};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{Guarded, RoleManage};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    /// Seeded roles: grants fixed, not deletable.
    pub system: bool,
    pub permissions: Vec<String>,
    pub inherits: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<RoleRow> for RoleView {
    fn from(r: RoleRow) -> Self {
        RoleView {
            name: r.name,
            description: r.description,
            system: r.system,
            permissions: r.permissions,
            inherits: r.inherits,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "workflow_runner", "description": "Runs workflows and reads the knowledge base", "permissions": ["workflow:execute", "knowledge:read"], "inherits": []}))]
pub struct RoleBody {
    #[schema(value_type = crate::formats::LowerSnake)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: String,
    /// Patterns: `resource:action`, `resource:*`, or `*`.
    #[serde(default)]
    #[schema(value_type = Vec<crate::formats::PermissionPattern>, max_items = 256)]
    pub permissions: Vec<String>,
    /// Parent roles; the graph must stay acyclic.
    #[serde(default)]
    #[schema(value_type = Vec<crate::formats::LowerSnake>)]
    pub inherits: Vec<String>,
}

impl From<RoleBody> for RoleInput {
    fn from(b: RoleBody) -> Self {
        RoleInput {
            name: b.name,
            description: b.description,
            permissions: b.permissions,
            inherits: b.inherits,
        }
    }
}

/// List roles by name.
#[utoipa::path(operation_id = "roles.list", tag = "authz", params(PageParams), responses((status = 200, body = Page<RoleView>)))]
#[get("/roles")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<RoleManage>,
    q: web::Query<PageParams>,
) -> Result<web::Json<Page<RoleView>>, ApiError> {
    let st = state::of(&req);
    let page = q.resolve()?;
    let rows = roles::list(&st.db, page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |r| r.name.clone(),
        RoleView::from,
    )))
}

/// Create a custom role.
#[utoipa::path(operation_id = "roles.create", tag = "authz", request_body = RoleBody, responses((status = 201, body = RoleView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/roles")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<RoleManage>,
    body: Body<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let role = roles::create(&st.audit, &caller.ctx, body?.into_inner().into()).await?;
    Ok(HttpResponse::Created().json(RoleView::from(role)))
}

/// Get a role.
#[utoipa::path(operation_id = "roles.get", tag = "authz", responses((status = 200, body = RoleView), (status = 404, body = Problem)))]
#[get("/roles/{name}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<RoleManage>,
    name: web::Path<String>,
) -> Result<web::Json<RoleView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(roles::get(&st.db, &name).await?.into()))
}

/// Replace a role's description, permissions and parents (system roles:
/// description only).
#[utoipa::path(operation_id = "roles.replace", tag = "authz", request_body = RoleBody, responses((status = 200, body = RoleView), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[put("/roles/{name}")]
pub async fn replace(
    req: HttpRequest,
    caller: Guarded<RoleManage>,
    name: web::Path<String>,
    body: Body<RoleBody>,
) -> Result<web::Json<RoleView>, ApiError> {
    let st = state::of(&req);
    let body = body?.into_inner();
    if body.name != *name {
        return Err(crate::error::Error::field(
            "name",
            "must equal the role name in the path (roles are not renamed)",
        )
        .into());
    }
    Ok(web::Json(
        roles::replace(&st.audit, &caller.ctx, body.into())
            .await?
            .into(),
    ))
}

/// Delete a custom role nothing uses (409 names what uses it).
#[utoipa::path(operation_id = "roles.remove", tag = "authz", responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[delete("/roles/{name}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<RoleManage>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    roles::delete(&st.audit, &caller.ctx, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct ScopeRef {
    #[schema(value_type = crate::formats::LowerSnake)]
    pub resource_type: String,
    /// Glob over resource ids: `*` any run, `?` one character.
    #[schema(value_type = crate::formats::ResourceGlob)]
    pub resource_pattern: String,
}

#[derive(Serialize, ToSchema)]
pub struct AssignmentView {
    pub id: String,
    pub subject: SubjectRef,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeRef>,
    pub created_at: String,
}

impl From<AssignmentRow> for AssignmentView {
    fn from(a: AssignmentRow) -> Self {
        let (kind, id) = match (a.user_id, a.agent_id) {
            (Some(u), _) => (PrincipalKind::User, u),
            (_, Some(g)) => (PrincipalKind::Agent, g),
            _ => (PrincipalKind::User, String::new()),
        };
        let subject = SubjectRef {
            kind: kind.to_string(),
            id,
        };
        AssignmentView {
            id: a.id,
            subject,
            role: a.role,
            scope: a
                .scope_type
                .zip(a.scope_pattern)
                .map(|(resource_type, resource_pattern)| ScopeRef {
                    resource_type,
                    resource_pattern,
                }),
            created_at: rfc3339(a.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    pub subject: SubjectRef,
    #[schema(value_type = crate::formats::LowerSnake)]
    pub role: String,
    pub scope: Option<ScopeRef>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssignmentQuery {
    /// Only assignments of this role.
    pub role: Option<String>,
    /// With `subject_id`: only this subject's assignments (`user` or `agent`).
    #[param(value_type = Option<crate::identity::PrincipalKind>)]
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
}

/// List assignments, per role and/or per subject.
#[utoipa::path(operation_id = "roles.list_assignments", tag = "authz", params(AssignmentQuery), responses((status = 200, body = Page<AssignmentView>), (status = 400, body = Problem)))]
#[get("/role-assignments")]
pub async fn list_assignments(
    req: HttpRequest,
    _caller: Guarded<RoleManage>,
    q: web::Query<AssignmentQuery>,
) -> Result<web::Json<Page<AssignmentView>>, ApiError> {
    let st = state::of(&req);
    let q = q.into_inner();
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .resolve()?;
    let kind = q.subject_type.as_deref().map(PrincipalKind::parse);
    let subject = match (kind, q.subject_id) {
        (None, None) => None,
        (Some(Some(kind)), Some(id)) => Some((kind, id)),
        _ => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!(
                    "subject_type ({}) and subject_id go together",
                    PrincipalKind::choices()
                ),
            ))
        }
    };
    let rows =
        assignments::list(&st.db, q.role, subject, page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |a| a.id.clone(),
        AssignmentView::from,
    )))
}

/// Bind a role to a user or agent, optionally scoped to resources.
#[utoipa::path(operation_id = "roles.create_assignment", tag = "authz", request_body = AssignmentBody, responses((status = 201, body = AssignmentView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/role-assignments")]
pub async fn create_assignment(
    req: HttpRequest,
    caller: Guarded<RoleManage>,
    body: Body<AssignmentBody>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let new = NewAssignment {
        subject_type: b.subject.kind,
        subject_id: b.subject.id,
        role: b.role,
        scope: b.scope.map(|s| (s.resource_type, s.resource_pattern)),
    };
    let row = assignments::create(&st.audit, &caller.ctx, new).await?;
    Ok(HttpResponse::Created().json(AssignmentView::from(row)))
}

/// Remove an assignment.
#[utoipa::path(operation_id = "roles.delete_assignment", tag = "authz", responses((status = 204), (status = 404, body = Problem)))]
#[delete("/role-assignments/{id}")]
pub async fn delete_assignment(
    req: HttpRequest,
    caller: Guarded<RoleManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    assignments::delete(&st.audit, &caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::RoleManage, list))
        .service(needs(Permission::RoleManage, create))
        .service(needs(Permission::RoleManage, get))
        .service(needs(Permission::RoleManage, replace))
        .service(needs(Permission::RoleManage, remove))
        .service(needs(Permission::RoleManage, list_assignments))
        .service(needs(Permission::RoleManage, create_assignment))
        .service(needs(Permission::RoleManage, delete_assignment));
}
