//! Alert rules pages: the list with an enable/disable toggle, and the form
//! (new and edit) with the expression's parse error shown under the field
//! with a caret, "Test this expression now", and deletion.

use super::filters;
use std::collections::{BTreeMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::alerts::{
    caret, fold, index, names, page_request, pairs_text, parse_pairs, AlertItem, Caret, InForce,
    MANAGE, VIEW,
};
use super::channels::configured_names;
use super::error::UiError;
use super::forms::{checked, FormErrors};
use super::layout::Layout;
use super::{render, see_other};
use crate::alerts::labels::SEVERITIES;
use crate::alerts::rules::{Preview, RuleSpec};
use crate::alerts::source::BUILTIN;
use crate::alerts::{engine, policies, rules};
use crate::db::alert_rules::RuleRow;
use crate::error::{Error, FieldErrors};
use crate::web::auth::SessionUser;
use crate::web::pagination::Page;
use crate::web::state::{self, WebState};

/// Every field as typed.
#[derive(Default, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    expression: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    channels: String,
    #[serde(default)]
    escalation_policy: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    annotations: String,
    enabled: Option<String>,
    /// `preview` for "Test this expression now"; anything else saves.
    #[serde(default)]
    action: String,
}

impl RuleForm {
    fn new_defaults() -> RuleForm {
        RuleForm {
            severity: "warning".into(),
            annotations: "summary=\ndescription=".into(),
            enabled: Some("on".into()),
            ..RuleForm::default()
        }
    }

    fn of(r: &RuleRow) -> RuleForm {
        RuleForm {
            name: r.name.clone(),
            expression: r.expression.clone(),
            severity: r.severity.clone(),
            channels: r.channels.join(", "),
            escalation_policy: r.escalation_policy.clone().unwrap_or_default(),
            labels: pairs_text(&r.labels),
            annotations: pairs_text(&r.annotations),
            enabled: r.enabled.then(|| "on".into()),
            ..RuleForm::default()
        }
    }

    /// The expression as sent to the parser (columns refer to this text).
    fn expression_text(&self) -> String {
        self.expression.replace("\r\n", "\n").trim().to_string()
    }

    fn spec(&self, name: &str) -> Result<RuleSpec, Error> {
        let mut e = FieldErrors::new();
        let mut pairs = |field: &str, text: &str| {
            parse_pairs(text).unwrap_or_else(|m| {
                e.insert(field.into(), m);
                BTreeMap::new()
            })
        };
        let labels = pairs("labels", &self.labels);
        // Empty annotations (as in the new form's template) are left out.
        let mut annotations = pairs("annotations", &self.annotations);
        annotations.retain(|_, v| !v.is_empty());
        if !e.is_empty() {
            return Err(Error::fields(e));
        }
        Ok(RuleSpec {
            name: name.to_string(),
            expression: self.expression_text(),
            severity: self.severity.clone(),
            channels: names(&self.channels),
            escalation_policy: Some(self.escalation_policy.trim().to_string())
                .filter(|p| !p.is_empty()),
            labels,
            annotations,
            enabled: checked(&self.enabled),
        })
    }

    /// The domain's refusal next to this form's fields.
    fn errors(&self, e: Error) -> Result<FormErrors, UiError> {
        let mut errors = FormErrors::from_error(e)?;
        let channels = names(&self.channels);
        fold(&mut errors, "channels", |s| {
            index(s)
                .and_then(|i| channels.get(i).cloned())
                .unwrap_or_else(|| s.to_string())
        });
        for field in ["labels", "annotations"] {
            fold(&mut errors, field, |s| {
                s.trim_start_matches('.').to_string()
            });
        }
        Ok(errors)
    }
}

fn spec_of(r: RuleRow) -> RuleSpec {
    RuleSpec {
        name: r.name,
        expression: r.expression,
        severity: r.severity,
        channels: r.channels,
        escalation_policy: r.escalation_policy,
        labels: r.labels,
        annotations: r.annotations,
        enabled: r.enabled,
    }
}

// --------------------------------------------------------------- list ---

struct RuleItem {
    name: String,
    expression: String,
    severity: String,
    /// (channel, configured)
    channels: Vec<(String, bool)>,
    policy: Option<String>,
    enabled: bool,
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "alert_rules/list.html")]
struct ListPage {
    layout: Layout,
    rules: Vec<RuleItem>,
    next: Option<String>,
    may_manage: bool,
}

