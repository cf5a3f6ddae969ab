//! The MCP pages in headless Chromium.

use crate::browser::{
    browser, click_css, click_link, element_text, screenshot, sign_in, start_driver, text_until,
    type_into,
};
use crate::support::*;

#[tokio::test]
async fn chromium_registers_an_mcp_server() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    create_agent(&s, &c, &csrf, "kb-server", "mcp_server").await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    click_link(&b, "MCP servers").await;
    text_until(&b, "mcp-servers-table", |t| {
        t.contains("No MCP servers yet")
    })
    .await;

    // Refused: plain http to a remote host, and a malformed scope; what
    // was typed stays.
    type_into(&b, "f-name", "knowledge-base").await;
    type_into(&b, "f-uri", "http://kb.example.com/mcp").await;
    type_into(&b, "f-scopes_supported", "knowledge:read\nNot A Scope").await;
    click_css(&b, "#create-mcp-server button[type=submit]").await;
    text_until(&b, "error-uri", |t| t.contains("https")).await;
    text_until(&b, "error-scopes_supported", |t| t.contains("Not A Scope")).await;
    assert_eq!(
        crate::browser::value_of(&b, "f-name").await,
        "knowledge-base"
    );

    type_into(&b, "f-uri", "https://kb.example.com/mcp").await;
    type_into(&b, "f-scopes_supported", "knowledge:read\nknowledge:write").await;
    b.execute(
        "const s = document.getElementById('f-agent_id'); \
         s.value = [...s.options].find(o => o.text.startsWith('kb-server')).value;",
        vec![],
    )
    .await
    .unwrap();
    click_css(&b, "#create-mcp-server button[type=submit]").await;
    text_until(&b, "server-uri", |t| t == "https://kb.example.com/mcp").await;
    let meta = element_text(&b, "resource-metadata").await;
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["resource"], "https://kb.example.com/mcp");
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["knowledge:read", "knowledge:write"])
    );
    assert_eq!(meta["authorization_servers"][0], s.url(""));
    screenshot(&b, "mcp-server.png").await;

    // Switched to proxied: the URI becomes agentry's own.
    type_into(&b, "f-upstream_url", "http://10.1.2.3:9000/mcp").await;
    click_css(&b, "#edit-mcp-server button[type=submit]").await;
    let own = s.url("/mcp/knowledge-base");
    text_until(&b, "server-uri", |t| t == own).await;

    // Listed, then removed.
    click_link(&b, "MCP servers").await;
    text_until(&b, "mcp-servers-table", |t| {
        t.contains("knowledge-base") && t.contains("proxied by agentry")
    })
    .await;
    screenshot(&b, "mcp-servers.png").await;
    click_link(&b, "knowledge-base").await;
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, "#delete-mcp-server").await;
    text_until(&b, "mcp-servers-table", |t| {
        t.contains("No MCP servers yet")
    })
    .await;
    s.stop().await;
}

/// A one-request HTTP listener on loopback standing in for a native
/// client's redirect endpoint: the request target it received.
async fn callback_once(listener: tokio::net::TcpListener) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = sock.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    let target = head.split(' ').nth(1).unwrap_or("").to_string();
    let body = "signed in; you can close this window";
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(reply.as_bytes()).await.unwrap();
    target
}

