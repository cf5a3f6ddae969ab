//! The OTLP/HTTP trace receiver (SPEC §15, first part): the OpenTelemetry
//! Python SDK's exporter sends a trace (plain and gzip) with an agent's key
//! holding `telemetry:write`, and `GET /api/v1/traces/{id}` returns it;
//! hostile requests get 4xx or a partial success, never a 5xx, and nothing
//! half-stored.

use std::io::Write;

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

/// Runs a script of tests/otel without blocking the runtime the server's
/// writers run on.
async fn python(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(args)
            .output()
            .expect("python3")
    })
    .await
    .unwrap()
}

async fn export_with_sdk(s: &TestServer, key: &str, compression: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otel/export_traces.py");
    let out = python(&[script, &s.url(""), key, compression]).await;
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
        let trace_id = export_with_sdk(&s, &key, compression).await;
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

#[tokio::test]
async fn the_sdk_exports_logs_and_metrics_and_the_api_finds_them() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let key = sender(&s, &c, &csrf).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/otel/export_logs_metrics.py"
    );
    let out = python(&[script, &s.url(""), &key]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace_id = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let all = get_json(&c, &s, "/api/v1/logs?service=billing-agent").await;
    let bodies: Vec<&str> = items(&all)
        .iter()
        .map(|l| l["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "a chatty detail",
            "payment gateway refused the charge",
            "invoice batch started"
        ],
        "newest first: {all}"
    );
    let errors = get_json(&c, &s, "/api/v1/logs?severity=error").await;
    let e = &items(&errors)[0];
    assert_eq!(items(&errors).len(), 1, "{errors}");
    assert_eq!(e["severity"], "error");
    assert_eq!(e["severity_number"], 17);
    assert_eq!(e["trace_id"], trace_id.as_str());
    assert_eq!(e["service"], "billing-agent");
    let info = get_json(&c, &s, "/api/v1/logs?q=invoice").await;
    assert_eq!(items(&info)[0]["attributes"]["batch"], 7, "{info}");
    // Words match as prefixes; all must appear.
    for (q, n) in [("refus", 1), ("gateway charge", 1), ("gateway invoice", 0)] {
        let found = get_json(&c, &s, &format!("/api/v1/logs?q={q}")).await;
        assert_eq!(items(&found).len(), n, "{q}: {found}");
    }
    let by_trace = get_json(&c, &s, &format!("/api/v1/logs?trace_id={trace_id}")).await;
    assert_eq!(items(&by_trace).len(), 1);
    // One page at a time, newest first, nothing twice.
    let mut seen = Vec::new();
    let mut path = "/api/v1/logs?limit=1".to_string();
    loop {
        let page = get_json(&c, &s, &path).await;
        seen.push(items(&page)[0]["body"].as_str().unwrap().to_string());
        match page["next_cursor"].as_str() {
            Some(cur) => path = format!("/api/v1/logs?limit=1&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen, bodies);
    for bad in [
        "severity=loud",
        "trace_id=xyz",
        "q=%2A%2A",
        "since=yesterday",
        "since=2h&until=3h",
        "cursor=azE6bm9wZQ",
        "limit=0",
        "colour=red",
    ] {
        let res = c
            .get(s.url(&format!("/api/v1/logs?{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }

    // Metrics land in the metric store as the sender's reports, named as
    // Prometheus names them, the service as a label.
    let metric = |name: &'static str| {
        let (c, s) = (&c, &s);
        async move {
            get_json(c, s, &format!("/api/v1/metrics/query?name={name}")).await["series"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let sent = metric("invoices_sent").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["labels"]["service"], "billing-agent");
    assert_eq!(sent[0]["labels"]["region"], "eu");
    assert_eq!(sent[0]["samples"][0]["value"], 3.0);
    let count = metric("charge_duration_count").await;
    assert_eq!(count[0]["samples"][0]["value"], 1.0);
    let sum = metric("charge_duration_sum").await;
    assert_eq!(sum[0]["samples"][0]["value"], 0.25);
    assert_eq!(metric("queue_depth").await[0]["samples"][0]["value"], 5.0);
    s.stop().await;
}

/// A span export written by hand in OTLP/JSON: `runs` root spans of
/// `workflow`, the first `failed` of them failed, each with a child span
/// calling a tool.
fn workflow_runs(workflow: &str, runs: usize, failed: usize) -> Value {
    let now = agentry::db::now_ms() as i128 * 1_000_000;
    let mut spans = Vec::new();
    for i in 0..runs {
        let trace = format!("{:032x}", 0xabc000 + i);
        let start = now - 5_000_000_000 + i as i128 * 1_000_000;
        spans.push(
            json!({"traceId": trace, "spanId": format!("{:016x}", 0x100 + i),
            "name": "run", "kind": 2,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + 40_000_000).to_string(),
            "attributes": [{"key": "workflow", "value": {"stringValue": workflow}}],
            "status": {"code": if i < failed { 2 } else { 1 }}}),
        );
        spans.push(json!({"traceId": trace, "spanId": format!("{:016x}", 0x900 + i),
            "parentSpanId": format!("{:016x}", 0x100 + i),
            "name": "tools/call", "kind": 3,
            "startTimeUnixNano": (start + 1_000_000).to_string(),
            "endTimeUnixNano": (start + 21_000_000).to_string(),
            "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": "delete_workflow"}}]}));
    }
    json!({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "scheduler"}}]},
        "scopeSpans": [{"scope": {"name": "by-hand"}, "spans": spans}]}]})
}

