//! Alerts pages: the list (firing, pending, resolved, all) and one alert's
//! page with its labels, history and notifications, acknowledgement and a
//! silence prefilled from its labels.
//!
//! Also the helpers every alerting page shares (permissions, paging,
//! sub-field errors, the caret under an expression's parse error).

use super::filters;
use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{respond, FormErrors};
use super::layout::Layout;
use super::notifications::NotificationItem;
use super::silences::{self as silence_pages, SilenceForm};
use super::{render, see_other};
use crate::alerts::AlertState;
use crate::alerts::{engine, silences};
use crate::db::alerts::{AlertRow, EventRow};
use crate::db::silences::SilenceRow;
use crate::notify::outbox;
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::SessionUser;
use crate::web::pagination::{Page, PageParams, PageRequest};
use crate::web::state::{self, WebState};

pub(super) const VIEW: &str = Permission::AlertRead.as_str();
pub(super) const ACK: &str = Permission::AlertAcknowledge.as_str();
pub(super) const MANAGE: &str = Permission::AlertManage.as_str();

// ------------------------------------------------------ shared helpers ---

/// The page a list's `?cursor=` asks for (default size).
pub(super) fn page_request(cursor: Option<String>) -> Result<PageRequest, UiError> {
    Ok(PageParams {
        limit: None,
        cursor: cursor.filter(|c| !c.is_empty()),
    }
    .resolve()?)
}

/// Moves the messages of sub-fields of `field` (`channels[1]`,
/// `labels.team`, `steps[0].after_seconds`) under `field` itself, each
/// introduced by `describe(suffix)` (the suffix starts with `[` or `.`).
pub(super) fn fold(errors: &mut FormErrors, field: &str, describe: impl Fn(&str) -> String) {
    let keys: Vec<String> = errors
        .fields
        .keys()
        .filter(|k| {
            k.len() > field.len()
                && k.starts_with(field)
                && matches!(k.as_bytes()[field.len()], b'[' | b'.')
        })
        .cloned()
        .collect();
    if keys.is_empty() {
        return;
    }
    let mut parts: Vec<String> = errors.fields.remove(field).into_iter().collect();
    for k in keys {
        if let Some(m) = errors.fields.remove(&k) {
            parts.push(format!("{}: {m}", describe(&k[field.len()..])));
        }
    }
    errors.fields.insert(field.to_string(), parts.join("; "));
}

