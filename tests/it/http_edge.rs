//! The HTTP edge: health, readiness, OpenAPI, headers, problem+json for
//! every kind of bad request.

use crate::support::*;

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    let c = client();
    let res = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let res = c.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    for k in ["database", "migrations", "scheduler"] {
        assert_eq!(body["checks"][k], "ok", "{body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn every_response_has_request_id_and_security_headers() {
    let s = TestServer::start().await;
    let c = client();
    for path in [
        "/healthz",
        "/login",
        "/api/v1/me",
        "/nowhere",
        "/static/css/app.css",
        "/api/v1/openapi.json",
    ] {
        let res = c.get(s.url(path)).send().await.unwrap();
        let h = res.headers();
        assert!(h.contains_key("x-request-id"), "{path}");
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{path}");
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY", "{path}");
    }
    // A sane caller-supplied id is echoed, a hostile one replaced.
    let res = c
        .get(s.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "abc-123");
    let res = c
        .get(s.url("/healthz"))
        .header("x-request-id", "a b<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers().get("x-request-id").unwrap(), "a b<script>");
    s.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_every_endpoint() {
    let s = TestServer::start().await;
    let doc: serde_json::Value = get_json(&client(), &s, "/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/password",
        "/api/v1/users/{id}/unlock",
        "/api/v1/users/{id}/sessions",
        "/api/v1/users/{id}/keys",
        "/api/v1/users/{id}/keys/{key_id}",
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}/keys",
        "/api/v1/agents/{id}/keys/{key_id}",
        "/api/v1/agents/{id}/quarantine",
        "/api/v1/roles",
        "/api/v1/roles/{name}",
        "/api/v1/role-assignments",
        "/api/v1/role-assignments/{id}",
        "/api/v1/authz/check",
        "/api/v1/authz/check-batch",
        "/api/v1/principals/{type}/{id}/permissions",
        "/api/v1/signing-keys",
        "/api/v1/signing-keys/rotate",
        "/oauth/token",
        "/oauth/introspect",
        "/oauth/revoke",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/api/v1/audit",
        "/api/v1/audit/export",
        "/api/v1/audit/verify",
        "/api/v1/audit/head",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    // Every operation has an operationId, unique in the document as
    // OpenAPI requires (code generators name their methods after it).
    let mut ids = std::collections::BTreeSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        }
    }
    // Every permission a security requirement names is one agentry checks
    // (the attribute literals are held to `rbac::Permission`).
    let mut scopes = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            for requirement in op["security"].as_array().into_iter().flatten() {
                for (_, names) in requirement.as_object().unwrap() {
                    for name in names.as_array().unwrap() {
                        let name = name.as_str().unwrap();
                        assert!(
                            agentry::rbac::Permission::parse(name).is_some(),
                            "{method} {path} requires unknown permission {name}"
                        );
                        scopes += 1;
                    }
                }
            }
        }
    }
    assert!(scopes > 50, "{scopes} permission requirements");
    // Every link names an operation of the document; creating a user links
    // to reading it by the id in the answer.
    let mut links = 0;
    for ops in paths.values() {
        for op in ops.as_object().unwrap().values() {
            for (_, response) in op["responses"].as_object().into_iter().flatten() {
                for (_, link) in response["links"].as_object().into_iter().flatten() {
                    let target = link["operationId"].as_str().unwrap();
                    assert!(ids.contains(target), "link to unknown {target}");
                    links += 1;
                }
            }
        }
    }
    assert!(links > 20, "{links} links");
    assert_eq!(
        doc["paths"]["/api/v1/users"]["post"]["responses"]["201"]["links"]["users.get"]
            ["parameters"]["id"],
        "$response.body#/id"
    );
    // Every reference resolves: a dangling `$ref` breaks code generators
    // and validators that read the document.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 100, "{}", refs.len());
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
    s.stop().await;
}

fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problem_json_under_api() {
    let s = TestServer::start().await;
    let c = client();
    let p = expect_problem(
        c.get(s.url("/api/v1/no-such-thing")).send().await.unwrap(),
        404,
    )
    .await;
    assert_eq!(p["code"], "not_found");
    let p = expect_problem(c.put(s.url("/api/v1/me")).send().await.unwrap(), 405).await;
    assert_eq!(p["code"], "method_not_allowed");
    // Outside the API, a page.
    let res = c.get(s.url("/no-such-page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    s.stop().await;
}

#[tokio::test]
async fn unauthenticated_api_calls_get_401_with_bearer_challenge() {
    let s = TestServer::start().await;
    let c = client();
    let res = c.get(s.url("/api/v1/me")).send().await.unwrap();
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    expect_problem(res, 401).await;
    let res = c
        .get(s.url("/api/v1/me"))
        .header("authorization", "Bearer garbage")
        .send()
        .await
        .unwrap();
    expect_problem(res, 401).await;
    let res = c
        .get(s.url("/api/v1/me"))
        .header("cookie", "agentry_session=not-a-session")
        .send()
        .await
        .unwrap();
    expect_problem(res, 401).await;
    s.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_4xx_problem_json_and_write_nothing() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let post = |body: Vec<u8>, ct: &'static str| {
        c.post(s.url("/api/v1/users"))
            .header("x-csrf-token", &csrf)
            .header("content-type", ct)
            .body(body)
    };
    let json = "application/json";
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (
            b"{\"username\": \"x\", ".to_vec(),
            json,
            400,
            "malformed_json",
        ),
        (b"not json at all".to_vec(), json, 400, "malformed_json"),
        (b"".to_vec(), json, 400, "malformed_json"),
        (
            br#"{"username":"bob","password":"a long enough password","admin":true}"#.to_vec(),
            json,
            422,
            "invalid_body",
        ),
        (
            br#"{"username":7,"password":"a long enough password"}"#.to_vec(),
            json,
            422,
            "invalid_body",
        ),
        (br#"[1,2,3]"#.to_vec(), json, 422, "invalid_body"),
        (
            br#"{"username":"bob","password":"a long enough password"}"#.to_vec(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (vec![b'a'; 2 * 1024 * 1024], json, 413, "body_too_large"),
        (
            format!(
                r#"{{"username":"{}","password":"a long enough password"}}"#,
                "u".repeat(5000)
            )
            .into_bytes(),
            json,
            422,
            "validation_failed",
        ),
        (
            br#"{"username":"bob","password":"short"}"#.to_vec(),
            json,
            422,
            "validation_failed",
        ),
        (
            br#"{"username":"bob\u0000","password":"a long enough password"}"#.to_vec(),
            json,
            422,
            "validation_failed",
        ),
    ];
    for (body, ct, status, code) in cases {
        let p = expect_problem(post(body, ct).send().await.unwrap(), status).await;
        assert_eq!(p["code"], code, "{p}");
    }
    let p = expect_problem(
        post(br#"{"username":"bob","password":"x"}"#.to_vec(), json)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(p["errors"]["password"].is_string());

    // Nothing was created by any of the above.
    let list: serde_json::Value = get_json(&c, &s, "/api/v1/users").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    s.stop().await;
}

#[tokio::test]
async fn static_assets_are_embedded_and_cacheable() {
    let s = TestServer::start().await;
    let c = client();
    let res = c.get(s.url("/static/css/app.css")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let res = c
        .get(s.url("/static/css/app.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    let res = c.get(s.url("/static/../Cargo.toml")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    s.stop().await;
}

/// The operations the OpenAPI document marks with a permission, as
/// (method, path, permissions).
fn guarded_operations(doc: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let mut scopes: Vec<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|req| req.as_object().unwrap().values())
                .flat_map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_string())
                })
                .collect();
            scopes.sort();
            scopes.dedup();
            if !scopes.is_empty() {
                out.push((method.clone(), path.clone(), scopes));
            }
        }
    }
    out
}

/// An API key of a new agent holding `permissions` (through a role of its
/// own), or nothing when `permissions` is empty.
async fn key_holding(s: &TestServer, name: &str, permissions: &[String]) -> String {
    let (c, csrf) = admin(s).await;
    let id = create_agent(s, &c, &csrf, name, "planner").await;
    if !permissions.is_empty() {
        let role = name.replace('-', "_");
        let body = serde_json::json!({"name": role, "permissions": permissions});
        post(&c, &csrf, s, "/api/v1/roles", body).await;
        let body = serde_json::json!({"subject": {"type": "agent", "id": id}, "role": role});
        post(&c, &csrf, s, "/api/v1/role-assignments", body).await;
    }
    create_agent_key(s, &c, &csrf, &id).await
}

/// Calls a documented operation with `key`, on ids that name nothing and a
/// body it does not expect; the status.
async fn call_guarded(s: &TestServer, key: &str, method: &str, path: &str) -> u16 {
    let url = s.url(
        &path
            .replace("{type}", "user")
            .replace("{id}", "someone-else")
            .replace("{name}", "some_role")
            .replace("{key_id}", "0000000000000000")
            .replace("{classification}", "no-such-ring"),
    );
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    client()
        .request(m, &url)
        .bearer_auth(key)
        .json(&serde_json::json!({"unexpected": true}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Every operation the OpenAPI document marks with a permission refuses a
/// principal that lacks it — whatever body it sends.
#[tokio::test]
async fn every_guarded_operation_refuses_a_principal_without_its_permission() {
    let s = TestServer::start().await;
    let key = key_holding(&s, "no-roles", &[]).await;
    let doc: serde_json::Value = get_json(&client(), &s, "/api/v1/openapi.json").await;
    let ops = guarded_operations(&doc);
    for (method, path, scopes) in &ops {
        let status = call_guarded(&s, &key, method, path).await;
        assert_eq!(status, 403, "{method} {path} (needs {scopes:?})");
    }
    assert!(ops.len() >= 30, "only {} guarded operations", ops.len());
    s.stop().await;
}

/// The permission the document names for an operation is the one its guard
/// checks: a principal holding only that permission gets past the guard
/// (to a 404 or 422 for the ids and body sent), never a 403.
#[tokio::test]
async fn every_guarded_operation_admits_a_principal_with_only_its_permission() {
    let s = TestServer::start().await;
    let doc: serde_json::Value = get_json(&client(), &s, "/api/v1/openapi.json").await;
    let ops = guarded_operations(&doc);
    let mut keys = std::collections::BTreeMap::new();
    for (method, path, scopes) in &ops {
        if !keys.contains_key(scopes) {
            let name = format!("only-{}", keys.len());
            keys.insert(scopes.clone(), key_holding(&s, &name, scopes).await);
        }
        let status = call_guarded(&s, &keys[scopes], method, path).await;
        assert_ne!(
            status, 403,
            "{method} {path} (documented as needing {scopes:?})"
        );
        assert_ne!(status, 401, "{method} {path}");
    }
    assert!(keys.len() >= 10, "only {} distinct permissions", keys.len());
    s.stop().await;
}

/// What the OpenAPI fuzz run (tests/fuzz/schemathesis.sh) checks, pinned
/// here: the document describes the requests the server reads and the
/// responses it sends, including those of the shared extractors and guards.
#[tokio::test]
async fn openapi_document_describes_parameters_and_edge_responses() {
    let s = TestServer::start().await;
    let doc: serde_json::Value = get_json(&client(), &s, "/api/v1/openapi.json").await;
    let problem = serde_json::json!({"$ref": "#/components/schemas/Problem"});
    let mut ops = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            // Query structs once came out as path parameters (required, and
            // in no path): a client following the document could not call
            // GET /api/v1/metrics/query or list alerts, silences or
            // notifications with a filter.
            for p in &params {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(path.contains(&format!("{{{name}}}")), "{at}: {p}");
                }
            }
            let responses = op["responses"].as_object().unwrap();
            // Problems are sent as application/problem+json, and documented so.
            for (status, r) in responses {
                if let Some(content) = r["content"].as_object() {
                    if content.values().any(|c| c["schema"] == problem) {
                        assert_eq!(
                            content.keys().collect::<Vec<_>>(),
                            ["application/problem+json"],
                            "{at} {status}"
                        );
                    }
                }
            }
            let has = |status: &str| responses.contains_key(status);
            if op["security"].as_array().is_some_and(|a| !a.is_empty()) {
                assert!(has("401") && has("403"), "{at}: 401/403");
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{at}: {status}");
                }
            }
            if params.iter().any(|p| p["in"] == "query") {
                assert!(has("400"), "{at}: 400");
            }
            ops += 1;
        }
    }
    assert!(ops >= 80, "only {ops} operations");

    // The query parameters really are read from the query.
    let (c, _) = admin(&s).await;
    for url in [
        "/api/v1/metrics/query?name=agent_health&limit=5",
        "/api/v1/alerts?state=firing&limit=5",
        "/api/v1/silences?current=true&limit=5",
        "/api/v1/notifications?status=failed&limit=5",
    ] {
        let res = c.get(s.url(url)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
    }
    let p = expect_problem(
        c.get(s.url("/api/v1/alerts?limit=0")).send().await.unwrap(),
        400,
    )
    .await;
    assert_eq!(p["code"], "bad_query");
    s.stop().await;
}

/// Follows a `$ref` into the document's components.
fn resolve<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    }
}

