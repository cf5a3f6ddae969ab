//! Notification channels pages: the list (secrets never shown, only which
//! are set), the form per channel type (new and edit, where empty secret
//! fields keep their stored value), deletion, and "Send test".

use super::filters;
use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::alerts::{index, page_request, MANAGE, VIEW};
use super::error::UiError;
use super::forms::FormErrors;
use super::layout::Layout;
use super::notifications::NotificationItem;
use super::{render, see_other};
use crate::db::channels as repo;
use crate::error::Error;
use crate::notify::outbox::RetryPolicy;
use crate::notify::store::{ChannelSpec, ChannelView};
use crate::notify::{ChannelType, DeliveryStatus, PAGERDUTY_EVENTS_URL};
use crate::web::auth::SessionUser;
use crate::web::pagination::Page;
use crate::web::state::{self, WebState};

const TLS: [&str; 3] = ["starttls", "tls", "none"];

/// Names of every configured channel (rules name channels by name).
pub(super) async fn configured_names(st: &WebState) -> Result<HashSet<String>, UiError> {
    let pairs = st.db.read(repo::ids_by_name).await?;
    Ok(pairs.into_iter().map(|(name, _)| name).collect())
}

/// Every field of every type as typed; field names carry the type so the
/// fieldsets of one form do not clash.
#[derive(Default, Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    email_smtp_host: String,
    #[serde(default)]
    email_smtp_port: String,
    #[serde(default)]
    email_tls: String,
    #[serde(default)]
    email_username: String,
    #[serde(default)]
    email_password: String,
    email_password_clear: Option<String>,
    #[serde(default)]
    email_from: String,
    #[serde(default)]
    email_to: String,
    #[serde(default)]
    slack_url: String,
    #[serde(default)]
    pagerduty_routing_key: String,
    #[serde(default)]
    pagerduty_url: String,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    webhook_secret: String,
    webhook_secret_clear: Option<String>,
}

fn put(map: &mut Map<String, Value>, key: &str, text: &str) {
    let t = text.trim();
    if !t.is_empty() {
        map.insert(key.into(), t.into());
    }
}

/// A secret: sent when typed, `null` when asked to clear, else left out
/// (on an update, left out keeps the stored value).
fn put_secret(map: &mut Map<String, Value>, key: &str, text: &str, clear: bool) {
    if !text.is_empty() {
        map.insert(key.into(), text.into());
    } else if clear {
        map.insert(key.into(), Value::Null);
    }
}

impl ChannelForm {
    fn new_defaults() -> ChannelForm {
        ChannelForm {
            kind: ChannelType::Slack.to_string(),
            email_smtp_port: "587".into(),
            email_tls: "starttls".into(),
            pagerduty_url: PAGERDUTY_EVENTS_URL.into(),
            ..ChannelForm::default()
        }
    }

    /// The public settings of a stored channel; secret fields stay empty.
    fn of(c: &ChannelView) -> ChannelForm {
        let s = |k: &str| match c.settings.get(k) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        let mut f = ChannelForm {
            name: c.name.clone(),
            kind: c.kind.clone(),
            ..ChannelForm::new_defaults()
        };
        match ChannelType::parse(&c.kind) {
            Some(ChannelType::Email) => {
                f.email_smtp_host = s("smtp_host");
                f.email_smtp_port = s("smtp_port");
                f.email_tls = s("tls");
                f.email_username = s("username");
                f.email_from = s("from");
                f.email_to = s("to");
            }
            Some(ChannelType::Pagerduty) => f.pagerduty_url = s("url"),
            Some(ChannelType::Webhook) => f.webhook_url = s("url"),
            Some(ChannelType::Slack) | None => {}
        }
        f
    }

    /// The settings object of the chosen type, from that type's fields only.
    fn settings(&self) -> Value {
        let mut m = Map::new();
        match ChannelType::parse(&self.kind) {
            Some(ChannelType::Email) => {
                put(&mut m, "smtp_host", &self.email_smtp_host);
                let port = self.email_smtp_port.trim();
                if !port.is_empty() {
                    let v = port
                        .parse::<u64>()
                        .map_or_else(|_| port.into(), Value::from);
                    m.insert("smtp_port".into(), v);
                }
                put(&mut m, "tls", &self.email_tls);
                put(&mut m, "username", &self.email_username);
                let clear = self.email_password_clear.is_some();
                put_secret(&mut m, "password", &self.email_password, clear);
                put(&mut m, "from", &self.email_from);
                let to: Vec<Value> = self
                    .email_to
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(Value::from)
                    .collect();
                if !to.is_empty() {
                    m.insert("to".into(), Value::Array(to));
                }
            }
            Some(ChannelType::Slack) => put_secret(&mut m, "url", self.slack_url.trim(), false),
            Some(ChannelType::Pagerduty) => {
                put_secret(
                    &mut m,
                    "routing_key",
                    self.pagerduty_routing_key.trim(),
                    false,
                );
                put(&mut m, "url", &self.pagerduty_url);
            }
            Some(ChannelType::Webhook) => {
                put(&mut m, "url", &self.webhook_url);
                let clear = self.webhook_secret_clear.is_some();
                put_secret(&mut m, "secret", &self.webhook_secret, clear);
            }
            None => {}
        }
        Value::Object(m)
    }

