//! Outbox throughput: N notifications (default 20,000) queued at once for a
//! webhook channel whose receiver is a keep-alive HTTP/1.1 server on
//! loopback; reports deliveries/s from the first delivery to the last
//! recorded one. Runs the appliance in-process (as the tests do).
//!
//!   cargo bench --bench outbox_delivery [-- COUNT]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "outbox bench password";

/// Answers 204 to every request, reading bodies by Content-Length.
async fn receiver(count: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut pending: Vec<u8> = Vec::new();
                loop {
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if pending.len() < end + 4 + len {
                            break;
                        }
                        pending.drain(..end + 4 + len);
                        count.fetch_add(1, Ordering::Relaxed);
                        if sock
                            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
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

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut config = agentry::Config {
            data_dir: dir.path().join("data"),
            admin_password: Some(SecretString::from(PASSWORD)),
            ..agentry::Config::default()
        };
        config.systemd.notify = false;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let running = agentry::start(config, listener).await.unwrap();
        let base = format!("http://{}", running.addr);
        let delivered = Arc::new(AtomicUsize::new(0));
        let hook = receiver(delivered.clone()).await;

        let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let page = c.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
        let token = between(&page, "name=\"csrf_token\" value=\"", "\"").to_string();
        let home = c
            .post(format!("{base}/login"))
            .form(&[("username", "admin"), ("password", PASSWORD), ("csrf_token", &token)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = between(&home, "<meta name=\"csrf-token\" content=\"", "\"").to_string();
        let channel: serde_json::Value = c
            .post(format!("{base}/api/v1/channels"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"name": "bench", "type": "webhook",
                "settings": {"url": hook, "secret": "bench signing secret 0123"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let channel_id = channel["id"].as_str().expect("channel created").to_string();

        // Queue N notifications in one transaction, due a moment later.
        let db = dir.path().join("data").join("agentry.db");
        let due = agentry::db::now_ms() + 500;
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for _ in 0..n {
            let id = agentry::db::new_id();
            let msg = agentry::notify::Message::test(&id, "bench", &base);
            conn.execute(
                "INSERT INTO notifications (id, channel_id, channel, kind, message, status, attempts,
                     next_attempt_at, created_at) VALUES (?1, ?2, 'bench', 'test', ?3, 'pending', 0, ?4, ?4)",
                rusqlite::params![id, channel_id, serde_json::to_string(&msg).unwrap(), due],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();

        while delivered.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let start = Instant::now();
        let recorded = || -> i64 {
            conn.query_row("SELECT COUNT(*) FROM notifications WHERE status = 'delivered'", [], |r| r.get(0))
                .unwrap()
        };
        while recorded() < n as i64 {
            assert!(start.elapsed() < Duration::from_secs(600), "not all delivered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "outbox: {n} notifications delivered and recorded in {secs:.2} s = {:.0} deliveries/s; {} requests received ({} repeated)",
            n as f64 / secs,
            delivered.load(Ordering::Relaxed),
            delivered.load(Ordering::Relaxed).saturating_sub(n)
        );
        running.stop().await;
    });
}