/// The number in a leading `[i]` of a sub-field suffix.
pub(super) fn index(suffix: &str) -> Option<usize> {
    suffix.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// "line N" for the sub-field `[N-1]...` of a one-item-per-line textarea.
pub(super) fn line_of(suffix: &str) -> String {
    match index(suffix) {
        Some(i) => format!("line {}", i + 1),
        None => suffix.trim_start_matches('.').to_string(),
    }
}

/// The line of an expression a parse error points at, and the spaces
/// that put a `^` under its column.
pub struct Caret {
    pub line: String,
    pub pad: String,
}

/// Reads `column N: ...` (columns count characters of the whole source).
pub(super) fn caret(source: &str, message: &str) -> Option<Caret> {
    let (n, _) = message.strip_prefix("column ")?.split_once(':')?;
    let target = n.trim().parse::<usize>().ok()?.checked_sub(1)?;
    let chars: Vec<char> = source.chars().collect();
    let mut start = 0;
    for (i, c) in chars.iter().enumerate().take(target.min(chars.len())) {
        if *c == '\n' {
            start = i + 1;
        }
    }
    let end = chars[start..]
        .iter()
        .position(|c| *c == '\n')
        .map_or(chars.len(), |p| start + p);
    let line: String = chars[start..end]
        .iter()
        .map(|c| if c.is_whitespace() { ' ' } else { *c })
        .collect();
    let pad = " ".repeat((target - start).min(end - start));
    Some(Caret { line, pad })
}

/// `key=value` per line; blank lines are skipped.
pub(super) fn parse_pairs(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                if out
                    .insert(k.trim().to_string(), v.trim().to_string())
                    .is_some()
                {
                    problems.push(format!("line {}: {} is given twice", i + 1, k.trim()));
                }
            }
            _ => problems.push(format!("line {}: write key=value", i + 1)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

pub(super) fn pairs_text(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names separated by commas (or spaces), in order, empty ones dropped.
pub(super) fn names(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

// -------------------------------------------------------------- views ---

/// An alert as the tables show it.
pub struct AlertItem {
    pub id: String,
    pub rule: String,
    pub severity: String,
    pub state: AlertState,
    /// When it entered its current state.
    pub since: String,
    pub since_ms: i64,
    /// The matchers a silence of just this alert would have (its rule,
    /// `agent` and `instance`), as the silence forms take them.
    pub silence_matchers: String,
    pub value: String,
    pub acknowledged_by: Option<String>,
    /// What mutes it, and a link there.
    pub muted: Option<(String, String)>,
    /// `agent` and `instance`, shown first.
    pub key_labels: Vec<(String, String)>,
    /// The rest, without `alertname` and `severity` (shown as columns).
    pub other_labels: Vec<(String, String)>,
    pub summary: String,
}

const KEY_LABELS: [&str; 2] = ["agent", "instance"];

fn muted(by: &str) -> (String, String) {
    match by.split_once(':') {
        Some(("silence", id)) => ("silenced".into(), format!("/silences/{id}")),
        Some(("inhibited", id)) => ("inhibited".into(), format!("/alerts/{id}")),
        _ => (by.to_string(), String::new()),
    }
}

impl AlertItem {
    /// An alert as the pages show it. Whether it is muted is read from the
    /// silences in force now (the stored `suppressed_by` only changes when a
    /// notification falls due, so it lags behind a new or ended silence);
    /// an alert that is no longer active is muted by nothing.
    pub fn new(a: &AlertRow, in_force: &InForce) -> AlertItem {
        let active = a.state.is_active();
        let since = match a.state {
            AlertState::Firing => a.fired_at.unwrap_or(a.active_since),
            AlertState::Resolved => a.resolved_at.unwrap_or(a.updated_at),
            AlertState::Inactive => a.updated_at,
            AlertState::Pending => a.active_since,
        };
        let pick = |key: bool| -> Vec<(String, String)> {
            a.labels
                .iter()
                .filter(|(k, _)| KEY_LABELS.contains(&k.as_str()) == key)
                .filter(|(k, _)| k.as_str() != "alertname" && k.as_str() != "severity")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let silenced = in_force.matching(a).into_iter().next();
        let muted = match (active, silenced) {
            (false, _) => None,
            (true, Some((id, _))) => Some(muted(&format!("silence:{id}"))),
            (true, None) => a
                .suppressed_by
                .as_deref()
                .filter(|by| by.starts_with("inhibited:"))
                .map(muted),
        };
        AlertItem {
            id: a.id.clone(),
            rule: a.rule.clone(),
            severity: a.severity.clone(),
            state: a.state,
            since: rfc3339(since),
            since_ms: since,
            silence_matchers: super::silences::SilenceForm::for_alert(a).matchers,
            // A value is what the rule measures while the alert is active;
            // an inactive or resolved alert's last value is history.
            value: if active {
                a.value.clone().unwrap_or_default()
            } else {
                String::new()
            },
            acknowledged_by: a.acknowledged_by.clone(),
            muted,
            key_labels: pick(true),
            other_labels: pick(false),
            summary: a.annotations.get("summary").cloned().unwrap_or_default(),
        }
    }
}

/// The silences in force now, to tell which alerts they mute.
pub struct InForce(Vec<(silences::Active, i64)>);

impl InForce {
    pub async fn load(st: &WebState) -> Result<InForce, UiError> {
        let now = crate::db::now_ms();
        let rows: Vec<SilenceRow> = silences::list(&st.db, true, None, 1000)
            .await?
            .into_iter()
            .filter(|s| s.starts_at <= now)
            .collect();
        let ends: BTreeMap<&str, i64> = rows.iter().map(|s| (s.id.as_str(), s.ends_at)).collect();
        let active = silences::Active::of(&rows)
            .into_iter()
            .map(|s| {
                let until = ends.get(s.id.as_str()).copied().unwrap_or_default();
                (s, until)
            })
            .collect();
        Ok(InForce(active))
    }

    /// The silences that match the alert: (id, ends at).
    pub fn matching(&self, a: &AlertRow) -> Vec<(String, i64)> {
        self.0
            .iter()
            .filter(|(s, _)| s.matches(&a.labels))
            .map(|(s, until)| (s.id.clone(), *until))
            .collect()
    }
}

// --------------------------------------------------------------- list ---

const TABS: [&str; 4] = [
    AlertState::Firing.as_str(),
    AlertState::Pending.as_str(),
    AlertState::Resolved.as_str(),
    "all",
];

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
    /// A label filter: `agent="planner", instance=~"eu-.*"`.
    #[serde(default)]
    labels: String,
}

/// Alerts read when a label filter is set (the filter is applied to them).
const FILTERED: u32 = 1000;

/// The alerts of one rule on the page, and how many the rule has in each
/// state (all of them, not only those shown).
struct Group {
    rule: String,
    counts: Vec<(AlertState, i64)>,
    alerts: Vec<AlertItem>,
}

/// Alerts in the order given, grouped by rule; a group's place is that of
/// its first alert.
fn grouped(
    items: Vec<AlertItem>,
    counts: &BTreeMap<String, BTreeMap<AlertState, i64>>,
) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for a in items {
        match groups.iter_mut().find(|g| g.rule == a.rule) {
            Some(g) => g.alerts.push(a),
            None => groups.push(Group {
                rule: a.rule.clone(),
                counts: counts
                    .get(&a.rule)
                    .map(|m| m.iter().map(|(s, n)| (*s, *n)).collect())
                    .unwrap_or_default(),
                alerts: vec![a],
            }),
        }
    }
    groups
}

#[derive(Template)]
#[template(path = "alerts/list.html")]
struct ListPage {
    layout: Layout,
    tab: String,
    tabs: [&'static str; 4],
    groups: Vec<Group>,
    shown: usize,
    next: Option<String>,
    /// The label filter as typed, and why it cannot be used.
    labels: String,
    labels_error: Option<String>,
    /// The filter looked at the newest [`FILTERED`] alerts only.
    filter_capped: bool,
    may_ack: bool,
    durations: &'static [(&'static str, &'static str); 4],
    /// This page, for the row actions to come back to.
    back: String,
    /// When the page was drawn (ms), for "updated …".
    now: i64,
}

#[get("/alerts")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, VIEW).await?;
    let q = q.into_inner();
    // An unknown filter shows the default tab.
    let tab = q
        .state
        .filter(|s| TABS.contains(&s.as_str()))
        .unwrap_or_else(|| AlertState::Firing.to_string());
    // Every tab but "all" is a state.
    let state = AlertState::parse(&tab);
    let labels = super::forms::bounded(&q.labels).to_string();
    let filter =
        super::silences::parse_filter(&labels).and_then(|m| super::silences::compile_all(&m));
    let in_force = InForce::load(&st).await?;
    let (items, next, labels_error, filter_capped) = match filter {
        Ok(matchers) if !matchers.is_empty() => {
            let rows = engine::list(&st.db, state, None, None, FILTERED).await?;
            let capped = rows.len() == FILTERED as usize;
            let items = rows
                .iter()
                .filter(|a| matchers.iter().all(|m| m.matches(&a.labels)))
                .map(|a| AlertItem::new(a, &in_force))
                .collect();
            (items, None, None, capped)
        }
        filter => {
            let page = page_request(q.cursor)?;
            let rows =
                engine::list(&st.db, state, None, page.after.clone(), page.limit + 1).await?;
            let p = Page::from_rows(
                rows,
                &page,
                |a| a.id.clone(),
                |a| AlertItem::new(&a, &in_force),
            );
            (p.items, p.next_cursor, filter.err(), false)
        }
    };
    let counts = engine::counts_by_rule(&st.db).await?;
    let back = format!(
        "/alerts?state={tab}&labels={}",
        super::forms::query_escape(&labels)
    );
    let page = ListPage {
        layout: Layout::for_session("Alerts", &user, "alerts"),
        tab,
        tabs: TABS,
        shown: items.len(),
        groups: grouped(items, &counts),
        next,
        labels,
        labels_error,
        filter_capped,
        may_ack: user.nav.alert_ack,
        durations: &super::silences::DURATIONS,
        back,
        now: crate::db::now_ms(),
    };
    render(StatusCode::OK, &page)
}

// ------------------------------------------------------------- detail ---

/// An alert's states over time, from its state events: each state until
/// the next, the last until `now`.
pub fn state_spans(events: &[EventRow], now: i64) -> Vec<crate::web::charts::Span> {
    let states: Vec<(i64, AlertState)> = events
        .iter()
        .filter_map(|e| AlertState::parse(&e.kind).map(|s| (e.at, s)))
        .collect();
    states
        .iter()
        .enumerate()
        .map(|(i, (at, state))| {
            let until = states.get(i + 1).map(|n| n.0).unwrap_or(now);
            crate::web::charts::Span {
                from: *at,
                to: until.max(*at),
                class: state.as_str(),
                title: format!(
                    "{} from {} for {}",
                    state.as_str(),
                    super::filters::exact_utc(*at),
                    super::filters::span(until - at)
                ),
            }
        })
        .collect()
}

struct EventItem {
    at: String,
    kind: String,
    detail: String,
}

impl From<EventRow> for EventItem {
    fn from(e: EventRow) -> Self {
        EventItem {
            at: rfc3339(e.at),
            kind: e.kind,
            detail: e.detail,
        }
    }
}

#[derive(Template)]
#[template(path = "alerts/detail.html")]
struct DetailPage {
    layout: Layout,
    a: AlertItem,
    /// Its states over time, as SVG, and the window's ends.
    timeline: String,
    timeline_from: i64,
    timeline_to: i64,
    fingerprint: String,
    labels: Vec<(String, String)>,
    description: String,
    other_annotations: Vec<(String, String)>,
    active_since: String,
    fired_at: Option<String>,
    resolved_at: Option<String>,
    acknowledged_at: Option<String>,
    next_notification: Option<String>,
    /// Active silences matching the alert now: (id, ends at).
    silenced_by: Vec<(String, String)>,
    events: Vec<EventItem>,
    notifications: Vec<NotificationItem>,
    may_ack: bool,
    may_silence: bool,
    durations: &'static [(&'static str, &'static str)],
    form: SilenceForm,
    errors: FormErrors,
    /// What the silence form would mute, when previewed.
    preview: Option<Vec<AlertItem>>,
    /// Failed traces and warnings of the alert's service around it.
    around: (String, String),
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    form: Option<SilenceForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, VIEW).await?;
    let (row, events) = engine::get(&st.db, id).await?;
    let notifications = outbox::list(&st.db, None, Some(id.to_string()), None, 100).await?;
    let mut other_annotations: Vec<(String, String)> = row
        .annotations
        .iter()
        .filter(|(k, _)| k.as_str() != "summary" && k.as_str() != "description")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    other_annotations.sort();
    let in_force = InForce::load(st).await?;
    let now = crate::db::now_ms();
    let spans = state_spans(&events, now);
    let timeline_from = spans.first().map(|s| s.from).unwrap_or(row.active_since);
    let timeline_to = now.max(timeline_from + 1);
    let active = row.state.is_active();
    let silenced_by: Vec<(String, String)> = if active {
        in_force
            .matching(&row)
            .into_iter()
            .map(|(id, until)| (id, rfc3339(until)))
            .collect()
    } else {
        Vec::new()
    };
    let service = row
        .labels
        .get("service")
        .or_else(|| row.labels.get("agent"))
        .map(String::as_str);
    let around = super::traces::links_around(
        service,
        row.active_since - 5 * 60_000,
        row.resolved_at.map(|t| t + 60_000),
    );
    let page = DetailPage {
        around,
        layout: Layout::for_session(format!("Alert {}", row.rule), user, "alerts"),
        a: AlertItem::new(&row, &in_force),
        fingerprint: row.fingerprint.clone(),
        labels: row
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        description: row
            .annotations
            .get("description")
            .cloned()
            .unwrap_or_default(),
        other_annotations,
        active_since: rfc3339(row.active_since),
        fired_at: row.fired_at.map(rfc3339),
        resolved_at: row.resolved_at.map(rfc3339),
        acknowledged_at: row.acknowledged_at.map(rfc3339),
        // Nothing is sent while a silence holds it, nor once it is over.
        next_notification: row
            .next_notify_at
            .filter(|_| active && silenced_by.is_empty())
            .map(rfc3339),
        silenced_by,
        timeline: crate::web::charts::state_strip(
            &spans,
            timeline_from,
            timeline_to,
            720,
            18,
            "the alert's states over time",
        ),
        timeline_from,
        timeline_to,
        events: events.into_iter().map(EventItem::from).collect(),
        notifications: notifications
            .into_iter()
            .map(NotificationItem::from)
            .collect(),
        may_ack: user.nav.alert_ack
            && row.state == AlertState::Firing
            && row.acknowledged_at.is_none(),
        may_silence: user.nav.alert_ack && active,
        durations: &silence_pages::DURATIONS[..3],
        preview: match &form {
            Some(f) => silence_pages::preview(st, f).await?,
            None => None,
        },
        form: form.unwrap_or_else(|| SilenceForm::for_alert(&row)),
        errors,
    };
    render(status, &page)
}

#[get("/alerts/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    detail_page(&st, &user, &id, None, FormErrors::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct AckForm {
    #[serde(default)]
    csrf_token: String,
    /// Where to go afterwards: the alert list the row was on.
    #[serde(default)]
    back: String,
}

/// Where a row action returns to: the alert list it came from (only a
/// local `/alerts?…` address), or else the alert's own page.
fn back_to(back: &str, id: &str) -> String {
    let local =
        back.starts_with("/alerts?") && !back.contains(['\\', '\r', '\n']) && back.len() <= 2048;
    if local {
        back.to_string()
    } else {
        format!("/alerts/{id}")
    }
}

#[post("/alerts/{id}/ack")]
pub async fn acknowledge(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<AckForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, ACK).await?;
    let by = user.session.user.username.clone();
    let result = st.alerts.acknowledge(&st.audit, &user.ctx, &id, &by).await;
    respond(
        result,
        |_| back_to(&form.back, &id),
        |errors| detail_page(&st, &user, &id, None, errors, StatusCode::CONFLICT),
    )
    .await
}

