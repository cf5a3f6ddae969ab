//! HTTPS served directly with rustls from configured PEM files.

use crate::support::*;

#[tokio::test]
async fn serves_https_with_secure_host_cookies_and_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let s = TestServer::start_with(|c| {
        c.tls.cert_path = Some(cert_path.clone());
        c.tls.key_path = Some(key_path.clone());
    })
    .await;
    let base = s.base.replace("http://", "https://");
    let c = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = c.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-agentry_login="), "{cookie}");
    assert!(cookie.contains("Secure"));

    // Plain HTTP on the TLS port gets no page.
    let plain = client().get(s.url("/healthz")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    s.stop().await;
}

#[tokio::test]
async fn a_bad_certificate_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, "not a certificate").unwrap();
    std::fs::write(&key_path, "not a key").unwrap();
    let mut config = test_config(dir.path());
    config.tls.cert_path = Some(cert_path);
    config.tls.key_path = Some(key_path);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = match agentry::start(config, listener).await {
        Ok(_) => panic!("a bad certificate must stop start-up"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("tls.cert_path"), "{err}");
}
