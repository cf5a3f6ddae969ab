//! Silences pages: active and ended silences with their matchers, a form
//! for a new one (matchers one per line), one silence's page, and "End now".

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::alerts::{fold, line_of, page_request, ACK, VIEW};
use super::error::UiError;
use super::forms::FormErrors;
use super::layout::Layout;
use super::{render, see_other};
use crate::alerts::silences::{self, SilenceSpec};
use crate::db::alerts::AlertRow;
use crate::db::silences::{MatcherRow, SilenceRow, SilenceStatus};
use crate::error::{Error, FieldErrors};
use crate::label_match::MatchOp;
use crate::timefmt::{parse_rfc3339, rfc3339};
use crate::web::auth::SessionUser;
use crate::web::pagination::Page;
use crate::web::state::{self, WebState};

/// Durations offered by the forms (value, label).
pub static DURATIONS: [(&str, &str); 4] = [
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
];

fn duration_ms(d: &str) -> Option<i64> {
    Some(match d {
        "1h" => 3_600_000,
        "4h" => 4 * 3_600_000,
        "24h" => 24 * 3_600_000,
        "7d" => 7 * 24 * 3_600_000,
        _ => return None,
    })
}

// ----------------------------------------------------------- matchers ---

/// Longest first where one operator begins another (`!=` before `=`).
const OPS: [MatchOp; 4] = [MatchOp::Ne, MatchOp::NotRe, MatchOp::Re, MatchOp::Eq];

/// One matcher as written: `agent="planner"`, `alertname=~"agent_.*"`
/// (the quotes may be left out).
fn parse_matcher(s: &str) -> Result<MatcherRow, String> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if end == 0 {
        return Err("start with a label name, as in agent=\"planner\"".into());
    }
    let rest = s[end..].trim_start();
    let op = OPS
        .into_iter()
        .find(|op| rest.starts_with(op.as_str()))
        .ok_or("after the label name write =, !=, =~ or !~")?;
    let raw = rest[op.as_str().len()..].trim();
    let value = match raw.strip_prefix('"') {
        Some(q) => unquote(q)?,
        None => raw.to_string(),
    };
    Ok(MatcherRow {
        name: s[..end].to_string(),
        op,
        value,
    })
}

/// The rest of a double-quoted value (after the opening quote).
fn unquote(q: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = q.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => break,
            },
            '"' if chars.as_str().trim().is_empty() => return Ok(out),
            '"' => return Err("nothing may follow the closing quote".into()),
            c => out.push(c),
        }
    }
    Err("the closing quote of the value is missing".into())
}

