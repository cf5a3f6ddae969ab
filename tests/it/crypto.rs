//! The encryption service: envelope encryption per classification.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::*;

pub(crate) async fn post(
    c: &reqwest::Client,
    csrf: &str,
    s: &TestServer,
    path: &str,
    body: Value,
) -> reqwest::Response {
    c.post(s.url(path))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn encrypt(
    c: &reqwest::Client,
    csrf: &str,
    s: &TestServer,
    data: Value,
    class: &str,
    context: Option<&str>,
) -> Value {
    let res = post(
        c,
        csrf,
        s,
        "/api/v1/crypto/encrypt",
        json!({"data": data, "classification": class, "context": context}),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub(crate) async fn decrypt(
    c: &reqwest::Client,
    csrf: &str,
    s: &TestServer,
    package: &Value,
    context: Option<&str>,
) -> reqwest::Response {
    post(
        c,
        csrf,
        s,
        "/api/v1/crypto/decrypt",
        json!({"package": package, "context": context}),
    )
    .await
}

#[tokio::test]
async fn round_trips_for_every_classification_and_json_type() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let big = "x".repeat(1024 * 1024);
    let values = [
        json!(null),
        json!(42),
        json!(-1.5e300),
        json!("naïve ✓ 日本語"),
        json!({"a": [1, {"b": null}], "c": true}),
        json!(big),
    ];
    for class in ["public", "internal", "confidential", "restricted"] {
        for v in &values {
            let p = encrypt(&c, &csrf, &s, v.clone(), class, Some("ctx")).await;
            assert_eq!(p["encryption_algorithm"], "AES-256-GCM");
            assert_eq!(p["classification"], class);
            assert_eq!(p["key_version"], 1);
            assert!(p["timestamp"].as_str().unwrap().ends_with('Z'));
            let res = decrypt(&c, &csrf, &s, &p, Some("ctx")).await;
            assert_eq!(res.status(), 200);
            assert_eq!(&res.json::<Value>().await.unwrap()["data"], v);
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn rotation_rewrap_and_minimum_version() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let old = encrypt(&c, &csrf, &s, json!({"secret": 1}), "internal", None).await;
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/keys/internal/rotate",
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let new = encrypt(&c, &csrf, &s, json!({"secret": 2}), "internal", None).await;
    assert_eq!(new["key_version"], 2);
    assert_ne!(new["key_id"], old["key_id"]);
    assert_eq!(
        decrypt(&c, &csrf, &s, &old, None).await.status(),
        200,
        "old packages still decrypt"
    );
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/rewrap",
        json!({"package": old}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let rewrapped: Value = res.json().await.unwrap();
    assert_eq!(rewrapped["key_version"], 2);
    assert!(rewrapped.get("data").is_none());
    let back: Value = decrypt(&c, &csrf, &s, &rewrapped, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["data"], json!({"secret": 1}));
    let res = c
        .patch(s.url("/api/v1/crypto/keys/internal"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"min_decryption_version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let p = expect_problem(decrypt(&c, &csrf, &s, &old, None).await, 422).await;
    assert_eq!(p["code"], "key_version_retired");
    let res = c
        .patch(s.url("/api/v1/crypto/keys/internal"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"min_decryption_version": 9}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 422).await;
    let keys: Value = get_json(&c, &s, "/api/v1/crypto/keys").await;
    let internal = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["classification"] == "internal")
        .unwrap();
    assert_eq!(internal["versions"].as_array().unwrap().len(), 2);
    assert!(
        !keys.to_string().contains("wrapped"),
        "no key material is listed"
    );
    s.stop().await;
}

#[tokio::test]
async fn every_bad_package_is_refused_with_its_own_code() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let p = encrypt(
        &c,
        &csrf,
        &s,
        json!("top secret"),
        "confidential",
        Some("invoice-7"),
    )
    .await;
    let raw = STANDARD
        .decode(p["encrypted_data"].as_str().unwrap())
        .unwrap();
    let mut flipped = raw.clone();
    flipped[20] ^= 1;
    let with = |field: &str, v: Value| {
        let mut q = p.clone();
        q[field] = v;
        q
    };
    let cases = [
        (
            with("encrypted_data", json!(STANDARD.encode(&flipped))),
            Some("invoice-7"),
            "decryption_failed",
        ),
        (
            with(
                "encrypted_data",
                json!(STANDARD.encode(&raw[..raw.len() - 1])),
            ),
            Some("invoice-7"),
            "decryption_failed",
        ),
        (
            with("encrypted_data", json!(STANDARD.encode(&raw[..20]))),
            Some("invoice-7"),
            "invalid_package",
        ),
        (p.clone(), Some("invoice-8"), "decryption_failed"),
        (p.clone(), None, "decryption_failed"),
        (
            with("key_id", json!("dk_0000000000000000")),
            Some("invoice-7"),
            "unknown_key",
        ),
        (
            with("classification", json!("public")),
            Some("invoice-7"),
            "key_mismatch",
        ),
        (
            with("encrypted_data", json!("%%% not base64 %%%")),
            Some("invoice-7"),
            "invalid_package",
        ),
        (
            with("encryption_algorithm", json!("ROT13")),
            Some("invoice-7"),
            "unsupported_algorithm",
        ),
    ];
    for (package, context, code) in cases {
        let res = decrypt(&c, &csrf, &s, &package, context).await;
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!((400..500).contains(&status), "{code}: {status}");
        assert!(body.contains(code), "{code}: {body}");
        assert!(!body.contains("top secret"), "no data on failure");
    }
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/encrypt",
        json!({"data": 1, "classification": "nope"}),
    )
    .await;
    assert_eq!(
        expect_problem(res, 422).await["code"],
        "unknown_classification"
    );
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/crypto/decrypt",
        json!({"package": {"bogus": 1}}),
    )
    .await;
    expect_problem(res, 422).await;
    s.stop().await;
}

#[tokio::test]
async fn restricted_needs_its_specific_permission() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let role = post(
        &c,
        &csrf,
        &s,
        "/api/v1/roles",
        json!({"name": "crypto_user", "permissions": ["crypto:encrypt", "crypto:decrypt"]}),
    )
    .await;
    assert_eq!(role.status(), 201);
    let agent: Value = post(
        &c,
        &csrf,
        &s,
        "/api/v1/agents",
        json!({"name": "enc", "agent_type": "planner"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = agent["id"].as_str().unwrap();
    let res = post(
        &c,
        &csrf,
        &s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "agent", "id": id}, "role": "crypto_user"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let key: Value = post(
        &c,
        &csrf,
        &s,
        &format!("/api/v1/agents/{id}/keys"),
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let a = client();
    let call = |path: &'static str, body: Value| {
        let (a, key, s) = (a.clone(), key.clone(), &s);
        async move {
            a.post(s.url(path))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let internal: Value = call(
        "/api/v1/crypto/encrypt",
        json!({"data": 1, "classification": "internal"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        call("/api/v1/crypto/decrypt", json!({"package": internal}))
            .await
            .status(),
        200
    );
    let restricted: Value = call(
        "/api/v1/crypto/encrypt",
        json!({"data": 1, "classification": "restricted"}),
    )
    .await
    .json()
    .await
    .unwrap();
    expect_problem(
        call("/api/v1/crypto/decrypt", json!({"package": restricted})).await,
        403,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn keys_are_never_stored_in_plaintext_and_the_format_is_standard() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let p = encrypt(&c, &csrf, &s, json!({"n": 7}), "internal", Some("ctx-1")).await;
    let app = &s.running().app;
    let key = app
        .keyring
        .raw_key(&app.db, &app.audit, p["key_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    // An independent AES-256-GCM implementation decrypts the package given
    // the key and the documented associated data.
    let aad = format!(
        "agentry-envelope-v1\0{}\0{}\0\x01ctx-1",
        p["key_id"].as_str().unwrap(),
        p["key_version"]
    );
    let script = r#"
import base64, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex(sys.argv[1]); blob = base64.b64decode(sys.argv[2]); aad = bytes.fromhex(sys.argv[3])
print(AESGCM(key).decrypt(blob[:12], blob[12:], aad).decode())
"#;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            &hex(key.as_ref()),
            p["encrypted_data"].as_str().unwrap(),
            &hex(aad.as_bytes()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"n":7}"#);
    let db = s.db_path();
    let _dir = s.stop().await;
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    assert!(
        !bytes.windows(32).any(|w| w == key.as_ref()),
        "a raw data key is in the data directory"
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(&hex(key.as_ref())) && !text.contains(&STANDARD.encode(key.as_ref())));
}
