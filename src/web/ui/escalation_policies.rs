//! Escalation policies pages: the list with steps and repeat, the form
//! (new and edit; steps one per line as `after: channel, channel
//! [quarantine]`), and deletion (refused while rules use the policy).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::alerts::{fold, line_of, page_request, MANAGE, VIEW};
use super::error::UiError;
use super::forms::FormErrors;
use super::layout::Layout;
use super::{render, see_other};
use crate::alerts::policies::{self, PolicySpec, RULE_CHANNELS};
use crate::alerts::rules;
use crate::db::alert_rules::{PolicyRow, Step};
use crate::error::{Error, FieldErrors};
use crate::web::auth::SessionUser;
use crate::web::pagination::Page;
use crate::web::state::{self, WebState};

const QUARANTINE: &str = "[quarantine]";

/// `900`, `90s`, `15m`, `2h` or `1d`, in seconds.
fn seconds(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let unit = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// `15m` rather than `900 s` where it divides evenly.
fn human(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn parse_step(line: &str) -> Result<Step, String> {
    let (after, rest) = line
        .split_once(':')
        .ok_or("write after: channel, channel [quarantine]")?;
    let after_seconds =
        seconds(after).ok_or_else(|| format!("{:?} is not a time (900, 15m, 1h)", after.trim()))?;
    let quarantine_agent = rest.contains(QUARANTINE);
    let channels = rest
        .replace(QUARANTINE, " ")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Step {
        after_seconds,
        channels,
        quarantine_agent,
    })
}

fn parse_steps(text: &str) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match parse_step(line) {
            Ok(s) => out.push(s),
            Err(e) => problems.push(format!("line {}: {e}", i + 1)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

fn step_text(s: &Step) -> String {
    let mut t = format!("{}: {}", s.after_seconds, s.channels.join(", "));
    if s.quarantine_agent {
        if !s.channels.is_empty() {
            t.push(' ');
        }
        t.push_str(QUARANTINE);
    }
    t
}

#[derive(Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    steps: String,
    #[serde(default)]
    repeat_seconds: String,
}

impl PolicyForm {
    fn new_defaults() -> PolicyForm {
        PolicyForm {
            steps: format!("0: {RULE_CHANNELS}"),
            repeat_seconds: "3600".into(),
            ..PolicyForm::default()
        }
    }

    fn of(p: &PolicyRow) -> PolicyForm {
        PolicyForm {
            name: p.name.clone(),
            description: p.description.clone(),
            steps: p.steps.iter().map(step_text).collect::<Vec<_>>().join("\n"),
            repeat_seconds: p.repeat_seconds.map(|r| r.to_string()).unwrap_or_default(),
            ..PolicyForm::default()
        }
    }

    fn spec(&self, name: &str) -> Result<PolicySpec, Error> {
        let mut e = FieldErrors::new();
        let steps = parse_steps(&self.steps).unwrap_or_else(|m| {
            e.insert("steps".into(), m);
            Vec::new()
        });
        let repeat = self.repeat_seconds.trim();
        let repeat_seconds = if repeat.is_empty() {
            None
        } else {
            let r = seconds(repeat);
            if r.is_none() {
                e.insert(
                    "repeat_seconds".into(),
                    "a number of seconds (or 5m, 1h), or empty for no repeat".into(),
                );
            }
            r
        };
        if !e.is_empty() {
            return Err(Error::fields(e));
        }
        Ok(PolicySpec {
            name: name.to_string(),
            description: self.description.trim().to_string(),
            steps,
            repeat_seconds,
        })
    }

    fn errors(e: Error) -> Result<FormErrors, UiError> {
        let mut errors = FormErrors::from_error(e)?;
        fold(&mut errors, "steps", line_of);
        Ok(errors)
    }
}

// -------------------------------------------------------------- views ---

struct StepItem {
    after: String,
    channels: Vec<String>,
    quarantine: bool,
}

struct PolicyItem {
    name: String,
    description: String,
    steps: Vec<StepItem>,
    repeat: Option<String>,
    used_by: Vec<String>,
}

impl PolicyItem {
    fn of(p: PolicyRow, used: &BTreeMap<String, Vec<String>>) -> PolicyItem {
        PolicyItem {
            used_by: used.get(&p.name).cloned().unwrap_or_default(),
            steps: p
                .steps
                .iter()
                .map(|s| StepItem {
                    after: human(s.after_seconds),
                    channels: s.channels.clone(),
                    quarantine: s.quarantine_agent,
                })
                .collect(),
            repeat: p.repeat_seconds.map(|r| human(r.max(0) as u64)),
            name: p.name,
            description: p.description,
        }
    }
}

/// Which rules use each policy.
async fn usage(st: &WebState) -> Result<BTreeMap<String, Vec<String>>, UiError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut after = None;
    loop {
        let batch = rules::list(&st.db, after.clone(), 1000).await?;
        let done = batch.len() < 1000;
        after = batch.last().map(|r| r.name.clone());
        for r in batch {
            if let Some(p) = r.escalation_policy {
                out.entry(p).or_default().push(r.name);
            }
        }
        if done {
            return Ok(out);
        }
    }
}

// --------------------------------------------------------------- list ---

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "escalation_policies/list.html")]
struct ListPage {
    layout: Layout,
    policies: Vec<PolicyItem>,
    next: Option<String>,
    may_manage: bool,
}