    fn spec(&self) -> ChannelSpec {
        ChannelSpec {
            name: self.name.trim().to_string(),
            kind: self.kind.clone(),
            settings: self.settings(),
        }
    }

    /// The domain's refusal next to this form's fields: `settings.url` of a
    /// slack channel goes to `slack_url`, `settings.to[1]` to `email_to`.
    fn errors(&self, e: Error) -> Result<FormErrors, UiError> {
        let mut errors = FormErrors::from_error(e)?;
        let keys: Vec<String> = errors
            .fields
            .keys()
            .filter(|k| k.starts_with("settings."))
            .cloned()
            .collect();
        let mut unplaced = Vec::new();
        for k in keys {
            let Some(m) = errors.fields.remove(&k) else {
                continue;
            };
            let sub = &k["settings.".len()..];
            let (base, suffix) = sub.split_at(sub.find('[').unwrap_or(sub.len()));
            let field = format!("{}_{base}", self.kind);
            let m = match index(suffix) {
                Some(i) => format!("address {}: {m}", i + 1),
                None => m,
            };
            if self.has_field(&field) {
                let joined = match errors.fields.remove(&field) {
                    Some(old) => format!("{old}; {m}"),
                    None => m,
                };
                errors.fields.insert(field, joined);
            } else {
                unplaced.push(format!("{sub}: {m}"));
            }
        }
        if !unplaced.is_empty() {
            errors.form = Some(unplaced.join("; "));
        }
        Ok(errors)
    }

    fn has_field(&self, field: &str) -> bool {
        const FIELDS: [&str; 12] = [
            "email_smtp_host",
            "email_smtp_port",
            "email_tls",
            "email_username",
            "email_password",
            "email_from",
            "email_to",
            "slack_url",
            "pagerduty_routing_key",
            "pagerduty_url",
            "webhook_url",
            "webhook_secret",
        ];
        FIELDS.contains(&field)
    }
}

// -------------------------------------------------------------- views ---

/// A channel as the list shows it.
struct ChannelItem {
    id: String,
    name: String,
    kind: String,
    /// The settings worth a glance (host, recipients, endpoint).
    summary: String,
    secrets_set: Vec<&'static str>,
    /// Secret fields of the type that are not set.
    secrets_unset: Vec<&'static str>,
}

fn secret_fields(kind: &str) -> &'static [&'static str] {
    ChannelType::parse(kind).map_or(&[], |t| t.secret_fields())
}

impl From<ChannelView> for ChannelItem {
    fn from(c: ChannelView) -> Self {
        let s = |k: &str| c.settings.get(k).and_then(Value::as_str).unwrap_or("");
        let summary = match ChannelType::parse(&c.kind) {
            Some(ChannelType::Email) => {
                let to: Vec<&str> = c
                    .settings
                    .get("to")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let port = c.settings.get("smtp_port").cloned().unwrap_or_default();
                format!(
                    "{}:{port} ({}) → {}",
                    s("smtp_host"),
                    s("tls"),
                    to.join(", ")
                )
            }
            Some(ChannelType::Slack) => "incoming webhook (the URL is a secret)".into(),
            Some(ChannelType::Pagerduty | ChannelType::Webhook) => s("url").to_string(),
            None => String::new(),
        };
        ChannelItem {
            secrets_unset: secret_fields(&c.kind)
                .iter()
                .copied()
                .filter(|f| !c.secrets_set.contains(f))
                .collect(),
            id: c.id,
            name: c.name,
            kind: c.kind,
            summary,
            secrets_set: c.secrets_set,
        }
    }
}

// --------------------------------------------------------------- list ---

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "channels/list.html")]
struct ListPage {
    layout: Layout,
    channels: Vec<ChannelItem>,
    next: Option<String>,
    may_manage: bool,
}

#[get("/channels")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let page = page_request(q.into_inner().cursor)?;
    let rows = st.channels.list(page.after.clone(), page.limit + 1).await?;
    let p = Page::from_rows(rows, &page, |c| c.name.clone(), ChannelItem::from);
    let page = ListPage {
        layout: Layout::for_session("Channels", &user, "channels"),
        channels: p.items,
        next: p.next_cursor,
        may_manage: user.nav.alert_manage,
    };
    render(StatusCode::OK, &page)
}

