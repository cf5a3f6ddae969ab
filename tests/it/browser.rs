//! Headless Chromium, driven over WebDriver, signs in through the login
//! page and sees the dashboard.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium` and
//! `chromium-driver`; the test script installs them). The test fails, rather
//! than skips, when they are missing: a UI that is never exercised in a real
//! browser is not tested.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::support::*;

struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} is installed; run the README's test command, which installs chromium and chromium-driver");
}

async fn start_driver() -> Driver {
    let exe = find_binary(&["chromedriver"]);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(exe)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver {
        child,
        url,
        profile: tempfile::tempdir().unwrap(),
    }
}

async fn browser(driver: &Driver) -> fantoccini::Client {
    let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"]);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", driver.profile.path().display()),
            ]
        }),
    );
    // The WebDriver client's TLS stack needs a process-wide provider, even
    // though chromedriver is spoken to over plain loopback HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("connect to chromedriver")
}

/// Signs in as the admin through the login form and waits for the dashboard.
async fn sign_in(b: &fantoccini::Client, s: &TestServer) {
    b.goto(&s.url("/login")).await.unwrap();
    b.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    b.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("dashboard-user"))
        .await
        .unwrap();
}

/// Saves a screenshot under the test target dir for people to look at.
async fn screenshot(b: &fantoccini::Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join(name), png).unwrap();
}

