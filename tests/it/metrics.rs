//! Metrics reported by agents: stored by series, read back, bad input
//! refused whole.

use serde_json::{json, Value};

use crate::support::*;

/// An agent holding `agent_service` (which grants `metrics:report`) and
/// its API key.
async fn reporting_agent(s: &TestServer, c: &reqwest::Client, csrf: &str) -> (String, String) {
    let id = create_agent(s, c, csrf, "reporter", "planner").await;
    let res = c
        .post(s.url("/api/v1/role-assignments"))
        .header("x-csrf-token", csrf)
        .json(&json!({"subject": {"type": "agent", "id": id}, "role": "agent_service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let key = create_agent_key(s, c, csrf, &id).await;
    (id, key)
}

fn samples_stored(s: &TestServer) -> i64 {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.query_row("SELECT COUNT(*) FROM metric_samples", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn agents_report_series_and_read_them_back() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let (agent_id, key) = reporting_agent(&s, &c, &csrf).await;
    let agent = reqwest::Client::new();
    let now = agentry::db::now_ms();
    let batch: Vec<Value> = (0..500)
        .map(|i| {
            json!({"name": "error_rate", "value": f64::from(i % 10) / 10.0,
                   "labels": {"workflow": if i % 2 == 0 { "billing" } else { "payroll" }},
                   "timestamp": agentry::timefmt::rfc3339(now - 1000 * i64::from(i))})
        })
        .collect();
    for _ in 0..2 {
        // Sent twice: a re-sent sample replaces itself.
        let res = agent
            .post(s.url("/api/v1/metrics"))
            .bearer_auth(&key)
            .json(&json!({ "metrics": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["accepted"], 500);
    }
    assert_eq!(samples_stored(&s), 500);
    let q: Value = c
        .get(s.url(
            "/api/v1/metrics/query?name=error_rate&labels=%7B%22workflow%22%3A%22billing%22%7D",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let series = q["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{q}");
    assert_eq!(series[0]["labels"]["workflow"], "billing");
    assert_eq!(series[0]["reporter"], agent_id.as_str());
    assert_eq!(series[0]["samples"].as_array().unwrap().len(), 250);
    // The health summary's workflows come from series labelled `workflow`.
    let health: Value = get_json(&c, &s, "/api/v1/health").await;
    let wf = &health["component_health"]["workflows"];
    assert_eq!(wf["billing"]["error_rate"], 0.0, "{wf}");
    assert_eq!(wf["payroll"]["error_rate"], 0.1, "{wf}");
    assert_eq!(wf["billing"]["series"], 1);
    for bad in [
        "?labels=%7B%7D",
        "?name=bad-name",
        "?name=x&from=yesterday",
        "?name=x&limit=0",
        "?name=x&labels=nope",
        "?name=x&from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z",
    ] {
        let res = c
            .get(s.url(&format!("/api/v1/metrics/query{bad}")))
            .send()
            .await
            .unwrap();
        expect_problem(res, 400).await;
    }
    // Without metrics:report (a plain user), nothing is accepted.
    let (plain, _) = {
        create_user(&s, &c, &csrf, "plain", "plain user password").await;
        let p = client();
        let csrf = login(&s, &p, "plain", "plain user password").await;
        (p, csrf)
    };
    let res = plain
        .post(s.url("/api/v1/metrics"))
        .header(
            "x-csrf-token",
            meta_csrf(
                &plain
                    .get(s.url("/"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            ),
        )
        .json(&json!({"metrics": [{"name": "x", "value": 1}]}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 403).await;
    s.stop().await;
}

#[tokio::test]
async fn bad_samples_are_refused_and_nothing_partial_is_stored() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let (_, key) = reporting_agent(&s, &c, &csrf).await;
    let agent = reqwest::Client::new();
    let good = json!({"name": "queue_depth", "value": 3});
    let future = agentry::timefmt::rfc3339(agentry::db::now_ms() + 3_600_000);
    let many_labels: serde_json::Map<String, Value> =
        (0..10_000).map(|i| (format!("l{i}"), json!("v"))).collect();
    let cases: Vec<(String, u16)> = vec![
        (json!({"metrics": [good, {"name": "x", "value": "NaN"}]}).to_string(), 422),
        (r#"{"metrics": [{"name": "x", "value": NaN}]}"#.into(), 400),
        (r#"{"metrics": [{"name": "x", "value": Infinity}]}"#.into(), 400),
        (r#"{"metrics": [{"name": "x", "value": 1e999}]}"#.into(), 400),
        (json!({"metrics": [good, {"name": "bad-name", "value": 1}]}).to_string(), 422),
        (json!({"metrics": [good, {"name": "cpu_utilization", "value": 1.5}]}).to_string(), 422),
        (json!({"metrics": [good, {"name": "x", "value": 1, "labels": many_labels}]}).to_string(), 422),
        (json!({"metrics": [good, {"name": "x", "value": 1, "labels": {"__name__": "y"}}]}).to_string(), 422),
        (json!({"metrics": [good, {"name": "x", "value": 1, "labels": {"k": "v".repeat(300)}}]}).to_string(), 422),
        (json!({"metrics": [good, {"name": "x", "value": 1, "labels": {"k": "v".repeat(1_100_000)}}]}).to_string(), 413),
        (json!({"metrics": [good, {"name": "x", "value": 1, "timestamp": future}]}).to_string(), 422),
        (json!({"metrics": [good, {"name": "x", "value": 1, "timestamp": "2001-01-01T00:00:00Z"}]}).to_string(), 422),
        (json!({"metrics": [good, {"name": "x", "value": 1, "timestamp": "soon"}]}).to_string(), 422),
        (json!({"metrics": []}).to_string(), 422),
        (json!({"metrics": vec![good.clone(); 5001]}).to_string(), 422),
    ];
    for (body, status) in cases {
        let res = agent
            .post(s.url("/api/v1/metrics"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let short: String = body.chars().take(120).collect();
        assert_eq!(res.status(), status, "{short}");
        assert_eq!(samples_stored(&s), 0, "something was stored for {short}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_appliance_samples_itself_into_metric_series() {
    let s = TestServer::start().await;
    let (c, _) = admin(&s).await;
    let app = &s.running().app;
    let sampler = agentry::monitor::self_stats::Sampler::default();
    let stored = sampler.run(&app.watched()).await.unwrap();
    assert!(stored >= 8, "{stored}");
    sampler.run(&app.watched()).await.unwrap();
    for (name, check) in [
        ("host_cpu_utilization", (0.0, 1.0)),
        ("host_memory_utilization", (0.0, 1.0)),
        ("agentry_resident_memory_bytes", (1e6, 1e10)),
        ("data_dir_free_bytes", (1.0, 1e18)),
        ("database_size_bytes", (1.0, 1e12)),
        ("scheduler_lag_seconds", (0.0, 60.0)),
        ("failed_auth_attempts", (0.0, 0.0)),
        ("signing_key_age_seconds", (0.0, 3600.0)),
        ("audit_queue_depth", (0.0, 10_000.0)),
    ] {
        let q: Value = c
            .get(s.url(&format!(
                "/api/v1/metrics/query?name={name}&reporter=agentry"
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let samples = q["series"][0]["samples"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {q}"));
        assert!(!samples.is_empty(), "{name}");
        let v = samples.last().unwrap()["value"].as_f64().unwrap();
        assert!((check.0..=check.1).contains(&v), "{name} = {v}");
    }
    let q: Value = get_json(
        &c,
        &s,
        "/api/v1/metrics/query?name=encryption_key_age_seconds&reporter=agentry",
    )
    .await;
    assert_eq!(
        q["series"].as_array().unwrap().len(),
        4,
        "one per classification: {q}"
    );
    s.stop().await;
}