#[tokio::test]
async fn chromium_signs_a_client_in_through_consent_to_loopback_and_private_use_redirects() {
    use base64::Engine;
    use sha2::Digest;
    let s = TestServer::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let loopback = format!("http://127.0.0.1:{port}/callback");
    let cursor = "cursor://anysphere.cursor-mcp/oauth/callback";
    let reg: serde_json::Value = client()
        .post(s.url("/oauth/register"))
        .json(
            &serde_json::json!({"client_name": "Cursor", "redirect_uris": [cursor, loopback],
            "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_string();
    let verifier = "chromium-test-verifier-0123456789-abcdefghijklmnop";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = |redirect: &str, extra: &str| {
        let q = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "st-1"),
            ("scope", "audit:read"),
        ])
        .unwrap();
        s.url(&format!("/oauth/authorize?{q}{extra}"))
    };

    let driver = start_driver().await;
    let b = browser(&driver).await;
    let hit = tokio::spawn(callback_once(listener));
    // Signed out: the sign-in page first, then back to the request.
    b.goto(&authorize(&loopback, "")).await.unwrap();
    crate::browser::submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    text_until(&b, "consent-client", |t| t == "Cursor").await;
    let provenance = element_text(&b, "consent-provenance").await;
    assert!(
        provenance.contains("registered dynamically from 127.0.0.1"),
        "{provenance}"
    );
    assert!(provenance.contains("unverified"));
    assert!(element_text(&b, "consent-scopes")
        .await
        .contains("audit:read"));
    assert!(element_text(&b, "consent-redirect")
        .await
        .contains("127.0.0.1"));
    screenshot(&b, "consent.png").await;
    click_css(&b, "#consent-allow").await;
    let target = tokio::time::timeout(std::time::Duration::from_secs(10), hit)
        .await
        .expect("Chromium reached the loopback redirect")
        .unwrap();
    let to = url::Url::parse(&format!("http://127.0.0.1{target}")).unwrap();
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], s.url(""));
    let res = client()
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", loopback.as_str()),
            ("code_verifier", verifier),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The user's connected apps list the client, and revoke it.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    b.goto(&s.url("/account/apps")).await.unwrap();
    text_until(&b, "apps-table", |t| {
        t.contains("Cursor") && t.contains("audit:read")
    })
    .await;
    screenshot(&b, "connected-apps.png").await;
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, ".revoke-app").await;
    text_until(&b, "apps-table", |t| t.contains("No connected apps")).await;

    // A private-use scheme: the consent form's answer goes to cursor://,
    // which the page's form-action must allow or Chromium refuses it.
    b.goto(&authorize(cursor, "&prompt=consent")).await.unwrap();
    text_until(&b, "consent-client", |t| t == "Cursor").await;
    b.execute(
        "window.__violations = [];
         document.addEventListener('securitypolicyviolation',
           e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));",
        vec![],
    )
    .await
    .unwrap();
    click_css(&b, "#consent-allow").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let violations = b
        .execute("return window.__violations || [];", vec![])
        .await
        .unwrap_or(serde_json::json!([]));
    assert_eq!(
        violations,
        serde_json::json!([]),
        "CSP refused the redirect"
    );
    // The code for the private-use redirect was issued (and recorded).
    let codes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM oauth_codes WHERE redirect_uri = ?1",
            [cursor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(codes, 1);

    s.stop().await;
}

