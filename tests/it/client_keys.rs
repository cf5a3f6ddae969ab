//! `private_key_jwt` client authentication: agents register public keys and
//! sign short-lived, single-use assertions instead of sending a secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::mcp_sdk::{claims_of, run_script, SdkServer};
use crate::support::*;

/// A P-256 key pair: (private key PEM, public JWK).
fn p256(kid: &str) -> (String, Value) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65])});
    (kp.serialize_pem(), jwk)
}

async fn agent_with_keys(s: &TestServer, name: &str, role: &str, keys: Value) -> String {
    let (c, csrf) = admin(s).await;
    let id = create_agent(s, &c, &csrf, name, "worker").await;
    let body = json!({"subject": {"type": "agent", "id": id}, "role": role});
    post(&c, &csrf, s, "/api/v1/role-assignments", body).await;
    put(
        &c,
        &csrf,
        s,
        &format!("/api/v1/agents/{id}/jwks"),
        json!({"keys": keys}),
    )
    .await;
    id
}

/// Signs an assertion with the PKCS#8 key in `pem`.
fn assertion(pem: &str, alg: jsonwebtoken::Algorithm, kid: &str, claims: Value) -> String {
    let der = rcgen::KeyPair::from_pem(pem).unwrap().serialize_der();
    let key = match alg {
        jsonwebtoken::Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_der(&der),
        _ => jsonwebtoken::EncodingKey::from_ec_der(&der),
    };
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn token_with(s: &TestServer, assertion: &str) -> reqwest::Response {
    client()
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_private_key_jwt_provider_reaches_a_protected_tool() {
    let s = TestServer::start().await;
    let issuer = s.url("");
    let mcp = SdkServer::registered(&s).await;
    for (name, alg) in [("ec-agent", "ES256"), ("ed-agent", "EdDSA")] {
        // Keys made by the client's own library, as a user would.
        let pair = run_script("keygen.py", &[alg, "k1"]);
        let (pem, jwk) = (pair["pem"].as_str().unwrap(), pair["jwk"].clone());
        let id = agent_with_keys(&s, name, "agent_service", json!([jwk])).await;
        let keyfile = s.dir.path().join(format!("{name}.pem"));
        std::fs::write(&keyfile, pem).unwrap();
        let (url, file) = (mcp.url.clone(), keyfile.display().to_string());
        let out = tokio::task::block_in_place(|| {
            run_script(
                "client_machine.py",
                &["private_key_jwt", &url, &issuer, &id, &file, alg],
            )
        });
        assert_eq!(out["text"], "3 documents match 'incidents'", "{alg}: {out}");
        let claims = claims_of(out["access_token"].as_str().unwrap());
        assert_eq!(claims["sub"], id.as_str());
        assert_eq!(claims["aud"], mcp.url.as_str());
    }
    let m = get_json(&client(), &s, "/.well-known/oauth-authorization-server").await;
    assert!(m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("private_key_jwt")));
    s.stop().await;
}

#[tokio::test]
async fn bad_assertions_and_keys_are_refused() {
    let s = TestServer::start().await;
    let (pem, jwk) = p256("k1");
    let id = agent_with_keys(&s, "signer", "agent_service", json!([jwk])).await;
    let now = agentry::tokens::jwt::now_secs();
    let aud = s.url("/oauth/token");
    let claims = |jti: &str| json!({"iss": id, "sub": id, "aud": aud, "exp": now + 120, "iat": now, "jti": jti});
    let es = jsonwebtoken::Algorithm::ES256;

    let good = assertion(&pem, es, "k1", claims("a-1"));
    let res = token_with(&s, &good).await;
    assert_eq!(res.status(), 200);
    // Single use.
    assert_eq!(token_with(&s, &good).await.status(), 401);

    let (other_pem, _) = p256("k1");
    let mut long = claims("a-3");
    long["exp"] = json!(now + 3600);
    let mut wrong_aud = claims("a-4");
    wrong_aud["aud"] = json!("https://elsewhere.example.com/token");
    let mut other_sub = claims("a-5");
    other_sub["sub"] = json!("someone-else");
    let mut no_jti = claims("x");
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut expired = claims("a-6");
    expired["exp"] = json!(now - 600);
    let cases = [
        (
            assertion(&other_pem, es, "k1", claims("a-2")),
            "assertion_invalid",
        ),
        (
            assertion(&pem, es, "k1", long),
            "assertion_lifetime_too_long",
        ),
        (assertion(&pem, es, "k1", wrong_aud), "assertion_invalid"),
        (assertion(&pem, es, "k1", other_sub), "assertion_invalid"),
        (assertion(&pem, es, "k1", no_jti), "assertion_without_jti"),
        (assertion(&pem, es, "k1", expired), "assertion_invalid"),
        (
            assertion(&pem, es, "unknown-kid", claims("a-7")),
            "assertion_no_key",
        ),
        ("not.a.jwt".to_string(), "assertion_malformed"),
    ];
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    for (a, reason) in cases {
        let res = token_with(&s, &a).await;
        assert_eq!(res.status(), 401, "{reason}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        let last: String = conn
            .query_row(
                "SELECT reason FROM audit_log WHERE action = 'oauth.token' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(last, reason);
    }
    // The issuer itself is an accepted audience.
    let mut at_issuer = claims("a-8");
    at_issuer["aud"] = json!(s.url(""));
    assert_eq!(
        token_with(&s, &assertion(&pem, es, "k1", at_issuer))
            .await
            .status(),
        200
    );

    // Keys: public only, supported kinds, read back.
    let (c, csrf) = admin(&s).await;
    let path = format!("/api/v1/agents/{id}/jwks");
    let mut private = jwk_with_d();
    private["kid"] = json!("p");
    for bad in [
        json!({"keys": [private]}),
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        json!({"keys": []}),
        json!({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}),
    ] {
        let res = c
            .put(s.url(&path))
            .header("x-csrf-token", &csrf)
            .json(&bad)
            .send()
            .await
            .unwrap();
        expect_problem(res, 422).await;
    }
    let back = get_json(&c, &s, &path).await;
    assert_eq!(back["keys"][0]["kid"], "k1");
    s.stop().await;
}

fn jwk_with_d() -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
           "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"})
}
