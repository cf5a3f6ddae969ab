//! MCP servers as registered resources: what agentry issues tokens for
//! (`aud`), which permissions a token for each may carry, and the RFC 9728
//! protected resource metadata each serves.
//!
//! A server is either *proxied* (`upstream_url` set: agentry's gateway
//! serves it at `{public_url}/mcp/{name}`, which is then its resource URI)
//! or *direct* (`uri` set: the server is reached without agentry, and only
//! its tokens come from here).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{Audit, Context, Outcome};
use crate::db::mcp_servers::{self as repo, McpServerRow};
use crate::db::{self, Db};
use crate::encryption::keyring::KeyRing;
use crate::error::{Error, FieldErrors, Result};
use crate::names::{valid_alerting_name as valid_name, ALERTING_NAME_RULE as NAME_RULE};
use crate::net::{validate_url, OutboundRules};
use crate::rbac::patterns;
use crate::timefmt::rfc3339;

use super::policy::Tools;
use super::settings;

/// The path under the public URL where proxied servers live.
pub const PROXY_PREFIX: &str = "/mcp/";
/// Longest resource URI.
pub const MAX_URI: usize = 512;
pub const MAX_DESCRIPTION: usize = 1000;
pub const MAX_SCOPES: usize = 100;

/// What an admin gives for a server (create, or replace on update).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "knowledge-base", "uri": "https://kb.example.com/mcp", "description": "Search and read the knowledge base", "scopes_supported": ["knowledge:read", "knowledge:write"]}))]
pub struct McpServerSpec {
    #[schema(value_type = crate::formats::AlertingName)]
    pub name: String,
    /// The canonical resource URI clients use (https, or http on a loopback
    /// host). Required unless `upstream_url` is set; then it is agentry's
    /// own `{public_url}/mcp/{name}` and may be left out.
    #[schema(max_length = 512)]
    pub uri: Option<String>,
    /// Set: agentry proxies the server at `{public_url}/mcp/{name}` and
    /// forwards to this URL (http or https, no credentials).
    #[schema(max_length = 2048)]
    pub upstream_url: Option<String>,
    /// The agent this server authenticates as: it may introspect tokens
    /// addressed to the server and exchange them.
    pub agent_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    /// Permission patterns a token for this server may carry; empty: any
    /// the subject holds.
    #[serde(default)]
    #[schema(value_type = Vec<crate::formats::PermissionPattern>, max_items = 100)]
    pub scopes_supported: Vec<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Gateway: calls per minute one principal may make to this server;
    /// absent: no limit.
    #[schema(minimum = 1, maximum = 1000000)]
    pub calls_per_minute: Option<u32>,
    /// Gateway: settings per tool (permission mapping, argument
    /// recording, limits), by tool name.
    #[serde(default)]
    pub tools: Tools,
    /// Gateway: headers sent upstream with every request (a static
    /// credential such as `Authorization`); proxied servers only.
    /// Write-only: stored encrypted, shown by name. Absent on update: the
    /// stored ones are kept; `{}` removes them.
    #[schema(value_type = Option<BTreeMap<String, String>>, example = json!({"Authorization": "Bearer upstream-secret"}))]
    pub upstream_headers: Option<BTreeMap<String, String>>,
    /// Gateway, proxied servers with an `agent_id` only: the resource URI
    /// of a registered server that the upstream is; each caller's access
    /// token is exchanged (RFC 8693, acting as the agent) for a token for
    /// it, sent upstream as `Authorization: Bearer`.
    #[serde(default)]
    #[schema(max_length = 512)]
    pub upstream_token_exchange: Option<String>,
}

fn enabled() -> bool {
    true
}

/// A registered server as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct McpServerView {
    pub id: String,
    pub name: String,
    /// The resource URI: the `aud` of tokens for this server.
    pub uri: String,
    pub upstream_url: Option<String>,
    pub agent_id: Option<String>,
    pub description: String,
    pub scopes_supported: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub calls_per_minute: Option<u32>,
    pub tools: Tools,
    /// Names of the headers sent upstream (their values are never shown).
    pub upstream_header_names: Vec<String>,
    pub upstream_token_exchange: Option<String>,
}

