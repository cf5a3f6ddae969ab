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