#[tokio::test]
async fn series_derived_from_spans_drive_the_seeded_workflow_rule() {
    let s = TestServer::start_with(crate::alerting::fast).await;
    let (c, csrf) = admin(&s).await;
    let key = sender(&s, &c, &csrf).await;
    // The seed's rule, without its ten minutes.
    let mut rule = get_json(&c, &s, "/api/v1/alert-rules/workflow_failure").await;
    let obj = rule.as_object_mut().unwrap();
    obj.remove("created_at");
    obj.remove("updated_at");
    obj.insert("expression".into(), json!("workflow_success_rate < 90%"));
    put(&c, &csrf, &s, "/api/v1/alert-rules/workflow_failure", rule).await;

    let res = client()
        .post(s.url("/v1/traces"))
        .bearer_auth(&key)
        .json(&workflow_runs("nightly", 10, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({}));

    // The list shows each run where it entered, with its span count.
    let list = get_json(&c, &s, "/api/v1/traces?service=scheduler&status=error").await;
    assert_eq!(items(&list).len(), 3, "{list}");
    assert_eq!(items(&list)[0]["span_count"], 2);
    assert_eq!(items(&list)[0]["name"], "run");
    let slow = get_json(&c, &s, "/api/v1/traces?min_duration_ms=41").await;
    assert!(items(&slow).is_empty(), "{slow}");
    let mut seen = 0;
    let mut path = "/api/v1/traces?limit=4".to_string();
    loop {
        let page = get_json(&c, &s, &path).await;
        seen += items(&page).len();
        match page["next_cursor"].as_str() {
            Some(cur) => path = format!("/api/v1/traces?limit=4&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen, 10);

    let alerts = crate::alerting::until(&c, &s, "/api/v1/alerts?state=firing", 40, |v| {
        items(v).iter().any(|a| a["rule"] == "workflow_failure")
    })
    .await;
    let alert = items(&alerts)
        .iter()
        .find(|a| a["rule"] == "workflow_failure")
        .unwrap_or_else(|| panic!("no workflow alert: {alerts}"))
        .clone();
    assert_eq!(alert["labels"]["workflow"], "nightly", "{alert}");
    let series = |name: &str, labels: &str| {
        let (c, s) = (&c, &s);
        let path = format!("/api/v1/metrics/query?name={name}&labels={labels}");
        async move { get_json(c, s, &path).await["series"].clone() }
    };
    let rate = series("span_error_rate", "%7B%22span%22%3A%22run%22%7D").await;
    assert_eq!(rate[0]["samples"][0]["value"], 0.3, "{rate}");
    let calls = series("span_calls", "%7B%22tool%22%3A%22delete_workflow%22%7D").await;
    assert_eq!(calls[0]["samples"][0]["value"], 10.0, "{calls}");
    assert_eq!(calls[0]["labels"]["service"], "scheduler");
    let p95 = series(
        "span_duration_p95_seconds",
        "%7B%22span%22%3A%22tools%2Fcall%22%7D",
    )
    .await;
    let v = p95[0]["samples"][0]["value"].as_f64().unwrap();
    assert!((0.019..0.022).contains(&v), "{p95}");
    s.stop().await;
}

#[tokio::test]
async fn hostile_log_and_metric_exports_get_4xx_or_a_partial_success() {
    let s = TestServer::start_with(|c| c.telemetry.max_items = 3).await;
    let (c, csrf) = admin(&s).await;
    let key = sender(&s, &c, &csrf).await;
    let send = |path: &'static str, body: Vec<u8>, ct: &'static str| {
        client()
            .post(s.url(path))
            .bearer_auth(&key)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    for path in ["/v1/logs", "/v1/metrics"] {
        let res = send(
            path,
            b"\x0a\xff\xff\xff\x0f".to_vec(),
            "application/x-protobuf",
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        let res = send(path, b"[1]".to_vec(), "application/json")
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        let res = send(path, b"{}".to_vec(), "text/csv").await.unwrap();
        assert_eq!(res.status(), 415, "{path}");
    }
    let now = agentry::db::now_ms() as i128 * 1_000_000;
    let record = |extra: Value| {
        let mut r = json!({"timeUnixNano": now.to_string(), "body": {"stringValue": "x"}});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    };
    let logs = |records: Vec<Value>| {
        json!({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})
            .to_string()
            .into_bytes()
    };
    let res = send(
        "/v1/logs",
        logs(vec![record(json!({})); 4]),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 413);
    let huge = "é".repeat(40_000);
    let res = send(
        "/v1/logs",
        logs(vec![
            record(json!({"timeUnixNano": "18446744073709551615"})),
            record(json!({"traceId": "abcd"})),
            record(json!({"body": {"stringValue": huge}, "severityNumber": 99})),
        ]),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["partialSuccess"]["rejectedLogRecords"]
            .to_string()
            .trim_matches('"'),
        "2",
        "{body}"
    );
    let kept = get_json(&c, &s, "/api/v1/logs").await;
    assert_eq!(items(&kept).len(), 1);
    let kept = &items(&kept)[0];
    assert_eq!(
        kept["body"].as_str().unwrap().len(),
        16 * 1024,
        "cut to the bound"
    );
    assert_eq!(kept["severity_number"], 24, "clamped");

    // Nesting: cut at 8 levels when readable; a request nested past what
    // the decoder reads is refused whole (400), nothing of it stored.
    let nested = |levels: usize| {
        let mut v = json!({"stringValue": "core"});
        for _ in 0..levels {
            v = json!({"arrayValue": {"values": [v]}});
        }
        logs(vec![record(
            json!({"body": {"stringValue": format!("nested {levels}")},
            "attributes": [{"key": "deep", "value": v}]}),
        )])
    };
    let res = send("/v1/logs", nested(30), "application/json")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let found = get_json(&c, &s, "/api/v1/logs?q=nested").await;
    assert!(items(&found)[0]["attributes"]["deep"]
        .to_string()
        .contains("nested too deep"));
    let res = send("/v1/logs", nested(60), "application/json")
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let found = get_json(&c, &s, "/api/v1/logs?q=nested").await;
    assert_eq!(
        items(&found).len(),
        1,
        "nothing of the refused request stored"
    );

    // A metric whose value cannot be stored is refused, the rest kept.
    let gauge =
        |name: &str, v: f64| json!({"name": name, "gauge": {"dataPoints": [{"asDouble": v}]}});
    let metrics = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        gauge("cache.hit_rate", 7.0), gauge("cache.size", 12.0)]}]}]});
    let res = send(
        "/v1/metrics",
        metrics.to_string().into_bytes(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["partialSuccess"]["rejectedDataPoints"]
            .to_string()
            .trim_matches('"'),
        "1",
        "{body}"
    );
    assert!(body["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("cache_hit_rate"));
    let size = get_json(&c, &s, "/api/v1/metrics/query?name=cache_size").await;
    assert_eq!(size["series"][0]["samples"][0]["value"], 12.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_arrives_is_re_exported_to_a_collector_with_retries() {
    use crate::support::receivers::{HttpReceiver, Reply};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    // The collector is down at first (503), then takes everything.
    let collector = HttpReceiver::start().await;
    collector.set_reply(Reply::status(503).header("retry-after", "0"));
    let url = collector.url("");
    let s = TestServer::start_with(move |c| {
        c.telemetry.forward_otlp_url = url;
        c.telemetry
            .forward_headers
            .insert("X-Collector-Key".into(), "collector secret".into());
    })
    .await;
    let (c, csrf) = admin(&s).await;
    let key = sender(&s, &c, &csrf).await;
    let res = client()
        .post(s.url("/v1/traces"))
        .bearer_auth(&key)
        .json(&workflow_runs("forwarded", 2, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first = collector
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(first[0].path, "/v1/traces");
    collector.set_reply(Reply::status(200));
    let now = agentry::db::now_ms() as i128 * 1_000_000;
    let logs = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": now.to_string(), "body": {"stringValue": "forward me"}}]}]}]});
    let res = client()
        .post(s.url("/v1/logs"))
        .bearer_auth(&key)
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The refused attempt, the trace export again, then the logs, in order.
    let got = collector
        .wait_for(3, std::time::Duration::from_secs(20))
        .await;
    let ok: Vec<_> = got.iter().skip_while(|r| r.path != "/v1/traces").collect();
    let traces = ok.iter().rev().find(|r| r.path == "/v1/traces").unwrap();
    assert_eq!(
        traces.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(traces.header("x-collector-key"), Some("collector secret"));
    let export = ExportTraceServiceRequest::decode(traces.body.as_slice()).unwrap();
    assert_eq!(export.resource_spans[0].scope_spans[0].spans.len(), 4);
    let logs = got
        .iter()
        .find(|r| r.path == "/v1/logs")
        .expect("logs re-exported");
    let export = ExportLogsServiceRequest::decode(logs.body.as_slice()).unwrap();
    let body = export.resource_logs[0].scope_logs[0].log_records[0]
        .body
        .clone()
        .unwrap();
    assert!(format!("{body:?}").contains("forward me"), "{body:?}");
    // What is stored here does not depend on the collector.
    let t = get_json(&c, &s, "/api/v1/traces?service=scheduler").await;
    assert_eq!(items(&t).len(), 2);
    // The figures an operator watches.
    let metrics = get_text(&c, &s, "/metrics").await;
    for line in [
        "agentry_otlp_items_total{result=\"stored\",signal=\"traces\"} 4",
        "agentry_otlp_items_total{result=\"stored\",signal=\"logs\"} 1",
        "agentry_otlp_forward_exports_total{result=\"sent\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    let retried = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agentry_otlp_forward_retries_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(retried >= 1);
    assert!(metrics.contains("agentry_telemetry_stored_bytes "));
    s.stop().await;
}