/// RFC 9728 protected resource metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    /// Left out when the server lists none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    pub bearer_methods_supported: Vec<&'static str>,
    pub resource_name: String,
}

/// The registry, with the issuer whose URIs proxied servers take.
#[derive(Clone)]
pub struct McpServers {
    db: Db,
    audit: Audit,
    issuer: String,
    rules: Arc<OutboundRules>,
    keyring: KeyRing,
}

/// The resource URI of a row: its own, or agentry's proxy URI for it.
pub fn resource_uri(issuer: &str, row: &McpServerRow) -> String {
    match &row.uri {
        Some(u) => u.clone(),
        None => format!("{issuer}{PROXY_PREFIX}{}", row.name),
    }
}

/// Whether `host` is a loopback host (where http is allowed).
fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A direct server's resource URI: absolute, https (or http on a loopback
/// host), no fragment or credentials, not agentry's own API or proxy space.
fn check_uri(uri: &str, issuer: &str) -> std::result::Result<(), String> {
    if uri.chars().count() > MAX_URI {
        return Err(format!("must be at most {MAX_URI} characters"));
    }
    let parsed = url::Url::parse(uri).map_err(|e| format!("is not a valid URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if loopback(&parsed) => {}
        _ => return Err("must be https (or http on a loopback host)".into()),
    }
    if parsed.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    if uri == issuer || uri.starts_with(&format!("{issuer}{PROXY_PREFIX}")) {
        return Err(format!(
            "{issuer} and what lies under {PROXY_PREFIX} are agentry's own; \
             set upstream_url to have agentry proxy a server there"
        ));
    }
    Ok(())
}

impl McpServers {
    pub fn new(
        db: Db,
        audit: Audit,
        issuer: String,
        rules: Arc<OutboundRules>,
        keyring: KeyRing,
    ) -> McpServers {
        McpServers {
            db,
            audit,
            issuer,
            rules,
            keyring,
        }
    }

    pub fn view(&self, row: McpServerRow) -> McpServerView {
        McpServerView {
            uri: resource_uri(&self.issuer, &row),
            id: row.id,
            name: row.name,
            upstream_url: row.upstream_url,
            agent_id: row.agent_id,
            description: row.description,
            scopes_supported: row.scopes_supported,
            enabled: row.enabled,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
            calls_per_minute: row.calls_per_minute,
            // Written by this module from a valid `Tools`.
            tools: serde_json::from_str(&row.tools).unwrap_or_default(),
            upstream_header_names: row.upstream_header_names,
            upstream_token_exchange: row.upstream_token_exchange,
        }
    }

    /// The RFC 9728 metadata of a server.
    pub fn metadata(&self, row: &McpServerRow) -> ResourceMetadata {
        ResourceMetadata {
            resource: resource_uri(&self.issuer, row),
            authorization_servers: vec![self.issuer.clone()],
            scopes_supported: row.scopes_supported.clone(),
            bearer_methods_supported: vec!["header"],
            resource_name: row.name.clone(),
        }
    }

    /// Field errors of a spec (those that need no database).
    fn check(&self, s: &McpServerSpec) -> FieldErrors {
        let mut e = FieldErrors::new();
        if !valid_name(&s.name) {
            e.insert("name".into(), NAME_RULE.into());
        }
        match (&s.uri, &s.upstream_url) {
            (None, None) => {
                e.insert(
                    "uri".into(),
                    "is required unless upstream_url is set".into(),
                );
            }
            (Some(u), None) => {
                if let Err(m) = check_uri(u, &self.issuer) {
                    e.insert("uri".into(), m);
                }
            }
            (uri, Some(up)) => {
                let checked = validate_url(up)
                    .and_then(|p| self.rules.check_url(&p).map_err(|r| r.to_string()));
                if let Err(m) = checked {
                    e.insert("upstream_url".into(), m);
                }
                let own = format!("{}{PROXY_PREFIX}{}", self.issuer, s.name);
                if uri.as_ref().is_some_and(|u| *u != own) {
                    e.insert(
                        "uri".into(),
                        format!("a proxied server's URI is agentry's own ({own}); leave it out"),
                    );
                }
            }
        }
        if s.description.chars().count() > MAX_DESCRIPTION {
            e.insert(
                "description".into(),
                format!("must be at most {MAX_DESCRIPTION} characters"),
            );
        }
        if s.scopes_supported.len() > MAX_SCOPES {
            e.insert(
                "scopes_supported".into(),
                format!("at most {MAX_SCOPES} entries"),
            );
        } else if let Some((i, bad)) = s
            .scopes_supported
            .iter()
            .enumerate()
            .find(|(_, p)| !patterns::valid_pattern(p))
        {
            e.insert(
                format!("scopes_supported[{i}]"),
                format!("{bad:?} is not a permission pattern (resource:action, resource:* or *)"),
            );
        }
        settings::check_limit("calls_per_minute", s.calls_per_minute, &mut e);
        settings::check_tools(&s.tools, &mut e);
        if let Some(h) = &s.upstream_headers {
            if s.upstream_url.is_none() && !h.is_empty() {
                e.insert(
                    "upstream_headers".into(),
                    "only a proxied server (upstream_url set) has upstream headers".into(),
                );
            } else {
                settings::check_headers(h, &mut e);
            }
        }
        if let Some(target) = &s.upstream_token_exchange {
            let problem = if s.upstream_url.is_none() {
                Some(
                    "only a proxied server (upstream_url set) exchanges tokens for its upstream"
                        .to_string(),
                )
            } else if s.agent_id.is_none() {
                Some("needs agent_id: the agent the gateway exchanges tokens as".into())
            } else {
                check_uri(target, &self.issuer)
                    .err()
                    .map(|m| format!("the upstream's resource URI {m}"))
            };
            if let Some(m) = problem {
                e.insert("upstream_token_exchange".into(), m);
            }
        }
        e
    }

    /// Seals upstream headers: (package JSON, names), or none for `{}`.
    async fn seal_headers(
        &self,
        id: &str,
        headers: &BTreeMap<String, String>,
    ) -> Result<(Option<String>, Vec<String>)> {
        if headers.is_empty() {
            return Ok((None, vec![]));
        }
        let sealed = self
            .keyring
            .seal_json(
                &self.db,
                &self.audit,
                settings::HEADERS_CLASSIFICATION,
                headers,
                &headers_context(id),
            )
            .await?;
        Ok((Some(sealed), headers.keys().cloned().collect()))
    }

    /// Opens the sealed upstream headers of server `id`.
    pub async fn open_headers(&self, id: &str, sealed: &str) -> Result<BTreeMap<String, String>> {
        self.keyring
            .open_json(&self.db, &self.audit, sealed, &headers_context(id))
            .await
    }

    /// The row a valid spec makes, or its field errors (the agent must
    /// exist).
    async fn row_of(
        &self,
        event: crate::audit::Event,
        id: String,
        spec: McpServerSpec,
        old: Option<&McpServerRow>,
    ) -> Result<(McpServerRow, crate::audit::Event)> {
        let mut errors = self.check(&spec);
        for c in settings::argument_classifications(&spec.tools) {
            if !self.keyring.exists(&self.db, &self.audit, &c).await? {
                errors.insert(
                    "tools".into(),
                    format!("no key ring has the classification {c:?} to record arguments under"),
                );
            }
        }
        if let Some(agent) = spec.agent_id.clone() {
            let exists = self
                .db
                .read(move |c| db::agents::by_id(c, &agent))
                .await?
                .is_some();
            if !exists {
                errors.insert("agent_id".into(), "no agent has this id".into());
            }
        }
        if !errors.is_empty() {
            return Err(self.audit.fail(event, Error::fields(errors)).await);
        }
        let now = db::now_ms();
        let mut scopes: Vec<String> = Vec::with_capacity(spec.scopes_supported.len());
        for p in spec.scopes_supported {
            if !scopes.contains(&p) {
                scopes.push(p);
            }
        }
        let (upstream_headers, upstream_header_names) = match (&spec.upstream_headers, old) {
            _ if spec.upstream_url.is_none() => (None, vec![]),
            (Some(h), _) => self.seal_headers(&id, h).await?,
            (None, Some(o)) => (o.upstream_headers.clone(), o.upstream_header_names.clone()),
            (None, None) => (None, vec![]),
        };
        let tools = serde_json::to_string(&spec.tools).map_err(Error::internal)?;
        let row = McpServerRow {
            id,
            uri: if spec.upstream_url.is_some() {
                None
            } else {
                spec.uri
            },
            name: spec.name,
            upstream_url: spec.upstream_url,
            agent_id: spec.agent_id,
            description: spec.description,
            scopes_supported: scopes,
            enabled: spec.enabled,
            created_at: old.map_or(now, |o| o.created_at),
            updated_at: now,
            calls_per_minute: spec.calls_per_minute,
            tools,
            upstream_headers,
            upstream_header_names,
            upstream_token_exchange: spec.upstream_token_exchange,
        };
        let event = event
            .detail("uri", resource_uri(&self.issuer, &row))
            .detail("enabled", row.enabled.to_string())
            .detail("tools", spec.tools.len().to_string())
            .detail(
                "upstream_header_names",
                row.upstream_header_names.join(", "),
            );
        Ok((row, event))
    }

    pub async fn create(&self, ctx: &Context, spec: McpServerSpec) -> Result<McpServerView> {
        let id = db::new_id();
        let event = ctx
            .event("mcp_server.create", Outcome::Success)
            .target("mcp_server", &id)
            .detail("name", &spec.name);
        let (row, event) = self.row_of(event, id, spec, None).await?;
        let stored = row.clone();
        self.audit
            .apply(event, move |c| {
                taken(c, &stored)?;
                repo::insert(c, &stored)?;
                sync_probe(c, &stored)
            })
            .await?;
        Ok(self.view(row))
    }

    pub async fn update(
        &self,
        ctx: &Context,
        id: &str,
        spec: McpServerSpec,
    ) -> Result<McpServerView> {
        let old = self.row(id).await?;
        let event = ctx
            .event("mcp_server.update", Outcome::Success)
            .target("mcp_server", id)
            .detail("name", &spec.name);
        let (row, event) = self.row_of(event, id.to_string(), spec, Some(&old)).await?;
        let stored = row.clone();
        self.audit
            .apply(event, move |c| {
                taken(c, &stored)?;
                if !repo::update(c, &stored)? {
                    return Err(not_found(&stored.id));
                }
                sync_probe(c, &stored)
            })
            .await?;
        Ok(self.view(row))
    }

    pub async fn delete(&self, ctx: &Context, id: &str) -> Result<()> {
        let event = ctx
            .event("mcp_server.delete", Outcome::Success)
            .target("mcp_server", id);
        let i = id.to_string();
        self.audit
            .apply(event, move |c| {
                if !repo::delete(c, &i)? {
                    return Err(not_found(&i));
                }
                Ok(())
            })
            .await
    }

    pub async fn row(&self, id: &str) -> Result<McpServerRow> {
        let i = id.to_string();
        self.db
            .read(move |c| repo::by_id(c, &i))
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn list(&self, after: Option<String>, limit: u32) -> Result<Vec<McpServerRow>> {
        self.db
            .read(move |c| repo::list(c, after.as_deref(), limit))
            .await
    }

    /// The enabled server (proxied or not) called `name`.
    pub async fn enabled_named(&self, name: &str) -> Result<Option<McpServerRow>> {
        let n = name.to_string();
        let row = self.db.read(move |c| repo::by_name(c, &n)).await?;
        Ok(row.filter(|r| r.enabled && r.name == name))
    }

    /// The enabled proxied server called `name`.
    pub async fn proxied(&self, name: &str) -> Result<Option<McpServerRow>> {
        let n = name.to_string();
        let row = self.db.read(move |c| repo::by_name(c, &n)).await?;
        Ok(row.filter(|r| r.enabled && r.upstream_url.is_some()))
    }

    /// The enabled server whose resource URI is `resource`, if any.
    pub async fn by_resource(&self, resource: &str) -> Result<Option<McpServerRow>> {
        let proxy_space = format!("{}{PROXY_PREFIX}", self.issuer);
        if let Some(name) = resource.strip_prefix(&proxy_space) {
            // The proxy URI is exactly the prefix and the name, as stored.
            return Ok(self.proxied(name).await?.filter(|r| r.name == name));
        }
        let r = resource.to_string();
        let row = self.db.read(move |c| repo::by_uri(c, &r)).await?;
        Ok(row.filter(|r| r.enabled))
    }
}

/// Keeps the health probe (instance kind `mcp`) of a proxied server in
/// step with it: created with the server, following its name, upstream
/// and enabled state, removed when it stops being proxied. Its interval,
/// timeout and thresholds are the admin's to tune on the instance.
fn sync_probe(c: &rusqlite::Connection, row: &McpServerRow) -> Result<()> {
    use crate::db::instances as probes;
    let Some(url) = &row.upstream_url else {
        probes::delete_of_mcp_server(c, &row.id)?;
        return Ok(());
    };
    match probes::of_mcp_server(c, &row.id)? {
        Some(mut p) => {
            p.name = row.name.clone();
            p.url = Some(url.clone());
            p.enabled = row.enabled;
            p.updated_at = row.updated_at;
            probes::update_definition(c, &p)?;
        }
        None => probes::insert(
            c,
            &probes::InstanceRow {
                mcp_server_id: Some(row.id.clone()),
                name: row.name.clone(),
                kind: "mcp".into(),
                url: Some(url.clone()),
                interval_seconds: PROBE_INTERVAL_SECONDS,
                timeout_ms: PROBE_TIMEOUT_MS,
                enabled: row.enabled,
                ..probes::InstanceRow::unchecked(db::new_id(), row.updated_at)
            },
        )?,
    }
    Ok(())
}

/// How often a proxied server's probe runs, and its timeout.
const PROBE_INTERVAL_SECONDS: i64 = 30;
const PROBE_TIMEOUT_MS: i64 = 5000;

/// A name or URI that another server has.
fn taken(c: &rusqlite::Connection, row: &McpServerRow) -> Result<()> {
    if repo::by_name(c, &row.name)?.is_some_and(|o| o.id != row.id) {
        return Err(Error::Conflict(
            "an MCP server with this name exists".into(),
        ));
    }
    if let Some(uri) = &row.uri {
        if repo::by_uri(c, uri)?.is_some_and(|o| o.id != row.id) {
            return Err(Error::Conflict("an MCP server with this URI exists".into()));
        }
    }
    Ok(())
}

/// What a server's sealed headers are bound to: they open for this server
/// only.
fn headers_context(id: &str) -> String {
    format!("mcp_server:{id}:upstream_headers")
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("MCP server {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://agentry.example.com";

    #[test]
    fn resource_uris_are_https_or_loopback_http_and_not_agentrys_own() {
        for ok in [
            "https://kb.example.com/mcp",
            "http://127.0.0.1:9000/mcp",
            "http://localhost:8000/mcp",
            "http://[::1]:8000/mcp",
        ] {
            assert_eq!(check_uri(ok, ISSUER), Ok(()), "{ok}");
        }
        for bad in [
            "http://kb.example.com/mcp",
            "ftp://kb.example.com/",
            "https://kb.example.com/mcp#x",
            "https://user:pw@kb.example.com/mcp",
            "kb.example.com/mcp",
            ISSUER,
            "https://agentry.example.com/mcp/kb",
        ] {
            assert!(check_uri(bad, ISSUER).is_err(), "{bad}");
        }
        assert!(check_uri(&format!("https://x/{}", "a".repeat(600)), ISSUER).is_err());
    }

    #[test]
    fn a_proxied_server_takes_agentrys_uri() {
        let row = McpServerRow {
            id: "1".into(),
            name: "kb".into(),
            uri: None,
            upstream_url: Some("http://10.0.0.5:9000/mcp".into()),
            agent_id: None,
            description: String::new(),
            scopes_supported: vec![],
            enabled: true,
            created_at: 0,
            updated_at: 0,
            calls_per_minute: None,
            tools: "{}".into(),
            upstream_headers: None,
            upstream_header_names: vec![],
            upstream_token_exchange: None,
        };
        assert_eq!(
            resource_uri(ISSUER, &row),
            "https://agentry.example.com/mcp/kb"
        );
    }
}