/// One matcher per line; blank lines are skipped.
pub(super) fn parse_matchers(text: &str) -> Result<Vec<MatcherRow>, String> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim().trim_end_matches(',').trim_end();
        if line.is_empty() {
            continue;
        }
        match parse_matcher(line) {
            Ok(m) => out.push(m),
            Err(e) => problems.push(format!("line {}: {e}", i + 1)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

/// A label filter on one line, as Alertmanager writes it: matchers split
/// by commas outside quotes, optionally inside `{…}`:
/// `agent="planner", instance=~"eu-.*"`.
pub(super) fn parse_filter(text: &str) -> Result<Vec<MatcherRow>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(t);
    let (mut lines, mut quoted, mut escaped) = (String::new(), false, false);
    for c in t.chars() {
        match c {
            ',' if !quoted => lines.push('\n'),
            '"' if !escaped => {
                quoted = !quoted;
                lines.push(c);
            }
            c => lines.push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    parse_matchers(&lines).map_err(|e| e.replace("line ", "matcher "))
}

/// The compiled matchers of a filter, or why one does not compile.
pub(super) fn compile_all(
    rows: &[MatcherRow],
) -> Result<Vec<crate::alerts::expr::Matcher>, String> {
    rows.iter().map(crate::alerts::silences::compile).collect()
}

/// As typed in the form: `name op "value"`.
fn matcher_text(m: &MatcherRow) -> String {
    let v = m.value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{}{}\"{v}\"", m.name, m.op)
}

// --------------------------------------------------------------- form ---

/// Every field as typed (also used by the alert page's silence form).
#[derive(Default, Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    pub(super) csrf_token: String,
    #[serde(default)]
    pub(super) matchers: String,
    #[serde(default)]
    pub(super) starts_at: String,
    #[serde(default)]
    pub(super) duration: String,
    #[serde(default)]
    pub(super) ends_at: String,
    #[serde(default)]
    pub(super) comment: String,
    /// Set by the "Preview" button: show what would be silenced, save nothing.
    #[serde(default)]
    pub(super) preview: Option<String>,
    /// Where a row's silence form returns to (see `alerts::back_to`).
    #[serde(default)]
    pub(super) back: String,
}

impl SilenceForm {
    fn new_defaults() -> SilenceForm {
        SilenceForm {
            duration: "1h".into(),
            ..SilenceForm::default()
        }
    }

    /// Prefilled from an alert: its rule as `alertname`, and its `agent`
    /// and `instance` when it has them.
    pub(super) fn for_alert(a: &AlertRow) -> SilenceForm {
        let mut lines = vec![matcher_text(&MatcherRow {
            name: "alertname".into(),
            op: MatchOp::Eq,
            value: a.rule.clone(),
        })];
        for k in ["agent", "instance"] {
            if let Some(v) = a.labels.get(k) {
                lines.push(matcher_text(&MatcherRow {
                    name: k.into(),
                    op: MatchOp::Eq,
                    value: v.clone(),
                }));
            }
        }
        SilenceForm {
            matchers: lines.join("\n"),
            ..SilenceForm::new_defaults()
        }
    }

    /// The silence to create, or per-field messages.
    pub(super) fn spec(&self, now: i64) -> Result<SilenceSpec, FieldErrors> {
        let mut e = FieldErrors::new();
        let matchers = self.matchers_or(&mut e);
        let starts_at = Some(self.starts_at.trim().to_string()).filter(|s| !s.is_empty());
        let start = starts_at.as_deref().and_then(parse_rfc3339).unwrap_or(now);
        let ends_at = match (self.ends_at.trim(), duration_ms(&self.duration)) {
            ("", Some(d)) => rfc3339(start + d),
            ("", None) => {
                e.insert(
                    "duration".into(),
                    "choose a duration or give an end time".into(),
                );
                String::new()
            }
            (end, _) => end.to_string(),
        };
        if !e.is_empty() {
            return Err(e);
        }
        Ok(SilenceSpec {
            matchers,
            starts_at,
            ends_at,
            comment: self.comment.trim().to_string(),
        })
    }

    fn matchers_or(&self, e: &mut FieldErrors) -> Vec<MatcherRow> {
        parse_matchers(&self.matchers).unwrap_or_else(|m| {
            e.insert("matchers".into(), m);
            Vec::new()
        })
    }

    /// The domain's refusal placed next to the fields of this form.
    pub(super) fn errors(&self, e: Error) -> Result<FormErrors, UiError> {
        let mut errors = FormErrors::from_error(e)?;
        fold(&mut errors, "matchers", line_of);
        if self.ends_at.trim().is_empty() {
            if let Some(m) = errors.fields.remove("ends_at") {
                errors.fields.insert("duration".into(), m);
            }
        }
        Ok(errors)
    }
}

/// The alerts a silence with `form`'s matchers would mute now (firing or
/// pending ones), when its "Preview" button was pressed and the matchers
/// read; `None` otherwise (the form shows its errors instead).
pub(super) async fn preview(
    st: &WebState,
    form: &SilenceForm,
) -> Result<Option<Vec<super::alerts::AlertItem>>, UiError> {
    if form.preview.is_none() {
        return Ok(None);
    }
    let Ok(matchers) = parse_matchers(&form.matchers).and_then(|m| compile_all(&m)) else {
        return Ok(None);
    };
    if matchers.is_empty() {
        return Ok(None);
    }
    let in_force = super::alerts::InForce::load(st).await?;
    let open = crate::alerts::engine::open(&st.db).await?;
    Ok(Some(
        open.iter()
            .filter(|a| matchers.iter().all(|m| m.matches(&a.labels)))
            .map(|a| super::alerts::AlertItem::new(a, &in_force))
            .collect(),
    ))
}

// -------------------------------------------------------------- views ---

pub struct SilenceItem {
    pub id: String,
    pub matchers: Vec<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
    pub status: SilenceStatus,
}

impl SilenceItem {
    fn of(s: SilenceRow, now: i64) -> SilenceItem {
        let status = s.status(now);
        SilenceItem {
            id: s.id,
            matchers: s
                .matchers
                .iter()
                .map(|m| format!("{}{}{}", m.name, m.op, m.value))
                .collect(),
            starts_at: rfc3339(s.starts_at),
            ends_at: rfc3339(s.ends_at),
            created_by: s.created_by,
            comment: s.comment,
            status,
        }
    }
}

// --------------------------------------------------------------- list ---

/// The list's tabs: the current silences (active and pending), the
/// expired ones, or all.
const SHOW: [&str; 3] = [
    SilenceStatus::Active.as_str(),
    SilenceStatus::Expired.as_str(),
    "all",
];

#[derive(Default, Deserialize)]
pub struct ListQuery {
    show: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "silences/list.html")]
