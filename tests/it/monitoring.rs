//! Health checks against real HTTP servers on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// What a stub endpoint answers: status, body, delay.
#[derive(Clone)]
pub(crate) struct Reply(pub u16, pub &'static str, pub u64);

/// A tiny HTTP server whose answer the test changes while it runs.
pub(crate) struct Stub {
    pub url: String,
    reply: Arc<Mutex<Reply>>,
}

impl Stub {
    pub(crate) async fn start(reply: Reply) -> Stub {
        Self::start_on("127.0.0.1:0", reply).await
    }

    /// On a given address (to bring back a server that was down).
    pub(crate) async fn start_on(addr: &str, reply: Reply) -> Stub {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let reply = Arc::new(Mutex::new(reply));
        let r = reply.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let Reply(status, body, delay) = r.lock().unwrap().clone();
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(body.as_bytes()).await;
                });
            }
        });
        Stub { url, reply }
    }

    pub(crate) fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }
}

pub(crate) async fn create(c: &reqwest::Client, csrf: &str, s: &TestServer, body: Value) -> Value {
    let res = c
        .post(s.url("/api/v1/instances"))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{body}");
    res.json().await.unwrap()
}

async fn get_json(c: &reqwest::Client, s: &TestServer, path: &str) -> Value {
    let res = c.get(s.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// Polls until every instance has its expected state (at most 40 s).
pub(crate) async fn wait_states(c: &reqwest::Client, s: &TestServer, want: &[(&str, &str)]) {
    for _ in 0..400 {
        let mut all = true;
        for (id, state) in want {
            let i = get_json(c, s, &format!("/api/v1/instances/{id}")).await;
            all &= i["state"] == *state;
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seen = Vec::new();
    for (id, _) in want {
        let i = get_json(c, s, &format!("/api/v1/instances/{id}")).await;
        seen.push(format!("{} {} {}", i["name"], i["state"], i["last_error"]));
    }
    panic!("states not reached: want {want:?}, have {seen:?}");
}

/// The state changed exactly at the threshold: the check at `state_since`
/// was the `n`-th consecutive one of its kind.
async fn changed_at_threshold(c: &reqwest::Client, s: &TestServer, id: &str, ok: bool, n: usize) {
    let i = get_json(c, s, &format!("/api/v1/instances/{id}")).await;
    let since = i["state_since"].as_str().unwrap().to_string();
    let checks = get_json(c, s, &format!("/api/v1/instances/{id}/checks?limit=1000")).await;
    let items = checks["items"].as_array().unwrap();
    let at = items
        .iter()
        .position(|r| r["at"] == since.as_str())
        .unwrap();
    let streak = items[at..].iter().take_while(|r| r["ok"] == ok).count();
    assert!(
        streak >= n,
        "{}: changed after {streak} results: {checks}",
        i["name"]
    );
    let run_before = items[at..].iter().take(n).all(|r| r["ok"] == ok);
    assert!(run_before, "{}: {checks}", i["name"]);
}

#[tokio::test]
async fn instances_move_through_states_only_after_thresholds_and_back() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent_id = create_agent(&s, &c, &csrf, "fleet-bot", "planner").await;
    let agent_id = agent_id.as_str();
    let key = create_agent_key(&s, &c, &csrf, agent_id).await;

    let flaky = Stub::start(Reply(500, "down", 0)).await;
    let hangs = Stub::start(Reply(200, "ok", 4000)).await;
    let wrong = Stub::start(Reply(200, "starting", 0)).await;
    let slow = Stub::start(Reply(200, "ok", 300)).await;
    let fine = Stub::start(Reply(200, "ok", 0)).await;
    let closed_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let closed = format!("http://{closed_addr}/health");
    let http = |name: &str, url: &str| {
        json!({"agent_id": agent_id, "name": name, "kind": "http", "url": url,
               "interval_seconds": 5, "timeout_ms": 1000, "failure_threshold": 2, "success_threshold": 2})
    };
    let mut ids = Vec::new();
    for body in [
        http("flaky", &flaky.url),
        http("hangs", &hangs.url),
        {
            let mut b = http("wrong-body", &wrong.url);
            b["body_contains"] = json!("READY");
            b
        },
        {
            let mut b = http("slow", &slow.url);
            b["degraded_latency_ms"] = json!(150);
            b
        },
        http("fine", &fine.url),
        http("refused", &closed),
        json!({"agent_id": agent_id, "name": "beats", "kind": "heartbeat",
               "interval_seconds": 5, "timeout_ms": 500, "failure_threshold": 2, "success_threshold": 1}),
    ] {
        ids.push(
            create(&c, &csrf, &s, body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let [flaky_id, hangs_id, wrong_id, slow_id, fine_id, refused_id, beats_id] =
        <[String; 7]>::try_from(ids).unwrap();
    // The agent calls in with its own key.
    let agent_client = reqwest::Client::new();
    let beat = |id: String| {
        let (agent_client, key, url) = (
            agent_client.clone(),
            key.clone(),
            s.url(&format!("/api/v1/instances/{id}/heartbeat")),
        );
        async move {
            let res = agent_client
                .post(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 204);
        }
    };
    beat(beats_id.clone()).await;
    wait_states(
        &c,
        &s,
        &[
            (&flaky_id, "unhealthy"),
            (&hangs_id, "unhealthy"),
            (&wrong_id, "unhealthy"),
            (&slow_id, "degraded"),
            (&fine_id, "healthy"),
            (&refused_id, "unhealthy"),
            (&beats_id, "healthy"),
        ],
    )
    .await;
    for id in [&flaky_id, &hangs_id, &wrong_id, &refused_id] {
        changed_at_threshold(&c, &s, id, false, 2).await;
    }
    changed_at_threshold(&c, &s, &fine_id, true, 2).await;
    let errors: Vec<String> = {
        let mut v = Vec::new();
        for id in [&flaky_id, &hangs_id, &wrong_id, &refused_id] {
            let i = get_json(&c, &s, &format!("/api/v1/instances/{id}")).await;
            v.push(i["last_error"].as_str().unwrap_or_default().to_string());
        }
        v
    };
    assert_eq!(errors[0], "status 500");
    assert_eq!(errors[1], "timed out after 1000 ms");
    assert!(errors[2].contains("body does not contain"), "{errors:?}");
    assert!(errors[3].starts_with("cannot connect"), "{errors:?}");
    assert!(
        !errors.iter().any(|e| e.contains("127.0.0.1")),
        "URLs stay out of errors: {errors:?}"
    );

    let health = get_json(&c, &s, "/api/v1/health").await;
    assert_eq!(health["overall_status"], "degraded", "{health}");
    let planner = &health["component_health"]["agents"]["planner"];
    assert_eq!(planner["total_instances"], 7);
    assert_eq!(planner["healthy_instances"], 2);
    assert_eq!(planner["unhealthy_instances"], 4);
    assert_eq!(planner["degraded_instances"], 1);
    // (2 x 100 + 60 + 4 x 0) / 7 = 37.1 for agents; 100 infrastructure.
    assert_eq!(health["health_score"], 56);
    assert_eq!(
        health["component_health"]["infrastructure"]["status"],
        "healthy"
    );

    // Prometheus exposition, checked by Prometheus' own promtool.
    let res = reqwest::get(s.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 401);
    let res = agent_client
        .get(s.url("/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the agent lacks health:view");
    let res = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let needles: [String; 5] = [
        format!("agentry_instance_state{{agent_id=\"{agent_id}\",agent_type=\"planner\",instance_id=\"{flaky_id}\",instance_name=\"flaky\",kind=\"http\",state=\"unhealthy\"}} 1"),
        "agentry_instances{state=\"healthy\"} 2".into(),
        "agentry_component_up{component=\"database\"} 1".into(),
        "process_resident_memory_bytes".into(),
        "agentry_audit_queue_depth ".into(),
    ];
    for needle in &needles {
        assert!(
            text.contains(needle.as_str()),
            "{needle} missing from:\n{text}"
        );
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by tests/run.sh");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every one recovers, again only after the threshold; the heartbeat
    // stops and its instance goes down.
    flaky.set(Reply(200, "ok", 0));
    slow.set(Reply(200, "ok", 0));
    hangs.set(Reply(200, "ok", 0));
    wrong.set(Reply(200, "READY", 0));
    let _back = Stub::start_on(&closed_addr, Reply(200, "ok", 0)).await;
    wait_states(
        &c,
        &s,
        &[
            (&flaky_id, "healthy"),
            (&slow_id, "healthy"),
            (&hangs_id, "healthy"),
            (&wrong_id, "healthy"),
            (&refused_id, "healthy"),
            (&beats_id, "unhealthy"),
        ],
    )
    .await;
    for id in [&flaky_id, &hangs_id, &wrong_id, &refused_id] {
        changed_at_threshold(&c, &s, id, true, 2).await;
    }
    let beats = get_json(&c, &s, &format!("/api/v1/instances/{beats_id}")).await;
    assert!(
        beats["last_error"].as_str().unwrap().contains("heartbeat"),
        "{beats}"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_instances_are_refused_field_by_field() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent_id = create_agent(&s, &c, &csrf, "bot", "planner").await;
    let a = agent_id.as_str();
    let base = json!({"agent_id": a, "name": "x", "kind": "http", "url": "http://127.0.0.1:9/h"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("url", json!("ftp://host/x")), "url"),
        (with("url", json!("http://user:secret@host/x")), "url"),
        (with("url", json!("not a url")), "url"),
        (with("url", Value::Null), "url"),
        (with("kind", json!("ping")), "kind"),
        (with("interval_seconds", json!(4)), "interval_seconds"),
        // Far out of range: the timeout check must not overflow on it.
        (
            with("interval_seconds", json!(i64::MIN)),
            "interval_seconds",
        ),
        (
            with("interval_seconds", json!(-9_223_372_036_854_776_i64)),
            "interval_seconds",
        ),
        (with("timeout_ms", json!(50)), "timeout_ms"),
        (with("timeout_ms", json!(30000)), "timeout_ms"),
        (with("expected_status", json!("2xx")), "expected_status"),
        (with("failure_threshold", json!(0)), "failure_threshold"),
        (
            with("degraded_latency_ms", json!(999999)),
            "degraded_latency_ms",
        ),
        (with("name", json!("")), "name"),
        (with("agent_id", json!("nope")), "agent_id"),
        (
            json!({"agent_id": a, "name": "hb", "kind": "heartbeat", "url": "http://h/"}),
            "url",
        ),
    ] {
        let res = c
            .post(s.url("/api/v1/instances"))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let p = expect_problem(res, 422).await;
        assert!(p["errors"][field].is_string(), "{body}: {p}");
        // Credentials never come back in the message.
        assert!(!p.to_string().contains("secret"), "{p}");
    }
    let ok = create(&c, &csrf, &s, base.clone()).await;
    let res = c
        .post(s.url("/api/v1/instances"))
        .header("x-csrf-token", &csrf)
        .json(&base)
        .send()
        .await
        .unwrap();
    expect_problem(res, 409).await;
    let id = ok["id"].as_str().unwrap();
    let res = c
        .patch(s.url(&format!("/api/v1/instances/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"interval_seconds": 1}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 422).await;
    let res = c
        .patch(s.url(&format!("/api/v1/instances/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"interval_seconds": 60, "body_contains": "up"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["interval_seconds"], 60);
    assert_eq!(v["body_contains"], "up");
    for q in ["?limit=0", "?before=yesterday", "?bogus=1"] {
        let res = c
            .get(s.url(&format!("/api/v1/instances/{id}/checks{q}")))
            .send()
            .await
            .unwrap();
        expect_problem(res, 400).await;
    }
    // Heartbeats are for heartbeat instances.
    let res = c
        .post(s.url(&format!("/api/v1/instances/{id}/heartbeat")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    expect_problem(res, 404).await;
    // Deleting the agent removes its instances.
    let res = c
        .delete(s.url(&format!("/api/v1/agents/{a}")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = c
        .get(s.url(&format!("/api/v1/instances/{id}")))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404).await;
    s.stop().await;
}

#[tokio::test]
async fn a_simulated_month_of_checks_is_downsampled_without_losing_a_check() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent_id = create_agent(&s, &c, &csrf, "history", "planner").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        // Disabled: the checker leaves them alone; history is simulated.
        let body = json!({"agent_id": agent_id, "name": format!("i{i}"), "kind": "http",
            "url": "http://127.0.0.1:9/h", "enabled": false});
        ids.push(
            create(&c, &csrf, &s, body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    const EVERY: i64 = 5 * 60_000;
    const DAY: i64 = 86_400_000;
    let now = agentry::db::now_ms();
    let start = now - 30 * DAY;
    let per_instance = 30 * DAY / EVERY;
    {
        let mut conn = rusqlite::Connection::open(s.db_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut ins = tx
                .prepare("INSERT INTO check_results (instance_id, at, ok, latency_ms) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            for id in &ids {
                for k in 0..per_instance {
                    let at = start + k * EVERY;
                    ins.execute(rusqlite::params![id, at, k % 7 != 0, 20 + k % 50])
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    let db = &s.running().app.db;
    let m = &s.running().app.config.monitoring;
    let windows = agentry::monitor::rollup::Windows {
        raw_hours: i64::from(m.raw_retention_hours),
        minute_days: i64::from(m.minute_rollup_days),
        hour_days: i64::from(m.hour_rollup_days),
    };
    let folded = agentry::monitor::rollup::run(db, now, windows)
        .await
        .unwrap();
    assert!(folded.raw > 0 && folded.minutes > 0, "{folded:?}");
    let counts = |conn: &rusqlite::Connection| -> (i64, i64, i64) {
        let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        (
            q("SELECT COUNT(*) FROM check_results"),
            q("SELECT COUNT(*) FROM check_rollups WHERE bucket_ms = 60000"),
            q("SELECT COUNT(*) FROM check_rollups WHERE bucket_ms = 3600000"),
        )
    };
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let (raw, minutes, hours) = counts(&conn);
    // 48 h raw, 7 days of minutes (one result per bucket here), the rest hourly.
    assert!(raw <= 10 * (48 * 12 + 12), "{raw}");
    assert!(minutes <= 10 * (7 * 24 * 12 + 12), "{minutes}");
    assert!(hours <= 10 * (30 * 24 + 1), "{hours}");
    assert!(
        raw + minutes + hours < 10 * per_instance / 2,
        "not downsampled"
    );
    // Not one check lost or counted twice, failures included.
    for id in &ids {
        let q = |sql: &str| conn.query_row(sql, [id], |r| r.get::<_, i64>(0)).unwrap();
        let total = q("SELECT COUNT(*) FROM check_results WHERE instance_id = ?1")
            + q("SELECT COALESCE(SUM(checks), 0) FROM check_rollups WHERE instance_id = ?1");
        assert_eq!(total, per_instance);
        let failures = q("SELECT COUNT(*) FROM check_results WHERE instance_id = ?1 AND ok = 0")
            + q("SELECT COALESCE(SUM(failures), 0) FROM check_rollups WHERE instance_id = ?1");
        assert_eq!(
            failures,
            (0..per_instance).filter(|k| k % 7 == 0).count() as i64
        );
    }
    // Running again changes nothing; a quarter later, the month is gone
    // except what the hour window keeps: the history stays bounded.
    agentry::monitor::rollup::run(db, now, windows)
        .await
        .unwrap();
    assert_eq!(counts(&conn), (raw, minutes, hours));
    agentry::monitor::rollup::run(db, now + 100 * DAY, windows)
        .await
        .unwrap();
    assert_eq!(counts(&conn), (0, 0, 0));
    s.stop().await;
}

/// The `(checks, failures)` of each row of the monitor page's hourly
/// history table.
fn history_rows(html: &str) -> Vec<(i64, i64)> {
    let table = html
        .split("id=\"hours-table\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the page has the hourly history");
    table
        .split("<tr><td")
        .skip(1)
        .filter_map(|row| {
            let cells: Vec<&str> = row
                .split("</td><td>")
                .map(|c| c.split("</td>").next().unwrap_or(c))
                .collect();
            Some((cells.get(1)?.parse().ok()?, cells.get(2)?.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn a_simulated_week_shows_in_the_hourly_history_from_every_tier() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent_id = create_agent(&s, &c, &csrf, "history", "planner").await;
    let body = json!({"agent_id": agent_id, "name": "week", "kind": "http",
        "url": "http://127.0.0.1:9/h", "enabled": false});
    let id = create(&c, &csrf, &s, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    const EVERY: i64 = 10 * 60_000;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    let now = agentry::db::now_ms();
    // Nine days of one check every ten minutes, every fifth one failed.
    let times: Vec<i64> = (1..=9 * DAY / EVERY).map(|k| now - k * EVERY).collect();
    {
        let mut conn = rusqlite::Connection::open(s.db_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let tx = conn.transaction().unwrap();
        for (k, at) in times.iter().enumerate() {
            tx.execute(
                "INSERT INTO check_results (instance_id, at, ok, latency_ms) VALUES (?1, ?2, ?3, 25)",
                rusqlite::params![id, at, k % 5 != 0],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    // What a week of the downsampling job leaves: 48 h raw, minutes up to
    // 7 days, hours beyond.
    let m = &s.running().app.config.monitoring;
    let windows = agentry::monitor::rollup::Windows {
        raw_hours: i64::from(m.raw_retention_hours),
        minute_days: i64::from(m.minute_rollup_days),
        hour_days: i64::from(m.hour_rollup_days),
    };
    agentry::monitor::rollup::run(&s.running().app.db, now, windows)
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let tiers: Vec<i64> = [
        "SELECT COUNT(*) FROM check_results",
        "SELECT COUNT(*) FROM check_rollups WHERE bucket_ms = 60000",
        "SELECT COUNT(*) FROM check_rollups WHERE bucket_ms = 3600000",
    ]
    .iter()
    .map(|q| conn.query_row(q, [], |r| r.get(0)).unwrap())
    .collect();
    assert!(
        tiers.iter().all(|n| *n > 0),
        "every tier holds some: {tiers:?}"
    );

    let before = agentry::db::now_ms();
    let html = get_text(&c, &s, &format!("/monitors/{id}")).await;
    let after = agentry::db::now_ms();
    let rows = history_rows(&html);
    // One row per hour of the last 7 days (plus the current hour).
    assert!(
        (7 * 24..=7 * 24 + 2).contains(&rows.len()),
        "{} rows",
        rows.len()
    );
    let shown: i64 = rows.iter().map(|r| r.0).sum();
    let shown_failures: i64 = rows.iter().map(|r| r.1).sum();
    // Every check since the window's first hour, whichever tier holds it.
    let expected = |page_now: i64| {
        let since = page_now - 7 * DAY;
        let since = since - since.rem_euclid(HOUR);
        let in_window: Vec<usize> = (0..times.len()).filter(|&k| times[k] >= since).collect();
        (
            in_window.len() as i64,
            in_window.iter().filter(|&&k| k % 5 == 0).count() as i64,
        )
    };
    assert!(
        [expected(before), expected(after)].contains(&(shown, shown_failures)),
        "shown {shown}/{shown_failures}, expected {:?}",
        expected(before)
    );

    // The history API over the same data: evenly spaced buckets with no
    // gaps, each range at its bucket size, every tier counted.
    let path = format!("/api/v1/instances/{id}/history");
    for (range, buckets, seconds) in [
        ("1h", 60, 60),
        ("24h", 24, 3600),
        ("7d", 168, 3600),
        ("30d", 30, 86_400),
    ] {
        let h = get_json(&c, &s, &format!("{path}?range={range}")).await;
        assert_eq!(h["range"], range);
        assert_eq!(h["bucket_seconds"], seconds, "{range}");
        let b = h["buckets"].as_array().unwrap();
        assert_eq!(b.len(), buckets, "{range}");
        let counted: i64 = b.iter().map(|x| x["checks"].as_i64().unwrap()).sum();
        assert_eq!(counted, h["checks"].as_i64().unwrap(), "{range}");
    }
    // Nine days of checks, one in five failed: every range but the last
    // hour (which may hold no check at all) says 80 % up.
    let week = get_json(&c, &s, &format!("{path}?range=7d")).await;
    let checks = week["checks"].as_i64().unwrap();
    // The window ends with the current hour: up to an hour of the oldest
    // day falls outside it.
    assert!((7 * 144 - 7..=7 * 144).contains(&checks), "{checks}");
    for key in ["uptime", "uptime_24h", "uptime_7d", "uptime_30d"] {
        let u = week[key].as_f64().unwrap();
        assert!((0.78..=0.82).contains(&u), "{key} {u}");
    }
    // The default range is 24 h; a bad one and an unknown instance are
    // refused.
    let day = get_json(&c, &s, &path).await;
    assert_eq!(day["range"], "24h");
    let res = c
        .get(s.url(&format!("{path}?range=1y")))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, 400).await;
    assert!(p["detail"].as_str().unwrap().contains("30d"), "{p}");
    let res = c
        .get(s.url("/api/v1/instances/nope/history"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 404).await;
    s.stop().await;
}