#[get("/alert-rules")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let page = page_request(q.into_inner().cursor)?;
    let rows = rules::list(&st.db, page.after.clone(), page.limit + 1).await?;
    let configured = configured_names(&st).await?;
    let p = Page::from_rows(
        rows,
        &page,
        |r| r.name.clone(),
        |r| RuleItem {
            channels: chips(&r.channels, &configured),
            name: r.name,
            expression: r.expression,
            severity: r.severity,
            policy: r.escalation_policy,
            enabled: r.enabled,
        },
    );
    let page = ListPage {
        layout: Layout::for_session("Alert rules", &user, "alert-rules"),
        rules: p.items,
        next: p.next_cursor,
        may_manage: user.nav.alert_manage,
    };
    render(StatusCode::OK, &page)
}

fn chips(channels: &[String], configured: &HashSet<String>) -> Vec<(String, bool)> {
    channels
        .iter()
        .map(|c| (c.clone(), configured.contains(c)))
        .collect()
}

// --------------------------------------------------------------- form ---

/// "Test this expression now": what it matches at this moment.
struct PreviewView {
    for_seconds: Option<u64>,
    /// (labels, value)
    matches: Vec<(Vec<(String, String)>, String)>,
}

impl From<Preview> for PreviewView {
    fn from(p: Preview) -> Self {
        PreviewView {
            for_seconds: p.for_seconds,
            matches: p
                .matches
                .into_iter()
                .map(|m| (m.labels.into_iter().collect(), m.value))
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "alert_rules/form.html")]
struct FormPage {
    layout: Layout,
    /// The rule's name when editing; `None` for a new rule.
    editing: Option<String>,
    form: RuleForm,
    errors: FormErrors,
    caret: Option<Caret>,
    severities: &'static [&'static str],
    policies: Vec<String>,
    chips: Vec<(String, bool)>,
    preview: Option<PreviewView>,
    recent: Vec<AlertItem>,
    /// Names of the built-in metrics, for the syntax help.
    metrics: Vec<&'static str>,
    may_manage: bool,
    /// The metrics page showing the rule's first series and threshold.
    plot: Option<String>,
    /// Each recent alert's states over the last 24 hours: (id, labels, SVG).
    timelines: Vec<(String, String, String)>,
}

/// `/series?…` for the first comparison of `expression`: its metric, label
/// matchers and threshold (when the expression reads and compares numbers).
fn plot_link(expression: &str, rule: Option<&str>) -> Option<String> {
    use crate::alerts::expr::{self, Expr, Literal, MetricKind};
    let parsed = expr::parse(expression, &|_| Some(MetricKind::Numeric)).ok()?;
    let mut stack = vec![&parsed.condition];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Or(a, b) | Expr::And(a, b) => {
                stack.push(b);
                stack.push(a);
            }
            Expr::Not(a) => stack.push(a),
            Expr::Cmp(c) => {
                let Literal::Number(threshold) = c.literal else {
                    return None;
                };
                // In the label filter's syntax (double quotes, as the
                // silence forms take them).
                let labels: Vec<String> = c
                    .selector
                    .matchers
                    .iter()
                    .map(|m| {
                        let v = m.value.replace('\\', "\\\\").replace('"', "\\\"");
                        format!("{}{}\"{v}\"", m.name, m.op.as_str())
                    })
                    .collect();
                let q = super::forms::query_escape;
                return Some(format!(
                    "/series?name={}&labels={}&threshold={}&rule={}",
                    q(&c.selector.metric),
                    q(&labels.join(", ")),
                    threshold,
                    q(rule.unwrap_or(""))
                ));
            }
        }
    }
    None
}

async fn form_page(
    st: &WebState,
    user: &SessionUser,
    editing: Option<&str>,
    form: RuleForm,
    errors: FormErrors,
    preview: Option<Preview>,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let policies = policies::list(&st.db)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let configured = configured_names(st).await?;
    let now = crate::db::now_ms();
    let (recent, timelines) = match editing {
        Some(name) => {
            let in_force = InForce::load(st).await?;
            let rows = engine::list(&st.db, None, Some(name.to_string()), None, 10).await?;
            let mut timelines = Vec::new();
            for a in &rows {
                let events = engine::events(&st.db, &a.id).await?;
                let spans = super::alerts::state_spans(&events, now);
                let labels: Vec<String> = a
                    .labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != "alertname" && k.as_str() != "severity")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let svg = crate::web::charts::state_strip(
                    &spans,
                    now - 24 * 3_600_000,
                    now,
                    480,
                    14,
                    &format!("states of {} over the last 24 hours", labels.join(", ")),
                );
                timelines.push((a.id.clone(), labels.join(", "), svg));
            }
            let items = rows.iter().map(|a| AlertItem::new(a, &in_force)).collect();
            (items, timelines)
        }
        None => (Vec::new(), Vec::new()),
    };
    let caret = errors
        .field("expression")
        .and_then(|m| caret(&form.expression_text(), m));
    let page_expression = form.expression_text();
    let title = match editing {
        Some(n) => format!("Alert rule {n}"),
        None => "New alert rule".to_string(),
    };
    let page = FormPage {
        layout: Layout::for_session(title, user, "alert-rules"),
        editing: editing.map(str::to_string),
        chips: chips(&names(&form.channels), &configured),
        form,
        errors,
        caret,
        severities: SEVERITIES,
        policies,
        preview: preview.map(PreviewView::from),
        recent,
        metrics: BUILTIN.iter().map(|(name, _, _)| *name).collect(),
        may_manage: user.nav.alert_manage,
        plot: plot_link(&page_expression, editing),
        timelines,
    };
    render(status, &page)
}

