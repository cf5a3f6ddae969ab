//! The command line as an operator uses it.

use std::io::Write;
use std::process::Stdio;

use crate::support::*;

#[test]
fn version_and_help() {
    let out = command().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = command().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    for sub in ["serve", "admin", "migrate", "backup", "check-config"] {
        assert!(help.contains(sub), "{help}");
    }
}

#[test]
fn config_errors_name_the_key_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("bogus_key = 1\n", "bogus_key"),
        (
            "[session]\nidle_timeout_minutes = \"soon\"\n",
            "idle_timeout_minutes",
        ),
        (
            "[session]\nidle_timeout_minutes = 0\n",
            "session.idle_timeout_minutes",
        ),
        ("listen = \"not an address\"\n", "listen"),
        ("[log]\nformat = \"xml\"\n", "format"),
        (
            "[tls]\ncert_path = \"/nonexistent.pem\"\nkey_path = \"/nonexistent.key\"\n",
            "tls.cert_path",
        ),
        ("this is not toml", "agentry.toml"),
    ];
    for (toml, key) in cases {
        let path = dir.path().join("agentry.toml");
        std::fs::write(&path, toml).unwrap();
        let out = command()
            .args(["--config", path.to_str().unwrap(), "check-config"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(key),
            "error for {toml:?} does not name {key}: {err}"
        );
    }
    // Environment overrides are checked the same way.
    let out = command()
        .env("AGENTRY_BOGUS", "1")
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let out = command()
        .env("AGENTRY_LOGIN__MAX_FAILURES", "many")
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .to_lowercase()
        .contains("max_failures"));
    // A named file that does not exist is an error, not silently skipped.
    let out = command()
        .args(["--config", "/nonexistent/agentry.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_prints_effective_values_with_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agentry.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9000\"\n[login]\nmax_failures = 7\n",
    )
    .unwrap();
    let out = command()
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .env("AGENTRY_LOGIN__LOCKOUT_MINUTES", "20")
        .env("AGENTRY_ADMIN_PASSWORD", "never printed anywhere")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listen = \"127.0.0.1:9000\""), "{text}");
    assert!(text.contains("max_failures = 7"));
    assert!(text.contains("lockout_minutes = 20"));
    assert!(!text.contains("never printed anywhere"));
}

fn run_with_stdin(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = command()
        .env("AGENTRY_DATA_DIR", dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn admin_create_and_reset_password_read_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run_with_stdin(
        &data,
        &["admin", "create", "--username", "ops", "--password-stdin"],
        "ops password long\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A weak password is refused, naming the rule.
    let out = run_with_stdin(
        &data,
        &["admin", "create", "--username", "weak", "--password-stdin"],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"));
    // Duplicates are refused.
    let out = run_with_stdin(
        &data,
        &["admin", "create", "--username", "ops", "--password-stdin"],
        "ops password long\n",
    );
    assert!(!out.status.success());
    // No prompt without a terminal.
    let out = run_with_stdin(&data, &["admin", "reset-password", "--username", "ops"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
    let out = run_with_stdin(
        &data,
        &[
            "admin",
            "reset-password",
            "--username",
            "ops",
            "--password-stdin",
        ],
        "ops second password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_with_stdin(
        &data,
        &[
            "admin",
            "reset-password",
            "--username",
            "ghost",
            "--password-stdin",
        ],
        "whatever long one\n",
    );
    assert!(!out.status.success());

    // The server starts on that directory without creating another admin,
    // and `ops` logs in with the reset password as a system_admin.
    let mut config = test_config(dir.path());
    config.data_dir = d.into();
    let s = TestServer::start_in(dir, config).await;
    assert!(s.running().seeded.admin.is_none());
    let c = client();
    login(&s, &c, "ops", "ops second password").await;
    let me: serde_json::Value = get_json(&c, &s, "/api/v1/me").await;
    assert_eq!(me["roles"][0], "system_admin");
    s.stop().await;
}

/// The README's first command: `agentry` with no config prints the admin
/// password once, serves, and exits 0 on SIGTERM after finishing requests.
#[test]
fn serve_prints_password_once_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = |dir: &std::path::Path| {
        command()
            .current_dir(dir)
            .env("AGENTRY_LISTEN", format!("127.0.0.1:{port}"))
            .env("AGENTRY_SYSTEMD__NOTIFY", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_ready = || {
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut buf);
                if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("server did not become ready");
    };
    let term = |child: &std::process::Child| {
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
    };

    let child = start(dir.path());
    wait_ready();
    term(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit on SIGTERM: {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("user:       admin"), "{stdout}");
    let pw_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .expect("password line");
    assert!(pw_line.split_whitespace().nth(1).unwrap().len() >= 20);
    assert!(dir.path().join("agentry-data/agentry.db").exists());

    // Second start: nothing printed.
    let child = start(dir.path());
    wait_ready();
    term(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password"));
}
