//! Process lifecycle: graceful stop and systemd readiness notification.

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// A request in flight when the stop begins still gets its answer.
#[tokio::test]
async fn stop_lets_in_flight_requests_finish() {
    let s = TestServer::start().await;
    let c = client();
    let page = c
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = form_csrf(&page);
    let url = s.url("/login");
    // A failed login takes at least 300 ms (equalised timing): long enough
    // to be in flight when the stop starts.
    let slow = tokio::spawn(async move {
        c.post(url)
            .form(&[
                ("username", "admin"),
                ("password", "wrong password"),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop().await;
    assert_eq!(slow.await.unwrap().unwrap(), 401);
}

/// Under systemd, `READY=1` arrives on $NOTIFY_SOCKET once agentry listens.
#[test]
fn notifies_systemd_when_ready() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = command()
        .current_dir(dir.path())
        .env("AGENTRY_LISTEN", "127.0.0.1:0")
        .env("AGENTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let got = sock.recv(&mut buf);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let n = got.expect("a notification within 30 s");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    assert!(status.success());
}

/// No password, session id, API key or access token reaches the log, even
/// at debug level.
#[test]
fn secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("agentry.log");
    let child = command()
        .current_dir(dir.path())
        .env("AGENTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("AGENTRY_LOG__LEVEL", "debug")
        .env("AGENTRY_SYSTEMD__NOTIFY", "false")
        .stdout(Stdio::from(
            std::fs::File::create(dir.path().join("stdout")).unwrap(),
        ))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secrets: Vec<String> = rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let c = client();
        wait_ready(&base).await;
        let page = c
            .get(format!("{base}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let token = form_csrf(&page);
        let res = c
            .post(format!("{base}/login"))
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
        let session = cookie
            .split(';')
            .next()
            .unwrap()
            .split('=')
            .nth(1)
            .unwrap()
            .to_string();
        let csrf = meta_csrf(
            &c.get(format!("{base}/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        let user_pw = "a user's secret password";
        let res = c
            .post(format!("{base}/api/v1/users"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"username": "hana", "password": user_pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let agent: serde_json::Value = c
            .post(format!("{base}/api/v1/agents"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"name": "logged", "agent_type": "planner"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = agent["id"].as_str().unwrap().to_string();
        // A token needs a permission to carry.
        let res = c
            .post(format!("{base}/api/v1/role-assignments"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"subject": {"type": "agent", "id": id}, "role": "agent_service"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let key: serde_json::Value = c
            .post(format!("{base}/api/v1/agents/{id}/keys"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = key["key"].as_str().unwrap().to_string();
        let tok: serde_json::Value = client()
            .post(format!("{base}/oauth/token"))
            .basic_auth(&id, Some(&key))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = tok["access_token"].as_str().unwrap().to_string();
        // Notification secrets, each sent a test delivery to a closed port so
        // that the failure (and its retry) is logged too.
        let slack_path = "/services/T0LOG/B0LOG/slackpathsecret";
        let hook_token = "webhookquerytokensecret";
        let channels = [
            serde_json::json!({"name": "log-slack", "type": "slack",
                "settings": {"url": format!("http://127.0.0.1:1{slack_path}")}}),
            serde_json::json!({"name": "log-hook", "type": "webhook",
                "settings": {"url": format!("http://127.0.0.1:1/hook?token={hook_token}"),
                             "secret": "webhook signing secret value"}}),
            serde_json::json!({"name": "log-pd", "type": "pagerduty",
                "settings": {"routing_key": "R0UTINGKEYSECRETVALUE", "url": "http://127.0.0.1:1/v2/enqueue"}}),
            serde_json::json!({"name": "log-mail", "type": "email",
                "settings": {"smtp_host": "127.0.0.1", "smtp_port": 1, "tls": "starttls",
                             "username": "mailer", "password": "smtp password value",
                             "from": "agentry@example.com", "to": ["ops@example.com"]}}),
        ];
        for ch in channels {
            let res = c
                .post(format!("{base}/api/v1/channels"))
                .header("x-csrf-token", &csrf)
                .json(&ch)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "{ch}");
            let id = res.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            c.post(format!("{base}/api/v1/channels/{id}/test"))
                .header("x-csrf-token", &csrf)
                .send()
                .await
                .unwrap();
        }
        let plaintext = "an agent's plaintext value";
        let res = c
            .post(format!("{base}/api/v1/crypto/encrypt"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"data": plaintext, "classification": "internal"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        for auth in [
            format!("Bearer {key}"),
            format!("Bearer {access}"),
            format!("Bearer {key}x"),
        ] {
            client()
                .get(format!("{base}/api/v1/me"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
        }
        vec![
            ADMIN_PASSWORD.to_string(),
            session,
            user_pw.to_string(),
            key[21..].to_string(),
            access,
            slack_path.to_string(),
            hook_token.to_string(),
            "webhook signing secret value".to_string(),
            "R0UTINGKEYSECRETVALUE".to_string(),
            "smtp password value".to_string(),
            plaintext.to_string(),
        ]
    });
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut child = child;
    assert!(child.wait().unwrap().success());
    let logged = std::fs::read_to_string(&log).unwrap()
        + &std::fs::read_to_string(dir.path().join("stdout")).unwrap();
    assert!(
        logged.contains("DEBUG") || logged.contains("debug"),
        "debug logging was on"
    );
    assert!(logged.contains("/api/v1/me"), "requests were logged");
    for s in secrets {
        assert!(
            !logged.contains(&s),
            "a secret reached the log: {}...",
            &s[..6]
        );
    }
}
