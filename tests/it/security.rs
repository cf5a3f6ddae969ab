//! A security review pass, as tests: security headers on every page, CSRF on
//! every form, cookie flags, and rate limits on every endpoint reachable
//! without credentials.
//!
//! * **Every page**: a signed-in admin crawls the UI from `/`, following
//!   every same-origin `href`/`src` (bounded), after one object of each kind
//!   exists (user, agent with a key, role with an assignment, instance,
//!   channel of every type, alert rule with a firing alert, silence). Every
//!   answer is 200 with the security headers; every HTML page has
//!   `Cache-Control: no-store` and the session's `<meta name="csrf-token">`;
//!   no page or document shows a secret created for the test; every page
//!   sends a visitor without a session to the login page.
//! * **Every form**: each `<form method="post">` found carries a hidden
//!   `csrf_token`; each distinct action is then posted (with the session
//!   cookie and the form's own fields) without the token, with a forged
//!   token, with another session's token, and with the right token but
//!   `Sec-Fetch-Site: cross-site`: all four are refused with 403 and change
//!   nothing. The crawl must reach every GET page and every POST action the
//!   UI registers (`src/web/ui/mod.rs`), so a new page or form is covered
//!   the day it appears. Sign-out comes last.
//! * **Cookies**: every cookie seen is `HttpOnly; SameSite=Strict; Path=/`
//!   without `Domain` (plain HTTP: also `tests/it/login.rs`); over TLS the
//!   session cookie (and its removal at sign-out) is `Secure` and
//!   `__Host-`-prefixed. `tests/it/tls.rs` asserts this for the pre-login
//!   cookie only, so the session cookie is checked here.
//! * **Rate limits**, per client IP (the tests use several loopback source
//!   addresses, 127.0.0.x, one per client):
//!
//! | endpoint without credentials | checks a credential | protection |
//! |---|---|---|
//! | `POST /login` | password | `login.rate_limit_per_minute`, every attempt, then 429 + `Retry-After` (plus the account lockout) |
//! | `POST /oauth/token`, `/oauth/introspect`, `/oauth/revoke` | client secret / bearer | `tokens.rate_limit_per_minute`, every request, then 429 + `Retry-After` |
//! | any `/api/v1/*` call and `GET /metrics` with a bad `Authorization` | API key, access token | `api.auth_failures_per_minute`, refused credentials only, then 429 + `Retry-After` |
//! | `/api/v1/*` without any credential, or with an unknown session cookie | none / a 256-bit session token | not limited: 401 |
//! | `GET /healthz`, `/readyz`, `/.well-known/jwks.json`, `/.well-known/oauth-authorization-server`, `/api/v1/openapi.json`, `/static/*`, `GET /login`, any path no route serves | none | `api.anonymous_requests_per_minute` (6,000), every request, then 429 + `Retry-After` |
//!
//! Why the last two rows differ from the others: they check no secret, so
//! there is nothing to guess, and they write nothing (no audit record, no
//! row). An unknown session cookie is 256 random bits looked up by its
//! SHA-256 in an index: not guessable, nothing recorded, so it is plain 401
//! like a missing one and costs about what a 401 costs. The endpoints of
//! the last row are not free (`/readyz` reads the database, the login page
//! renders a template and signs a nonce), so one address gets a budget for
//! them, set far above what probes and the people behind one proxy send,
//! so that a noisy neighbour on a shared address does not take the probes
//! and the login page away from everyone else.
//!
//! Refused bearer credentials are limited (not every bearer request: the API
//! serves agents at high rates) because each refusal is an audit commit;
//! past the budget a refusal is answered 429 without being recorded, which
//! bounds what one client can write to the audit log. A valid credential
//! from a limited address still works: the secrets are 256-bit, so the
//! limit is not what stops guessing, and an agent must not lose its API
//! because a neighbour behind the same proxy has a revoked key.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde_json::{json, Value};

use crate::alerting::{fast, until};
use crate::support::receivers::HttpReceiver;
use crate::support::*;

/// The crawl stops after this many documents.
const MAX_PAGES: usize = 300;
/// At most this many documents of one shape (first path segment, segment
/// count, query keys): twenty audit records say as much as two hundred.
const MAX_PER_SHAPE: usize = 20;

/// Every page the UI serves to a signed-in user (`GET` routes of
/// `src/web/ui/mod.rs` but `/login`); `{}` is one segment other than a
/// literal of [`LITERALS`].
const GET_ROUTES: &[&str] = &[
    "/",
    "/audit",
    "/audit/{}",
    "/users",
    "/users/{}",
    "/agents",
    "/agents/{}",
    "/roles",
    "/roles/{}",
    "/access",
    "/signing-keys",
    "/monitors",
    "/monitors/{}",
    "/encryption-keys",
    "/alerts",
    "/alerts/{}",
    "/alert-rules",
    "/alert-rules/new",
    "/alert-rules/{}",
    "/silences",
    "/silences/{}",
    "/channels",
    "/channels/new",
    "/channels/{}",
    "/escalation-policies",
    "/escalation-policies/new",
    "/escalation-policies/{}",
    "/notifications",
    "/account",
    "/account/second-factor",
];