// --------------------------------------------------------------- form ---

#[derive(Template)]
#[template(path = "channels/form.html")]
struct FormPage {
    layout: Layout,
    /// The stored channel when editing.
    channel: Option<ChannelItem>,
    created_at: String,
    updated_at: String,
    form: ChannelForm,
    errors: FormErrors,
    types: &'static [ChannelType],
    tls: [&'static str; 3],
    default_pagerduty_url: &'static str,
    test: Option<NotificationItem>,
    may_manage: bool,
}

impl FormPage {
    /// Whether the stored channel is of `kind` and has secret `field` set.
    fn secret_is_set(&self, kind: &str, field: &str) -> bool {
        self.channel
            .as_ref()
            .is_some_and(|c| c.kind == kind && c.secrets_set.contains(&field))
    }

    fn secret_hint(&self, kind: &str, field: &str) -> &'static str {
        if self.secret_is_set(kind, field) {
            return "Set; leave empty to keep it";
        }
        match field {
            "password" => "Optional (needs a user name)",
            "secret" => "Optional, 16-256 characters: signs each body (HMAC-SHA256)",
            _ => "Required; never shown again",
        }
    }
}

async fn form_page(
    st: &WebState,
    user: &SessionUser,
    id: Option<&str>,
    form: Option<ChannelForm>,
    errors: FormErrors,
    test: Option<NotificationItem>,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let stored = match id {
        Some(id) => Some(st.channels.get(id).await?),
        None => None,
    };
    let form = form.unwrap_or_else(|| match &stored {
        Some(c) => ChannelForm::of(c),
        None => ChannelForm::new_defaults(),
    });
    let title = match &stored {
        Some(c) => format!("Channel {}", c.name),
        None => "New channel".to_string(),
    };
    let (created_at, updated_at) = stored
        .as_ref()
        .map(|c| (c.created_at.clone(), c.updated_at.clone()))
        .unwrap_or_default();
    let page = FormPage {
        layout: Layout::for_session(title, user, "channels"),
        channel: stored.map(ChannelItem::from),
        created_at,
        updated_at,
        form,
        errors,
        types: ChannelType::ALL,
        tls: TLS,
        default_pagerduty_url: PAGERDUTY_EVENTS_URL,
        test,
        may_manage: user.nav.alert_manage,
    };
    render(status, &page)
}

#[get("/channels/new")]
pub async fn new(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, MANAGE).await?;
    form_page(
        &st,
        &user,
        None,
        None,
        FormErrors::default(),
        None,
        StatusCode::OK,
    )
    .await
}

#[post("/channels")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<ChannelForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let mut form = form.into_inner();
    match st.channels.create(&user.ctx, form.spec()).await {
        Ok(c) => Ok(see_other(&format!("/channels/{}", c.id))),
        Err(e) => {
            let errors = form.errors(e)?;
            // Secrets are not sent back to the browser.
            form.forget_secrets();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(&st, &user, None, Some(form), errors, None, status).await
        }
    }
}

impl ChannelForm {
    fn forget_secrets(&mut self) {
        self.email_password.clear();
        self.slack_url.clear();
        self.pagerduty_routing_key.clear();
        self.webhook_secret.clear();
    }
}

#[get("/channels/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let errors = FormErrors::default();
    form_page(&st, &user, Some(&id), None, errors, None, StatusCode::OK).await
}

#[post("/channels/{id}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ChannelForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let mut form = form.into_inner();
    match st.channels.update(&user.ctx, &id, form.spec()).await {
        Ok(_) => Ok(see_other(&format!("/channels/{id}"))),
        Err(e) => {
            let errors = form.errors(e)?;
            form.forget_secrets();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(&st, &user, Some(&id), Some(form), errors, None, status).await
        }
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
}

#[post("/channels/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    st.channels.delete(&user.ctx, &id).await?;
    Ok(see_other("/channels"))
}

/// "Send test": one attempt now; the result is shown on the channel page.
#[post("/channels/{id}/test")]
pub async fn send_test(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let policy = RetryPolicy::from(&st.config.alerting);
    let n = st
        .channels
        .test(&user.ctx, &id, st.issuer_url.as_str(), policy)
        .await?;
    let test = Some(NotificationItem::from(n));
    let errors = FormErrors::default();
    form_page(&st, &user, Some(&id), None, errors, test, StatusCode::OK).await
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(new)
        .service(create)
        .service(detail)
        .service(update)
        .service(delete)
        .service(send_test);
}
