//! Single sign-on against a real OpenID Connect provider started on
//! loopback (node's oidc-provider, tests/oidc/provider.mjs): the code flow
//! with PKCE, state and nonce ends in a session; users are created at
//! first sign-in and matched by subject afterwards, never by name; the
//! group claim maps to roles, and losing a group loses the role; a
//! forged state and a replayed callback are refused.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use secrecy::SecretString;
use serde_json::Value;

use crate::support::*;

const SECRET: &str = "a client secret shared with the provider";

struct Provider {
    child: Child,
    base: String,
    /// Kept open: the provider writes to it after "ready".
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the provider's npm packages once (tests/oidc/node_modules).
fn npm_install() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::path::Path::new(dir)
            .join("node_modules/oidc-provider")
            .exists()
        {
            return;
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .output()
            .expect("npm");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

async fn provider(port: u16, redirect_uri: String) -> Provider {
    tokio::task::spawn_blocking(move || {
        npm_install();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");
        let mut child = Command::new("node")
            .args([script, &port.to_string(), &redirect_uri, SECRET])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the provider starts");
        Provider {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _stdout: stdout,
        }
    })
    .await
    .unwrap()
}

/// agentry with `[oidc]` aimed at a provider on `provider_port`.
async fn server(provider_port: u16, auto_create: bool) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    let toml = format!(
        r#"issuer = "http://127.0.0.1:{provider_port}"
client_id = "agentry"
client_secret = "{SECRET}"
scopes = ["openid", "profile", "email", "groups"]
display_name = "Test IdP"
role_claim = "groups"
auto_create_users = {auto_create}
[role_mapping]
platform-admins = ["system_admin"]
staff = ["workflow_viewer"]
"#
    );
    c.oidc = toml::from_str(&toml).unwrap();
    let _ = SecretString::from("");
    TestServer::start_on(listener, dir, c).await
}

async fn as_account(p: &Provider, who: &str) {
    let res = reqwest::get(format!("{}/test/as/{who}", p.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// From `/login/oidc` through the provider to the callback URL it sends
/// the browser back to (not yet followed).
async fn to_callback(s: &TestServer, c: &reqwest::Client) -> String {
    let mut url = s.url("/login/oidc");
    for _ in 0..10 {
        let res = c.get(&url).send().await.unwrap();
        assert!(res.status().is_redirection(), "{url}: {}", res.status());
        let next = res.headers()["location"].to_str().unwrap().to_string();
        let next = reqwest::Url::parse(&url)
            .unwrap()
            .join(&next)
            .unwrap()
            .to_string();
        if next.starts_with(&s.url("/login/oidc/callback")) {
            return next;
        }
        url = next;
    }
    panic!("no callback after 10 redirects");
}

async fn sign_on(s: &TestServer, c: &reqwest::Client) -> reqwest::Response {
    let callback = to_callback(s, c).await;
    c.get(&callback).send().await.unwrap()
}

async fn me(s: &TestServer, c: &reqwest::Client) -> Value {
    get_json(c, s, "/api/v1/me").await
}

#[tokio::test]
async fn people_sign_on_through_a_real_provider() {
    let pport = free_port();
    let s = server(pport, true).await;
    let p = provider(pport, s.url("/login/oidc/callback")).await;

    let page = get_text(&client(), &s, "/login").await;
    assert!(page.contains("Sign in with Test IdP"), "{page}");

    // alice: created at first sign-in, system_admin from her group.
    as_account(&p, "alice").await;
    let c = client();
    let res = sign_on(&s, &c).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(res.headers()["location"], "/");
    let who = me(&s, &c).await;
    assert_eq!(who["principal"]["name"], "alice");
    assert!(
        who["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "system_admin"),
        "{who}"
    );
    let alice_id = who["principal"]["id"].as_str().unwrap().to_string();

    // Again: the same user (matched by subject), not a second one.
    let again = client();
    assert_eq!(sign_on(&s, &again).await.status(), 303);
    assert_eq!(me(&s, &again).await["principal"]["id"], alice_id.as_str());

    // Losing the group loses the role at the next sign-on.
    let res = reqwest::get(format!("{}/test/groups/alice?set=staff", p.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let later = client();
    assert_eq!(sign_on(&s, &later).await.status(), 303);
    let roles = me(&s, &later).await["roles"].clone();
    assert_eq!(roles, serde_json::json!(["workflow_viewer"]), "{roles}");

    // A local user named like the provider's bob is not bob: refused.
    let (admin, csrf) = admin(&s).await;
    create_user(&s, &admin, &csrf, "bob", "bob's local long password").await;
    as_account(&p, "bob").await;
    let b = client();
    let res = sign_on(&s, &b).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        b.get(s.url("/api/v1/me")).send().await.unwrap().status(),
        401
    );

    // A forged state: refused, and the provider's code is not used.
    as_account(&p, "carol").await;
    let x = client();
    let callback = to_callback(&s, &x).await;
    let forged = regex_replace_state(&callback, "forged-state");
    assert_eq!(x.get(&forged).send().await.unwrap().status(), 401);

    // A replayed callback (its state and code, with the state cookie of
    // the browser that started it): refused, the state is used up.
    let y = client();
    let callback = to_callback(&s, &y).await;
    let state = query_param(&callback, "state");
    assert_eq!(
        y.get(&callback).send().await.unwrap().status(),
        303,
        "carol signs on"
    );
    let replay = client();
    let res = replay
        .get(&callback)
        .header("cookie", format!("agentry_oidc={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // The provider's own refusal (or a forged one): kept printable.
    let res = client()
        .get(s.url(
            "/login/oidc/callback?error=access_denied&error_description=no%0Aforged%3A%20line",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Every refusal is on the audit trail with its reason.
    let audit = get_json(
        &admin,
        &s,
        "/api/v1/audit?action=auth.login&outcome=failure&limit=50",
    )
    .await;
    let reasons: Vec<String> = items(&audit)
        .iter()
        .filter(|r| r["details"]["method"] == "oidc")
        .map(|r| r["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    for expected in [
        "already exists",
        "state does not match",
        "unknown, used or expired state",
        "the provider answered access_denied: noforged: line",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }
    let logins = get_json(
        &admin,
        &s,
        "/api/v1/audit?action=auth.login&outcome=success&limit=50",
    )
    .await;
    assert!(items(&logins)
        .iter()
        .any(|r| r["details"]["method"] == "oidc"));
    drop(p);
    s.stop().await;
}

#[tokio::test]
async fn without_auto_creation_only_linked_users_sign_on() {
    let pport = free_port();
    let s = server(pport, false).await;
    let p = provider(pport, s.url("/login/oidc/callback")).await;
    as_account(&p, "carol").await;
    let c = client();
    assert_eq!(sign_on(&s, &c).await.status(), 401);
    let (admin, _) = admin(&s).await;
    let audit = get_json(
        &admin,
        &s,
        "/api/v1/audit?action=auth.login&outcome=failure",
    )
    .await;
    assert!(items(&audit)[0]["reason"]
        .as_str()
        .unwrap()
        .contains("no user is linked"));
    drop(p);
    s.stop().await;
}

fn query_param(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.to_string())
        .unwrap()
}

fn regex_replace_state(url: &str, state: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                state.to_string()
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}