#[tokio::test]
async fn chromium_signs_in_and_sees_the_dashboard() {
    let s = TestServer::start().await;
    let driver = start_driver().await;
    let b = browser(&driver).await;

    b.goto(&s.url("/")).await.unwrap();
    // Not signed in: redirected to the login page.
    assert_eq!(b.current_url().await.unwrap().path(), "/login");

    // A wrong password first: the error shows and the user name is kept.
    b.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    b.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("wrong password")
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = b
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("login-error"))
        .await
        .unwrap();
    assert!(err.text().await.unwrap().contains("Sign-in failed"));
    let kept = b
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("admin"));

    b.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let who = b
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("dashboard-user"))
        .await
        .unwrap();
    assert_eq!(who.text().await.unwrap(), "admin");
    assert_eq!(b.current_url().await.unwrap().path(), "/");
    let nav_user = b
        .find(Locator::Css("[data-testid=current-user]"))
        .await
        .unwrap();
    assert_eq!(nav_user.text().await.unwrap(), "admin");

    // Stylesheet applied (served from the binary, allowed by the CSP).
    let bg = b
        .execute(
            "return getComputedStyle(document.querySelector('.topbar')).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(bg, json!("rgb(17, 24, 39)"));

    screenshot(&b, "dashboard.png").await;

    // Sign out through the form.
    b.find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/login");
    b.goto(&s.url("/")).await.unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/login");

    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

#[tokio::test]
async fn chromium_uses_the_audit_page() {
    let s = TestServer::start().await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    let wait = Duration::from_secs(10);

    sign_in(&b, &s).await;

    b.find(Locator::LinkText("Audit log"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let table = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("audit-table"))
        .await
        .unwrap();
    let text = table.text().await.unwrap();
    assert!(text.contains("auth.login"), "{text}");
    assert!(text.contains("system.start"));

    // A bad filter is shown next to the form and what was typed is kept.
    let since = b.find(Locator::Css("input[name=since]")).await.unwrap();
    since.send_keys("last tuesday").await.unwrap();
    b.find(Locator::Css(".filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("filter-error"))
        .await
        .unwrap();
    assert!(err.text().await.unwrap().contains("RFC 3339"));
    let kept = b
        .find(Locator::Css("input[name=since]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("last tuesday"));

    // Filtering by action.
    b.goto(&s.url("/audit?action=auth.*")).await.unwrap();
    let rows = b
        .find_all(Locator::Css("#audit-table tbody tr"))
        .await
        .unwrap();
    for row in rows {
        assert!(row.text().await.unwrap().contains("auth."));
    }

    // Verify the chain.
    b.goto(&s.url("/audit")).await.unwrap();
    b.find(Locator::Id("verify-chain"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("verify-result"))
        .await
        .unwrap();
    assert!(result.text().await.unwrap().contains("The chain verifies"));
    screenshot(&b, "audit.png").await;

    // A record's detail page.
    b.find(Locator::Css("#audit-table tbody tr td a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let details = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("record-details"))
        .await
        .unwrap();
    assert!(details.text().await.unwrap().starts_with('{'));

    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

#[tokio::test]
async fn chromium_manages_users_agents_and_keys() {
    let s = TestServer::start().await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    let wait = Duration::from_secs(10);
    sign_in(&b, &s).await;

    // A user with a weak password: the error sits next to the field and
    // the typed name is kept.
    b.find(Locator::LinkText("Users"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("create-user"))
        .await
        .unwrap();
    b.find(Locator::Id("f-username"))
        .await
        .unwrap()
        .send_keys("ivy")
        .await
        .unwrap();
    b.find(Locator::Id("f-password"))
        .await
        .unwrap()
        .send_keys("short")
        .await
        .unwrap();
    b.find(Locator::Css("#create-user button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("error-password"))
        .await
        .unwrap();
    assert!(err.text().await.unwrap().contains("12"));
    let kept = b
        .find(Locator::Id("f-username"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("ivy"));
    b.find(Locator::Id("f-password"))
        .await
        .unwrap()
        .send_keys("ivy's long password")
        .await
        .unwrap();
    b.find(Locator::Css("#create-user button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("edit-user"))
        .await
        .unwrap();
    assert!(b
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("ivy"));

    // An agent, a key shown once, then quarantine.
    b.find(Locator::LinkText("Agents"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("create-agent"))
        .await
        .unwrap();
    b.find(Locator::Id("f-name"))
        .await
        .unwrap()
        .send_keys("ui-planner")
        .await
        .unwrap();
    b.find(Locator::Id("f-agent_type"))
        .await
        .unwrap()
        .send_keys("planner")
        .await
        .unwrap();
    b.find(Locator::Css("#create-agent button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("create-key"))
        .await
        .unwrap();
    b.find(Locator::Id("f-key_name"))
        .await
        .unwrap()
        .send_keys("from the ui")
        .await
        .unwrap();
    b.find(Locator::Css("#create-key button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let key = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("new-key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(key.starts_with("agk_"), "{key}");
    screenshot(&b, "agent-key.png").await;
    let res = client()
        .get(s.url("/api/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Opening the agent page again does not show the key.
    let url = b.current_url().await.unwrap();
    let agent_page = url.as_str().trim_end_matches("/keys").to_string();
    b.goto(&agent_page).await.unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("keys-table"))
        .await
        .unwrap();
    assert!(b.find(Locator::Id("new-key")).await.is_err());
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    b.find(Locator::Id("f-reason"))
        .await
        .unwrap()
        .send_keys("suspicious traffic")
        .await
        .unwrap();
    b.find(Locator::Id("quarantine-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Css(".status-off"))
        .await
        .unwrap();
    let res = client()
        .get(s.url("/api/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Signing keys: rotate from the page.
    b.find(Locator::LinkText("Signing keys"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("signing-keys-table"))
        .await
        .unwrap();
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    b.find(Locator::Id("rotate"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page reloads after the rotation; wait for the second key's row.
    b.wait()
        .at_most(wait)
        .for_element(Locator::Css("#signing-keys-table tbody tr:nth-child(2)"))
        .await
        .unwrap();
    let rows = b
        .find_all(Locator::Css("#signing-keys-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);

    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

#[tokio::test]
async fn chromium_manages_roles_and_checks_access() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent_id = create_agent(&s, &c, &csrf, "scoped-bot", "planner").await;
    create_user(&s, &c, &csrf, "plain", "plain user password").await;

    let driver = start_driver().await;
    let b = browser(&driver).await;
    let wait = Duration::from_secs(10);
    sign_in(&b, &s).await;
    b.find(Locator::LinkText("Roles"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("create-role"))
        .await
        .unwrap();
    // A bad pattern is refused next to the field, keeping what was typed.
    b.find(Locator::Id("f-name"))
        .await
        .unwrap()
        .send_keys("billing_ops")
        .await
        .unwrap();
    b.find(Locator::Id("f-permissions"))
        .await
        .unwrap()
        .send_keys("workflow:execute\nWorkflow:Bad")
        .await
        .unwrap();
    b.find(Locator::Css("#create-role button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("error-permissions"))
        .await
        .unwrap();
    assert!(err.text().await.unwrap().contains("Workflow:Bad"));
    let kept = b
        .find(Locator::Id("f-name"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("billing_ops"));
    let perms = b.find(Locator::Id("f-permissions")).await.unwrap();
    perms.clear().await.unwrap();
    perms.send_keys("workflow:execute").await.unwrap();
    b.find(Locator::Id("f-inherits"))
        .await
        .unwrap()
        .send_keys("workflow_viewer")
        .await
        .unwrap();
    b.find(Locator::Css("#create-role button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let eff = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("effective-table"))
        .await
        .unwrap();
    let text = eff.text().await.unwrap();
    assert!(
        text.contains("workflow:status") && text.contains("billing_ops → workflow_viewer"),
        "{text}"
    );

    // Assign it, scoped to billing workflows.
    b.find(Locator::Id("f-subject_id"))
        .await
        .unwrap()
        .send_keys(&agent_id)
        .await
        .unwrap();
    b.find(Locator::Id("f-resource_type"))
        .await
        .unwrap()
        .send_keys("workflow")
        .await
        .unwrap();
    b.find(Locator::Id("f-resource_pattern"))
        .await
        .unwrap()
        .send_keys("billing-*")
        .await
        .unwrap();
    b.find(Locator::Css("#assign-role button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Css("#assignments-table form"))
        .await
        .unwrap();
    screenshot(&b, "role.png").await;

    // Check access: allowed on billing-42, denied on payroll-1.
    for (rid, expect) in [("billing-42", "Allowed"), ("payroll-1", "Denied")] {
        b.goto(&s.url(&format!(
            "/access?subject_type=agent&subject_id={agent_id}&permission=workflow:execute&resource_type=workflow&resource_id={rid}"
        )))
        .await
        .unwrap();
        let d = b
            .wait()
            .at_most(wait)
            .for_element(Locator::Id("decision"))
            .await
            .unwrap();
        assert!(d.text().await.unwrap().starts_with(expect), "{rid}");
    }

    // A user without permissions sees none of the admin areas, and the
    // server refuses them anyway.
    b.find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
    b.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("plain")
        .await
        .unwrap();
    b.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("plain user password")
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("dashboard-user"))
        .await
        .unwrap();
    let nav = b
        .find(Locator::Css("header nav"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for hidden in ["Users", "Agents", "Roles", "Signing keys", "Audit log"] {
        assert!(
            !nav.contains(hidden),
            "{hidden} shown to a plain user: {nav}"
        );
    }
    b.goto(&s.url("/users")).await.unwrap();
    let body = b
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("403"), "{body}");

    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

/// Waits (up to 10 s) until the text of element `id` satisfies `ok`.
async fn text_until(b: &fantoccini::Client, id: &str, ok: impl Fn(&str) -> bool) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = b.find(Locator::Id(id)).await {
            last = e.text().await.unwrap_or_default();
            if ok(&last) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("#{id} never matched; last text: {last}");
}

#[tokio::test]
async fn chromium_uses_the_encryption_keys_page() {
    let s = TestServer::start().await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    let wait = Duration::from_secs(10);
    sign_in(&b, &s).await;
    b.find(Locator::LinkText("Encryption keys"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("test-form"))
        .await
        .unwrap();
    let type_into = |id: &'static str, text: &'static str| {
        let b = b.clone();
        async move {
            let el = b.find(Locator::Id(id)).await.unwrap();
            el.clear().await.unwrap();
            el.send_keys(text).await.unwrap();
        }
    };
    // Encrypt, then decrypt what came back.
    b.find(Locator::Css(
        "#f-test-classification option[value=confidential]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    type_into("f-data", r#"{"card": "4111 1111"}"#).await;
    type_into("f-context", "order-9").await;
    b.find(Locator::Id("test-encrypt"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let out = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("test-output"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        out.contains("AES-256-GCM") && out.contains("confidential"),
        "{out}"
    );
    assert!(!out.contains("4111"), "{out}");
    let package = b.find(Locator::Id("f-package")).await.unwrap();
    package.send_keys(&out).await.unwrap();
    b.find(Locator::Id("test-decrypt"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(&b, "test-output", |t| t.contains("4111 1111")).await;
    // Another context: refused, with the code.
    type_into("f-context", "order-10").await;
    b.find(Locator::Id("test-decrypt"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("test-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(err.contains("decryption_failed"), "{err}");

    // Rotate a ring (after the confirmation), then add a classification.
    b.find(Locator::Id("rotate-internal"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.accept_alert().await.unwrap();
    text_until(&b, "ring-internal", |t| {
        t.lines().any(|l| l.starts_with("2 "))
    })
    .await;
    type_into("f-classification", "Bad Name").await;
    b.find(Locator::Css("#create-ring button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("error-classification"))
        .await
        .unwrap();
    type_into("f-classification", "pii").await;
    b.find(Locator::Css("#create-ring button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("ring-pii"))
        .await
        .unwrap();
    screenshot(&b, "encryption-keys.png").await;
    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

#[tokio::test]
async fn chromium_shows_the_fleet_on_the_dashboard() {
    use crate::monitoring::{create, wait_states, Reply, Stub};
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent_id = create_agent(&s, &c, &csrf, "fleet", "knowledge_base").await;
    let agent_id = agent_id.as_str();
    let fine = Stub::start(Reply(200, "ok", 0)).await;
    let slow = Stub::start(Reply(200, "ok", 300)).await;
    let down = Stub::start(Reply(503, "maintenance", 0)).await;
    let mut want = Vec::new();
    for (name, url, extra, state) in [
        ("kb-fine", &fine.url, json!({}), "healthy"),
        (
            "kb-slow",
            &slow.url,
            json!({"degraded_latency_ms": 100}),
            "degraded",
        ),
        ("kb-down", &down.url, json!({}), "unhealthy"),
        (
            "kb-new",
            &fine.url,
            json!({"interval_seconds": 86400}),
            "unknown",
        ),
    ] {
        let mut body = json!({"agent_id": agent_id, "name": name, "kind": "http", "url": url,
            "interval_seconds": 5, "timeout_ms": 2000, "failure_threshold": 1, "success_threshold": 1});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let id = create(&c, &csrf, &s, body).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        want.push((id, state));
    }
    let pairs: Vec<(&str, &str)> = want.iter().map(|(i, st)| (i.as_str(), *st)).collect();
    wait_states(&c, &s, &pairs).await;
    // Two checks of each checked instance make a chart.
    for (id, state) in &want {
        if *state == "unknown" {
            continue;
        }
        for _ in 0..150 {
            let v: serde_json::Value = c
                .get(s.url(&format!("/api/v1/instances/{id}/checks")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["items"].as_array().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    let table = b
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("instances-table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, state) in [
        ("kb-fine", "healthy"),
        ("kb-slow", "degraded"),
        ("kb-down", "unhealthy"),
        ("kb-new", "unknown"),
    ] {
        let mut row = None;
        for tr in b
            .find_all(Locator::Css("#instances-table tbody tr"))
            .await
            .unwrap()
        {
            let text = tr.text().await.unwrap();
            if text.contains(name) {
                row = Some(text);
            }
        }
        let row = row.unwrap_or_else(|| panic!("{name} missing: {table}"));
        assert!(row.contains(state), "{name} should be {state}: {row}");
    }
    assert!(table.contains("status 503"), "{table}");
    let status = b
        .find(Locator::Id("overall-status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(status, "degraded");
    let types = b
        .find(Locator::Id("agent-types"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(types.contains("knowledge_base"), "{types}");
    let charts = b
        .find_all(Locator::Css("#instances-table svg.spark polyline"))
        .await
        .unwrap();
    assert!(!charts.is_empty(), "no response-time charts drawn");
    let rates = b
        .find_all(Locator::Css("#instances-table svg.spark.err polyline"))
        .await
        .unwrap();
    assert_eq!(
        rates.len(),
        charts.len() / 2,
        "an error-rate chart beside each"
    );
    screenshot(&b, "dashboard-fleet.png").await;
    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

#[tokio::test]
async fn chromium_manages_monitors() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    create_agent(&s, &c, &csrf, "mcp-docs", "documentation").await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    let wait = Duration::from_secs(10);
    sign_in(&b, &s).await;
    b.find(Locator::LinkText("Monitors"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("create-monitor"))
        .await
        .unwrap();
    let set = |id: &'static str, text: &'static str| {
        let b = b.clone();
        async move {
            let el = b.find(Locator::Id(id)).await.unwrap();
            el.clear().await.unwrap();
            el.send_keys(text).await.unwrap();
        }
    };
    set("f-name", "docs-1").await;
    set("f-url", "http://user:pw@127.0.0.1:9/health").await;
    set("f-interval_seconds", "4").await;
    b.find(Locator::Css("#create-monitor button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let err = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("error-url"))
        .await
        .unwrap();
    assert!(err.text().await.unwrap().contains("credentials"));
    b.find(Locator::Id("error-interval_seconds")).await.unwrap();
    set("f-url", "http://127.0.0.1:9/health").await;
    set("f-interval_seconds", "60").await;
    b.find(Locator::Css("#create-monitor button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("monitor-state"))
        .await
        .unwrap();
    assert_eq!(state.text().await.unwrap(), "unknown");
    set("f-name", "docs-primary").await;
    b.find(Locator::Css("#edit-monitor button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(&b, "monitor-state", |_| true).await;
    let title = b
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(title.contains("docs-primary"), "{title}");
    screenshot(&b, "monitor.png").await;
    b.find(Locator::Id("delete-monitor"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.accept_alert().await.unwrap();
    text_until(&b, "monitors-table", |t| t.contains("No instances yet")).await;
    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}
