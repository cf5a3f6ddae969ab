//! An agent's or a user's page as a hub: the roles they hold (assigned and
//! removed there, with a scope), what those roles let them do and which
//! role grants each, and the operations around them: an agent's monitors,
//! the open alerts about it (or those a user acknowledged) and recent audit
//! events by or about them.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::UiError;
use super::roles::{assign_typed, AssignRequest, SubjectAssignment};
use super::see_other;
use crate::alerts::{engine, AlertState};
use crate::audit::Record;
use crate::db::alerts::AlertRow;
use crate::identity::principals::Names;
use crate::identity::PrincipalKind;
use crate::rbac::assignments;
use crate::rbac::engine::Subject;
use crate::rbac::Permission;
use crate::web::auth::SessionUser;
use crate::web::state::WebState;

/// Audit events listed (the audit log has the rest, one click away).
const EVENTS: usize = 10;

/// What a hub page shows beside the principal's own settings.
pub struct Hub {
    pub kind: PrincipalKind,
    pub id: String,
    pub name: String,
    pub assignments: Vec<SubjectAssignment>,
    /// (permission pattern, the role path granting it), unscoped grants.
    pub effective: Vec<(String, String)>,
    /// Roles that can be assigned here (when the viewer may manage roles).
    pub roles: Vec<String>,
    pub may_assign: bool,
    /// (id, name, state) of the agent's monitors.
    pub monitors: Vec<(String, String, String)>,
    /// (id, rule, state, summary) of open alerts.
    pub alerts: Vec<(String, String, AlertState, String)>,
    pub events: Vec<Record>,
    pub may_read_audit: bool,
}