#[get("/escalation-policies")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let page = page_request(q.into_inner().cursor)?;
    // Policies are few and read whole; the page is cut here, by name.
    let rows: Vec<PolicyRow> = policies::list(&st.db)
        .await?
        .into_iter()
        .filter(|p| page.after.as_ref().is_none_or(|a| p.name > *a))
        .take(page.limit as usize + 1)
        .collect();
    let used = usage(&st).await?;
    let p = Page::from_rows(
        rows,
        &page,
        |p| p.name.clone(),
        |p| PolicyItem::of(p, &used),
    );
    let page = ListPage {
        layout: Layout::for_session("Escalation policies", &user, "escalation-policies"),
        policies: p.items,
        next: p.next_cursor,
        may_manage: user.nav.alert_manage,
    };
    render(StatusCode::OK, &page)
}

// --------------------------------------------------------------- form ---

#[derive(Template)]
#[template(path = "escalation_policies/form.html")]
struct FormPage {
    layout: Layout,
    /// The policy when editing.
    policy: Option<PolicyItem>,
    rule_channels: &'static str,
    form: PolicyForm,
    errors: FormErrors,
    may_manage: bool,
}

async fn form_page(
    st: &WebState,
    user: &SessionUser,
    name: Option<&str>,
    form: Option<PolicyForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let stored = match name {
        Some(n) => Some(policies::get(&st.db, n).await?),
        None => None,
    };
    let form = form.unwrap_or_else(|| match &stored {
        Some(p) => PolicyForm::of(p),
        None => PolicyForm::new_defaults(),
    });
    let title = match name {
        Some(n) => format!("Escalation policy {n}"),
        None => "New escalation policy".to_string(),
    };
    let policy = match stored {
        Some(p) => Some(PolicyItem::of(p, &usage(st).await?)),
        None => None,
    };
    let page = FormPage {
        layout: Layout::for_session(title, user, "escalation-policies"),
        policy,
        rule_channels: RULE_CHANNELS,
        form,
        errors,
        may_manage: user.nav.alert_manage,
    };
    render(status, &page)
}

#[get("/escalation-policies/new")]
pub async fn new(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, MANAGE).await?;
    form_page(
        &st,
        &user,
        None,
        None,
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[post("/escalation-policies")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let result = match form.spec(form.name.trim()) {
        Ok(spec) => policies::create(&st.audit, &user.ctx, spec).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => Ok(see_other(&format!("/escalation-policies/{}", p.name))),
        Err(e) => {
            let errors = PolicyForm::errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(&st, &user, None, Some(form), errors, status).await
        }
    }
}

#[get("/escalation-policies/{name}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let errors = FormErrors::default();
    form_page(&st, &user, Some(&name), None, errors, StatusCode::OK).await
}

#[post("/escalation-policies/{name}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let mut form = form.into_inner();
    form.name = name.to_string();
    let result = match form.spec(&name) {
        Ok(spec) => policies::replace(&st.audit, &user.ctx, &name, spec).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/escalation-policies/{name}"))),
        Err(e) => {
            let errors = PolicyForm::errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(&st, &user, Some(&name), Some(form), errors, status).await
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
}

/// Deletes a policy; while rules use it the domain refuses, and the page
/// says which rules.
#[post("/escalation-policies/{name}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    match policies::delete(&st.audit, &user.ctx, &name).await {
        Ok(()) => Ok(see_other("/escalation-policies")),
        Err(Error::Conflict(m)) => {
            let errors = FormErrors {
                form: Some(format!("Not deleted: {m}.")),
                ..FormErrors::default()
            };
            form_page(&st, &user, Some(&name), None, errors, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(new)
        .service(create)
        .service(detail)
        .service(update)
        .service(delete);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_and_write_back() {
        let s = parse_steps("0: @rule\n\n15m: pagerduty, oncall [quarantine]\n1h: [quarantine]")
            .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].after_seconds, 900);
        assert_eq!(s[1].channels, ["pagerduty", "oncall"]);
        assert!(s[1].quarantine_agent && !s[0].quarantine_agent);
        assert!(s[2].channels.is_empty() && s[2].quarantine_agent);
        assert_eq!(step_text(&s[1]), "900: pagerduty, oncall [quarantine]");
        assert_eq!(parse_steps(&step_text(&s[2])).unwrap()[0], s[2]);
        let e = parse_steps("soon: slack\npagerduty").unwrap_err();
        assert!(e.contains("line 1") && e.contains("line 2"), "{e}");
        assert_eq!(human(900), "15m");
        assert_eq!(human(3600), "1h");
        assert_eq!(human(45), "45s");
    }
}