#[tokio::test]
async fn chromium_manages_oauth_clients() {
    let s = TestServer::start().await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    click_link(&b, "OAuth clients").await;
    text_until(&b, "oauth-clients-table", |t| {
        t.contains("No OAuth clients yet")
    })
    .await;
    type_into(&b, "f-name", "Team IDE").await;
    type_into(
        &b,
        "f-redirect_uris",
        "https://ide.example.com/cb\nhttp://ide.example.com/cb",
    )
    .await;
    click_css(&b, "#create-oauth-client input[name=confidential]").await;
    click_css(&b, "#create-oauth-client button[type=submit]").await;
    text_until(&b, "error-redirect_uris", |t| t.contains("loopback")).await;
    type_into(
        &b,
        "f-redirect_uris",
        "https://ide.example.com/cb\nhttp://127.0.0.1/cb",
    )
    .await;
    click_css(&b, "#create-oauth-client button[type=submit]").await;
    text_until(&b, "client-secret", |t| t.starts_with("acs_")).await;
    text_until(&b, "oauth-clients-table", |t| {
        t.contains("Team IDE") && t.contains("client_secret_basic") && t.contains("never")
    })
    .await;
    screenshot(&b, "oauth-clients.png").await;
    // Shown once: a reload does not show it again.
    b.refresh().await.unwrap();
    assert!(b
        .find(fantoccini::Locator::Id("client-secret"))
        .await
        .is_err());
    click_css(&b, ".toggle-client").await;
    text_until(&b, "oauth-clients-table", |t| t.contains("disabled")).await;
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, ".delete-client").await;
    text_until(&b, "oauth-clients-table", |t| {
        t.contains("No OAuth clients yet")
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_a_proxied_servers_health_calls_and_tool_settings() {
    use crate::gateway::{sdk, Setup, Upstream};
    use serde_json::json;

    let s = TestServer::start().await;
    let upstream = Upstream::start(false).await;
    let a = Setup::new(&s).await;
    let id = a.server(&s, "kb", &upstream.url, json!({})).await;
    a.role(&s, "kb_caller", &["mcp:call"]).await;
    let (agent, key) = a.agent(&s, "kb-agent").await;
    a.assign(&s, &agent, "kb_caller", Some(("mcp_tool", "kb/search")))
        .await;
    let url = s.url("/mcp/kb");
    tokio::task::spawn_blocking(move || {
        sdk(
            &url,
            &key,
            &[
                r#"call:search:{"query":"a"}"#,
                r#"call:search:{"query":"b"}"#,
                r#"call:publish:{"title":"t"}"#,
            ],
        )
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    b.goto(&s.url(&format!("/mcp-servers/{id}"))).await.unwrap();
    text_until(&b, "tool-usage", |t| {
        t.contains("search") && t.contains("publish")
    })
    .await;
    let usage = element_text(&b, "tool-usage").await;
    let search_row = usage.lines().find(|l| l.starts_with("search")).unwrap();
    assert!(search_row.starts_with("search 2 0 0"), "{usage}");
    let publish_row = usage.lines().find(|l| l.starts_with("publish")).unwrap();
    assert!(publish_row.starts_with("publish 0 1 0"), "{usage}");
    assert!(element_text(&b, "gateway-health").await.len() > 1);
    // Each tool's calls as traces: the gateway's spans, the refused call's
    // failed.
    let links = b
        .execute(
            "return [...document.querySelectorAll('#tool-usage a.tool-traces')].map(a => a.getAttribute('href'))",
            vec![],
        )
        .await
        .unwrap();
    let search = "/traces?service=agentry&name=tools/call%20search";
    assert!(
        links.as_array().unwrap().iter().any(|l| l == search),
        "{links}"
    );
    b.goto(&s.url(search)).await.unwrap();
    text_until(&b, "traces-table", |t| {
        t.matches("tools/call search").count() == 2
    })
    .await;
    b.goto(&s.url("/traces?service=agentry&status=error"))
        .await
        .unwrap();
    text_until(&b, "traces-table", |t| t.contains("tools/call publish")).await;
    b.goto(&s.url(&format!("/mcp-servers/{id}"))).await.unwrap();

    // A bad limit is refused with the reason, what was typed stays, and
    // nothing is stored.
    type_into(&b, "f-calls_per_minute", "lots").await;
    b.execute(
        "document.querySelector('[name=tool_name_0]').value = 'search';
         document.querySelector('[name=tool_permission_0]').value = 'knowledge:read';
         document.querySelector('[name=tool_record_0]').checked = true;
         document.querySelector('[name=tool_limit_0]').value = '5';",
        vec![],
    )
    .await
    .unwrap();
    click_css(&b, "#save-gateway").await;
    text_until(&b, "gateway-errors", |t| t.contains("lots")).await;
    assert_eq!(
        crate::browser::value_of(&b, "f-calls_per_minute").await,
        "lots"
    );
    let stored = get_json(&a.c, &s, &format!("/api/v1/mcp-servers/{id}")).await;
    assert!(stored["calls_per_minute"].is_null(), "{stored}");

    // Fixed: saved, with an upstream header that is never shown again.
    type_into(&b, "f-calls_per_minute", "120").await;
    type_into(&b, "f-upstream_headers", "X-Upstream-Key: s3cret").await;
    click_css(&b, "#save-gateway").await;
    text_until(&b, "tool-settings", |_| true).await;
    let stored = get_json(&a.c, &s, &format!("/api/v1/mcp-servers/{id}")).await;
    assert_eq!(stored["calls_per_minute"], 120, "{stored}");
    assert_eq!(
        stored["tools"]["search"],
        json!({"permission": "knowledge:read", "record_arguments": true, "calls_per_minute": 5})
    );
    assert_eq!(stored["upstream_header_names"], json!(["X-Upstream-Key"]));
    let html = b.source().await.unwrap();
    assert!(!html.contains("s3cret"));
    assert!(html.contains("Stored: X-Upstream-Key"));
    screenshot(&b, "mcp-gateway.png").await;
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&s.url(&format!("/mcp-servers/{id}#gateway")))
        .await
        .unwrap();
    text_until(&b, "tool-settings", |_| true).await;
    screenshot(&b, "mcp-gateway-390.png").await;

    // Tool calls at a glance in the audit log.
    b.set_window_size(1280, 900).await.unwrap();
    b.goto(&s.url("/audit?action=mcp.*")).await.unwrap();
    text_until(&b, "audit-table", |t| {
        t.contains("search: allowed")
            && t.contains("search: ok in")
            && t.contains("publish: denied")
    })
    .await;
    screenshot(&b, "audit-mcp.png").await;
    s.stop().await;
}