impl Hub {
    pub async fn load(
        st: &WebState,
        user: &SessionUser,
        kind: PrincipalKind,
        id: &str,
        name: &str,
    ) -> Result<Hub, UiError> {
        let names = Names::load(&st.db).await?;
        let subject = Subject {
            kind,
            id: id.to_string(),
        };
        let assignments = assignments::list(&st.db, None, Some((kind, id.to_string())), None, 1000)
            .await?
            .into_iter()
            .map(|a| SubjectAssignment::of(a.into(), &names))
            .collect();
        let policy = st.policy.get(&st.db, &st.audit).await?;
        let effective = policy
            .effective_permissions(&subject)
            .into_iter()
            .map(|(p, path)| (p, path.join(" → ")))
            .collect();
        let may_assign = user.nav.roles;
        let roles = if may_assign {
            crate::rbac::roles::list(&st.db, None, 1000)
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect()
        } else {
            Vec::new()
        };
        let monitors = match kind {
            PrincipalKind::Agent if user.nav.health => {
                crate::monitor::instances::list(&st.db, Some(id.to_string()), None, 1000)
                    .await?
                    .into_iter()
                    .map(|i| {
                        let state = if i.enabled {
                            i.state
                        } else {
                            "disabled".into()
                        };
                        (i.id, i.name, state)
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let alerts = if user.nav.alerts {
            open_alerts(st, kind, name).await?
        } else {
            Vec::new()
        };
        let may_read_audit = user.nav.audit;
        let events = if may_read_audit {
            recent_events(st, id).await?
        } else {
            Vec::new()
        };
        Ok(Hub {
            kind,
            id: id.to_string(),
            name: name.to_string(),
            assignments,
            effective,
            roles,
            may_assign,
            monitors,
            alerts,
            events,
            may_read_audit,
        })
    }

    /// This hub's page (`/agents/{id}` or `/users/{id}`).
    pub fn href(&self) -> String {
        format!("/{}s/{}", self.kind, self.id)
    }
}

/// An agent's open alerts are those labelled with its name; a user's,
/// those they acknowledged that are still open.
async fn open_alerts(
    st: &WebState,
    kind: PrincipalKind,
    name: &str,
) -> Result<Vec<(String, String, AlertState, String)>, UiError> {
    let about = |a: &AlertRow| match kind {
        PrincipalKind::Agent => a.labels.get("agent").is_some_and(|v| v == name),
        PrincipalKind::User => a.acknowledged_by.as_deref() == Some(name),
    };
    Ok(engine::open(&st.db)
        .await?
        .into_iter()
        .filter(about)
        .map(|a| {
            let summary = a.annotations.get("summary").cloned().unwrap_or_default();
            (a.id, a.rule, a.state, summary)
        })
        .collect())
}

/// The newest events by the principal or about it, newest first.
async fn recent_events(st: &WebState, id: &str) -> Result<Vec<Record>, UiError> {
    let by = crate::audit::store::Filter {
        actor: Some(id.to_string()),
        ..Default::default()
    };
    let about = crate::audit::store::Filter {
        target: Some(id.to_string()),
        ..Default::default()
    };
    let mut events = crate::audit::search(&st.db, by, None, EVENTS as u32).await?;
    events.extend(crate::audit::search(&st.db, about, None, EVENTS as u32).await?);
    events.sort_by_key(|r| std::cmp::Reverse(r.seq));
    events.dedup_by_key(|r| r.seq);
    events.truncate(EVENTS);
    Ok(events)
}

// ---------------------------------------------------- assign, remove ---

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    resource_pattern: String,
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf_token: String,
}

const MANAGE: &str = Permission::RoleManage.as_str();

/// Assigns the form's role to the principal; back to its page, or its
/// page with the refusal.
async fn assign(
    req: &HttpRequest,
    user: &SessionUser,
    kind: PrincipalKind,
    id: &str,
    form: AssignForm,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(req, &form.csrf_token, MANAGE).await?;
    // The subject must exist: the same resolution as a typed name.
    let request = AssignRequest {
        kind: kind.as_str(),
        subject: id,
        role: &form.role,
        resource_type: &form.resource_type,
        resource_pattern: &form.resource_pattern,
    };
    let (kind, id) = assign_typed(&st, &user.ctx, request).await?;
    Ok(see_other(&format!("/{kind}s/{id}#roles")))
}

/// Removes one of the principal's assignments (only one of theirs).
async fn remove(
    req: &HttpRequest,
    user: &SessionUser,
    kind: PrincipalKind,
    id: &str,
    assignment: &str,
    form: RemoveForm,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(req, &form.csrf_token, MANAGE).await?;
    let theirs = assignments::list(&st.db, None, Some((kind, id.to_string())), None, 1000)
        .await?
        .into_iter()
        .any(|a| a.id == assignment);
    if !theirs {
        return Err(crate::error::Error::NotFound("role assignment".into()).into());
    }
    assignments::delete(&st.audit, &user.ctx, assignment).await?;
    Ok(see_other(&format!("/{kind}s/{id}#roles")))
}

#[post("/agents/{id}/roles")]
pub async fn assign_agent(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<AssignForm>,
) -> Result<HttpResponse, UiError> {
    assign(&req, &user, PrincipalKind::Agent, &id, form.into_inner()).await
}

#[post("/users/{id}/roles")]
pub async fn assign_user(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<AssignForm>,
) -> Result<HttpResponse, UiError> {
    assign(&req, &user, PrincipalKind::User, &id, form.into_inner()).await
}

#[post("/agents/{id}/roles/{assignment}/delete")]
pub async fn remove_agent(
    req: HttpRequest,
    user: SessionUser,
    path: web::Path<(String, String)>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, UiError> {
    let (id, a) = path.into_inner();
    remove(
        &req,
        &user,
        PrincipalKind::Agent,
        &id,
        &a,
        form.into_inner(),
    )
    .await
}

#[post("/users/{id}/roles/{assignment}/delete")]
pub async fn remove_user(
    req: HttpRequest,
    user: SessionUser,
    path: web::Path<(String, String)>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, UiError> {
    let (id, a) = path.into_inner();
    remove(&req, &user, PrincipalKind::User, &id, &a, form.into_inner()).await
}

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(assign_agent)
        .service(assign_user)
        .service(remove_agent)
        .service(remove_user);
}
