//! The OTLP/HTTP trace receiver (SPEC §15, first part): the OpenTelemetry
//! Python SDK's exporter sends a trace (plain and gzip) with an agent's key
//! holding `telemetry:write`, and `GET /api/v1/traces/{id}` returns it;
//! hostile requests get 4xx or a partial success, never a 5xx, and nothing
//! half-stored.

use std::io::Write;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

/// An agent with `telemetry:write` and its API key.
async fn sender(s: &TestServer, c: &reqwest::Client, csrf: &str) -> String {
    post(
        c,
        csrf,
        s,
        "/api/v1/roles",
        json!({"name": "otel_sender", "permissions": ["telemetry:write"]}),
    )
    .await;
    let agent = create_agent(s, c, csrf, "billing-agent", "worker").await;
    post(
        c,
        csrf,
        s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "agent", "id": agent}, "role": "otel_sender"}),
    )
    .await;
    create_agent_key(s, c, csrf, &agent).await
}

fn export_with_sdk(s: &TestServer, key: &str, compression: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otel/export_traces.py");
    let out = Command::new("python3")
        .args([script, &s.url(""), key, compression])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn the_sdk_exports_traces_and_the_api_returns_them() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let key = sender(&s, &c, &csrf).await;
    for compression in ["none", "gzip"] {
        let trace_id = export_with_sdk(&s, &key, compression);
        assert_eq!(trace_id.len(), 32);
        let t = get_json(&c, &s, &format!("/api/v1/traces/{trace_id}")).await;
        let spans = t["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2, "{t}");
        let root = spans.iter().find(|s| s["name"] == "run_workflow").unwrap();
        let child = spans.iter().find(|s| s["name"] == "call_tool").unwrap();
        assert_eq!(child["parent_span_id"], root["span_id"]);
        assert_eq!(root["parent_span_id"], Value::Null);
        assert_eq!(root["service"], "billing-agent");
        assert_eq!(root["attributes"]["workflow"], "billing");
        assert_eq!(child["attributes"]["gen_ai.tool.name"], "search");
        assert_eq!(child["status"], "error");
        assert_eq!(child["status_message"], "upstream timed out");
        assert_eq!(child["events"][0]["name"], "retry");
        assert_eq!(child["events"][0]["attributes"]["attempt"], 2);
    }
    // Reading needs telemetry:read; the sender's key does not hold it.
    let res = client()
        .get(s.url("/api/v1/traces/00000000000000000000000000000001"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    s.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn hostile_otlp_requests_get_4xx_or_a_partial_success() {
    let s = TestServer::start_with(|c| {
        c.telemetry.max_decompressed_bytes = 1024 * 1024;
        c.telemetry.max_items = 3;
    })
    .await;
    let (c, csrf) = admin(&s).await;
    let key = sender(&s, &c, &csrf).await;
    let send = |body: Vec<u8>, ct: &'static str, enc: Option<&'static str>| {
        let mut r = client()
            .post(s.url("/v1/traces"))
            .bearer_auth(&key)
            .header("content-type", ct)
            .body(body);
        if let Some(e) = enc {
            r = r.header("content-encoding", e);
        }
        r.send()
    };
    let now = agentry::db::now_ms() as i128 * 1_000_000;
    let span = |trace: &str, id: &str, start: i128| {
        json!({"traceId": trace, "spanId": id, "name": "op", "kind": 1,
               "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1000).to_string()})
    };
    let export = |spans: Vec<Value>| {
        json!({"resourceSpans": [{"resource": {"attributes": []},
            "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}]}]})
        .to_string()
        .into_bytes()
    };
    let t = "5b8efff798038103d269b633813fc60c";

    // Not protobuf, not JSON, wrong types, an unknown encoding.
    let res = send(
        b"\xff\xff\xff garbage".to_vec(),
        "application/x-protobuf",
        None,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    let res = send(b"{\"resourceSpans\": 5}".to_vec(), "application/json", None)
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = send(b"[]".to_vec(), "application/json", None)
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Nothing refused: an empty answer, no null field.
    let res = send(export(vec![]), "application/json", None)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({}));
    let res = send(export(vec![]), "text/plain", None).await.unwrap();
    assert_eq!(res.status(), 415);
    let res = send(export(vec![]), "application/json", Some("br"))
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = send(b"not gzip".to_vec(), "application/json", Some("gzip"))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // A gzip bomb: 8 MiB of zeros in a few KiB.
    let res = send(
        gzip(&vec![0u8; 8 * 1024 * 1024]),
        "application/json",
        Some("gzip"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 413);
    // Too many spans: refused whole.
    let four: Vec<Value> = (0..4)
        .map(|k| span(t, &format!("eee19b7ec3c1b17{k}"), now))
        .collect();
    let res = send(export(four), "application/json", None).await.unwrap();
    assert_eq!(res.status(), 413);
    // Bad ids and a time from 1970: a partial success naming them; the good span kept.
    let mixed = vec![
        span("0000", "eee19b7ec3c1b170", now),
        span(t, "eee19b7ec3c1b171", 1000),
        span(t, "eee19b7ec3c1b172", now),
    ];
    let res = send(export(mixed), "application/json", None).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    // An int64: a JSON number here (readers take a number or a string).
    let rejected = body["partialSuccess"]["rejectedSpans"].to_string();
    assert_eq!(rejected.trim_matches('"'), "2", "{body}");
    assert!(!body["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .is_empty());
    let kept = get_json(&c, &s, &format!("/api/v1/traces/{t}")).await;
    assert_eq!(kept["spans"].as_array().unwrap().len(), 1);
    // No credential, and a credential without telemetry:write.
    let res = client()
        .post(s.url("/v1/traces"))
        .header("content-type", "application/json")
        .body(export(vec![]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = c.get(s.url("/api/v1/traces/zz")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    s.stop().await;
}