/// Every form target of the UI (`POST` routes of `src/web/ui/mod.rs` but
/// `/login`, which is tested without a session).
const POST_ROUTES: &[&str] = &[
    "/logout",
    "/audit/verify",
    "/users",
    "/users/{}",
    "/users/{}/password",
    "/users/{}/unlock",
    "/users/{}/sessions/revoke",
    "/users/{}/delete",
    "/agents",
    "/agents/{}",
    "/agents/{}/keys",
    "/agents/{}/keys/{}/revoke",
    "/agents/{}/quarantine",
    "/agents/{}/delete",
    "/roles",
    "/roles/{}",
    "/roles/{}/delete",
    "/roles/{}/assignments",
    "/roles/{}/assignments/{}/delete",
    "/signing-keys/rotate",
    "/monitors",
    "/monitors/{}",
    "/monitors/{}/delete",
    "/encryption-keys",
    "/encryption-keys/test",
    "/encryption-keys/{}",
    "/encryption-keys/{}/rotate",
    "/alerts/{}/ack",
    "/alerts/{}/silence",
    "/alert-rules",
    "/alert-rules/{}",
    "/alert-rules/{}/toggle",
    "/alert-rules/{}/delete",
    "/silences",
    "/silences/{}/expire",
    "/channels",
    "/channels/{}",
    "/channels/{}/delete",
    "/channels/{}/test",
    "/escalation-policies",
    "/escalation-policies/{}",
    "/escalation-policies/{}/delete",
    "/account/password",
    "/account/second-factor/totp",
];

/// Path segments that are routes of their own, not ids.
const LITERALS: &[&str] = &["new", "test"];

fn route_matches(route: &str, path: &str) -> bool {
    let r: Vec<&str> = route.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    r.len() == p.len()
        && r.iter().zip(&p).all(|(r, p)| {
            if *r == "{}" {
                !p.is_empty() && !LITERALS.contains(p)
            } else {
                r == p
            }
        })
}

// ---- a small HTML scanner ---------------------------------------------------

static ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"#)
        .unwrap()
});
static FORM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<form\b([^>]*)>(.*?)</form>").unwrap());
static FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?is)<input\b([^>]*)>|<textarea\b([^>]*)>(.*?)</textarea>|<select\b([^>]*)>(.*?)</select>",
    )
    .unwrap()
});
static OPTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<option\b([^>]*)>(.*?)</option>").unwrap());
static LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)\b(?:href|src)\s*=\s*"([^"]*)""#).unwrap());