/// Whether an object with property `key` can match `schema`: some part
/// documents the key, and no `allOf` part forbids it with
/// `additionalProperties: false`.
fn schema_admits(doc: &serde_json::Value, schema: &serde_json::Value, key: &str) -> bool {
    let schema = resolve(doc, schema);
    let documents = |s: &serde_json::Value| s["properties"].get(key).is_some();
    match schema["allOf"].as_array() {
        Some(parts) => {
            let parts: Vec<_> = parts.iter().map(|p| resolve(doc, p)).collect();
            parts
                .iter()
                .all(|p| p["additionalProperties"] != false || documents(p))
                && parts.iter().any(|p| documents(p))
        }
        None => documents(schema),
    }
}

/// Alert rules and escalation policies are returned with their timestamps;
/// the documented response schemas once flattened the request schemas,
/// which refuse unknown properties, so no response could match them.
#[tokio::test]
async fn openapi_view_schemas_admit_every_field_the_server_returns() {
    let s = TestServer::start().await;
    let doc: serde_json::Value = get_json(&client(), &s, "/api/v1/openapi.json").await;
    let (c, _) = admin(&s).await;
    let rules: serde_json::Value = get_json(&c, &s, "/api/v1/alert-rules").await;
    let rule = rules["items"][0]["name"].as_str().expect("a seeded rule");
    let policies: serde_json::Value = get_json(&c, &s, "/api/v1/escalation-policies").await;
    let policy = policies["items"][0]["name"]
        .as_str()
        .expect("a seeded policy");
    for (path, url) in [
        (
            "/api/v1/alert-rules/{name}",
            format!("/api/v1/alert-rules/{rule}"),
        ),
        (
            "/api/v1/escalation-policies/{name}",
            format!("/api/v1/escalation-policies/{policy}"),
        ),
    ] {
        let body: serde_json::Value = get_json(&c, &s, &url).await;
        let schema =
            &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{path}");
        let keys = body.as_object().unwrap().keys().collect::<Vec<_>>();
        assert!(keys.iter().any(|k| *k == "created_at"), "{body}");
        for key in keys {
            assert!(schema_admits(&doc, schema, key), "{path}: {key}");
        }
    }
    s.stop().await;
}

