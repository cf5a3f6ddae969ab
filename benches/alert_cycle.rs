//! A whole evaluation cycle as the scheduler runs it — reading rules and
//! series from SQLite, evaluating, planning, writing alerts, events and
//! outbox rows — for 1,000 rules over 10,000 series (100 metrics × 100
//! series, one rule in 20 matching a few series). Reports the first cycle
//! (which opens every alert) and the median of the steady cycles after it.
//!
//!   cargo bench --bench alert_cycle

use std::time::{Duration, Instant};

use secrecy::SecretString;

const METRICS: usize = 100;
const SERIES: usize = 100;
const RULES: usize = 1_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = agentry::Config {
            data_dir: dir.path().join("data"),
            admin_password: Some(SecretString::from("alert cycle bench password")),
            ..agentry::Config::default()
        };
        config.systemd.notify = false;
        // The bench drives the cycles itself.
        config.alerting.evaluation_interval_seconds = 3600;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let running = agentry::start(config, listener).await.unwrap();

        let db = dir.path().join("data").join("agentry.db");
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let now = agentry::db::now_ms();
        let tx = conn.transaction().unwrap();
        // Seeded rules out of the way: the 1,000 below are the load.
        tx.execute("DELETE FROM alert_rules", []).unwrap();
        for m in 0..METRICS {
            for s in 0..SERIES {
                let labels = format!(
                    r#"{{"agent":"agent-{}","agent_type":"type-{}","instance":"i-{s}","region":"r-{}"}}"#,
                    s % 25,
                    s % 4,
                    s % 3
                );
                tx.execute(
                    "INSERT INTO metric_series (name, labels, reporter, created_at) VALUES (?1, ?2, 'bench', ?3)",
                    rusqlite::params![format!("metric_{m}"), labels, now],
                )
                .unwrap();
                let id = tx.last_insert_rowid();
                tx.execute(
                    "INSERT INTO metric_samples (series_id, at, value) VALUES (?1, ?2, ?3)",
                    rusqlite::params![id, now - 1000, s as f64],
                )
                .unwrap();
            }
        }
        for r in 0..RULES {
            let m = r % METRICS;
            // One rule in 20 matches the top few series; the rest match none.
            let threshold = if r % 20 == 0 { 96 } else { 1000 };
            let expression = match r % 4 {
                0 => format!("metric_{m} > {threshold}"),
                1 => format!("metric_{m}{{region=\"r-1\"}} > {threshold} for 5m"),
                2 => format!("metric_{m} > {threshold} or metric_{} > 5000", (m + 1) % METRICS),
                _ => format!("metric_{m}{{agent=~\"agent-1.*\"}} >= {threshold} in 10m"),
            };
            tx.execute(
                "INSERT INTO alert_rules (name, expression, severity, channels, escalation_policy, labels,
                     annotations, enabled, created_at, updated_at)
                 VALUES (?1, ?2, 'minor', '[\"ops\"]', NULL, '{}', '{\"summary\":\"{{ $labels.instance }} at {{ $value }}\"}', 1, ?3, ?3)",
                rusqlite::params![format!("rule_{r}"), expression, now],
            )
            .unwrap();
        }
        tx.commit().unwrap();

        let app = &running.app;
        let t = Instant::now();
        let first = app.alerts.cycle(&app.db, &app.audit, agentry::db::now_ms()).await.unwrap();
        let first_ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut times = Vec::new();
        let mut last = first.clone();
        for _ in 0..20 {
            let t = Instant::now();
            last = app.alerts.cycle(&app.db, &app.audit, agentry::db::now_ms()).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "alert cycle, {RULES} rules over {} series: first {first_ms:.1} ms ({} hits, {} notifications queued); \
             steady median {:.1} ms, max {:.1} ms ({} hits)",
            METRICS * SERIES,
            first.hits,
            first.notifications,
            times[times.len() / 2],
            times[times.len() - 1],
            last.hits
        );
        running.stop().await;
    });
}