/// Decodes the character references askama writes (`&amp;`, `&#34;`,
/// `&#x27;`, ...).
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&e| e <= 10).and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => match name.strip_prefix('#') {
                    Some(n) => match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => n.parse().ok(),
                    }
                    .and_then(char::from_u32),
                    None => None,
                },
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of a tag (names lower-cased, values decoded; the first
/// of a repeated name wins, as in browsers).
fn attrs(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for c in ATTR.captures_iter(tag) {
        let value = c
            .get(2)
            .or(c.get(3))
            .or(c.get(4))
            .map(|m| decode_entities(m.as_str()))
            .unwrap_or_default();
        out.entry(c[1].to_ascii_lowercase()).or_insert(value);
    }
    out
}

#[derive(Debug, Clone)]
struct Form {
    /// The page it was found on.
    page: String,
    method: String,
    action: Url,
    /// What a browser would submit, `csrf_token` left out.
    fields: Vec<(String, String)>,
    /// Values of `<input type="hidden" name="csrf_token">`.
    hidden_csrf: Vec<String>,
    /// `csrf_token` fields of any other kind (there must be none).
    other_csrf: usize,
}

/// The forms of a page with the fields a browser would submit as they are.
fn forms(page: &Url, html: &str) -> Vec<Form> {
    FORM.captures_iter(html)
        .map(|c| {
            let a = attrs(&c[1]);
            let method = a
                .get("method")
                .map(|m| m.to_ascii_lowercase())
                .unwrap_or_else(|| "get".into());
            let action = page
                .join(a.get("action").map(String::as_str).unwrap_or(""))
                .unwrap();
            let mut form = Form {
                page: page.path().to_string(),
                method,
                action,
                fields: Vec::new(),
                hidden_csrf: Vec::new(),
                other_csrf: 0,
            };
            for f in FIELD.captures_iter(&c[2]) {
                let (name, value, kind) = if let Some(input) = f.get(1) {
                    let a = attrs(input.as_str());
                    let kind = a
                        .get("type")
                        .map(|t| t.to_ascii_lowercase())
                        .unwrap_or_else(|| "text".into());
                    if matches!(
                        kind.as_str(),
                        "submit" | "button" | "image" | "reset" | "file"
                    ) || a.contains_key("disabled")
                        || (matches!(kind.as_str(), "checkbox" | "radio")
                            && !a.contains_key("checked"))
                    {
                        continue;
                    }
                    let default = if matches!(kind.as_str(), "checkbox" | "radio") {
                        "on"
                    } else {
                        ""
                    };
                    let value = a.get("value").cloned().unwrap_or_else(|| default.into());
                    (a.get("name").cloned(), value, kind)
                } else if let Some(ta) = f.get(2) {
                    let a = attrs(ta.as_str());
                    let text = f.get(3).map_or("", |m| m.as_str());
                    // A newline right after the start tag is not content.
                    let text = text.strip_prefix('\n').unwrap_or(text);
                    (
                        a.get("name").cloned(),
                        decode_entities(text),
                        "textarea".into(),
                    )
                } else {
                    let a = attrs(&f[4]);
                    let options: Vec<(HashMap<String, String>, String)> = OPTION
                        .captures_iter(&f[5])
                        .map(|o| (attrs(&o[1]), decode_entities(o[2].trim())))
                        .collect();
                    let Some((oa, text)) = options
                        .iter()
                        .find(|(oa, _)| oa.contains_key("selected"))
                        .or(options.first())
                    else {
                        continue;
                    };
                    let value = oa.get("value").cloned().unwrap_or_else(|| text.clone());
                    (a.get("name").cloned(), value, "select".into())
                };
                let Some(name) = name else { continue };
                if name == "csrf_token" {
                    if kind == "hidden" {
                        form.hidden_csrf.push(value);
                    } else {
                        form.other_csrf += 1;
                    }
                } else {
                    form.fields.push((name, value));
                }
            }
            form
        })
        .collect()
}

/// Same-origin link targets of a page, without fragments.
fn links(page: &Url, html: &str) -> Vec<Url> {
    LINK.captures_iter(html)
        .filter_map(|c| page.join(&decode_entities(&c[1])).ok())
        .filter(|u| u.origin() == page.origin())
        .map(|mut u| {
            u.set_fragment(None);
            u
        })
        .collect()
}

fn path_and_query(u: &Url) -> String {
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

fn shape(u: &Url) -> String {
    let segments: Vec<&str> = u.path_segments().map(|s| s.collect()).unwrap_or_default();
    let mut keys: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
    keys.sort();
    format!(
        "{}/{}?{}",
        segments.first().copied().unwrap_or(""),
        segments.len(),
        keys.join("&")
    )
}

fn excerpt(body: &str) -> String {
    body.chars().take(400).collect()
}

// ---- header and cookie checks ----------------------------------------------

fn header<'h>(what: &str, h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name)
        .unwrap_or_else(|| panic!("{what}: no {name} header"))
        .to_str()
        .unwrap()
}

/// The headers every response carries (`src/web/headers.rs`).
fn check_security_headers(what: &str, h: &HeaderMap) {
    let csp = header(what, h, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP lacks {directive}: {csp}"
        );
    }
    assert_eq!(
        header(what, h, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(what, h, "x-frame-options"), "DENY", "{what}");
    assert_eq!(header(what, h, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(
        header(what, h, "cross-origin-opener-policy"),
        "same-origin",
        "{what}"
    );
    header(what, h, "x-request-id");
}

/// An HTML page: the security headers, never cached.
fn check_html_headers(what: &str, h: &HeaderMap) {
    check_security_headers(what, h);
    assert!(
        header(what, h, "content-type").starts_with("text/html"),
        "{what}"
    );
    assert_eq!(header(what, h, "cache-control"), "no-store", "{what}");
}

/// `HttpOnly; SameSite=Strict; Path=/`, no `Domain`; with `secure`, also
/// `Secure` and the `__Host-` prefix.
fn check_cookie(what: &str, set_cookie: &str, secure: bool) {
    let attrs: Vec<String> = set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    let has = |a: &str| attrs.iter().any(|x| x == a);
    assert!(has("httponly"), "{what}: {set_cookie}");
    assert!(has("samesite=strict"), "{what}: {set_cookie}");
    assert!(has("path=/"), "{what}: {set_cookie}");
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "{what}: {set_cookie}"
    );
    assert_eq!(has("secure"), secure, "{what}: {set_cookie}");
    assert_eq!(
        set_cookie.starts_with("__Host-"),
        secure,
        "{what}: {set_cookie}"
    );
}

fn check_cookies(what: &str, h: &HeaderMap, secure: bool) {
    for v in h.get_all("set-cookie") {
        check_cookie(what, v.to_str().unwrap(), secure);
    }
}

fn cookie_value(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap()[name.len() + 1..].to_string())
}

// ---- the objects the crawl walks over ---------------------------------------

/// Secrets that must never appear in a page, by what they are.
type Secrets = Vec<(&'static str, String)>;

/// One object of every kind, an alert firing and a notification sent;
/// returns the secrets that went in.
async fn populate(
    s: &TestServer,
    c: &reqwest::Client,
    csrf: &str,
    receiver: &HttpReceiver,
) -> Secrets {
    let mut secrets: Secrets = vec![("admin password", ADMIN_PASSWORD.to_string())];

    let user_password = "carol's own long password";
    let user = create_user(s, c, csrf, "carol", user_password).await;
    let uid = user["id"].as_str().unwrap().to_string();
    secrets.push(("user password", user_password.into()));
    let key = post(
        c,
        csrf,
        s,
        &format!("/api/v1/users/{uid}/keys"),
        json!({"name": "laptop"}),
    )
    .await;
    secrets.push(("user API key", key["key"].as_str().unwrap().into()));

    let agent = create_agent(s, c, csrf, "crawler", "planner").await;
    let agent_key = create_agent_key(s, c, csrf, &agent).await;
    // The secret half alone must not show either. It is everything after
    // `agk_<id>_`: the secret is base64url and may itself contain `_`.
    let secret_half = agent_key.splitn(3, '_').nth(2).unwrap().to_string();
    assert!(
        secret_half.len() >= 40,
        "{agent_key}: secret half {secret_half}"
    );
    secrets.push(("agent API key", agent_key));
    secrets.push(("agent API key secret", secret_half));

    post(
        c,
        csrf,
        s,
        "/api/v1/roles",
        json!({"name": "crawl_reader", "description": "reads the audit log",
        "permissions": ["audit:read"]}),
    )
    .await;
    post(
        c,
        csrf,
        s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "user", "id": uid}, "role": "crawl_reader"}),
    )
    .await;

    crate::monitoring::create(
        c,
        csrf,
        s,
        json!({"agent_id": agent, "name": "crawler-1", "kind": "http",
        "url": receiver.url("/health"), "interval_seconds": 5, "timeout_ms": 1000}),
    )
    .await;

    let slack_token = "SlackSecretPathToken0123456789";
    post(
        c,
        csrf,
        s,
        "/api/v1/channels",
        json!({"name": "crawl-slack", "type": "slack",
        "settings": {"url": receiver.url(&format!("/services/T0/B0/{slack_token}"))}}),
    )
    .await;
    secrets.push(("Slack URL token", slack_token.into()));
    let webhook_secret = "webhook signing secret 0123456789";
    post(
        c,
        csrf,
        s,
        "/api/v1/channels",
        json!({"name": "crawl-hook", "type": "webhook",
        "settings": {"url": receiver.url("/hook"), "secret": webhook_secret}}),
    )
    .await;
    secrets.push(("webhook secret", webhook_secret.into()));
    let routing_key = "PagerDutyRoutingKey0123456789";
    post(
        c,
        csrf,
        s,
        "/api/v1/channels",
        json!({"name": "crawl-pager", "type": "pagerduty",
        "settings": {"routing_key": routing_key, "url": receiver.url("/v2/enqueue")}}),
    )
    .await;
    secrets.push(("PagerDuty routing key", routing_key.into()));
    let smtp_password = "smtp password 0123456789";
    post(
        c,
        csrf,
        s,
        "/api/v1/channels",
        json!({"name": "crawl-mail", "type": "email", "settings": {
        "smtp_host": "127.0.0.1", "smtp_port": 2525, "tls": "starttls",
        "username": "agentry", "password": smtp_password,
        "from": "agentry@example.com", "to": ["oncall@example.com"]}}),
    )
    .await;
    secrets.push(("SMTP password", smtp_password.into()));

    // A metric, a rule over it that fires at once and notifies Slack.
    let res = c
        .post(s.url("/api/v1/metrics"))
        .header("x-csrf-token", csrf)
        .json(&json!({"metrics": [{"name": "error_rate", "value": 0.5,
            "labels": {"agent": "crawler", "instance": "crawler-1"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    post(
        c,
        csrf,
        s,
        "/api/v1/alert-rules",
        json!({"name": "crawl_errors", "expression": "error_rate > 0.2",
        "severity": "major", "channels": ["crawl-slack"],
        "annotations": {"summary": "error rate {{ $value }}"}}),
    )
    .await;
    post(
        c,
        csrf,
        s,
        "/api/v1/silences",
        json!({"matchers": [{"name": "alertname", "op": "=", "value": "maintenance"}],
        "ends_at": agentry::timefmt::rfc3339(agentry::db::now_ms() + 3_600_000),
        "comment": "planned maintenance"}),
    )
    .await;
    until(c, s, "/api/v1/alerts?state=firing", 20, |v| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "crawl_errors")
    })
    .await;
    until(c, s, "/api/v1/notifications", 20, |v| {
        !v["items"].as_array().unwrap().is_empty()
    })
    .await;
    secrets
}

// ---- the crawl ---------------------------------------------------------------

struct Crawled {
    /// HTML pages visited (path and query).
    pages: Vec<String>,
    /// Every document visited.
    all: Vec<String>,
    /// Post forms by action path (the first seen of each).
    post_forms: BTreeMap<String, Form>,
}

async fn crawl(s: &TestServer, c: &reqwest::Client, csrf: &str, secrets: &Secrets) -> Crawled {
    let start = Url::parse(&s.url("/")).unwrap();
    let mut queue = VecDeque::from([start.clone()]);
    let mut queued = BTreeSet::from([path_and_query(&start)]);
    let mut per_shape: HashMap<String, usize> = HashMap::new();
    let mut out = Crawled {
        pages: Vec::new(),
        all: Vec::new(),
        post_forms: BTreeMap::new(),
    };
    let meta = format!("<meta name=\"csrf-token\" content=\"{csrf}\">");
    while let Some(url) = queue.pop_front() {
        if out.all.len() >= MAX_PAGES {
            break;
        }
        let what = format!("GET {}", path_and_query(&url));
        let res = c.get(url.clone()).send().await.unwrap();
        let status = res.status();
        let h = res.headers().clone();
        let body = res.text().await.unwrap();
        assert_eq!(status, 200, "{what}: {}", excerpt(&body));
        check_security_headers(&what, &h);
        check_cookies(&what, &h, false);
        for (name, secret) in secrets {
            assert!(!body.contains(secret.as_str()), "{what} shows the {name}");
        }
        out.all.push(path_and_query(&url));
        if url.path().starts_with("/static/") {
            assert!(
                header(&what, &h, "cache-control").contains("max-age"),
                "{what}"
            );
            continue;
        }
        if !header(&what, &h, "content-type").starts_with("text/html") {
            continue;
        }
        check_html_headers(&what, &h);
        assert!(
            body.contains(&meta),
            "{what}: no csrf-token meta tag of this session"
        );
        out.pages.push(path_and_query(&url));
        for form in forms(&url, &body) {
            if form.method != "post" {
                assert!(
                    form.hidden_csrf.is_empty(),
                    "{what}: a GET form leaks the CSRF token into URLs"
                );
                continue;
            }
            assert_eq!(
                form.hidden_csrf,
                vec![csrf.to_string()],
                "{what}: form to {} must carry exactly one hidden csrf_token of this session",
                form.action
            );
            assert_eq!(form.other_csrf, 0, "{what}: form to {}", form.action);
            assert_eq!(
                form.action.origin(),
                url.origin(),
                "{what}: form posts elsewhere"
            );
            out.post_forms
                .entry(form.action.path().to_string())
                .or_insert(form);
        }
        for link in links(&url, &body) {
            let key = path_and_query(&link);
            let n = per_shape.entry(shape(&link)).or_default();
            if *n < MAX_PER_SHAPE && queued.insert(key) {
                *n += 1;
                queue.push_back(link);
            }
        }
    }
    out
}

/// What a refused form must leave as it was: every audited change by a
/// user, and the objects the UI's forms create, change or delete.
fn fingerprint(s: &TestServer) -> Vec<(&'static str, i64)> {
    let conn = rusqlite::Connection::open_with_flags(
        s.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    [
        (
            "changes recorded as made by a user",
            "SELECT COUNT(*) FROM audit_log WHERE actor_type = 'user' AND action <> 'audit.read'",
        ),
        ("users", "SELECT COUNT(*) FROM users"),
        (
            "enabled users",
            "SELECT COUNT(*) FROM users WHERE enabled = 1",
        ),
        ("sessions", "SELECT COUNT(*) FROM sessions"),
        ("agents", "SELECT COUNT(*) FROM agents"),
        (
            "enabled agents",
            "SELECT COUNT(*) FROM agents WHERE enabled = 1",
        ),
        ("API keys", "SELECT COUNT(*) FROM api_keys"),
        (
            "live API keys",
            "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL",
        ),
        ("roles", "SELECT COUNT(*) FROM roles"),
        ("role permissions", "SELECT COUNT(*) FROM role_permissions"),
        ("role assignments", "SELECT COUNT(*) FROM role_assignments"),
        ("signing keys", "SELECT COUNT(*) FROM signing_keys"),
        ("key rings", "SELECT COUNT(*) FROM key_rings"),
        ("data keys", "SELECT COUNT(*) FROM data_keys"),
        ("instances", "SELECT COUNT(*) FROM instances"),
        ("alert rules", "SELECT COUNT(*) FROM alert_rules"),
        (
            "enabled alert rules",
            "SELECT COUNT(*) FROM alert_rules WHERE enabled = 1",
        ),
        ("channels", "SELECT COUNT(*) FROM channels"),
        (
            "escalation policies",
            "SELECT COUNT(*) FROM escalation_policies",
        ),
        ("silences", "SELECT COUNT(*) FROM silences"),
        (
            "silence ends",
            "SELECT COALESCE(SUM(ends_at), 0) FROM silences",
        ),
        (
            "acknowledged alerts",
            "SELECT COUNT(*) FROM alerts WHERE acknowledged_at IS NOT NULL",
        ),
    ]
    .into_iter()
    .map(|(name, sql)| (name, conn.query_row(sql, [], |r| r.get(0)).unwrap()))
    .collect()
}

/// Every page of the admin UI has the security headers, the session's CSRF
/// token and no secret; every form carries the token, and every form action
/// refuses a post without it, with a wrong one, or from another site.
#[tokio::test]
async fn every_page_is_hardened_and_every_form_refuses_a_post_without_its_token() {
    let started = std::time::Instant::now();
    let s = TestServer::start_with(fast).await;
    let receiver = HttpReceiver::start().await;
    let c = client();
    let res = post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 303);
    check_cookies("POST /login", res.headers(), false);
    let session = cookie_value(&res, "agentry_session").expect("a session cookie");
    let csrf = meta_csrf(
        &c.get(s.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let mut secrets = populate(&s, &c, &csrf, &receiver).await;
    secrets.push(("session token", session));

    // 1. The crawl.
    let crawled = crawl(&s, &c, &csrf, &secrets).await;
    assert!(
        crawled.all.len() < MAX_PAGES,
        "the crawl hit its bound of {MAX_PAGES} documents: raise it or narrow the shapes"
    );
    let paths: Vec<&str> = crawled
        .pages
        .iter()
        .map(|p| p.split('?').next().unwrap())
        .collect();
    for route in GET_ROUTES {
        assert!(
            paths.iter().any(|p| route_matches(route, p)),
            "the crawl never reached a page of {route}; visited: {paths:?}"
        );
    }
    for route in POST_ROUTES {
        assert!(
            crawled.post_forms.keys().any(|a| route_matches(route, a)),
            "no page has a form posting to {route}; forms: {:?}",
            crawled.post_forms.keys().collect::<Vec<_>>()
        );
    }
    for p in ["/static/css/app.css", "/static/js/app.js"] {
        assert!(
            crawled.all.iter().any(|u| u.starts_with(p)),
            "{p} not linked"
        );
    }

    // Without a session, every page sends the visitor to sign in and shows
    // nothing else.
    let anonymous = client();
    for page in &crawled.pages {
        let res = anonymous.get(s.url(page)).send().await.unwrap();
        let what = format!("GET {page} without a session");
        assert_eq!(res.status(), 303, "{what}");
        let location = res.headers()["location"].to_str().unwrap();
        if page == "/" {
            assert_eq!(location, "/login", "{what}");
        } else {
            // Back to the page after signing in.
            let next = location.strip_prefix("/login?next=").unwrap_or_default();
            let next = percent_encoding::percent_decode_str(next)
                .decode_utf8()
                .unwrap();
            assert_eq!(next, page.as_str(), "{what}");
        }
        check_security_headers(&what, res.headers());
    }

    // 2. Every form action refuses a post without the right token, and
    // nothing changes. Another admin session's token is a valid token, for
    // the wrong session.
    let other = client();
    let other_csrf = login(&s, &other, "admin", ADMIN_PASSWORD).await;
    assert_ne!(other_csrf, csrf);
    let before = fingerprint(&s);
    for (action, form) in &crawled.post_forms {
        let url = form.action.clone();
        let with = |token: Option<&str>| {
            let mut fields = form.fields.clone();
            if let Some(t) = token {
                fields.push(("csrf_token".into(), t.into()));
            }
            c.post(url.clone()).form(&fields)
        };
        let attempts = [
            ("without csrf_token", with(None)),
            ("with a forged csrf_token", with(Some("forged-token"))),
            ("with an empty csrf_token", with(Some(""))),
            (
                "with another session's csrf_token",
                with(Some(other_csrf.as_str())),
            ),
            (
                "from another site (Sec-Fetch-Site: cross-site)",
                with(Some(csrf.as_str())).header("sec-fetch-site", "cross-site"),
            ),
        ];
        for (how, req) in attempts {
            let res = req.send().await.unwrap();
            let what = format!("POST {action} {how} (form on {})", form.page);
            let status = res.status();
            check_html_headers(&what, res.headers());
            assert_eq!(
                status,
                403,
                "{what}: {}",
                excerpt(&res.text().await.unwrap())
            );
        }
    }
    assert_eq!(
        fingerprint(&s),
        before,
        "a refused form post changed something"
    );
    assert_eq!(
        c.get(s.url("/")).send().await.unwrap().status(),
        200,
        "still signed in"
    );

    // The login form refuses a post without its own token too.
    let fresh = client();
    let page = fresh
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login_csrf = form_csrf(&page);
    for (how, token, site) in [
        ("without csrf_token", None, None),
        ("with a session's token", Some(csrf.as_str()), None),
        (
            "from another site",
            Some(login_csrf.as_str()),
            Some("cross-site"),
        ),
    ] {
        let mut fields = vec![("username", "admin"), ("password", ADMIN_PASSWORD)];
        if let Some(t) = token {
            fields.push(("csrf_token", t));
        }
        let mut req = fresh.post(s.url("/login")).form(&fields);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "POST /login {how}");
        assert!(
            cookie_value(&res, "agentry_session").is_none(),
            "POST /login {how}"
        );
    }

    // Sign-out, last: with its token it works, and clears the cookie.
    let res = c
        .post(s.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    check_cookies("POST /logout", res.headers(), false);
    assert_eq!(c.get(s.url("/")).send().await.unwrap().status(), 303);
    eprintln!(
        "security crawl: {} documents ({} HTML pages), {} form actions x 5 refused posts, {:.1} s",
        crawled.all.len(),
        crawled.pages.len(),
        crawled.post_forms.len(),
        started.elapsed().as_secs_f64()
    );
    s.stop().await;
}

/// The login page, to a visitor without a session: the headers, the
/// pre-login CSRF token in the meta tag and in the form, a strict cookie.
#[tokio::test]
async fn the_login_page_is_hardened() {
    let s = TestServer::start().await;
    let res = client().get(s.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    check_html_headers("GET /login", res.headers());
    check_cookies("GET /login", res.headers(), false);
    assert!(cookie_value(&res, "agentry_login").is_some());
    let url = res.url().clone();
    let html = res.text().await.unwrap();
    let token = meta_csrf(&html);
    assert!(!token.is_empty());
    let forms = forms(&url, &html);
    assert_eq!(forms.len(), 1, "{html}");
    assert_eq!(forms[0].method, "post");
    assert_eq!(forms[0].action.path(), "/login");
    assert_eq!(forms[0].hidden_csrf, vec![token]);
    s.stop().await;
}

fn tls_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Over TLS the session cookie, and its removal at sign-out, are `Secure`
/// with the `__Host-` prefix (browsers drop a `__Host-` cookie that lacks
/// either, or has a `Domain` or another path).
#[tokio::test]
async fn the_session_cookie_is_secure_and_host_prefixed_under_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let s = TestServer::start_with(|c| {
        c.tls.cert_path = Some(cert_path.clone());
        c.tls.key_path = Some(key_path.clone());
    })
    .await;
    let base = s.base.replace("http://", "https://");
    let c = tls_client();
    let res = post_login_at(&base, &c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 303);
    check_cookies("POST /login over TLS", res.headers(), true);
    assert!(cookie_value(&res, "__Host-agentry_session").is_some());
    let page = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = meta_csrf(&page.text().await.unwrap());
    let res = c
        .post(format!("{base}/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    check_cookies("POST /logout over TLS", res.headers(), true);
    assert_eq!(
        cookie_value(&res, "__Host-agentry_session").as_deref(),
        Some(""),
        "sign-out clears the cookie"
    );
    s.stop().await;
}

// ---- rate limits -------------------------------------------------------------

/// A client whose connections come from `127.0.0.<n>`: a client IP of its
/// own, so each endpoint's limit starts from a full budget.
fn client_from(n: u8) -> reqwest::Client {
    client_at(n, HeaderMap::new())
}

fn client_at(n: u8, headers: HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::from([127, 0, 0, n]))
        .default_headers(headers)
        .build()
        .unwrap()
}

const LIMIT: u32 = 3;

/// Asserts the first `LIMIT` answers are `refused` and the next ones 429
/// with a sane `Retry-After`; returns the 429 bodies.
async fn expect_limited<F, Fut>(what: &str, refused: u16, send: F) -> Vec<String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut bodies = Vec::new();
    for i in 0..LIMIT + 2 {
        let res = send().await;
        let status = res.status().as_u16();
        if i < LIMIT {
            assert_eq!(status, refused, "{what}: attempt {}", i + 1);
            continue;
        }
        assert_eq!(status, 429, "{what}: attempt {} after the limit", i + 1);
        check_security_headers(what, res.headers());
        let retry: u64 = header(what, res.headers(), "retry-after").parse().unwrap();
        assert!((1..=60).contains(&retry), "{what}: Retry-After {retry}");
        bodies.push(res.text().await.unwrap());
    }
    bodies
}

fn auth_failures_from(s: &TestServer, ip: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        s.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'auth.bearer' AND outcome = 'failure' AND source_ip = ?1",
        [ip],
        |r| r.get(0),
    )
    .unwrap()
}

/// Every endpoint that checks a credential without a session answers 429
/// with `Retry-After` after a bounded number of attempts from one client;
/// these limits do not spill over onto what needs no credential, which has
/// its own budget (see the module comment and the next test).
#[tokio::test]
async fn every_credential_check_without_a_session_is_rate_limited_per_client() {
    let s = TestServer::start_with(|c| {
        c.login.rate_limit_per_minute = LIMIT;
        c.tokens.rate_limit_per_minute = LIMIT;
        c.api.auth_failures_per_minute = LIMIT;
    })
    .await;
    let (admin_c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &admin_c, &csrf, "limited", "planner").await;
    let key = create_agent_key(&s, &admin_c, &csrf, &agent).await;
    let bad_key = format!("agk_0123456789abcdef_{}", "A".repeat(43));
    let bad_jwt = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.e30.c2lnbmF0dXJl";

    // POST /login: every attempt counts.
    let (base, c) = (s.base.as_str(), &client_from(2));
    expect_limited("POST /login", 401, || async move {
        post_login_at(base, c, "admin", "not the password at all").await
    })
    .await;

    // The OAuth endpoints: every request counts (one limiter for the three;
    // each is tried from its own address).
    for (n, path, form) in [
        (3, "/oauth/token", ("grant_type", "client_credentials")),
        (4, "/oauth/introspect", ("token", "x")),
        (5, "/oauth/revoke", ("token", "x")),
    ] {
        let (c, url, agent, bad_key) = (&client_from(n), s.url(path), &agent, &bad_key);
        let bodies = expect_limited(&format!("POST {path}"), 401, || {
            let url = url.clone();
            async move {
                c.post(url)
                    .basic_auth(agent, Some(bad_key))
                    .form(&[form])
                    .send()
                    .await
                    .unwrap()
            }
        })
        .await;
        for b in bodies {
            let v: Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["error"], "temporarily_unavailable", "{path}: {v}");
        }
    }

    // The API with a bearer credential that is refused: a wrong API key, a
    // forged token, a malformed header, on reads and writes and /metrics.
    let bearer_cases: [(u8, reqwest::Method, &str, String); 4] = [
        (
            6,
            reqwest::Method::GET,
            "/api/v1/me",
            format!("Bearer {bad_key}"),
        ),
        (
            7,
            reqwest::Method::GET,
            "/api/v1/agents",
            format!("Bearer {bad_jwt}"),
        ),
        (8, reqwest::Method::GET, "/metrics", "Bearer garbage".into()),
        (
            9,
            reqwest::Method::POST,
            "/api/v1/authz/check",
            "Basic YWRtaW46cGFzc3dvcmQ=".into(),
        ),
    ];
    for (n, method, path, authorization) in &bearer_cases {
        let (c, url) = (&client_from(*n), s.url(path));
        let what = format!("{method} {path} with `{}`", &authorization[..12]);
        let bodies = expect_limited(&what, 401, || {
            let (method, url) = (method.clone(), url.clone());
            async move {
                c.request(method, url)
                    .header("authorization", authorization)
                    .json(&json!({"permission": "audit:read"}))
                    .send()
                    .await
                    .unwrap()
            }
        })
        .await;
        for b in bodies {
            let v: Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["code"], "rate_limited", "{what}: {v}");
        }
        // Refusals past the budget are not written to the audit log.
        assert_eq!(
            auth_failures_from(&s, &format!("127.0.0.{n}")),
            i64::from(LIMIT),
            "{what}"
        );
    }
    // A valid credential from a limited address still works, and does not
    // reset the budget; another address has its own.
    let limited = client_from(6);
    assert_eq!(me_with_bearer(&s, &limited, &key).await, 200);
    assert_eq!(me_with_bearer(&s, &limited, &bad_key).await, 429);
    assert_eq!(me_with_bearer(&s, &client_from(10), &bad_key).await, 401);

    // Still served (within their own budget, 6,000 a minute by default) to
    // an address that is limited everywhere else (127.0.0.2 for login, .3
    // for the OAuth endpoints, .6 for the API).
    for n in [2, 3, 6] {
        let c = client_from(n);
        for _ in 0..LIMIT * 3 {
            for path in [
                "/healthz",
                "/readyz",
                "/.well-known/jwks.json",
                "/.well-known/oauth-authorization-server",
                "/api/v1/openapi.json",
                "/static/css/app.css",
                "/static/js/app.js",
                "/login",
            ] {
                let res = c.get(s.url(path)).send().await.unwrap();
                assert_eq!(res.status(), 200, "GET {path} from 127.0.0.{n}");
            }
            // No credential, or an unknown session: 401, never 429.
            let res = c.get(s.url("/api/v1/me")).send().await.unwrap();
            assert_eq!(res.status(), 401, "GET /api/v1/me without credentials");
            let res = c
                .get(s.url("/api/v1/me"))
                .header("cookie", format!("agentry_session={}", "B".repeat(43)))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "GET /api/v1/me with an unknown session");
        }
    }
    // The admin's own session (127.0.0.1) was never affected.
    let res = admin_c.get(s.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    s.stop().await;
}

/// What needs no credential has a budget per client address of its own:
/// past it every such request is answered 429 with `Retry-After`, as
/// problem+json for the probes and API paths and as a page for the rest;
/// other addresses, and requests with a credential from the limited
/// address, are served as before.
#[tokio::test]
async fn what_needs_no_credential_has_a_budget_per_client() {
    let s = TestServer::start_with(|c| c.api.anonymous_requests_per_minute = LIMIT).await;
    let (admin_c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &admin_c, &csrf, "probed", "planner").await;
    let key = create_agent_key(&s, &admin_c, &csrf, &agent).await;

    for (n, path, served, json) in [
        (20, "/healthz", 200, true),
        (21, "/readyz", 200, true),
        (22, "/.well-known/jwks.json", 200, true),
        (23, "/.well-known/oauth-authorization-server", 200, true),
        (24, "/api/v1/openapi.json", 200, true),
        (25, "/static/css/app.css", 200, false),
        (26, "/login", 200, false),
        (27, "/no/such/page", 404, false),
        (28, "/api/v1/no-such-endpoint", 404, true),
    ] {
        let (c, url) = (&client_from(n), s.url(path));
        let bodies = expect_limited(&format!("GET {path}"), served, || async {
            c.get(&url).send().await.unwrap()
        })
        .await;
        for body in bodies {
            if json {
                let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(problem["status"], 429, "GET {path}: {body}");
                assert_eq!(problem["code"], "rate_limited", "GET {path}: {body}");
            } else {
                assert!(body.contains("Too many"), "GET {path}: {body}");
            }
        }
    }

    // One budget per address for all of them: 127.0.0.20 spent it on
    // /healthz and is refused the login page too.
    let res = client_from(20).get(s.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 429);
    // What needs a credential is not counted: the API with a key from the
    // limited address, pages with a session.
    assert_eq!(me_with_bearer(&s, &client_from(20), &key).await, 200);
    let res = admin_c.get(s.url("/audit")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Another address is untouched.
    let res = client_from(29).get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    s.stop().await;
}

/// A client at `127.0.0.<n>` that sends `X-Forwarded-For: <forwarded>`.
fn client_via(n: u8, forwarded: &str) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", forwarded.parse().unwrap());
    client_at(n, headers)
}

fn failed_login_sources(s: &TestServer) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        s.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT source_ip FROM audit_log WHERE action = 'auth.login' AND outcome = 'failure' ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Behind a configured proxy the client is the address the proxy names in
/// `X-Forwarded-For`: each gets its own rate-limit budget and is the
/// address the audit log records. Anyone else's header is ignored.
#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.40".into()];
        c.login.rate_limit_per_minute = LIMIT;
    })
    .await;
    let base = s.base.as_str();

    // Through the proxy (127.0.0.40): 203.0.113.7 spends its budget ...
    let c = &client_via(40, "198.51.100.1, 203.0.113.7");
    expect_limited("POST /login via the proxy", 401, || async move {
        post_login_at(base, c, "admin", "not the password at all").await
    })
    .await;
    // ... and 203.0.113.8 behind the same proxy still has its own.
    let res = post_login_at(
        base,
        &client_via(40, "203.0.113.8"),
        "admin",
        "wrong again, but mine",
    )
    .await;
    assert_eq!(res.status(), 401);

    // Not a trusted proxy: its header is ignored, the peer is the client.
    let res = post_login_at(
        base,
        &client_via(41, "203.0.113.9"),
        "admin",
        "a third wrong one",
    )
    .await;
    assert_eq!(res.status(), 401);

    let sources = failed_login_sources(&s);
    let mut want = vec!["203.0.113.7"; LIMIT as usize];
    want.extend(["203.0.113.8", "127.0.0.41"]);
    assert_eq!(
        sources, want,
        "the rightmost address the proxy added, never what the client wrote"
    );
    s.stop().await;
}
