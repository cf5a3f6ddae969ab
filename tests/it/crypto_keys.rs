//! The encryption service's keys: batch forms, data keys, rings, rotation
//! (requested, scheduled, at the encryption limit) and the master key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::crypto::{decrypt, encrypt, post};
use crate::support::*;

async fn rings(c: &reqwest::Client, s: &TestServer) -> Value {
    let res = c.get(s.url("/api/v1/crypto/keys")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn ring<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["classification"] == name)
        .unwrap_or_else(|| panic!("no ring {name} in {list}"))
}

#[tokio::test]
async fn batches_answer_per_item_and_bound_their_size() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/encrypt/batch",
        json!({"items": [
            {"data": {"a": 1}, "classification": "internal"},
            {"data": "two", "classification": "nope"},
            {"data": 3},
            {"data": [4], "classification": "restricted", "context": "c4"},
        ]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let r = out["results"].as_array().unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0]["classification"], "internal");
    assert_eq!(r[1]["error"]["code"], "unknown_classification");
    assert_eq!(r[1]["error"]["status"], 422);
    assert_eq!(r[2]["error"]["code"], "invalid_item");
    assert!(r[2]["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("items[2]"));
    assert_eq!(r[3]["key_version"], 1);

    let mut tampered = r[0].clone();
    let mut raw = STANDARD
        .decode(tampered["encrypted_data"].as_str().unwrap())
        .unwrap();
    raw[20] ^= 1;
    tampered["encrypted_data"] = json!(STANDARD.encode(raw));
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/decrypt/batch",
        json!({"items": [
            {"package": r[0]},
            {"package": tampered},
            {"package": r[3], "context": "c4"},
            {"package": r[3], "context": "other"},
            "not an object",
        ]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let d = out["results"].as_array().unwrap();
    assert_eq!(d[0]["data"], json!({"a": 1}));
    assert_eq!(d[1]["error"]["code"], "decryption_failed");
    assert!(d[1].get("data").is_none());
    assert_eq!(d[2]["data"], json!([4]));
    assert_eq!(d[3]["error"]["code"], "decryption_failed");
    assert_eq!(d[4]["error"]["code"], "invalid_item");

    // Rewrap after a rotation: each package moves to version 2 alone.
    let res = c
        .post(s.url("/api/v1/crypto/keys/internal/rotate"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/rewrap/batch",
        json!({"items": [{"package": r[0]}, {"package": tampered}]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let w = out["results"].as_array().unwrap();
    assert_eq!(w[0]["key_version"], 2);
    assert!(w[0].get("data").is_none());
    assert_eq!(w[1]["error"]["code"], "decryption_failed");
    let back: Value = decrypt(&c, &csrf, &s, &w[0], None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["data"], json!({"a": 1}));

    for items in [
        json!([]),
        json!(vec![json!({"data": 1, "classification": "public"}); 1001]),
    ] {
        let res = post(
            &c,
            &csrf,
            &s,
            "/api/v1/crypto/encrypt/batch",
            json!({"items": items}),
        )
        .await;
        let p = expect_problem(res, 422).await;
        assert!(p["detail"].as_str().unwrap().contains("1 to 1000"), "{p}");
    }
    // 1000 items are fine and each is audited.
    let items = vec![json!({"data": "v", "classification": "public"}); 1000];
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/encrypt/batch",
        json!({"items": items}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["results"].as_array().unwrap().len(), 1000);
    let db = s.db_path();
    let _dir = s.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'crypto.encrypt' AND outcome = 'success'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1002);
    let failures: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'crypto.decrypt' AND outcome = 'failure'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, 2);
    let rewraps: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'crypto.rewrap'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rewraps, 2);
}

#[tokio::test]
async fn a_data_key_comes_in_plaintext_and_as_a_package_that_decrypts_to_it() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/datakey",
        json!({"classification": "confidential", "context": "bucket-7"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let k: Value = res.json().await.unwrap();
    assert_eq!(k["algorithm"], "AES-256-GCM");
    let key = STANDARD.decode(k["key"].as_str().unwrap()).unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(k["package"]["classification"], "confidential");
    let res = decrypt(&c, &csrf, &s, &k["package"], Some("bucket-7")).await;
    assert_eq!(res.status(), 200);
    let back: Value = res.json().await.unwrap();
    assert_eq!(back["data"], k["key"]);
    // Two requests, two different keys.
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/datakey",
        json!({"classification": "confidential"}),
    )
    .await;
    let k2: Value = res.json().await.unwrap();
    assert_ne!(k2["key"], k["key"]);
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/datakey",
        json!({"classification": "nope"}),
    )
    .await;
    assert_eq!(
        expect_problem(res, 422).await["code"],
        "unknown_classification"
    );
    let res = post(&c, &csrf, &s, "/api/v1/crypto/datakey", json!({"key": 1})).await;
    assert_eq!(res.status(), 422);
    s.stop().await;
}

#[tokio::test]
async fn admins_add_classifications_and_set_their_rotation() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/keys",
        json!({"classification": "pii", "rotation_days": 30}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let list: Value = res.json().await.unwrap();
    let pii = ring(&list, "pii");
    assert_eq!(pii["requires_specific_permission"], true);
    assert_eq!(pii["rotation_days"], 30);
    assert_eq!(pii["effective_rotation_days"], 30);
    assert!(pii["next_rotation_at"].is_string());
    assert_eq!(pii["versions"][0]["version"], 1);
    assert_eq!(ring(&list, "internal")["rotation_days"], Value::Null);
    assert_eq!(ring(&list, "internal")["effective_rotation_days"], 90);

    let p = encrypt(&c, &csrf, &s, json!("x"), "pii", None).await;
    assert_eq!(decrypt(&c, &csrf, &s, &p, None).await.status(), 200);

    for (body, status, field) in [
        (json!({"classification": "pii"}), 409, ""),
        (json!({"classification": "PII!"}), 422, "classification"),
        (json!({"classification": ""}), 422, "classification"),
        (
            json!({"classification": "x".repeat(33)}),
            422,
            "classification",
        ),
        (
            json!({"classification": "ok", "rotation_days": -1}),
            422,
            "rotation_days",
        ),
        (
            json!({"classification": "ok", "rotation_days": 4000}),
            422,
            "rotation_days",
        ),
        (json!({"classification": "ok", "extra": 1}), 422, ""),
    ] {
        let res = post(&c, &csrf, &s, "/api/v1/crypto/keys", body.clone()).await;
        let p = expect_problem(res, status).await;
        if !field.is_empty() {
            assert!(p["errors"][field].is_string(), "{body}: {p}");
        }
    }

    let patch = |body: Value, class: &str| {
        c.patch(s.url(&format!("/api/v1/crypto/keys/{class}")))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let res = patch(json!({"rotation_days": 0}), "internal")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    assert_eq!(ring(&list, "internal")["effective_rotation_days"], 0);
    assert_eq!(ring(&list, "internal")["next_rotation_at"], Value::Null);
    let res = patch(json!({"rotation_days": null}), "internal")
        .await
        .unwrap();
    let list: Value = res.json().await.unwrap();
    assert_eq!(ring(&list, "internal")["effective_rotation_days"], 90);
    for (body, class, status) in [
        (json!({}), "internal", 422),
        (json!({"rotation_days": -5}), "internal", 422),
        (json!({"min_decryption_version": 2}), "internal", 422),
        (json!({"min_decryption_version": 0}), "internal", 422),
        (json!({"rotation_days": 5}), "nope", 404),
    ] {
        let res = patch(body.clone(), class).await.unwrap();
        expect_problem(res, status).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn a_version_is_rotated_at_its_encryption_limit_and_counts_survive_restart() {
    let s = TestServer::start_with(|c| c.encryption.max_encryptions_per_key = 3).await;
    let (c, csrf) = admin(&s).await;
    let mut versions = Vec::new();
    for i in 0..7 {
        let p = encrypt(&c, &csrf, &s, json!(i), "internal", None).await;
        versions.push(p["key_version"].as_i64().unwrap());
        assert_eq!(decrypt(&c, &csrf, &s, &p, None).await.status(), 200);
    }
    assert_eq!(versions, [1, 1, 1, 2, 2, 2, 3]);
    let list = rings(&c, &s).await;
    let v = &ring(&list, "internal")["versions"];
    assert_eq!(
        v[0]["encryptions"].as_i64().unwrap(),
        4,
        "3 used, the 4th found the limit"
    );
    assert_eq!(v[2]["encryptions"], 1);
    let config = s.running().app.config.as_ref().clone();
    let dir = s.stop().await;
    // The counts are persisted: after a restart version 3 has 2 left.
    let s = TestServer::start_in(dir, config).await;
    let (c, csrf) = admin(&s).await;
    let got: Vec<i64> = {
        let mut v = Vec::new();
        for i in 0..3 {
            let p = encrypt(&c, &csrf, &s, json!(i), "internal", None).await;
            v.push(p["key_version"].as_i64().unwrap());
        }
        v
    };
    assert_eq!(got, [3, 3, 4]);
    let db = s.db_path();
    let _dir = s.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let reasons: Vec<String> = conn
        .prepare("SELECT details FROM audit_log WHERE action = 'crypto.key.rotate' AND target_id = 'internal' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    // Version 1 came with the ring; 2, 3 and 4 each at the limit.
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().all(|d| d.contains("encryption_limit")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn rings_rotate_on_schedule() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let old = encrypt(&c, &csrf, &s, json!("kept"), "confidential", None).await;
    let app = &s.running().app;
    agentry::scheduler::housekeeping(app).await;
    assert_eq!(
        ring(&rings(&c, &s).await, "confidential")["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Age every key by 91 days, as if time had passed.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute(
        "UPDATE data_keys SET created_at = created_at - 91 * 86400000",
        [],
    )
    .unwrap();
    // internal rotates on demand only: it stays at one version.
    let res = c
        .patch(s.url("/api/v1/crypto/keys/internal"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"rotation_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    agentry::scheduler::housekeeping(app).await;
    let list = rings(&c, &s).await;
    for class in ["public", "confidential", "restricted"] {
        assert_eq!(
            ring(&list, class)["versions"].as_array().unwrap().len(),
            2,
            "{class}"
        );
    }
    assert_eq!(
        ring(&list, "internal")["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let new = encrypt(&c, &csrf, &s, json!("new"), "confidential", None).await;
    assert_eq!(new["key_version"], 2);
    assert_eq!(decrypt(&c, &csrf, &s, &old, None).await.status(), 200);
    // Nothing more is due right after.
    agentry::scheduler::housekeeping(app).await;
    assert_eq!(
        ring(&rings(&c, &s).await, "confidential")["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    s.stop().await;
}

fn rotate_master(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    command()
        .env("AGENTRY_DATA_DIR", data_dir)
        .args(["keys", "rotate-master"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_master_key_rotates_and_everything_old_still_opens() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let mut packages = Vec::new();
    for class in ["public", "internal", "confidential", "restricted"] {
        packages.push(encrypt(&c, &csrf, &s, json!({"class": class}), class, Some("m")).await);
    }
    let res = c
        .post(s.url("/api/v1/crypto/keys/internal/rotate"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    packages.push(encrypt(&c, &csrf, &s, json!("v2"), "internal", None).await);
    let jwks: Value = get_json(&c, &s, "/.well-known/jwks.json").await;
    let data_dir = s.running().app.config.data_dir.clone();
    let config = s.running().app.config.as_ref().clone();

    // Refused while the server holds the data directory.
    let out = rotate_master(&data_dir, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stop it"), "{err}");

    let dir = s.stop().await;
    let old_key = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    let out = rotate_master(&data_dir, &["--keep-old"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("5 data key(s), 1 signing key(s) and 2 appliance key(s)"),
        "{said}"
    );
    let new_key = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    assert_ne!(old_key, new_key);
    let backups: Vec<_> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("master.key.") && n.ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read_to_string(data_dir.join(&backups[0])).unwrap(),
        old_key
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data_dir.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The same database opens with the new key: packages, tokens' keys,
    // the audit chain and sessions' CSRF all carry on.
    let s = TestServer::start_in(dir, config.clone()).await;
    let (c, csrf) = admin(&s).await;
    for p in &packages {
        let ctx = if p["key_version"] == 2 {
            None
        } else {
            Some("m")
        };
        let res = decrypt(&c, &csrf, &s, p, ctx).await;
        assert_eq!(res.status(), 200, "{p}");
    }
    let after: Value = get_json(&c, &s, "/.well-known/jwks.json").await;
    assert_eq!(after, jwks);
    let report: Value = get_json(&c, &s, "/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    let dir = s.stop().await;

    // The old key no longer opens the database: a clear refusal at start.
    std::fs::write(data_dir.join("master.key"), &old_key).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = match agentry::start(config.clone(), listener).await {
        Ok(_) => panic!("started with the wrong master key"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("master key does not belong to this database"),
        "{err}"
    );
    let out = command()
        .env("AGENTRY_DATA_DIR", &data_dir)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key does not belong"));

    // A rotation that committed but did not rename its key file is
    // finished at the next start.
    std::fs::write(data_dir.join("master.key.new"), &new_key).unwrap();
    let s = TestServer::start_in(dir, config).await;
    assert_eq!(
        std::fs::read_to_string(data_dir.join("master.key")).unwrap(),
        new_key
    );
    assert!(!data_dir.join("master.key.new").exists());
    let (c, csrf) = admin(&s).await;
    assert_eq!(
        decrypt(&c, &csrf, &s, &packages[0], Some("m"))
            .await
            .status(),
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn rotate_master_with_the_key_in_the_environment_writes_the_new_key_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env_key = STANDARD.encode([9u8; 32]);
    let run = |args: &[&str], key: &str| {
        command()
            .env("AGENTRY_DATA_DIR", &data)
            .env("AGENTRY_MASTER_KEY", key)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["migrate"], &env_key).status.success());
    assert!(run(&["audit", "verify"], &env_key).status.success());
    let out = run(&["keys", "rotate-master"], &env_key);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--new-key-file"));
    let target = dir.path().join("new.key");
    let out = run(
        &[
            "keys",
            "rotate-master",
            "--new-key-file",
            target.to_str().unwrap(),
        ],
        &env_key,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_key = std::fs::read_to_string(&target).unwrap();
    let out = run(&["audit", "verify"], &env_key);
    assert_eq!(out.status.code(), Some(1), "the old key is refused");
    let out = run(&["audit", "verify"], new_key.trim());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A malformed key is a named error.
    let out = run(&["audit", "verify"], "c2hvcnQ=");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AGENTRY_MASTER_KEY"));
}
