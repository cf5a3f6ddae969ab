//! The audit trail end to end.

use std::collections::HashSet;

use agentry::audit::{chain, ChainKey, Head};
use agentry::crypto::MasterKey;
use serde_json::{json, Value};

use crate::support::*;

fn chain_key(data_dir: &std::path::Path) -> ChainKey {
    let (mk, _) = MasterKey::load_or_create(data_dir).unwrap();
    ChainKey::new(mk.derive(chain::KEY_LABEL))
}

fn records(db: &std::path::Path) -> Vec<(i64, String, String, Option<String>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT seq, action, outcome, reason FROM audit_log ORDER BY seq")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count_action(db: &std::path::Path, action: &str, outcome: &str) -> usize {
    records(db)
        .iter()
        .filter(|r| r.1 == action && r.2 == outcome)
        .count()
}

#[tokio::test]
async fn each_event_kind_is_recorded_once_with_its_outcome() {
    let s = TestServer::start_with(|c| c.login.max_failures = 2).await;
    let db = s.db_path();
    // Bootstrap and start.
    assert_eq!(count_action(&db, "user.create", "success"), 1);
    assert_eq!(count_action(&db, "role.seed", "success"), 1);
    assert_eq!(count_action(&db, "system.start", "success"), 1);

    let (c, csrf) = admin(&s).await;
    assert_eq!(count_action(&db, "auth.login", "success"), 1);
    let u = create_user(&s, &c, &csrf, "bob", "bob's long password").await;
    let id = u["id"].as_str().unwrap();
    assert_eq!(count_action(&db, "user.create", "success"), 2);

    // A failed create (validation) is recorded as a failure.
    let res = c
        .post(s.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"username": "x", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(count_action(&db, "user.create", "failure"), 1);
    // A conflict too, with the change rolled back.
    let res = c
        .post(s.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"username": "bob", "password": "another long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(count_action(&db, "user.create", "failure"), 2);

    let patch = |body: Value| {
        c.patch(s.url(&format!("/api/v1/users/{id}")))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    assert_eq!(
        patch(json!({"display_name": "Bob"}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(count_action(&db, "user.update", "success"), 1);

    // Failed logins: unknown user, wrong password, then a lockout.
    let anon = client();
    assert_eq!(
        post_login(&s, &anon, "nobody", "whatever whatever")
            .await
            .status(),
        401
    );
    assert_eq!(
        post_login(&s, &anon, "bob", "wrong wrong wrong")
            .await
            .status(),
        401
    );
    assert_eq!(
        post_login(&s, &anon, "bob", "wrong wrong wrong")
            .await
            .status(),
        401
    );
    let reasons: Vec<Option<String>> = records(&db)
        .into_iter()
        .filter(|r| r.1 == "auth.login" && r.2 == "failure")
        .map(|r| r.3)
        .collect();
    assert_eq!(
        reasons,
        vec![
            Some("unknown_user".to_string()),
            Some("bad_password".to_string()),
            Some("bad_password_account_locked".to_string())
        ]
    );
    assert_eq!(count_action(&db, "auth.lockout", "success"), 1);

    let res = c
        .post(s.url(&format!("/api/v1/users/{id}/unlock")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(count_action(&db, "user.unlock", "success"), 1);
    let res = c
        .post(s.url(&format!("/api/v1/users/{id}/password")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"password": "bob's newer password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(count_action(&db, "user.password.reset", "success"), 1);

    // Bob, without user:manage, is denied — and that is recorded.
    let bob = client();
    let bcsrf = login(&s, &bob, "bob", "bob's newer password").await;
    assert_eq!(
        bob.get(s.url("/api/v1/users"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(count_action(&db, "authz.check", "denied"), 1);
    let res = bob.get(s.url("/api/v1/audit")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(count_action(&db, "authz.check", "denied"), 2);
    let res = bob
        .post(s.url("/logout"))
        .form(&[("csrf_token", bcsrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(count_action(&db, "auth.logout", "success"), 1);

    let res = c
        .delete(s.url(&format!("/api/v1/users/{id}/sessions")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(count_action(&db, "user.sessions.revoke", "success"), 1);
    let res = c
        .delete(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(count_action(&db, "user.delete", "success"), 1);

    // Reading the log is recorded too, and the read sees itself.
    let page: Value = get_json(&c, &s, "/api/v1/audit?limit=5").await;
    assert_eq!(page["items"][0]["action"], "audit.read");
    assert_eq!(page["items"][0]["actor_name"], "admin");
    assert!(page["items"][0]["request_id"].is_string());
    assert!(page["items"][0]["source_ip"].is_string());
    assert_eq!(count_action(&db, "audit.read", "success"), 1);

    let report: Value = get_json(&c, &s, "/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(count_action(&db, "audit.verify", "success"), 1);
    let _dir = s.stop().await;
    assert_eq!(count_action(&db, "system.stop", "success"), 1);
}

#[tokio::test]
async fn cli_actions_are_recorded_in_the_same_chain() {
    let s = TestServer::start().await;
    let data = s.running().app.config.data_dir.clone();
    let db = s.db_path();
    // While the server runs, the CLI appends to the same chain.
    let mut child = command()
        .env("AGENTRY_DATA_DIR", &data)
        .args(["admin", "create", "--username", "ops", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin("ops password long\n");
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    child = command()
        .env("AGENTRY_DATA_DIR", &data)
        .args([
            "admin",
            "reset-password",
            "--username",
            "ops",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin("ops newer password\n");
    assert!(child.status.success());
    let backup = s.dir.path().join("b.db");
    let out = command()
        .env("AGENTRY_DATA_DIR", &data)
        .args(["backup", backup.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The server keeps appending after the CLI did.
    let (c, _) = admin(&s).await;
    let _ = c.get(s.url("/api/v1/audit/head")).send().await.unwrap();
    assert_eq!(count_action(&db, "user.password.reset", "success"), 1);
    assert_eq!(count_action(&db, "system.backup", "success"), 1);
    let cli_create = records(&db)
        .into_iter()
        .filter(|r| r.1 == "user.create")
        .count();
    assert_eq!(cli_create, 2);
    let out = command()
        .env("AGENTRY_DATA_DIR", &data)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert!(report["checked"].as_u64().unwrap() >= 8);
    s.stop().await;
}

trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output;
}

impl OutputWithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

/// A server with `n` extra records, stopped; returns its dir and db path.
async fn log_with_records(n: usize) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let s = TestServer::start().await;
    let ctx = agentry::audit::Context::system("test");
    for i in 0..n {
        let ev = ctx
            .event("test.event", agentry::audit::Outcome::Success)
            .target("thing", format!("t{i}"))
            .detail("i", i);
        s.running().app.audit.record(ev).await.unwrap();
    }
    let db = s.db_path();
    let data = s.running().app.config.data_dir.clone();
    let dir = s.stop().await;
    (dir, db, data)
}

fn verify_copy(
    db: &std::path::Path,
    key: &ChainKey,
    tamper: &str,
    saved: Option<Head>,
) -> agentry::audit::VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let src = rusqlite::Connection::open(db).unwrap();
    src.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let c = rusqlite::Connection::open(&copy).unwrap();
    // An attacker with the file can drop the guard triggers.
    c.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    c.execute_batch(tamper).unwrap();
    agentry::audit::verify_sync(&c, key, saved).unwrap()
}

#[tokio::test]
async fn any_tampering_is_found_at_the_first_bad_record() {
    let (_dir, db, data) = log_with_records(20).await;
    let key = chain_key(&data);
    let clean = verify_copy(&db, &key, "SELECT 1", None);
    assert!(clean.ok, "{clean:?}");
    let total = clean.head.as_ref().unwrap().seq;
    assert!(total >= 22);

    // Every field of a record, one at a time.
    let edits = [
        "at = at + 1",
        "actor_type = 'user'",
        "actor_id = 'someone'",
        "actor_name = 'mallory'",
        "action = 'test.other'",
        "target_type = 'other'",
        "target_id = 'x'",
        "outcome = 'failure'",
        "reason = 'edited'",
        "source_ip = '10.0.0.1'",
        "user_agent = 'curl'",
        "request_id = 'r'",
        "details = '{\"i\":99}'",
        "prev_hash = hash",
        "hash = prev_hash",
    ];
    for edit in edits {
        let r = verify_copy(
            &db,
            &key,
            &format!("UPDATE audit_log SET {edit} WHERE seq = 7"),
            None,
        );
        assert!(!r.ok, "{edit} went unnoticed");
        assert_eq!(r.first_bad.as_ref().unwrap().seq, 7, "{edit}: {r:?}");
    }
    // A record removed from the middle.
    let r = verify_copy(&db, &key, "DELETE FROM audit_log WHERE seq = 9", None);
    assert_eq!(r.first_bad.unwrap().seq, 9);
    // Removed and the rest renumbered to hide the gap.
    let r = verify_copy(
        &db,
        &key,
        "DELETE FROM audit_log WHERE seq = 9; UPDATE audit_log SET seq = seq - 1 WHERE seq > 9",
        None,
    );
    assert_eq!(r.first_bad.unwrap().seq, 9);
    // Two records swapped.
    let r = verify_copy(
        &db,
        &key,
        "UPDATE audit_log SET seq = -1 WHERE seq = 11; UPDATE audit_log SET seq = 11 WHERE seq = 12;
         UPDATE audit_log SET seq = 12 WHERE seq = -1;",
        None,
    );
    assert_eq!(r.first_bad.unwrap().seq, 11);
    // The newest records deleted: invisible without a saved head, found with one.
    let saved = clean.head.clone();
    let cut = format!("DELETE FROM audit_log WHERE seq > {}", total - 3);
    assert!(verify_copy(&db, &key, &cut, None).ok);
    let r = verify_copy(&db, &key, &cut, saved.clone());
    assert!(!r.ok);
    assert_eq!(r.first_bad.as_ref().unwrap().seq, total - 2, "{r:?}");
    // A saved head whose hash differs (the newest record rewritten).
    let r = verify_copy(
        &db,
        &key,
        "SELECT 1",
        Some(Head {
            seq: total,
            hash: "0".repeat(64),
        }),
    );
    assert_eq!(r.first_bad.unwrap().seq, total);
    // A record forged with a recomputed plain SHA-256 still fails: the chain is keyed.
    let wrong_key = ChainKey::new(MasterKey::generate().derive(chain::KEY_LABEL));
    assert!(!verify_copy(&db, &wrong_key, "SELECT 1", None).ok);
}

#[tokio::test]
async fn retention_prunes_behind_a_checkpoint_that_keeps_the_chain_verifiable() {
    let s = TestServer::start().await;
    let (c, _) = admin(&s).await;
    let db = s.db_path();
    let before = records(&db).len();
    // Everything so far is "old": prune up to now.
    let cutoff = agentry::db::now_ms() + 1;
    let removed = s.running().app.audit.prune(cutoff).await.unwrap();
    assert_eq!(removed, before);
    let r: Value = get_json(&c, &s, "/api/v1/audit/verify").await;
    assert_eq!(r["ok"], true, "{r}");
    // Records after the prune continue the chain from the checkpoint.
    let first_left = records(&db)[0].0;
    assert_eq!(first_left as usize, before + 1);
    // The guard trigger refuses deleting records after the checkpoint.
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert!(conn
        .execute("DELETE FROM audit_log WHERE seq = ?1", [first_left])
        .is_err());
    assert!(conn
        .execute(
            "UPDATE audit_log SET reason = 'x' WHERE seq = ?1",
            [first_left]
        )
        .is_err());
    // Moving the checkpoint is detected.
    conn.execute("UPDATE audit_checkpoint SET seq = seq - 1", [])
        .unwrap();
    let r: Value = get_json(&c, &s, "/api/v1/audit/verify").await;
    assert_eq!(r["ok"], false, "{r}");
    s.stop().await;
}

#[tokio::test]
async fn bad_filters_are_400_problems() {
    let s = TestServer::start().await;
    let (c, _) = admin(&s).await;
    for q in [
        "/api/v1/audit?since=yesterday",
        "/api/v1/audit?until=2026-13-01T00:00:00Z",
        "/api/v1/audit?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
        "/api/v1/audit?outcome=maybe",
        "/api/v1/audit?limit=-1",
        "/api/v1/audit?limit=0",
        "/api/v1/audit?limit=5000",
        "/api/v1/audit?cursor=bogus",
        "/api/v1/audit?color=blue",
        "/api/v1/audit?format=csv",
        "/api/v1/audit/export?format=xml",
        "/api/v1/audit/export?limit=5",
        "/api/v1/audit/verify?head_seq=3",
        "/api/v1/audit/verify?head_seq=-3&head_hash=00",
        "/api/v1/audit/verify?head_seq=abc",
    ] {
        let res = c.get(s.url(q)).send().await.unwrap();
        let p = expect_problem(res, 400).await;
        assert!(p["detail"].as_str().unwrap().len() > 5, "{q}: {p}");
    }
    let long = "a".repeat(300);
    expect_problem(
        c.get(s.url(&format!("/api/v1/audit?actor={long}")))
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn filters_select_the_right_records() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    create_user(&s, &c, &csrf, "carol", "carol's long password").await;
    let anon = client();
    post_login(&s, &anon, "carol", "wrong password!!").await;
    let get = |q: &str| {
        let url = s.url(&format!("/api/v1/audit?{q}"));
        let c = c.clone();
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let page = get("action=auth.*&outcome=failure").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["reason"], "bad_password");
    assert_eq!(items[0]["actor_name"], "carol");
    let page = get("actor=admin&action=user.create").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let future = get("since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    s.stop().await;
}

#[tokio::test]
async fn pagination_never_skips_or_repeats_while_writes_continue() {
    let (dir, _db, _data) = log_with_records(150).await;
    let config = test_config(dir.path());
    let s = TestServer::start_in(dir, config).await;
    let (c, _) = admin(&s).await;
    // A writer keeps appending while we page (bounded: 400 records).
    let audit = s.running().app.audit.clone();
    let writer = tokio::spawn(async move {
        let ctx = agentry::audit::Context::system("load");
        for _ in 0..400 {
            audit
                .record(ctx.event("test.concurrent", agentry::audit::Outcome::Success))
                .await
                .unwrap();
        }
    });
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = s.url("/api/v1/audit?limit=7");
        if let Some(cur) = &cursor {
            url.push_str(&format!("&cursor={cur}"));
        }
        let page: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        for r in page["items"].as_array().unwrap() {
            seen.push(r["seq"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    writer.await.unwrap();
    let top = seen[0];
    let expected: Vec<i64> = (1..=top).rev().collect();
    assert_eq!(seen, expected, "pages skipped or repeated records");
    s.stop().await;
}

#[tokio::test]
async fn export_streams_100k_records_in_order() {
    let s = TestServer::start().await;
    let (c, _) = admin(&s).await;
    let audit = s.running().app.audit.clone();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let audit = audit.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = agentry::audit::Context::system("bulk");
            for i in 0..1563 {
                let ev = ctx
                    .event("test.bulk", agentry::audit::Outcome::Success)
                    .detail("t", t)
                    .detail("i", i);
                audit.record(ev).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let res = c
        .get(s.url("/api/v1/audit/export?format=jsonl&action=test.bulk"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("content-length").is_none(),
        "the export must be streamed, not buffered"
    );
    assert_eq!(res.headers()["content-type"], "application/jsonl");
    let mut stream = res.bytes_stream();
    use futures_util::StreamExt;
    let (mut lines, mut last_seq, mut chunks, mut buf) = (0u64, 0i64, 0u32, Vec::new());
    while let Some(chunk) = stream.next().await {
        chunks += 1;
        buf.extend_from_slice(&chunk.unwrap());
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let rec: Value = serde_json::from_slice(&line).unwrap();
            let seq = rec["seq"].as_i64().unwrap();
            assert!(seq > last_seq);
            last_seq = seq;
            lines += 1;
        }
    }
    assert_eq!(lines, 64 * 1563);
    assert!(chunks > 10, "arrived in {chunks} chunks");
    let csv = c
        .get(s.url("/api/v1/audit/export?format=csv&action=system.*"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("seq,time,actor_type"));
    assert!(text.contains("system.start"));
    s.stop().await;
}

#[tokio::test]
async fn no_secret_reaches_the_audit_trail() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let secrets = [
        "dave's very secret pw",
        "dave's next secret pw",
        "eve's secret password",
    ];
    let u = create_user(&s, &c, &csrf, "dave", secrets[0]).await;
    let id = u["id"].as_str().unwrap();
    let res = c
        .post(s.url(&format!("/api/v1/users/{id}/password")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"password": secrets[1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    post_login(&s, &client(), "dave", secrets[2]).await;
    let dave = client();
    let res = post_login(&s, &dave, "dave", secrets[1]).await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_string();

    let export = c
        .get(s.url("/api/v1/audit/export?format=jsonl"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csv = c
        .get(s.url("/api/v1/audit/export?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let db = s.db_path();
    let _dir = s.stop().await;
    let mut file_bytes = Vec::new();
    for e in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        file_bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    let file = String::from_utf8_lossy(&file_bytes);
    for hay in [&export, &csv, &file.to_string()] {
        for secret in secrets.iter().chain([ADMIN_PASSWORD].iter()) {
            assert!(!hay.contains(secret), "a password leaked");
        }
        assert!(!hay.contains(&token), "a session token leaked");
    }
    assert!(export.contains("user.password.reset"));
}

#[tokio::test]
async fn an_auditor_reads_the_log_and_nothing_else() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let u = create_user(&s, &c, &csrf, "auditor1", "auditor long password").await;
    // Role assignments get their API with RBAC; bind directly for now.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute(
        "INSERT INTO role_assignments (id, role, user_id, created_at) VALUES ('a1', 'auditor', ?1, 0)",
        [u["id"].as_str().unwrap()],
    )
    .unwrap();
    let a = client();
    login(&s, &a, "auditor1", "auditor long password").await;
    assert_eq!(
        a.get(s.url("/api/v1/audit")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        a.get(s.url("/api/v1/audit/head"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        a.get(s.url("/api/v1/audit/verify"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        a.get(s.url("/api/v1/users")).send().await.unwrap().status(),
        403
    );
    s.stop().await;
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_the_action_fails() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let u = create_user(&s, &c, &csrf, "frank", "frank's long password").await;
    let id = u["id"].as_str().unwrap().to_string();
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute_batch("CREATE TRIGGER break_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;")
        .unwrap();
    let res = c
        .patch(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"display_name": "Changed"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 503).await;
    let name: String = conn
        .query_row("SELECT display_name FROM users WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(name, "", "the change was rolled back with its record");
    let ready = client().get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert!(
        body["checks"]["audit"]
            .as_str()
            .unwrap()
            .contains("failing"),
        "{body}"
    );
    // Logins fail closed too.
    assert_eq!(
        post_login(&s, &client(), "frank", "frank's long password")
            .await
            .status(),
        503
    );

    conn.execute_batch("DROP TRIGGER break_audit").unwrap();
    let res = c
        .patch(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"display_name": "Changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        client()
            .get(s.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r: Value = get_json(&c, &s, "/api/v1/audit/verify").await;
    assert_eq!(r["ok"], true);
    s.stop().await;
}

/// `kill -9` under concurrent audited requests: every request answered 2xx
/// has its change and its record, and the chain verifies.
#[test]
fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = command()
        .current_dir(dir.path())
        .env("AGENTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("AGENTRY_SYSTEMD__NOTIFY", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acked: Vec<String> = rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let c = client();
        wait_ready(&base).await;
        let csrf = login_at(&base, &c, "admin", ADMIN_PASSWORD).await;
        let me: Value = c
            .get(format!("{base}/api/v1/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = me["principal"]["id"].as_str().unwrap().to_string();

        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for t in 0..16 {
            let (c, base, csrf, id, acked) = (
                c.clone(),
                base.clone(),
                csrf.clone(),
                id.clone(),
                acked.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for i in 0..10_000 {
                    let rid = format!("kill-{t}-{i}");
                    let res = c
                        .patch(format!("{base}/api/v1/users/{id}"))
                        .header("x-csrf-token", &csrf)
                        .header("x-request-id", &rid)
                        .json(&json!({"display_name": rid}))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().push(rid),
                        _ => break,
                    }
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        child.kill().unwrap(); // SIGKILL
        for t in tasks {
            let _ = t.await;
        }
        let v = acked.lock().unwrap().clone();
        v
    });
    child.wait().unwrap();
    assert!(
        acked.len() > 50,
        "only {} requests were acknowledged before the kill",
        acked.len()
    );

    let data = dir.path().join("agentry-data");
    let conn = rusqlite::Connection::open(data.join("agentry.db")).unwrap();
    let mut st = conn
        .prepare(
            "SELECT request_id FROM audit_log WHERE action = 'user.update' AND outcome = 'success'",
        )
        .unwrap();
    let recorded: HashSet<String> = st
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .filter_map(|r| r.unwrap())
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|r| !recorded.contains(*r)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged requests have no record, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let report = agentry::audit::verify_sync(&conn, &chain_key(&data), None).unwrap();
    assert!(report.ok, "{report:?}");
    // And the server starts again on the same data.
    let out = command()
        .env("AGENTRY_DATA_DIR", &data)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[tokio::test]
async fn the_scheduled_retention_job_prunes_old_records_and_records_that_it_did() {
    let s = TestServer::start_with(|c| c.audit.retention_days = 1).await;
    let app = &s.running().app;
    let ctx = agentry::audit::Context::system("test");
    let mut old = ctx.event("test.old", agentry::audit::Outcome::Success);
    old.at = agentry::db::now_ms() - 2 * 86_400_000;
    app.audit.record(old).await.unwrap();
    app.audit
        .record(ctx.event("test.new", agentry::audit::Outcome::Success))
        .await
        .unwrap();
    agentry::scheduler::audit_retention(app).await;
    let db = s.db_path();
    assert_eq!(count_action(&db, "test.old", "success"), 0);
    assert_eq!(count_action(&db, "test.new", "success"), 1);
    assert_eq!(count_action(&db, "audit.prune", "success"), 1);
    let report = agentry::audit::verify(&app.db, app.audit.key(), None)
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    // With retention 0 nothing is ever pruned.
    s.stop().await;
    let s = TestServer::start_with(|c| c.audit.retention_days = 0).await;
    let mut old =
        agentry::audit::Context::system("test").event("test.old", agentry::audit::Outcome::Success);
    old.at = 1;
    s.running().app.audit.record(old).await.unwrap();
    agentry::scheduler::audit_retention(&s.running().app).await;
    assert_eq!(count_action(&s.db_path(), "test.old", "success"), 1);
    s.stop().await;
}
