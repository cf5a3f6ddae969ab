//! MCP servers pages: the registered servers, a form to register one, and
//! one server's page with its settings, its resource metadata and removal.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{checked, respond, FormErrors};
use super::layout::Layout;
use super::mcp_gateway::{GatewayCard, GatewayForm};
use super::{render, see_other};
use crate::db::mcp_servers::McpServerRow;
use crate::identity::agents;
use crate::mcp::{McpServerSpec, McpServerView};
use crate::rbac::Permission;
use crate::web::auth::SessionUser;
use crate::web::state::{self, WebState};

const MANAGE: &str = Permission::McpManage.as_str();

/// Every field as typed, so a refused form comes back as it was.
#[derive(Default, Deserialize)]
pub struct ServerForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uri: String,
    #[serde(default)]
    upstream_url: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    description: String,
    /// One permission pattern per line.
    #[serde(default)]
    scopes_supported: String,
    enabled: Option<String>,
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

impl ServerForm {
    fn new_defaults() -> ServerForm {
        ServerForm {
            enabled: Some("on".into()),
            ..ServerForm::default()
        }
    }

    fn of(r: &McpServerRow) -> ServerForm {
        ServerForm {
            name: r.name.clone(),
            uri: r.uri.clone().unwrap_or_default(),
            upstream_url: r.upstream_url.clone().unwrap_or_default(),
            agent_id: r.agent_id.clone().unwrap_or_default(),
            description: r.description.clone(),
            scopes_supported: r.scopes_supported.join("\n"),
            enabled: r.enabled.then(|| "on".into()),
            ..ServerForm::default()
        }
    }

    /// The spec this form makes. The gateway settings the form does not
    /// edit (limits, tool settings, upstream headers) are those of `kept`,
    /// the stored server, so saving the form leaves them as they are.
    fn spec(&self, kept: Option<&McpServerView>) -> McpServerSpec {
        // A proxied server's URI is agentry's own: the field is ignored
        // when an upstream is given (the page says so).
        let upstream_url = optional(&self.upstream_url);
        McpServerSpec {
            name: self.name.trim().to_string(),
            uri: optional(&self.uri).filter(|_| upstream_url.is_none()),
            upstream_url,
            agent_id: optional(&self.agent_id),
            description: self.description.trim().to_string(),
            scopes_supported: self
                .scopes_supported
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            enabled: checked(&self.enabled),
            calls_per_minute: kept.and_then(|k| k.calls_per_minute),
            tools: kept.map(|k| k.tools.clone()).unwrap_or_default(),
            upstream_headers: None,
            upstream_token_exchange: kept.and_then(|k| k.upstream_token_exchange.clone()),
        }
    }
}

/// The form has one field for the scope list: a message about one entry
/// (`scopes_supported[2]`) is shown there.
fn on_the_form(mut errors: FormErrors) -> FormErrors {
    let keys: Vec<String> = errors
        .fields
        .keys()
        .filter(|k| k.starts_with("scopes_supported["))
        .cloned()
        .collect();
    for k in keys {
        if let Some(m) = errors.fields.remove(&k) {
            errors.fields.entry("scopes_supported".into()).or_insert(m);
        }
    }
    errors
}

/// (id, "name (type)") of every agent, for the "authenticates as" choice.
async fn agent_choices(st: &WebState) -> Result<Vec<(String, String)>, UiError> {
    Ok(agents::list(&st.db, None, 1000)
        .await?
        .into_iter()
        .map(|a| (a.id, format!("{} ({})", a.name, a.agent_type)))
        .collect())
}

#[derive(Template)]
#[template(path = "mcp_servers/list.html")]
struct ListPage {
    layout: Layout,
    servers: Vec<McpServerView>,
    agents: Vec<(String, String)>,
    proxy_base: String,
    form: ServerForm,
    errors: FormErrors,
}

async fn list_page(
    st: &WebState,
    user: &SessionUser,
    form: ServerForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, MANAGE).await?;
    let rows = st.mcp_servers.list(None, 1000).await?;
    let page = ListPage {
        layout: Layout::for_session("MCP servers", user, "mcp-servers"),
        servers: rows.into_iter().map(|r| st.mcp_servers.view(r)).collect(),
        agents: agent_choices(st).await?,
        proxy_base: format!("{}{}", st.issuer_url, crate::mcp::servers::PROXY_PREFIX),
        form,
        errors: on_the_form(errors),
    };
    render(status, &page)
}

#[get("/mcp-servers")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let form = ServerForm::new_defaults();
    list_page(&st, &user, form, FormErrors::default(), StatusCode::OK).await
}

#[post("/mcp-servers")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<ServerForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let result = st.mcp_servers.create(&user.ctx, form.spec(None)).await;
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |view| format!("/mcp-servers/{}", view.id),
        |errors| list_page(&st, &user, form, errors, status),
    )
    .await
}

#[derive(Template)]
#[template(path = "mcp_servers/detail.html")]
struct DetailPage {
    layout: Layout,
    s: McpServerView,
    agent_name: Option<String>,
    metadata: String,
    agents: Vec<(String, String)>,
    form: ServerForm,
    errors: FormErrors,
    gateway: Option<GatewayCard>,
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    form: Option<ServerForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    page(st, user, id, form, errors, None, status).await
}

/// The page after a refused gateway settings form, as it was typed.
pub async fn detail_with_gateway(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    typed: (GatewayForm, Vec<String>),
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    page(
        st,
        user,
        id,
        None,
        FormErrors::default(),
        Some(typed),
        status,
    )
    .await
}

async fn page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    form: Option<ServerForm>,
    errors: FormErrors,
    gateway: Option<(GatewayForm, Vec<String>)>,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, MANAGE).await?;
    let row = st.mcp_servers.row(id).await?;
    let agent_name = match &row.agent_id {
        Some(a) => agents::get(&st.db, a).await.ok().map(|a| a.name),
        None => None,
    };
    let metadata = serde_json::to_string_pretty(&st.mcp_servers.metadata(&row))
        .map_err(crate::error::Error::internal)?;
    let view = st.mcp_servers.view(row.clone());
    let gateway = GatewayCard::of(st, &row, &view, gateway).await?;
    let page = DetailPage {
        layout: Layout::for_session(format!("MCP server {}", row.name), user, "mcp-servers"),
        form: form.unwrap_or_else(|| ServerForm::of(&row)),
        gateway,
        s: view,
        agent_name,
        metadata,
        agents: agent_choices(st).await?,
        errors: on_the_form(errors),
    };
    render(status, &page)
}

#[get("/mcp-servers/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    detail_page(&st, &user, &id, None, FormErrors::default(), StatusCode::OK).await
}

#[post("/mcp-servers/{id}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ServerForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let kept = match st.mcp_servers.row(&id).await {
        Ok(row) => Some(st.mcp_servers.view(row)),
        Err(_) => None,
    };
    let result = st
        .mcp_servers
        .update(&user.ctx, &id, form.spec(kept.as_ref()))
        .await;
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |_| format!("/mcp-servers/{id}"),
        |errors| detail_page(&st, &user, &id, Some(form), errors, status),
    )
    .await
}

#[post("/mcp-servers/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ServerForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    st.mcp_servers.delete(&user.ctx, &id).await?;
    Ok(see_other("/mcp-servers"))
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(detail)
        .service(update)
        .service(super::mcp_gateway::save)
        .service(delete);
}