struct ListPage {
    layout: Layout,
    show: String,
    shows: [&'static str; 3],
    silences: Vec<SilenceItem>,
    next: Option<String>,
    may_ack: bool,
    durations: [(&'static str, &'static str); 4],
    form: SilenceForm,
    errors: FormErrors,
    /// What the form's silence would mute, when previewed.
    preview: Option<Vec<super::alerts::AlertItem>>,
}

async fn list_page(
    st: &WebState,
    user: &SessionUser,
    q: ListQuery,
    form: SilenceForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, VIEW).await?;
    let show = q.show.filter(|s| SHOW.contains(&s.as_str()));
    let show = show.unwrap_or_else(|| SilenceStatus::Active.to_string());
    let page = page_request(q.cursor)?;
    let now = crate::db::now_ms();
    let current = show == SilenceStatus::Active.as_str();
    let rows = silences::list(&st.db, current, page.after.clone(), page.limit + 1).await?;
    // "expired" filters pages of the whole history, so a page may be short.
    let p = Page::from_rows(rows, &page, |s| s.id.clone(), |s| SilenceItem::of(s, now));
    let items = p
        .items
        .into_iter()
        .filter(|s| show != SilenceStatus::Expired.as_str() || s.status == SilenceStatus::Expired)
        .collect();
    let page = ListPage {
        layout: Layout::for_session("Silences", user, "silences"),
        show,
        shows: SHOW,
        silences: items,
        next: p.next_cursor,
        may_ack: user.nav.alert_ack,
        durations: DURATIONS,
        preview: preview(st, &form).await?,
        form,
        errors,
    };
    render(status, &page)
}

#[get("/silences")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let (form, errors) = (SilenceForm::new_defaults(), FormErrors::default());
    list_page(&st, &user, q.into_inner(), form, errors, StatusCode::OK).await
}

#[post("/silences")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<SilenceForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, ACK).await?;
    let form = form.into_inner();
    if form.preview.is_some() {
        return preview_page(&st, &user, form).await;
    }
    let author = user.session.user.username.clone();
    let result = match form.spec(crate::db::now_ms()) {
        Ok(spec) => silences::create(&st.audit, &user.ctx, &author, spec).await,
        Err(fields) => Err(Error::fields(fields)),
    };
    match result {
        Ok(s) => Ok(see_other(&format!("/silences/{}", s.id))),
        Err(e) => {
            let errors = form.errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            list_page(&st, &user, ListQuery::default(), form, errors, status).await
        }
    }
}