/// The request examples of the OpenAPI document are what a reader copies
/// first: each one, sent as it stands (the instance's `agent_id` swapped
/// for a real agent), must be accepted.
#[tokio::test]
async fn the_documented_request_examples_are_accepted() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let doc = get_json(&c, &s, "/api/v1/openapi.json").await;
    let example = |schema: &str| {
        let e = doc["components"]["schemas"][schema]["example"].clone();
        assert!(e.is_object(), "{schema} has no example");
        e
    };
    let me = get_json(&c, &s, "/api/v1/me").await;
    let my_id = me["principal"]["id"].as_str().unwrap().to_string();
    let agent = post(&c, &csrf, &s, "/api/v1/agents", example("CreateAgent")).await;
    let mut instance = example("CreateInstance");
    instance["agent_id"] = agent["id"].clone();
    // Channels first: the rule's example may name none, the policy's `@rule`.
    for (path, body) in [
        ("/api/v1/users".to_string(), example("CreateUser")),
        (format!("/api/v1/users/{my_id}/keys"), example("CreateKey")),
        ("/api/v1/roles".into(), example("RoleBody")),
        ("/api/v1/authz/check".into(), example("CheckRequest")),
        ("/api/v1/crypto/encrypt".into(), example("EncryptRequest")),
        ("/api/v1/crypto/datakey".into(), example("DataKeyRequest")),
        ("/api/v1/crypto/keys".into(), example("RingCreate")),
        ("/api/v1/instances".into(), instance),
        ("/api/v1/metrics".into(), example("MetricsReport")),
        ("/api/v1/channels".into(), example("ChannelSpec")),
        (
            "/api/v1/alert-rules/preview".into(),
            example("PreviewRequest"),
        ),
        ("/api/v1/alert-rules".into(), example("RuleSpec")),
        ("/api/v1/escalation-policies".into(), example("PolicySpec")),
        ("/api/v1/silences".into(), example("SilenceSpec")),
    ] {
        post(&c, &csrf, &s, &path, body).await;
    }
    s.stop().await;
}
