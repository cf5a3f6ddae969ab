//! The gateway card of a proxied MCP server's page: its health probe,
//! calls per tool over the last day, and its gateway settings (limits,
//! per-tool permission mapping, argument recording, upstream headers),
//! saved with their own form.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};

use super::error::UiError;
use super::forms::FormErrors;
use super::see_other;
use crate::alerts::mcp_series::{usage, ToolUsage};
use crate::db::instances::InstanceRow;
use crate::db::mcp_servers::McpServerRow;
use crate::mcp::policy::{ToolSettings, Tools};
use crate::mcp::{McpServerSpec, McpServerView};
use crate::rbac::Permission;
use crate::web::auth::SessionUser;
use crate::web::state::WebState;

const MANAGE: &str = Permission::McpManage.as_str();
/// Empty rows offered for new tools.
const BLANK_ROWS: usize = 3;
/// The window of "calls per tool".
const USAGE_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// One tool's settings as typed.
#[derive(Debug, Clone, Default)]
pub struct ToolRow {
    pub name: String,
    pub permission: String,
    pub record: bool,
    pub classification: String,
    pub limit: String,
}

/// The settings form as typed.
#[derive(Debug, Clone, Default)]
pub struct GatewayForm {
    pub calls_per_minute: String,
    pub tools: Vec<ToolRow>,
    /// `Name: value` per line; empty keeps the stored headers.
    pub headers: String,
    pub clear_headers: bool,
}

impl GatewayForm {
    fn of(view: &McpServerView) -> GatewayForm {
        let mut tools: Vec<ToolRow> = view
            .tools
            .iter()
            .map(|(name, t)| ToolRow {
                name: name.clone(),
                permission: t.permission.clone().unwrap_or_default(),
                record: t.record_arguments,
                classification: t.classification.clone().unwrap_or_default(),
                limit: t
                    .calls_per_minute
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            })
            .collect();
        tools.extend(std::iter::repeat_n(ToolRow::default(), BLANK_ROWS));
        GatewayForm {
            calls_per_minute: view
                .calls_per_minute
                .map(|n| n.to_string())
                .unwrap_or_default(),
            tools,
            headers: String::new(),
            clear_headers: false,
        }
    }

    /// From the posted pairs: `tool_name_N`, `tool_permission_N`, ...
    fn parse(pairs: &[(String, String)]) -> (String, GatewayForm) {
        let mut csrf = String::new();
        let mut f = GatewayForm::default();
        let mut rows: std::collections::BTreeMap<usize, ToolRow> = Default::default();
        for (k, v) in pairs {
            match k.as_str() {
                "csrf_token" => csrf = v.clone(),
                "calls_per_minute" => f.calls_per_minute = v.trim().to_string(),
                "upstream_headers" => f.headers = v.clone(),
                "clear_upstream_headers" => f.clear_headers = true,
                _ => {
                    let Some((field, n)) = k.rsplit_once('_') else {
                        continue;
                    };
                    // Bounded: a form cannot make more rows than the API
                    // takes tools.
                    let Ok(n) = n.parse::<usize>() else { continue };
                    if n >= crate::mcp::settings::MAX_TOOLS {
                        continue;
                    }
                    let row = rows.entry(n).or_default();
                    match field {
                        "tool_name" => row.name = v.trim().to_string(),
                        "tool_permission" => row.permission = v.trim().to_string(),
                        "tool_record" => row.record = true,
                        "tool_classification" => row.classification = v.trim().to_string(),
                        "tool_limit" => row.limit = v.trim().to_string(),
                        _ => {}
                    }
                }
            }
        }
        f.tools = rows.into_values().collect();
        (csrf, f)
    }