/// The form again with what its silence would mute (or why its matchers
/// do not read); nothing is saved.
async fn preview_page(
    st: &WebState,
    user: &SessionUser,
    form: SilenceForm,
) -> Result<HttpResponse, UiError> {
    let mut errors = FormErrors::default();
    if let Err(m) = parse_matchers(&form.matchers).and_then(|m| compile_all(&m).map(|_| m)) {
        errors.fields.insert("matchers".into(), m);
    } else if form.matchers.trim().is_empty() {
        errors
            .fields
            .insert("matchers".into(), "give at least one matcher".into());
    }
    let status = if errors.fields.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    list_page(st, user, ListQuery::default(), form, errors, status).await
}

// ------------------------------------------------------------- detail ---

#[derive(Template)]
#[template(path = "silences/detail.html")]
struct DetailPage {
    layout: Layout,
    s: SilenceItem,
    expired_at: Option<String>,
    created_at: String,
    may_ack: bool,
    error: Option<String>,
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, VIEW).await?;
    let row = silences::get(&st.db, id).await?;
    let page = DetailPage {
        layout: Layout::for_session("Silence", user, "silences"),
        expired_at: row.expired_at.map(rfc3339),
        created_at: rfc3339(row.created_at),
        s: SilenceItem::of(row, crate::db::now_ms()),
        may_ack: user.nav.alert_ack,
        error,
    };
    render(status, &page)
}

#[get("/silences/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    detail_page(&st, &user, &id, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf_token: String,
    /// Where to go back to (`/silences` or the silence's page).
    #[serde(default)]
    back: String,
}

/// "End now": the silence stays in the history, ended.
#[post("/silences/{id}/expire")]
pub async fn expire(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<EndForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, ACK).await?;
    match silences::expire(&st.audit, &user.ctx, &id).await {
        Ok(()) if form.back == "list" => Ok(see_other("/silences")),
        Ok(()) => Ok(see_other(&format!("/silences/{id}"))),
        Err(Error::Conflict(m)) => {
            detail_page(&st, &user, &id, Some(m), StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(detail)
        .service(expire);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_filter_line_splits_at_commas_outside_quotes() {
        let m = super::parse_filter(r#"{agent="planner", msg=~"a,b\"c", instance!=eu-1}"#).unwrap();
        let got: Vec<(String, String)> = m
            .iter()
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("agent".into(), "planner".into()),
                ("msg".into(), "a,b\"c".into()),
                ("instance".into(), "eu-1".into())
            ]
        );
        assert!(super::parse_filter("agent planner")
            .unwrap_err()
            .starts_with("matcher 1"));
        assert!(super::parse_filter("").unwrap().is_empty());
    }

    use super::*;

    #[test]
    fn matchers_parse_with_every_operator() {
        let m = parse_matchers(
            "agent=\"planner\"\n\nalertname =~ \"agent_.*\",\ninstance!=eu-1\nx!~\"a\\\"b\"",
        )
        .unwrap();
        let got: Vec<(String, &str, String)> = m
            .into_iter()
            .map(|m| (m.name, m.op.as_str(), m.value))
            .collect();
        let want = [
            ("agent", "=", "planner"),
            ("alertname", "=~", "agent_.*"),
            ("instance", "!=", "eu-1"),
            ("x", "!~", "a\"b"),
        ];
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1, g.2.as_str()), w);
        }
        let e = parse_matchers("agent=\"ok\"\n=x\nagent \"x\"\nagent=\"open").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("line 3") && e.contains("line 4"),
            "{e}"
        );
        let back = matcher_text(&MatcherRow {
            name: "a".into(),
            op: MatchOp::Re,
            value: "x\"y".into(),
        });
        assert_eq!(parse_matcher(&back).unwrap().value, "x\"y");
    }
}
