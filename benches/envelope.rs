//! Envelope encryption against raw AES-256-GCM on the same payload: what
//! the key ring lookup, encryption counting, JSON and base64 cost on top of
//! the cipher. Each sample runs the whole round trip (encrypt, then
//! decrypt) through the same `KeyRing` the HTTP handlers use.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use agentry::audit::{Audit, ChainKey};
use agentry::config::Config;
use agentry::crypto::data_keys::WRAP_KEY_LABEL;
use agentry::encryption::keyring::{KeyRing, Limits};
use agentry::server;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

struct Setup {
    rt: tokio::runtime::Runtime,
    db: agentry::db::Db,
    audit: Audit,
    ring: KeyRing,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    server::prepare_data_dir(&config.data_dir).unwrap();
    let (mk, _) = server::load_master_key(&config).unwrap();
    let opened = server::open_database(&config, mk).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let audit = rt.block_on(async {
        Audit::start(
            &config.database_path(),
            server::pragmas(&config),
            ChainKey::new(opened.keys.audit_chain),
        )
        .unwrap()
    });
    let ring = KeyRing::new(
        opened.master_key.derive(WRAP_KEY_LABEL),
        Limits {
            max_encryptions: config.encryption.max_encryptions_per_key,
            rotation_days: 0,
        },
    );
    rt.block_on(ring.ensure_defaults(&opened.db, &audit))
        .unwrap();
    Setup {
        rt,
        db: opened.db,
        audit,
        ring,
        _dir: dir,
    }
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("round_trip");
    for size in [1024usize, 64 * 1024] {
        let value = serde_json::value::to_raw_value(&"x".repeat(size - 2)).unwrap();
        let bytes = value.get().as_bytes().to_vec();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let label = format!("{} KiB", size / 1024);

        let cipher = Aes256Gcm::new(&[7u8; 32].into());
        group.bench_with_input(
            BenchmarkId::new("raw_aes_gcm", &label),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let nonce = [1u8; 12];
                    let aad = b"agentry-envelope-v1\x00dk_0000000000000000\x001\x00\x00";
                    let ct = cipher
                        .encrypt(Nonce::from_slice(&nonce), Payload { msg: bytes, aad })
                        .unwrap();
                    let pt = cipher
                        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
                        .unwrap();
                    black_box(pt)
                })
            },
        );

        group.bench_with_input(BenchmarkId::new("envelope", &label), &value, |b, value| {
            b.iter_custom(|iters| {
                s.rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let p = s
                            .ring
                            .encrypt(&s.db, &s.audit, "internal", value, None)
                            .await
                            .unwrap();
                        let back = s.ring.decrypt(&s.db, &s.audit, &p, None).await.unwrap();
                        black_box(back);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
