//! The authorization-code flow over HTTP: dynamic registration, sign-in,
//! consent, PKCE, codes, refresh rotation, and every refusal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:45123/callback";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn register(s: &TestServer, body: Value) -> reqwest::Response {
    client()
        .post(s.url("/oauth/register"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A public client registered dynamically; its id.
async fn public_client(s: &TestServer) -> String {
    let res = register(
        s,
        json!({"client_name": "Test IDE", "redirect_uris": [REDIRECT],
               "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("client_secret").is_none(), "{body}");
    body["client_id"].as_str().unwrap().to_string()
}

fn authorize_url(s: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let ch = challenge(VERIFIER);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
    ];
    params.extend_from_slice(extra);
    let q = serde_urlencoded::to_string(&params).unwrap();
    s.url(&format!("/oauth/authorize?{q}"))
}

fn location(res: &reqwest::Response) -> url::Url {
    url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(u: &url::Url, k: &str) -> Option<String> {
    u.query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
}

/// Answers the consent page `page` with `decision`, for the request
/// `authorize_url(client_id, extra)` made.
async fn decide(
    s: &TestServer,
    c: &reqwest::Client,
    page: &str,
    client_id: &str,
    decision: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = form_csrf(page);
    let ch = challenge(VERIFIER);
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("decision", decision),
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
    ];
    form.extend_from_slice(extra);
    c.post(s.url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Signs in as admin, walks authorize → consent → Allow; the code.
async fn code_for(
    s: &TestServer,
    c: &reqwest::Client,
    client_id: &str,
    extra: &[(&str, &str)],
) -> String {
    let res = c
        .get(authorize_url(s, client_id, extra))
        .send()
        .await
        .unwrap();
    let res = if res.status() == 200 {
        let page = res.text().await.unwrap();
        assert!(page.contains("Test IDE"), "{page}");
        decide(s, c, &page, client_id, "allow", extra).await
    } else {
        res
    };
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some("xyz"));
    assert_eq!(query(&to, "iss").as_deref(), Some(s.url("").as_str()));
    query(&to, "code").unwrap_or_else(|| panic!("no code in {to}"))
}

async fn exchange(s: &TestServer, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(s.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn redeem(s: &TestServer, client_id: &str, code: &str) -> reqwest::Response {
    exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
        ],
    )
    .await
}

async fn oauth_error(res: reqwest::Response) -> String {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_client_error(), "{status} {body}");
    body["error"].as_str().unwrap().to_string()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn metadata_describes_the_authorization_server_without_empty_arrays() {
    let s = TestServer::start().await;
    let m = get_json(&client(), &s, "/.well-known/oauth-authorization-server").await;
    let base = s.url("");
    assert_eq!(m["issuer"], base.as_str());
    assert_eq!(
        m["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(m["registration_endpoint"], format!("{base}/oauth/register"));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert!(m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("none")));
    assert!(m["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("offline_access")));
    for (k, v) in m.as_object().unwrap() {
        assert!(v.as_array().is_none_or(|a| !a.is_empty()), "{k} is empty");
    }
    s.stop().await;

    // With registration off, no registration endpoint is advertised or served.
    let s = TestServer::start_with(|c| {
        c.oauth.dynamic_registration = agentry::config::DynamicRegistration::Off
    })
    .await;
    let m = get_json(&client(), &s, "/.well-known/oauth-authorization-server").await;
    assert!(m.get("registration_endpoint").is_none());
    let res = register(&s, json!({"redirect_uris": [REDIRECT]})).await;
    assert_eq!(res.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn a_user_signs_a_client_in_with_pkce_and_consent_and_refreshes() {
    let s = TestServer::start().await;
    let client_id = public_client(&s).await;
    let c = client();
    // Signed out: to the sign-in page, and back.
    let res = c
        .get(authorize_url(&s, &client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/login?next=%2Foauth%2Fauthorize"), "{to}");
    login(&s, &c, "admin", ADMIN_PASSWORD).await;

    let scope = [("scope", "audit:read offline_access")];
    let code = code_for(&s, &c, &client_id, &scope).await;
    let res = redeem(&s, &client_id, &code).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let t: Value = res.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap();
    let c1 = claims(access);
    assert_eq!(c1["sub_type"], "user");
    assert_eq!(c1["client_id"], client_id.as_str());
    assert_eq!(c1["aud"], s.url("").as_str());
    assert_eq!(c1["scope"], "audit:read");
    assert_eq!(t["scope"], "audit:read");
    // The token works on agentry's API, within its scope.
    let me = client()
        .get(s.url("/api/v1/audit/head"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let users = client()
        .get(s.url("/api/v1/users"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 403);

    // Consent is remembered: the next authorization goes straight back.
    let res = c
        .get(authorize_url(&s, &client_id, &scope))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(query(&location(&res), "code").is_some());
    // ... unless the client asks for the page again.
    let res = c
        .get(authorize_url(
            &s,
            &client_id,
            &[("scope", "audit:read"), ("prompt", "consent")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Refresh: rotated every time; narrowing allowed, widening not.
    let r1 = t["refresh_token"].as_str().unwrap().to_string();
    let refresh = |token: String, scope: Option<&'static str>| {
        let (s, id) = (&s, client_id.clone());
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", token),
                ("client_id", id),
            ];
            if let Some(sc) = scope {
                form.push(("scope", sc.to_string()));
            }
            client()
                .post(s.url("/oauth/token"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let res = refresh(r1.clone(), None).await;
    assert_eq!(res.status(), 200);
    let t2: Value = res.json().await.unwrap();
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(
        oauth_error(refresh(r2.clone(), Some("user:manage")).await).await,
        "invalid_scope"
    );
    let res = refresh(r2.clone(), Some("audit:read")).await;
    assert_eq!(res.status(), 200);
    let t3: Value = res.json().await.unwrap();
    let r3 = t3["refresh_token"].as_str().unwrap().to_string();

    // Reusing a replaced token revokes the family: r3 dies with it.
    assert_eq!(
        oauth_error(refresh(r1.clone(), None).await).await,
        "invalid_grant"
    );
    assert_eq!(oauth_error(refresh(r3, None).await).await, "invalid_grant");

    // The user sees the grant and revokes it.
    let (ac, csrf) = admin(&s).await;
    let me = get_json(&ac, &s, "/api/v1/me").await;
    let uid = me["principal"]["id"].as_str().unwrap();
    let grants = get_json(&ac, &s, &format!("/api/v1/users/{uid}/grants")).await;
    let items = grants["items"].as_array().unwrap();
    let grant = items
        .iter()
        .find(|g| g["client_id"] == client_id.as_str())
        .unwrap_or_else(|| panic!("{grants}"));
    assert_eq!(grant["client_name"], "Test IDE");
    let res = ac
        .delete(s.url(&format!(
            "/api/v1/users/{uid}/grants/{}",
            grant["id"].as_str().unwrap()
        )))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Forgotten: the next authorization asks again.
    let res = c
        .get(authorize_url(&s, &client_id, &scope))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let reuse: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'oauth.refresh_reuse'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reuse, 1);
    s.stop().await;
}

#[tokio::test]
async fn a_second_use_of_a_code_revokes_what_the_first_issued() {
    let s = TestServer::start().await;
    let client_id = public_client(&s).await;
    let c = client();
    login(&s, &c, "admin", ADMIN_PASSWORD).await;
    let code = code_for(&s, &c, &client_id, &[("scope", "audit:read")]).await;
    let t: Value = redeem(&s, &client_id, &code).await.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    let ok = client()
        .get(s.url("/api/v1/audit/head"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        oauth_error(redeem(&s, &client_id, &code).await).await,
        "invalid_grant"
    );
    let revoked = client()
        .get(s.url("/api/v1/audit/head"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401);
    let res = exchange(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(oauth_error(res).await, "invalid_grant");
    s.stop().await;
}

#[tokio::test]
async fn bad_authorization_requests_are_refused_without_open_redirects() {
    let s = TestServer::start().await;
    let client_id = public_client(&s).await;
    let c = client();
    login(&s, &c, "admin", ADMIN_PASSWORD).await;

    // Unknown client or unregistered redirect: an error page, no redirect.
    for url in [
        authorize_url(&s, "no-such-client", &[]),
        authorize_url(&s, &client_id, &[]).replace("45123%2Fcallback", "45123%2Fother"),
        authorize_url(&s, &client_id, &[]).replace("%2F%2F127.0.0.1", "%2F%2Fevil.example.com"),
    ] {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 400, "{url}");
        assert!(res.headers().get("location").is_none());
    }
    // Any loopback port is the registered loopback redirect.
    let other_port =
        authorize_url(&s, &client_id, &[("scope", "audit:read")]).replace("45123", "45999");
    let res = c.get(&other_port).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Plain PKCE, no PKCE, a wrong response type: back to the client.
    let cases = [
        (
            authorize_url(&s, &client_id, &[]).replace("S256", "plain"),
            "invalid_request",
        ),
        (
            authorize_url(&s, &client_id, &[]).replace("code_challenge=", "code_challenge_x="),
            "invalid_request",
        ),
        (
            authorize_url(&s, &client_id, &[]).replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(
                &s,
                &client_id,
                &[("resource", "https://unregistered.example.com/")],
            ),
            "invalid_target",
        ),
        (
            authorize_url(&s, &client_id, &[("scope", "Not-A-Scope!")]),
            "invalid_scope",
        ),
    ];
    for (url, error) in cases {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 303, "{url}");
        let to = location(&res);
        assert!(to.as_str().starts_with(REDIRECT));
        assert_eq!(query(&to, "error").as_deref(), Some(error), "{url}");
        assert_eq!(query(&to, "iss").as_deref(), Some(s.url("").as_str()));
    }

    // Deny: access_denied.
    let page = c
        .get(authorize_url(&s, &client_id, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = decide(&s, &c, &page, &client_id, "deny", &[]).await;
    assert_eq!(
        query(&location(&res), "error").as_deref(),
        Some("access_denied")
    );
    // Without the CSRF token nothing is decided.
    let res = c
        .post(s.url("/oauth/authorize"))
        .form(&[("decision", "allow"), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Token endpoint refusals: wrong verifier, wrong redirect, other client.
    let code = code_for(&s, &c, &client_id, &[]).await;
    let wrong = exchange(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &"x".repeat(43)),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(oauth_error(wrong).await, "invalid_grant");
    let other = public_client(&s).await;
    assert_eq!(
        oauth_error(redeem(&s, &other, &code).await).await,
        "invalid_grant"
    );
    let res = exchange(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", "whatever"),
            ("client_id", "nobody"),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn registrations_accept_what_clients_send_and_refuse_what_is_unsafe() {
    let s = TestServer::start().await;
    // Cursor-style: several redirect URIs of mixed kinds, unknown fields.
    let res = register(
        &s,
        json!({"client_name": "Cursor", "redirect_uris": [
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "https://www.cursor.com/agents/mcp/oauth/callback",
            "http://localhost:8787/callback"],
            "token_endpoint_auth_method": "none", "resource": "https://kb.example.com/mcp",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}),
    )
    .await;
    assert_eq!(res.status(), 201);
    // Confidential by default, with a secret that authenticates it.
    let res = register(&s, json!({"redirect_uris": ["https://app.example.com/cb"]})).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_secret"].as_str().unwrap().starts_with("acs_"));
    for (bad, error) in [
        (
            json!({"redirect_uris": ["http://evil.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (json!([1, 2]), "invalid_client_metadata"),
    ] {
        let res = register(&s, bad.clone()).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(oauth_error(res).await, error, "{bad}");
    }
    // Rate-limited per address (10 a minute by default; 7 made above).
    let mut limited = false;
    for _ in 0..10 {
        let res = register(&s, json!({"redirect_uris": [REDIRECT]})).await;
        if res.status() == 429 {
            assert!(res.headers().get("retry-after").is_some());
            limited = true;
            break;
        }
    }
    assert!(limited);
    s.stop().await;
}

/// Serves the JSON `body(port)` (cacheable for a minute) to every request
/// on a loopback port; the document's URL.
pub(crate) async fn serve_document(body: impl Fn(&str) -> Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/client.json",
        listener.local_addr().unwrap().port()
    );
    let body = body(&url).to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=60\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn client_id_metadata_documents_identify_clients() {
    let s = TestServer::start_with(|c| c.oauth.allow_http_loopback_client_ids = true).await;
    let meta = get_json(&client(), &s, "/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    let c = client();
    login(&s, &c, "admin", ADMIN_PASSWORD).await;

    let id = serve_document(|url| {
        json!({"client_id": url, "client_name": "Doc Client", "redirect_uris": [REDIRECT],
               "token_endpoint_auth_method": "none"})
    })
    .await;
    let page = c.get(authorize_url(&s, &id, &[])).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("identified by its metadata document at 127.0.0.1"),
        "{page}"
    );
    let res = decide(&s, &c, &page, &id, "allow", &[]).await;
    let code = query(&location(&res), "code").unwrap();
    let res = redeem(&s, &id, &code).await;
    assert_eq!(res.status(), 200);
    // Listed, with how it came.
    let (ac, _) = admin(&s).await;
    let listed = get_json(&ac, &s, "/api/v1/oauth-clients").await;
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_id"] == id.as_str() && c["registration"] == "metadata_document"));

    // A document naming another client: an error page, no redirect.
    let liar = serve_document(|_| {
        json!({"client_id": "https://someone-else.example.com/c.json", "redirect_uris": [REDIRECT]})
    })
    .await;
    let res = c.get(authorize_url(&s, &liar, &[])).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("another client_id"));
    // One at a link-local address is never fetched.
    let res = c
        .get(authorize_url(
            &s,
            "https://169.254.169.254/client.json",
            &[],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("refused"));
    s.stop().await;

    // Without the testing switch, a loopback http id is just unknown.
    let s = TestServer::start().await;
    let c = client();
    login(&s, &c, "admin", ADMIN_PASSWORD).await;
    let res = c.get(authorize_url(&s, &id, &[])).send().await.unwrap();
    assert_eq!(res.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn disabling_a_client_voids_its_tokens_for_good() {
    let s = TestServer::start().await;
    let client_id = public_client(&s).await;
    let c = client();
    login(&s, &c, "admin", ADMIN_PASSWORD).await;
    let code = code_for(&s, &c, &client_id, &[("scope", "audit:read")]).await;
    let t: Value = redeem(&s, &client_id, &code).await.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_string();
    let call = || {
        client()
            .get(s.url("/api/v1/audit/head"))
            .bearer_auth(&access)
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 200);
    let (ac, csrf) = admin(&s).await;
    let path = format!("/api/v1/oauth-clients/{client_id}");
    let set = |enabled: bool| {
        ac.patch(s.url(&path))
            .header("x-csrf-token", &csrf)
            .json(&json!({"enabled": enabled}))
            .send()
    };
    assert_eq!(set(false).await.unwrap().status(), 200);
    assert_eq!(call().await.unwrap().status(), 401);
    let res = exchange(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(res.status(), 401, "a disabled client cannot refresh");
    // Enabled again: the old tokens stay void.
    assert_eq!(set(true).await.unwrap().status(), 200);
    assert_eq!(call().await.unwrap().status(), 401);
    s.stop().await;
}
