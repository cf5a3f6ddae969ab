//! MCP servers as registered resources: the API, their protected resource
//! metadata, and the token endpoint's `resource` rules.

use serde_json::{json, Value};

use crate::oauth::{agent_with_role, token};
use crate::support::*;

async fn create(s: &TestServer, c: &reqwest::Client, csrf: &str, body: Value) -> reqwest::Response {
    c.post(s.url("/api/v1/mcp-servers"))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn servers_are_registered_read_replaced_and_removed() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &c, &csrf, "kb-server", "mcp_server").await;
    let direct = create(
        &s,
        &c,
        &csrf,
        json!({"name": "knowledge-base", "uri": "https://kb.example.com/mcp",
               "agent_id": agent, "description": "Search the knowledge base",
               "scopes_supported": ["knowledge:read", "knowledge:write", "knowledge:read"]}),
    )
    .await;
    assert_eq!(direct.status(), 201);
    let direct: Value = direct.json().await.unwrap();
    assert_eq!(direct["uri"], "https://kb.example.com/mcp");
    assert_eq!(direct["enabled"], true);
    assert_eq!(direct["agent_id"], agent.as_str());
    // Repeats are dropped, order kept.
    assert_eq!(
        direct["scopes_supported"],
        json!(["knowledge:read", "knowledge:write"])
    );

    // A proxied server's URI is agentry's own.
    let proxied = create(
        &s,
        &c,
        &csrf,
        json!({"name": "tickets", "upstream_url": "http://10.1.2.3:9000/mcp"}),
    )
    .await;
    assert_eq!(proxied.status(), 201);
    let proxied: Value = proxied.json().await.unwrap();
    assert_eq!(proxied["uri"], s.url("/mcp/tickets"));
    assert_eq!(proxied["upstream_url"], "http://10.1.2.3:9000/mcp");

    let list = get_json(&c, &s, "/api/v1/mcp-servers").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["knowledge-base", "tickets"]);

    let id = direct["id"].as_str().unwrap();
    let path = format!("/api/v1/mcp-servers/{id}");
    assert_eq!(get_json(&c, &s, &path).await["name"], "knowledge-base");
    let replaced = put(
        &c,
        &csrf,
        &s,
        &path,
        json!({"name": "knowledge-base", "uri": "https://kb.example.com/mcp",
               "enabled": false}),
    )
    .await;
    assert_eq!(replaced["enabled"], false);
    assert_eq!(replaced["agent_id"], Value::Null);
    assert_eq!(replaced["created_at"], direct["created_at"]);

    let res = c
        .delete(s.url(&path))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = c.get(s.url(&path)).send().await.unwrap();
    expect_problem(res, 404).await;

    // Every change is in the audit trail.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit_log WHERE action LIKE 'mcp_server.%' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        actions,
        [
            "mcp_server.create",
            "mcp_server.create",
            "mcp_server.update",
            "mcp_server.delete"
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_registrations_are_refused_with_the_field_named() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let ok = json!({"name": "kb", "uri": "https://kb.example.com/mcp"});
    assert_eq!(create(&s, &c, &csrf, ok).await.status(), 201);
    let own = s.url("/mcp/other");
    let cases = [
        (
            json!({"name": "Bad Name", "uri": "https://x.example.com/"}),
            "name",
        ),
        (
            json!({"name": "a", "uri": "http://x.example.com/mcp"}),
            "uri",
        ),
        (
            json!({"name": "a", "uri": "https://x.example.com/mcp#frag"}),
            "uri",
        ),
        (
            json!({"name": "a", "uri": "https://u:p@x.example.com/"}),
            "uri",
        ),
        (json!({"name": "a", "uri": own}), "uri"),
        (json!({"name": "a"}), "uri"),
        (
            json!({"name": "a", "upstream_url": "ftp://x.example.com/"}),
            "upstream_url",
        ),
        (
            json!({"name": "a", "upstream_url": "http://u:p@10.0.0.1/"}),
            "upstream_url",
        ),
        // The outbound rules: never a metadata address.
        (
            json!({"name": "a", "upstream_url": "http://169.254.169.254/"}),
            "upstream_url",
        ),
        (
            json!({"name": "a", "upstream_url": "http://10.0.0.1/", "uri": "https://x.example.com/"}),
            "uri",
        ),
        (
            json!({"name": "a", "uri": "https://x.example.com/", "scopes_supported": ["Not A Scope"]}),
            "scopes_supported[0]",
        ),
        (
            json!({"name": "a", "uri": "https://x.example.com/", "agent_id": "no-such-agent"}),
            "agent_id",
        ),
        (
            json!({"name": "a", "uri": "https://x.example.com/", "description": "d".repeat(1001)}),
            "description",
        ),
    ];
    for (body, field) in cases {
        let res = create(&s, &c, &csrf, body.clone()).await;
        let problem = expect_problem(res, 422).await;
        assert!(problem["errors"].get(field).is_some(), "{body}: {problem}");
    }
    // Unknown fields and wrong types are refused too.
    let res = create(
        &s,
        &c,
        &csrf,
        json!({"name": "a", "uri": "https://x.example.com/", "extra": 1}),
    )
    .await;
    expect_problem(res, 422).await;
    // Names are unique (and lower-case); so are URIs.
    let res = create(
        &s,
        &c,
        &csrf,
        json!({"name": "kb", "uri": "https://y.example.com/"}),
    )
    .await;
    expect_problem(res, 409).await;
    let res = create(
        &s,
        &c,
        &csrf,
        json!({"name": "kb2", "uri": "https://kb.example.com/mcp"}),
    )
    .await;
    expect_problem(res, 409).await;
    // Nothing but the first was written.
    let list = get_json(&c, &s, "/api/v1/mcp-servers").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn resource_metadata_is_served_for_proxied_servers_and_returned_for_direct_ones() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let direct: Value = create(
        &s,
        &c,
        &csrf,
        json!({"name": "kb", "uri": "https://kb.example.com/mcp", "scopes_supported": ["knowledge:read"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!(
        "/api/v1/mcp-servers/{}/resource-metadata",
        direct["id"].as_str().unwrap()
    );
    let meta = get_json(&c, &s, &path).await;
    let issuer =
        get_json(&client(), &s, "/.well-known/oauth-authorization-server").await["issuer"].clone();
    assert_eq!(
        meta,
        json!({"resource": "https://kb.example.com/mcp", "authorization_servers": [issuer],
               "scopes_supported": ["knowledge:read"], "bearer_methods_supported": ["header"],
               "resource_name": "kb"})
    );
    // agentry serves a direct server's metadata by name too: forward auth
    // (a proxy in front of the server) points clients there.
    let served = get_json(
        &client(),
        &s,
        "/.well-known/oauth-protected-resource/mcp/kb",
    )
    .await;
    assert_eq!(served, meta);

    let proxied: Value = create(
        &s,
        &c,
        &csrf,
        json!({"name": "tickets", "upstream_url": "http://10.1.2.3:9000/mcp"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let served = get_json(
        &client(),
        &s,
        "/.well-known/oauth-protected-resource/mcp/tickets",
    )
    .await;
    assert_eq!(served["resource"], s.url("/mcp/tickets"));
    assert_eq!(served["authorization_servers"], json!([issuer]));
    // No empty arrays: a server without scopes lists none.
    assert!(served.get("scopes_supported").is_none(), "{served}");
    // Another spelling of the name is not the server's URI.
    let res = client()
        .get(s.url("/.well-known/oauth-protected-resource/mcp/TICKETS"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // A disabled server's metadata is gone.
    let path = format!("/api/v1/mcp-servers/{}", proxied["id"].as_str().unwrap());
    put(
        &c,
        &csrf,
        &s,
        &path,
        json!({"name": "tickets", "upstream_url": "http://10.1.2.3:9000/mcp", "enabled": false}),
    )
    .await;
    let res = client()
        .get(s.url("/.well-known/oauth-protected-resource/mcp/tickets"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    s.stop().await;
}

async fn granted(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let t = body["access_token"].as_str().unwrap();
    let payload = t.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&claims).unwrap()
}

async fn refused_target(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_target", "{body}");
    body["error_description"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn tokens_are_only_minted_for_registered_resources() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    create(
        &s,
        &c,
        &csrf,
        json!({"name": "kb", "uri": "https://kb.example.com/mcp",
               "scopes_supported": ["knowledge:*", "tickets:read"]}),
    )
    .await;

    // Unregistered: refused, whatever its form.
    let why = refused_target(
        token(
            &s,
            &id,
            &secret,
            &[("resource", "https://evil.example.com/")],
        )
        .await,
    )
    .await;
    assert!(why.contains("registered MCP server"), "{why}");
    // A registered one: the audience is its URI, the scope what the agent
    // holds that the server supports, with the subject's kind named.
    let claims = granted(
        token(
            &s,
            &id,
            &secret,
            &[("resource", "https://kb.example.com/mcp")],
        )
        .await,
    )
    .await;
    assert_eq!(claims["aud"], "https://kb.example.com/mcp");
    assert_eq!(claims["scope"], "knowledge:read knowledge:write");
    assert_eq!(claims["sub_type"], "agent");
    // Asking for what the server does not support gets nothing of it.
    let res = token(
        &s,
        &id,
        &secret,
        &[
            ("resource", "https://kb.example.com/mcp"),
            ("scope", "metrics:report knowledge:read"),
        ],
    )
    .await;
    assert_eq!(granted(res).await["scope"], "knowledge:read");
    let res = token(
        &s,
        &id,
        &secret,
        &[
            ("resource", "https://kb.example.com/mcp"),
            ("scope", "metrics:report"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    // agentry's own API is a resource too.
    let issuer = get_json(&client(), &s, "/.well-known/oauth-authorization-server").await["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    let claims = granted(token(&s, &id, &secret, &[("resource", &issuer)]).await).await;
    assert_eq!(claims["aud"], issuer.as_str());
    assert!(claims["scope"].as_str().unwrap().contains("metrics:report"));

    // A disabled server is no target.
    let list = get_json(&c, &s, "/api/v1/mcp-servers").await;
    let path = format!(
        "/api/v1/mcp-servers/{}",
        list["items"][0]["id"].as_str().unwrap()
    );
    put(
        &c,
        &csrf,
        &s,
        &path,
        json!({"name": "kb", "uri": "https://kb.example.com/mcp", "enabled": false}),
    )
    .await;
    refused_target(
        token(
            &s,
            &id,
            &secret,
            &[("resource", "https://kb.example.com/mcp")],
        )
        .await,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn any_resource_is_admitted_when_registration_is_not_required() {
    let s = TestServer::start_with(|c| c.oauth.require_registered_resource = false).await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let claims = granted(
        token(
            &s,
            &id,
            &secret,
            &[("resource", "https://any.example.com/")],
        )
        .await,
    )
    .await;
    assert_eq!(claims["aud"], "https://any.example.com/");
    // The form is still checked.
    refused_target(token(&s, &id, &secret, &[("resource", "not a uri")]).await).await;
    s.stop().await;
}

#[tokio::test]
async fn an_mcp_servers_agent_introspects_the_tokens_addressed_to_it() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let server_agent = create_agent(&s, &c, &csrf, "kb-server", "mcp_server").await;
    let server_key = create_agent_key(&s, &c, &csrf, &server_agent).await;
    let kb = json!({"name": "kb", "uri": "https://kb.example.com/mcp", "agent_id": server_agent});
    post(&c, &csrf, &s, "/api/v1/mcp-servers", kb).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/mcp-servers",
        json!({"name": "other", "uri": "https://other.example.com/mcp"}),
    )
    .await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let mint = |resource: String| {
        let (s, id, secret) = (&s, id.clone(), secret.clone());
        async move {
            let res = token(s, &id, &secret, &[("resource", &resource)]).await;
            let body: Value = res.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let introspect = |t: String| {
        let (s, agent, key) = (&s, server_agent.clone(), server_key.clone());
        async move {
            let res = client()
                .post(s.url("/oauth/introspect"))
                .basic_auth(agent, Some(key))
                .form(&[("token", t)])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let mine = introspect(mint("https://kb.example.com/mcp".into()).await).await;
    assert_eq!(mine["active"], true, "{mine}");
    assert_eq!(mine["aud"], "https://kb.example.com/mcp");
    // A token for another server, or for agentry, is not its to read.
    let other = introspect(mint("https://other.example.com/mcp".into()).await).await;
    assert_eq!(other, json!({"active": false}));
    let own_api = introspect(mint(s.url("")).await).await;
    assert_eq!(own_api, json!({"active": false}));
    s.stop().await;
}
