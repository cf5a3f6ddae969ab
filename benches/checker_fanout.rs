//! Health-check fan-out: the release binary checks N HTTP instances (default
//! 2,000) every 10 s against a stub on loopback for a while (default 60 s
//! after a warm-up round). Reports checks/s, start lateness p99 (from the
//! binary's own /metrics histogram), its CPU % of one core and its RSS.
//!
//!   cargo bench --bench checker_fanout [-- INSTANCES SECONDS]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "checker bench password";

/// A keep-alive HTTP/1.1 stub answering `200 ok` to everything.
async fn stub() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut pending = Vec::new();
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if sock.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let i = text.find(start).expect(start) + start.len();
    &text[i..i + text[i..].find(end).expect(end)]
}

/// (user + system CPU seconds, RSS bytes) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb: u64 = between(&status, "VmRSS:", "kB").trim().parse().unwrap();
    (ticks / 100.0, rss_kb * 1024)
}

/// (checks total, lateness histogram buckets as (le, count)).
async fn scrape(c: &reqwest::Client, base: &str) -> (f64, Vec<(f64, f64)>) {
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut checks = 0.0;
    let mut buckets = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("agentry_health_checks_total ") {
            checks = v.parse().unwrap();
        }
        if let Some(rest) = line.strip_prefix("agentry_health_check_lateness_seconds_bucket{le=\"")
        {
            let (le, count) = rest.split_once("\"} ").unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            buckets.push((le, count.parse().unwrap()));
        }
    }
    (checks, buckets)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let instances = args.first().copied().unwrap_or(2000);
    let seconds = args.get(1).copied().unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let url = stub().await;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agentry"))
            .env("AGENTRY_DATA_DIR", dir.path().join("data"))
            .env("AGENTRY_LISTEN", format!("127.0.0.1:{port}"))
            .env("AGENTRY_ADMIN_PASSWORD", PASSWORD)
            .env("AGENTRY_SYSTEMD__NOTIFY", "false")
            .env("AGENTRY_LOG__LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
        for _ in 0..200 {
            if c.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let page = c.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
        let token = between(&page, "name=\"csrf_token\" value=\"", "\"").to_string();
        c.post(format!("{base}/login"))
            .form(&[("username", "admin"), ("password", PASSWORD), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        let home = c.get(format!("{base}/")).send().await.unwrap().text().await.unwrap();
        let csrf = between(&home, "<meta name=\"csrf-token\" content=\"", "\"").to_string();
        let agent: serde_json::Value = c
            .post(format!("{base}/api/v1/agents"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"name": "fleet", "agent_type": "planner"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for i in 0..instances {
            let res = c
                .post(format!("{base}/api/v1/instances"))
                .header("x-csrf-token", &csrf)
                .json(&serde_json::json!({"agent_id": agent["id"], "name": format!("i{i}"), "kind": "http",
                    "url": url, "interval_seconds": 10, "timeout_ms": 2000}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
        // One round to spread over the interval and open connections.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let pid = child.id();
        let (checks0, buckets0) = scrape(&c, &base).await;
        let (cpu0, _) = usage(pid);
        let t0 = Instant::now();
        let mut rss_max = 0;
        while t0.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss_max = rss_max.max(usage(pid).1);
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let (checks1, buckets1) = scrape(&c, &base).await;
        let (cpu1, rss) = usage(pid);
        let rss_max = rss_max.max(rss);
        let deltas: Vec<(f64, f64)> = buckets1
            .iter()
            .zip(&buckets0)
            .map(|((le, n1), (_, n0))| (*le, n1 - n0))
            .collect();
        let total = deltas.last().map(|(_, n)| *n).unwrap_or(0.0);
        let p99 = deltas
            .iter()
            .find(|(_, n)| *n >= 0.99 * total)
            .map(|(le, _)| *le)
            .unwrap_or(f64::NAN);
        println!(
            "{instances} instances every 10 s for {elapsed:.0} s: {:.0} checks/s (ideal {:.0}), lateness p99 <= {} s, \
             agentry CPU {:.1} % of one core, RSS {:.1} MB (max {:.1} MB)",
            (checks1 - checks0) / elapsed,
            instances as f64 / 10.0,
            p99,
            (cpu1 - cpu0) / elapsed * 100.0,
            rss as f64 / 1e6,
            rss_max as f64 / 1e6
        );
        let _ = child.kill();
        let _ = child.wait();
    });
}
