//! Pushes audit records through the group-commit writer from 64 concurrent
//! tasks for a fixed time and reports committed records per second and the
//! submit-to-commit latency (what an audited request waits for).
//!
//! `cargo bench --bench audit_writer [-- SECONDS]`

use std::time::{Duration, Instant};

use agentry::audit::{Audit, ChainKey, Context, Outcome};
use agentry::config::Config;
use agentry::server;

const TASKS: usize = 64;

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    server::prepare_data_dir(&config.data_dir).unwrap();
    let (mk, _) = server::load_master_key(&config).unwrap();
    let opened = server::open_database(&config, mk).unwrap();
    let key = ChainKey::new(opened.keys.audit_chain);
    let audit = Audit::start(&config.database_path(), server::pragmas(&config), key).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (count, mut latencies) = rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let audit = audit.clone();
            tasks.push(tokio::spawn(async move {
                let ctx = Context::system("bench");
                let mut lat = Vec::with_capacity(200_000);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let ev = ctx
                        .event("bench.record", Outcome::Success)
                        .target("thing", format!("t{t}-{i}"))
                        .detail("task", t)
                        .detail("i", i);
                    let started = Instant::now();
                    audit.record(ev).await.expect("record committed");
                    lat.push(started.elapsed());
                    i += 1;
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        audit.shutdown().await;
        (all.len(), all)
    });
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("audit writer, {TASKS} concurrent submitters, {secs} s");
    println!(
        "  committed: {count} records, {:.0} records/s",
        count as f64 / secs as f64
    );
    println!(
        "  submit-to-commit latency: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().unwrap()
    );
    let conn = rusqlite::Connection::open(config.database_path()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    println!("  rows in audit_log: {n}");
}