    /// The settings this form gives, or what is wrong with what it can
    /// tell by itself (numbers, header lines, repeated tools); the rest is
    /// the domain's to check.
    fn settings(&self) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let number = |field: &str, text: &str, errors: &mut Vec<String>| -> Option<u32> {
            if text.is_empty() {
                return None;
            }
            match text.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(format!("{field}: {text:?} is not a whole number"));
                    None
                }
            }
        };
        let per_minute = number("calls per minute", &self.calls_per_minute, &mut errors);
        let mut tools = Tools::new();
        for row in self.tools.iter().filter(|r| !r.name.is_empty()) {
            let limit = number(
                &format!("{}: calls per minute", row.name),
                &row.limit,
                &mut errors,
            );
            let settings = ToolSettings {
                permission: Some(row.permission.clone()).filter(|p| !p.is_empty()),
                record_arguments: row.record,
                classification: Some(row.classification.clone()).filter(|c| !c.is_empty()),
                calls_per_minute: limit,
            };
            if tools.insert(row.name.clone(), settings).is_some() {
                errors.push(format!("{}: the tool is listed twice", row.name));
            }
        }
        let headers = if self.clear_headers {
            Some(Default::default())
        } else if self.headers.trim().is_empty() {
            None
        } else {
            let mut h = std::collections::BTreeMap::new();
            for line in self
                .headers
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                match line.split_once(':') {
                    Some((k, v)) => {
                        h.insert(k.trim().to_string(), v.trim().to_string());
                    }
                    None => errors
                        .push("upstream headers: write one `Name: value` per line".to_string()),
                }
            }
            Some(h)
        };
        if errors.is_empty() {
            Ok(Settings {
                calls_per_minute: per_minute,
                tools,
                upstream_headers: headers,
            })
        } else {
            Err(errors)
        }
    }
}

/// The gateway settings a valid form gives.
struct Settings {
    calls_per_minute: Option<u32>,
    tools: Tools,
    /// `None`: keep the stored headers.
    upstream_headers: Option<std::collections::BTreeMap<String, String>>,
}

/// What the card shows.
pub struct GatewayCard {
    pub probe: Option<InstanceRow>,
    pub usage: Vec<ToolUsage>,
    pub form: GatewayForm,
    pub errors: Vec<String>,
    pub header_names: Vec<String>,
}

impl GatewayCard {
    /// The card of a proxied server (`None` for a direct one), with the
    /// form as typed and its errors when a save was refused.
    pub async fn of(
        st: &WebState,
        row: &McpServerRow,
        view: &McpServerView,
        typed: Option<(GatewayForm, Vec<String>)>,
    ) -> Result<Option<GatewayCard>, UiError> {
        if row.upstream_url.is_none() {
            return Ok(None);
        }
        let (id, name) = (row.id.clone(), row.name.clone());
        let since = crate::db::now_ms() - USAGE_WINDOW_MS;
        let (probe, rows) = st
            .db
            .read(move |c| {
                Ok((
                    crate::db::instances::of_mcp_server(c, &id)?,
                    crate::audit::store::tool_calls_since(c, since, Some(&name))?,
                ))
            })
            .await?;
        let (form, errors) = typed.unwrap_or_else(|| (GatewayForm::of(view), Vec::new()));
        Ok(Some(GatewayCard {
            probe,
            usage: usage(&row.name, &rows),
            form,
            errors,
            header_names: view.upstream_header_names.clone(),
        }))
    }
}

/// The spec that keeps everything of `view` but the gateway settings.
fn with_settings(view: &McpServerView, settings: Settings) -> McpServerSpec {
    McpServerSpec {
        name: view.name.clone(),
        uri: None,
        upstream_url: view.upstream_url.clone(),
        agent_id: view.agent_id.clone(),
        description: view.description.clone(),
        scopes_supported: view.scopes_supported.clone(),
        enabled: view.enabled,
        calls_per_minute: settings.calls_per_minute,
        tools: settings.tools,
        upstream_headers: settings.upstream_headers,
        upstream_token_exchange: view.upstream_token_exchange.clone(),
    }
}

#[post("/mcp-servers/{id}/gateway")]
pub async fn save(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    pairs: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    let (csrf, form) = GatewayForm::parse(&pairs);
    let st = user.authorize_form(&req, &csrf, MANAGE).await?;
    let row = st.mcp_servers.row(&id).await?;
    let view = st.mcp_servers.view(row);
    let refused = |errors: Vec<String>| (form.clone(), errors);
    let typed = match form.settings() {
        Err(errors) => refused(errors),
        Ok(settings) => {
            match st
                .mcp_servers
                .update(&user.ctx, &id, with_settings(&view, settings))
                .await
            {
                Ok(_) => return Ok(see_other(&format!("/mcp-servers/{id}#gateway"))),
                Err(e) => {
                    let errors = FormErrors::from_error(e)?;
                    let mut list: Vec<String> = errors
                        .fields
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    list.extend(errors.form);
                    refused(list)
                }
            }
        }
    };
    super::mcp_servers::detail_with_gateway(
        &st,
        &user,
        &id,
        typed,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}
