//! The configuration's own tests: defaults, layering, named errors, the
//! packaged sample.

use super::*;

#[test]
fn defaults_are_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn unknown_key_names_the_key() {
    let err = Config::from_toml_str("bogus_key = 1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bogus_key"), "{err}");
    let err = Config::from_toml_str("[session]\nidle_timeout = 3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("idle_timeout"), "{err}");
}

#[test]
fn bad_value_names_the_key() {
    let err = Config::from_toml_str("[session]\nidle_timeout_minutes = \"soon\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("idle_timeout_minutes"), "{err}");
    let err = Config::from_toml_str("[session]\nidle_timeout_minutes = 0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("session.idle_timeout_minutes"), "{err}");
    let err = Config::from_toml_str("listen = \"nope\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen"), "{err}");
    let err = Config::from_toml_str("[api]\nauth_failures_per_minute = 0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("api.auth_failures_per_minute"), "{err}");
    let err = Config::from_toml_str("[api]\nanonymous_requests_per_minute = 10000001")
        .unwrap_err()
        .to_string();
    assert!(err.contains("api.anonymous_requests_per_minute"), "{err}");
    let err = Config::from_toml_str("[tls]\ncert_path = \"/x\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls.key_path"), "{err}");
}

#[test]
fn trusted_proxies_are_addresses_or_networks() {
    let c = Config::from_toml_str(
        "trusted_proxies = [\"10.0.0.1\", \"192.168.0.0/16\", \"fd00::/8\", \"10.1.2.3/8\"]",
    )
    .unwrap();
    let nets: Vec<String> = c
        .trusted_proxy_networks()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        nets,
        ["10.0.0.1/32", "192.168.0.0/16", "fd00::/8", "10.0.0.0/8"]
    );
    for bad in ["\"10.0.0.0/33\"", "\"proxy.example\"", "\"\""] {
        let err = Config::from_toml_str(&format!("trusted_proxies = [\"10.0.0.1\", {bad}]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains("entry 2"),
            "{err}"
        );
    }
}

#[test]
fn outbound_deny_entries_are_networks() {
    let c = Config::from_toml_str("[network]\noutbound_deny = [\"169.254.0.0/16\", \"10.9.9.9\"]")
        .unwrap();
    assert!(c
        .network
        .rules()
        .check_ip("10.9.9.9".parse().unwrap())
        .is_err());
    let err = Config::from_toml_str("[network]\noutbound_deny = [\"169.254.0.0/16\", \"nope\"]")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("network.outbound_deny") && err.contains("entry 2"),
        "{err}"
    );
}

#[test]
fn toml_overrides_defaults() {
    let c =
        Config::from_toml_str("listen = \"127.0.0.1:9999\"\n[login]\nmax_failures = 3").unwrap();
    assert_eq!(c.listen.port(), 9999);
    assert_eq!(c.login.max_failures, 3);
    assert_eq!(c.login.lockout_minutes, 15);
}

#[test]
fn packaged_sample_is_valid_and_documents_every_key() {
    let sample = include_str!("../../packaging/agentry.toml");
    let c = Config::from_toml_str(sample).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/agentry"));
    // Every key of the effective configuration appears in the sample,
    // so the sample cannot silently fall behind the code.
    for line in Config::default().to_toml().lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            assert!(sample.contains(&format!("{key} =")), "sample lacks `{key}`");
        }
    }
}

#[test]
fn secrets_never_print() {
    let c = Config {
        admin_password: Some(SecretString::from("hunter2-but-longer")),
        master_key: Some(SecretString::from(
            "c2VjcmV0IG1hc3RlciBrZXkgbWF0ZXJpYWwhISEhISE=",
        )),
        ..Config::default()
    };
    let shown = format!("{c:?}\n{}", c.to_toml());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
}

#[test]
fn renders_round_trippable_toml() {
    let c = Config::default();
    let again = Config::from_toml_str(&c.to_toml()).unwrap();
    assert_eq!(again.listen, c.listen);
    assert_eq!(again.session.idle_timeout_minutes, 30);
}