#[get("/alert-rules/new")]
pub async fn new(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, MANAGE).await?;
    let (form, errors) = (RuleForm::new_defaults(), FormErrors::default());
    form_page(&st, &user, None, form, errors, None, StatusCode::OK).await
}

#[get("/alert-rules/{name}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let r = rules::get(&st.db, &name).await?;
    let form = RuleForm::of(&r);
    form_page(
        &st,
        &user,
        Some(&name),
        form,
        FormErrors::default(),
        None,
        StatusCode::OK,
    )
    .await
}

/// Runs the form's expression once against current data, without saving.
async fn preview(
    st: &WebState,
    user: &SessionUser,
    editing: Option<&str>,
    form: RuleForm,
) -> Result<HttpResponse, UiError> {
    match rules::preview(&st.db, form.expression_text()).await {
        Ok(p) => {
            form_page(
                st,
                user,
                editing,
                form,
                FormErrors::default(),
                Some(p),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            let errors = form.errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(st, user, editing, form, errors, None, status).await
        }
    }
}

#[post("/alert-rules")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<RuleForm>,
) -> Result<HttpResponse, UiError> {
    let form = form.into_inner();
    if form.action == "preview" {
        let st = user.authorize_form(&req, &form.csrf_token, VIEW).await?;
        return preview(&st, &user, None, form).await;
    }
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = match form.spec(form.name.trim()) {
        Ok(spec) => rules::create(&st.db, &st.audit, &user.ctx, spec).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => Ok(see_other(&format!("/alert-rules/{}", r.name))),
        Err(e) => {
            let errors = form.errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(&st, &user, None, form, errors, None, status).await
        }
    }
}

#[post("/alert-rules/{name}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<RuleForm>,
) -> Result<HttpResponse, UiError> {
    let mut form = form.into_inner();
    // The name is fixed when editing.
    form.name = name.to_string();
    if form.action == "preview" {
        let st = user.authorize_form(&req, &form.csrf_token, VIEW).await?;
        return preview(&st, &user, Some(&name), form).await;
    }
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = match form.spec(&name) {
        Ok(spec) => rules::replace(&st.db, &st.audit, &user.ctx, &name, spec).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/alert-rules/{name}"))),
        Err(e) => {
            let errors = form.errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(&st, &user, Some(&name), form, errors, None, status).await
        }
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
}

/// Enables a disabled rule or disables an enabled one.
#[post("/alert-rules/{name}/toggle")]
pub async fn toggle(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let mut spec = spec_of(rules::get(&st.db, &name).await?);
    spec.enabled = !spec.enabled;
    rules::replace(&st.db, &st.audit, &user.ctx, &name, spec).await?;
    Ok(see_other("/alert-rules"))
}

#[post("/alert-rules/{name}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    rules::delete(&st.audit, &user.ctx, &name).await?;
    Ok(see_other("/alert-rules"))
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(new)
        .service(create)
        .service(detail)
        .service(update)
        .service(toggle)
        .service(delete);
}

#[cfg(test)]
mod tests {
    use super::plot_link;

    #[test]
    fn a_rule_plots_its_first_numeric_comparison() {
        assert_eq!(
            plot_link("error_rate{agent=\"planner\"} > 20% for 5m", Some("r")).as_deref(),
            Some("/series?name=error_rate&labels=agent%3D%22planner%22&threshold=0.2&rule=r")
        );
        assert_eq!(
            plot_link("(queue_depth > 10 and x < 2) or y > 1", None).as_deref(),
            Some("/series?name=queue_depth&labels=&threshold=10&rule=")
        );
        assert_eq!(plot_link("not parsable >", None), None);
    }
}
