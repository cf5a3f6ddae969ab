//! The gateway's settings of an MCP server (SPEC §14): limits, tool
//! settings and upstream headers through `/api/v1/mcp-servers`, the
//! headers stored sealed and never shown, and bad settings refused with the
//! field named.

use serde_json::{json, Value};

use crate::support::*;

const SECRET: &str = "Bearer upstream-secret-4f1c9a";

fn proxied(extra: Value) -> Value {
    let mut body = json!({"name": "tickets", "upstream_url": "http://10.1.2.3:9000/mcp"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn stored_headers(s: &TestServer, id: &str) -> (Option<String>, String) {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.query_row(
        "SELECT upstream_headers, upstream_header_names FROM mcp_servers WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[tokio::test]
async fn settings_are_kept_and_upstream_headers_are_sealed_and_never_shown() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let body = proxied(json!({
        "calls_per_minute": 120,
        "tools": {
            "read_ticket": {"permission": "tickets:read", "calls_per_minute": 30},
            "create_ticket": {"record_arguments": true, "classification": "confidential"}
        },
        "upstream_headers": {"Authorization": SECRET, "X-Tenant": "ops"}
    }));
    let created = post(&c, &csrf, &s, "/api/v1/mcp-servers", body).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["calls_per_minute"], 120);
    assert_eq!(
        created["tools"]["read_ticket"],
        json!({"permission": "tickets:read", "record_arguments": false, "calls_per_minute": 30})
    );
    assert_eq!(
        created["upstream_header_names"],
        json!(["Authorization", "X-Tenant"])
    );
    assert!(
        !created.to_string().contains("upstream-secret"),
        "{created}"
    );
    assert!(created.get("upstream_headers").is_none());

    // At rest: an envelope package of the restricted ring; the value
    // appears nowhere in the database file or the audit log.
    let (sealed, names) = stored_headers(&s, &id);
    let package: Value = serde_json::from_str(sealed.as_deref().unwrap()).unwrap();
    assert_eq!(package["classification"], "restricted");
    assert_eq!(names, r#"["Authorization","X-Tenant"]"#);
    let file = std::fs::read(s.db_path()).unwrap();
    let wal = std::fs::read(format!("{}-wal", s.db_path().display())).unwrap_or_default();
    for bytes in [&file, &wal] {
        assert!(
            !bytes.windows(20).any(|w| w == &SECRET.as_bytes()[7..27]),
            "secret in the database"
        );
    }
    let audit = get_json(&c, &s, "/api/v1/audit?action=mcp_server.create").await;
    assert!(!audit.to_string().contains("upstream-secret"));
    assert!(
        audit.to_string().contains("Authorization, X-Tenant"),
        "{audit}"
    );

    // A replace without upstream_headers keeps them; the other settings
    // are what the body says.
    let path = format!("/api/v1/mcp-servers/{id}");
    let updated = put(
        &c,
        &csrf,
        &s,
        &path,
        proxied(json!({"calls_per_minute": 60})),
    )
    .await;
    assert_eq!(updated["calls_per_minute"], 60);
    assert_eq!(updated["tools"], json!({}));
    assert_eq!(
        updated["upstream_header_names"],
        json!(["Authorization", "X-Tenant"])
    );
    assert_eq!(stored_headers(&s, &id).0, sealed);
    // New values are sealed anew; `{}` removes them.
    put(
        &c,
        &csrf,
        &s,
        &path,
        proxied(json!({"upstream_headers": {"Authorization": "Bearer other"}})),
    )
    .await;
    let (resealed, _) = stored_headers(&s, &id);
    assert!(resealed.is_some() && resealed != sealed);
    let cleared = put(
        &c,
        &csrf,
        &s,
        &path,
        proxied(json!({"upstream_headers": {}})),
    )
    .await;
    assert_eq!(cleared["upstream_header_names"], json!([]));
    assert_eq!(stored_headers(&s, &id).0, None);

    // Turning the server into a direct one drops the headers with the
    // upstream.
    put(
        &c,
        &csrf,
        &s,
        &path,
        proxied(json!({"upstream_headers": {"X-Key": "k"}})),
    )
    .await;
    let direct = put(
        &c,
        &csrf,
        &s,
        &path,
        json!({"name": "tickets", "uri": "https://tickets.example.com/mcp"}),
    )
    .await;
    assert_eq!(direct["upstream_header_names"], json!([]));
    assert_eq!(stored_headers(&s, &id).0, None);
    s.stop().await;
}

#[tokio::test]
async fn the_settings_page_leaves_gateway_settings_it_does_not_edit_alone() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let body = proxied(
        json!({"calls_per_minute": 5, "tools": {"search": {"calls_per_minute": 2}},
                              "upstream_headers": {"X-Key": "k"}}),
    );
    let id = post(&c, &csrf, &s, "/api/v1/mcp-servers", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = get_text(&c, &s, &format!("/mcp-servers/{id}")).await;
    let form_csrf = form_csrf(&page);
    let res = c
        .post(s.url(&format!("/mcp-servers/{id}")))
        .form(&[
            ("csrf_token", form_csrf.as_str()),
            ("name", "tickets"),
            ("upstream_url", "http://10.1.2.3:9000/mcp"),
            ("description", "edited on the page"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let after = get_json(&c, &s, &format!("/api/v1/mcp-servers/{id}")).await;
    assert_eq!(after["description"], "edited on the page");
    assert_eq!(after["calls_per_minute"], 5);
    assert_eq!(after["tools"]["search"]["calls_per_minute"], 2);
    assert_eq!(after["upstream_header_names"], json!(["X-Key"]));
    s.stop().await;
}

#[tokio::test]
async fn bad_settings_are_refused_with_the_field_named_and_nothing_stored() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let cases = [
        (json!({"calls_per_minute": 0}), "calls_per_minute"),
        (json!({"tools": {"a b": {}}}), "tools[\"a b\"]"),
        (
            json!({"tools": {"t": {"permission": "not a permission"}}}),
            "tools[\"t\"].permission",
        ),
        (
            json!({"tools": {"t": {"calls_per_minute": 2000000}}}),
            "tools[\"t\"].calls_per_minute",
        ),
        (
            json!({"tools": {"t": {"record_arguments": true, "classification": "no-such-ring"}}}),
            "tools",
        ),
        (
            json!({"upstream_headers": {"Host": "evil.example.com"}}),
            "upstream_headers[\"Host\"]",
        ),
        (
            json!({"upstream_headers": {"X-Split": "a\r\nInjected: 1"}}),
            "upstream_headers[\"X-Split\"]",
        ),
    ];
    for (extra, field) in cases {
        let res = c
            .post(s.url("/api/v1/mcp-servers"))
            .header("x-csrf-token", &csrf)
            .json(&proxied(extra.clone()))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(res, 422).await;
        assert!(problem["errors"][field].is_string(), "{extra} -> {problem}");
    }
    // Unknown keys in a tool's settings are refused (a typo must not pass
    // as "no setting").
    let res = c
        .post(s.url("/api/v1/mcp-servers"))
        .header("x-csrf-token", &csrf)
        .json(&proxied(json!({"tools": {"t": {"permision": "x:y"}}})))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, 422).await;
    assert!(problem.to_string().contains("permision"), "{problem}");
    // Headers for a server agentry does not proxy.
    let res = c
        .post(s.url("/api/v1/mcp-servers"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "kb", "uri": "https://kb.example.com/mcp", "upstream_headers": {"X-Key": "k"}}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, 422).await;
    assert!(
        problem["errors"]["upstream_headers"].is_string(),
        "{problem}"
    );
    assert_eq!(
        get_json(&c, &s, "/api/v1/mcp-servers").await["items"],
        json!([])
    );
    s.stop().await;
}