/// Creates a silence from the alert page and comes back to the alert.
#[post("/alerts/{id}/silence")]
pub async fn silence(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<SilenceForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, ACK).await?;
    let form = form.into_inner();
    if form.preview.is_some() {
        return detail_page(
            &st,
            &user,
            &id,
            Some(form),
            FormErrors::default(),
            StatusCode::OK,
        )
        .await;
    }
    let author = user.session.user.username.clone();
    let result = match form.spec(crate::db::now_ms()) {
        Ok(spec) => silences::create(&st.audit, &user.ctx, &author, spec)
            .await
            .map(|_| ()),
        Err(fields) => Err(crate::error::Error::fields(fields)),
    };
    match result {
        Ok(()) => Ok(see_other(&back_to(&form.back, &id))),
        Err(e) => {
            let errors = form.errors(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            detail_page(&st, &user, &id, Some(form), errors, status).await
        }
    }
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(detail)
        .service(acknowledge)
        .service(silence);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_actions_return_only_to_an_alert_list() {
        assert_eq!(
            back_to("/alerts?state=firing&labels=", "a1"),
            "/alerts?state=firing&labels="
        );
        for hostile in [
            "https://evil.example/",
            "//evil.example/alerts?",
            "/alerts/../x",
            "/alerts?x\r\nSet-Cookie: a=b",
            "",
        ] {
            assert_eq!(back_to(hostile, "a1"), "/alerts/a1", "{hostile:?}");
        }
    }

    #[test]
    fn caret_points_at_the_column_of_its_line() {
        let c = caret("error_rate >", "column 13: expected a number").unwrap();
        assert_eq!(c.line, "error_rate >");
        assert_eq!(c.pad.len(), 12);
        let c = caret("a > 1\nor b >> 2", "column 12: unexpected '>'").unwrap();
        assert_eq!(c.line, "or b >> 2");
        assert_eq!(c.pad, "     ");
        assert!(caret("x", "no column here").is_none());
    }

    #[test]
    fn pairs_and_folded_errors() {
        let p = parse_pairs("team = core\n\nsummary=a=b").unwrap();
        assert_eq!(p["team"], "core");
        assert_eq!(p["summary"], "a=b");
        assert!(parse_pairs("nothing").unwrap_err().contains("line 1"));
        let mut e = FormErrors::default();
        e.fields.insert("steps[1].channels[0]".into(), "bad".into());
        e.fields.insert("stepsx".into(), "other".into());
        fold(&mut e, "steps", line_of);
        assert_eq!(e.field("steps").unwrap(), "line 2: bad");
        assert!(e.has("stepsx"));
    }
}
