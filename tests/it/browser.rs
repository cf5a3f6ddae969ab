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

pub(crate) struct Driver {
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

pub(crate) async fn start_driver() -> Driver {
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

pub(crate) async fn browser(driver: &Driver) -> fantoccini::Client {
    browser_with(driver, &["--window-size=1280,900"]).await
}

/// A browser with `args` added to Chromium's command line (window size,
/// `--force-dark-mode` for a system that prefers dark).
pub(crate) async fn browser_with(driver: &Driver, args: &[&str]) -> fantoccini::Client {
    let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"]);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", driver.profile.path().display()),
            ]
        }),
    );
    if let Some(list) = caps["goog:chromeOptions"]["args"].as_array_mut() {
        list.extend(args.iter().map(|a| json!(a)));
    }
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

/// Types `user` and `password` into the login form on screen and submits it.
pub(crate) async fn submit_sign_in(b: &fantoccini::Client, user: &str, password: &str) {
    b.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    b.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Signs in as the admin through the login form and waits for the dashboard.
pub(crate) async fn sign_in(b: &fantoccini::Client, s: &TestServer) {
    b.goto(&s.url("/login")).await.unwrap();
    submit_sign_in(b, "admin", ADMIN_PASSWORD).await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("dashboard-user"))
        .await
        .unwrap();
}

/// Saves a screenshot under the test target dir for people to look at.
pub(crate) async fn screenshot(b: &fantoccini::Client, name: &str) {
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
    assert_eq!(me_with_bearer(&s, &client(), &key).await, 200);
    // Reloading the page that showed it neither shows it again nor makes a
    // second key.
    b.refresh().await.unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("key-shown-already"))
        .await
        .unwrap();
    assert!(b.find(Locator::Id("new-key")).await.is_err());
    let live = b
        .find_all(Locator::Css("#keys-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "one key after a reload");
    // Opening the agent page again does not show the key.
    let url = b.current_url().await.unwrap();
    let agent_page = url.as_str().split("/keys/").next().unwrap().to_string();
    b.goto(&agent_page).await.unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("keys-table"))
        .await
        .unwrap();
    assert!(b.find(Locator::Id("new-key")).await.is_err());
    // Revoking asks first; declining keeps the key working.
    b.execute("window.confirm = () => false;", vec![])
        .await
        .unwrap();
    click_css(&b, "#keys-table form button").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(me_with_bearer(&s, &client(), &key).await, 200);
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
    assert_eq!(me_with_bearer(&s, &client(), &key).await, 401);

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
    // By name instead of id: the same decision; a name nobody has is said
    // to be unknown, not "no role assignments".
    b.goto(&s.url(
        "/access?subject_type=agent&subject_id=SCOPED-BOT&permission=workflow:execute&resource_type=workflow&resource_id=billing-42",
    ))
    .await
    .unwrap();
    let d = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("decision"))
        .await
        .unwrap();
    assert!(d.text().await.unwrap().starts_with("Allowed"));
    b.goto(&s.url("/access?subject_type=agent&subject_id=no-such-bot&permission=workflow:execute"))
        .await
        .unwrap();
    let e = b
        .wait()
        .at_most(wait)
        .for_element(Locator::Id("access-error"))
        .await
        .unwrap();
    assert_eq!(e.text().await.unwrap(), "No agent named “no-such-bot”.");
    assert!(b.find(Locator::Id("decision")).await.is_err());
    screenshot(&b, "access-unknown-name.png").await;

    // Removing the assignment asks first; declining keeps it.
    b.goto(&s.url("/roles/billing_ops")).await.unwrap();
    b.execute("window.confirm = () => false;", vec![])
        .await
        .unwrap();
    click_css(&b, "#assignments-table form button").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.find_all(Locator::Css("#assignments-table form"))
            .await
            .unwrap()
            .len(),
        1,
        "declined: still assigned"
    );
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, "#assignments-table form button").await;
    text_until(&b, "assignments-table", |t| t.contains("Not assigned")).await;

    // An error page keeps the navigation for a signed-in user.
    b.goto(&s.url("/agents/no-such-agent")).await.unwrap();
    let main = b
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(main.contains("404"), "{main}");
    let nav = b
        .find(Locator::Css("header nav"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(nav.contains("Agents") && nav.contains("Roles"), "{nav}");
    screenshot(&b, "error-with-navigation.png").await;

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
    submit_sign_in(&b, "plain", "plain user password").await;
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
pub(crate) async fn text_until(b: &fantoccini::Client, id: &str, ok: impl Fn(&str) -> bool) {
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
    // The whole plaintext value: a short piece could occur by chance in
    // the base64 ciphertext or a key id.
    assert!(!out.contains("4111 1111"), "{out}");
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
            let v: serde_json::Value =
                get_json(&c, &s, &format!("/api/v1/instances/{id}/checks")).await;
            if v["items"].as_array().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    let table = element_text(&b, "instances-table").await;
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
        .find_all(Locator::Css("#instances-table svg.spark"))
        .await
        .unwrap();
    assert!(!charts.is_empty(), "no response-time charts drawn");
    // Failure rates on 0..100 %: red where checks failed, quiet where none did.
    let rates = b
        .find_all(Locator::Css(
            "#instances-table svg.spark.err, #instances-table svg.spark.quiet",
        ))
        .await
        .unwrap();
    assert!(!b
        .find_all(Locator::Css("#instances-table svg.spark.err"))
        .await
        .unwrap()
        .is_empty());
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

    // A heartbeat monitor at the minimum interval, its page without what
    // only an http check has; its form still saves.
    let agents = get_json(&c, &s, "/api/v1/agents").await;
    let agent_id = agents["items"][0]["id"].as_str().unwrap().to_string();
    let hb = post(
        &c,
        &csrf,
        &s,
        "/api/v1/instances",
        json!({"agent_id": agent_id, "name": "docs-beat", "kind": "heartbeat", "interval_seconds": 5}),
    )
    .await;
    let hb_page = s.url(&format!("/monitors/{}", hb["id"].as_str().unwrap()));
    b.goto(&hb_page).await.unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("edit-monitor"))
        .await
        .unwrap();
    for absent in [
        "f-url",
        "f-timeout_ms",
        "f-expected_status",
        "f-body_contains",
        "f-degraded_latency_ms",
    ] {
        assert!(
            b.find(Locator::Id(absent)).await.is_err(),
            "{absent} on a heartbeat page"
        );
    }
    assert!(
        b.find(Locator::Id("latency-chart")).await.is_err(),
        "a latency chart on a heartbeat page"
    );
    let head = element_text(&b, "checks-table").await;
    assert!(!head.contains("Response time"), "{head}");
    assert!(element_text(&b, "hours-table")
        .await
        .contains("No checks yet"));
    set("f-name", "docs-heartbeat").await;
    click_css(&b, "#edit-monitor button[type=submit]").await;
    text_until(&b, "monitor-state", |_| true).await;
    let title = b
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(title.contains("docs-heartbeat"), "{title}");
    screenshot(&b, "monitor-heartbeat.png").await;

    // The session ends (expired, or signed out elsewhere): signing in again
    // returns to the page asked for, not the dashboard.
    b.delete_all_cookies().await.unwrap();
    b.goto(&hb_page).await.unwrap();
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
    submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    b.wait()
        .at_most(wait)
        .for_element(Locator::Id("edit-monitor"))
        .await
        .unwrap();
    assert_eq!(b.current_url().await.unwrap().as_str(), hb_page);

    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

// ------------------------------------------------------------ alerting ---

/// Clears the field `id` and types `text` into it.
pub(crate) async fn type_into(b: &fantoccini::Client, id: &str, text: &str) {
    let el = b.find(Locator::Id(id)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

pub(crate) async fn click_css(b: &fantoccini::Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

pub(crate) async fn click_link(b: &fantoccini::Client, text: &str) {
    b.find(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("link {text}: {e}"))
        .click()
        .await
        .unwrap();
}

pub(crate) async fn value_of(b: &fantoccini::Client, id: &str) -> String {
    b.find(Locator::Id(id))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Loads `path` again and again (up to 30 s) until the text of element
/// `id` satisfies `ok`; returns that text.
async fn reload_until(
    b: &fantoccini::Client,
    s: &TestServer,
    path: &str,
    id: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        b.goto(&s.url(path)).await.unwrap();
        if let Ok(e) = b.find(Locator::Id(id)).await {
            last = e.text().await.unwrap_or_default();
            if ok(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("#{id} on {path} never matched; last text: {last}");
}

/// Waits until the browser has left a form's POST target (the answer to a
/// successful post is a redirect elsewhere).
async fn left_path(b: &fantoccini::Client, posted: &str) {
    for _ in 0..100 {
        if b.current_url().await.unwrap().path() != posted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still on {posted}");
}

/// Reports `error_rate` = 0.5 for agent planner, instance eu-1.
async fn report_planner_errors(s: &TestServer, c: &reqwest::Client, csrf: &str) {
    let res = c
        .post(s.url("/api/v1/metrics"))
        .header("x-csrf-token", csrf)
        .json(&json!({"metrics": [{"name": "error_rate", "value": 0.5,
            "labels": {"agent": "planner", "instance": "eu-1"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn chromium_manages_channels_rules_and_policies() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    report_planner_errors(&s, &c, &csrf).await;
    let receiver = receivers::HttpReceiver::start().await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;

    // The navigation leads to the alerting pages.
    click_link(&b, "Alerts").await;
    text_until(&b, "alerts-table", |t| t.contains("No firing alerts")).await;

    // A channel: a bad URL is refused next to the field, the name is kept.
    click_link(&b, "Channels").await;
    text_until(&b, "channels-table", |t| t.contains("No channels yet")).await;
    click_css(&b, "#new-channel").await;
    text_until(&b, "channel-form", |_| true).await;
    type_into(&b, "f-name", "ops-slack").await;
    click_css(&b, "#f-type option[value='slack']").await;
    type_into(&b, "f-slack_url", "ftp://hooks.example/x").await;
    click_css(&b, "#save-channel").await;
    text_until(&b, "error-slack_url", |t| t.contains("http")).await;
    assert_eq!(value_of(&b, "f-name").await, "ops-slack");
    type_into(&b, "f-slack_url", &receiver.url("/slack")).await;
    click_css(&b, "#save-channel").await;
    text_until(&b, "channel-secrets", |t| t.contains("url: set")).await;
    // The secret is never sent back to the page.
    let page = b.source().await.unwrap();
    assert!(!page.contains(&receiver.url("/slack")), "the URL leaked");
    click_css(&b, "#send-test").await;
    text_until(&b, "test-result", |t| t.contains("delivered")).await;
    screenshot(&b, "channel.png").await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).await.len(), 1);

    // The seeded rules name channels that do not exist yet.
    click_link(&b, "Rules").await;
    let rules = element_text(&b, "rule-agent_down").await;
    assert!(rules.contains("not configured"), "{rules}");

    // A rule with a parse error: the message and a caret under the
    // column, everything typed kept.
    click_css(&b, "#new-rule").await;
    text_until(&b, "rule-form", |_| true).await;
    type_into(&b, "f-name", "planner_errors").await;
    let bad = "error_rate{agent=\"planner\"} >> 0.2";
    type_into(&b, "f-expression", bad).await;
    type_into(&b, "f-channels", "ops-slack, pager-team").await;
    type_into(&b, "f-labels", "team=agents").await;
    click_css(&b, "#f-severity option[value='major']").await;
    click_css(&b, "#save-rule").await;
    text_until(&b, "error-expression", |t| t.starts_with("column ")).await;
    let message = b
        .find(Locator::Id("error-expression"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let column: usize = message["column ".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let shown = b
        .find(Locator::Id("expression-caret"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], bad, "{shown}");
    assert_eq!(lines[1].find('^'), Some(column - 1), "{shown}");
    assert_eq!(value_of(&b, "f-expression").await, bad);
    assert_eq!(value_of(&b, "f-name").await, "planner_errors");
    assert_eq!(value_of(&b, "f-channels").await, "ops-slack, pager-team");
    assert_eq!(value_of(&b, "f-severity").await, "major");
    screenshot(&b, "alert-rule-error.png").await;

    // Fixed, then tried without saving.
    type_into(
        &b,
        "f-expression",
        "error_rate{agent=\"planner\"} > 0.2 for 1m",
    )
    .await;
    click_css(&b, "#preview-expression").await;
    text_until(&b, "preview-result", |t| t.contains("1 series match")).await;
    let preview = b
        .find(Locator::Id("preview-table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        preview.contains("agent=planner") && preview.contains("0.5"),
        "{preview}"
    );
    assert!(b.find(Locator::Id("error-expression")).await.is_err());
    click_css(&b, "#save-rule").await;
    text_until(&b, "rule-name", |t| t == "planner_errors").await;
    let chips = b
        .find(Locator::Id("channel-chips"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(chips.contains("pager-team not configured"), "{chips}");
    assert!(!chips.contains("ops-slack not configured"), "{chips}");
    assert_eq!(value_of(&b, "f-labels").await, "team=agents");

    // Disabled and enabled from the list.
    click_link(&b, "Rules").await;
    text_until(&b, "rule-planner_errors", |t| t.contains("Disable")).await;
    click_css(&b, "#rule-planner_errors .toggle-rule").await;
    text_until(&b, "rule-planner_errors", |t| t.contains("Enable")).await;
    click_css(&b, "#rule-planner_errors .toggle-rule").await;
    text_until(&b, "rule-planner_errors", |t| t.contains("Disable")).await;
    screenshot(&b, "alert-rules.png").await;

    // Escalation policies: the seeded ones, a new one, and a refused delete.
    click_link(&b, "Escalation policies").await;
    let table = element_text(&b, "policies-table").await;
    for want in [
        "immediate",
        "standard",
        "every 5m",
        "after 15m",
        "agent_down",
    ] {
        assert!(table.contains(want), "{want}: {table}");
    }
    click_css(&b, "#new-policy").await;
    text_until(&b, "policy-form", |_| true).await;
    type_into(&b, "f-name", "night").await;
    type_into(&b, "f-steps", "0: ops-slack\nlater: pager-team").await;
    type_into(&b, "f-repeat_seconds", "1h").await;
    click_css(&b, "#save-policy").await;
    text_until(&b, "error-steps", |t| t.contains("line 2")).await;
    assert_eq!(value_of(&b, "f-name").await, "night");
    type_into(&b, "f-steps", "0: ops-slack\n15m: pager-team [quarantine]").await;
    click_css(&b, "#save-policy").await;
    text_until(&b, "delete-policy", |_| true).await;
    let steps = b
        .find(Locator::Css("ol.steps"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        steps.contains("quarantine agent") && steps.contains("after 15m"),
        "{steps}"
    );
    b.goto(&s.url("/escalation-policies/standard"))
        .await
        .unwrap();
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, "#delete-policy").await;
    text_until(&b, "form-error", |t| t.contains("rules use this policy")).await;
    screenshot(&b, "escalation-policy.png").await;

    // The test message is in the notification log.
    click_link(&b, "Notification log").await;
    let log = element_text(&b, "notifications-table").await;
    assert!(
        log.contains("ops-slack") && log.contains("test") && log.contains("delivered"),
        "{log}"
    );

    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

#[tokio::test]
async fn chromium_acknowledges_and_silences_an_alert() {
    let s = TestServer::start_with(|c| c.alerting.evaluation_interval_seconds = 1).await;
    let (c, csrf) = admin(&s).await;
    let receiver = receivers::HttpReceiver::start().await;
    let res = c
        .post(s.url("/api/v1/channels"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "ops-slack", "type": "slack",
            "settings": {"url": receiver.url("/slack")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    report_planner_errors(&s, &c, &csrf).await;
    let res = c
        .post(s.url("/api/v1/alert-rules"))
        .header("x-csrf-token", &csrf)
        .json(
            &json!({"name": "planner_errors", "expression": "error_rate{agent=\"planner\"} > 0.2",
            "severity": "major", "channels": ["ops-slack", "pager-team"],
            "annotations": {"summary": "Error rate of {{ $labels.agent }} is {{ $value }}"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;

    // The dashboard lists the firing alert and links to it.
    reload_until(&b, &s, "/", "active-alerts", |t| {
        t.contains("planner_errors")
    })
    .await;
    screenshot(&b, "dashboard-alerts.png").await;
    click_css(&b, "#active-alerts a[href^='/alerts/']").await;
    text_until(&b, "alert-state", |t| t == "firing").await;
    let alert_path = b.current_url().await.unwrap().path().to_string();
    let labels = b
        .find(Locator::Id("alert-labels"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        labels.contains("agent=planner") && labels.contains("instance=eu-1"),
        "{labels}"
    );
    text_until(&b, "alert-summary", |t| t == "Error rate of planner is 0.5").await;
    let prefilled = value_of(&b, "f-matchers").await;
    for want in [
        "alertname=\"planner_errors\"",
        "agent=\"planner\"",
        "instance=\"eu-1\"",
    ] {
        assert!(prefilled.contains(want), "{want}: {prefilled}");
    }
    // Its notifications: delivered to the channel, failed for the one
    // that is not configured.
    let rows = reload_until(&b, &s, &alert_path, "notifications-table", |t| {
        t.contains("delivered") && t.contains("failed")
    })
    .await;
    assert!(
        rows.contains("ops-slack") && rows.contains("pager-team"),
        "{rows}"
    );
    b.find(Locator::Css("#notifications-table tr.notification.failed"))
        .await
        .unwrap();
    let events = b
        .find(Locator::Id("events-table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(events.contains("firing"), "{events}");

    // Acknowledge.
    click_css(&b, "#acknowledge").await;
    text_until(&b, "alert-ack", |t| t.starts_with("by admin")).await;
    assert!(b.find(Locator::Id("acknowledge")).await.is_err());

    // Silence from the alert: the comment is required, the rest is kept.
    click_css(&b, "#f-duration option[value='4h']").await;
    click_css(&b, "#silence-submit").await;
    text_until(&b, "error-comment", |t| !t.is_empty()).await;
    assert_eq!(value_of(&b, "f-matchers").await, prefilled);
    assert_eq!(value_of(&b, "f-duration").await, "4h");
    type_into(&b, "f-comment", "fix is deploying").await;
    click_css(&b, "#silence-submit").await;
    left_path(&b, &format!("{alert_path}/silence")).await;
    assert_eq!(b.current_url().await.unwrap().path(), alert_path);
    text_until(&b, "alert-silences", |t| t.contains("silence until")).await;
    // Silenced: nothing is sent, so no next notification is promised.
    assert!(b.find(Locator::Id("next-notification")).await.is_err());
    screenshot(&b, "alert.png").await;

    // The alerts list: acknowledged by admin, and muted by the silence,
    // as the alert's page says.
    click_link(&b, "Alerts").await;
    let list = element_text(&b, "alerts-table").await;
    assert!(
        list.contains("planner_errors") && list.contains("admin"),
        "{list}"
    );
    let muted = b
        .find(Locator::Css("#alerts-table a.muted-by"))
        .await
        .unwrap();
    assert_eq!(muted.text().await.unwrap(), "silenced");
    assert!(muted
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default()
        .starts_with("/silences/"));
    assert!(list.contains("agent=planner"), "{list}");
    click_css(&b, "#tab-resolved").await;
    text_until(&b, "alerts-table", |t| t.contains("No resolved alerts")).await;
    click_css(&b, "#tab-all").await;
    text_until(&b, "alerts-table", |t| t.contains("planner_errors")).await;

    // Silences: the one made from the alert, and one made here and ended (expired).
    click_link(&b, "Silences").await;
    let silences = element_text(&b, "silences-table").await;
    for want in [
        "alertname=planner_errors",
        "agent=planner",
        "fix is deploying",
        "admin",
        "active",
    ] {
        assert!(silences.contains(want), "{want}: {silences}");
    }
    screenshot(&b, "silences.png").await;
    type_into(&b, "f-matchers", "instance \"eu-1\"").await;
    type_into(&b, "f-comment", "maintenance").await;
    click_css(&b, "#create-silence button[type=submit]").await;
    text_until(&b, "error-matchers", |t| t.contains("line 1")).await;
    assert_eq!(value_of(&b, "f-comment").await, "maintenance");
    type_into(&b, "f-matchers", "instance=~\"eu-.*\"").await;
    click_css(&b, "#create-silence button[type=submit]").await;
    text_until(&b, "silence-status", |t| t == "active").await;
    let m = b
        .find(Locator::Id("silence-matchers"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("instance=~eu-.*"), "{m}");
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, "#end-silence").await;
    text_until(&b, "silence-status", |t| t == "expired").await;
    b.goto(&s.url("/silences?show=expired")).await.unwrap();
    text_until(&b, "silences-table", |t| {
        t.contains("maintenance") && !t.contains("fix is deploying")
    })
    .await;

    // The notification log, failed ones on their own.
    click_link(&b, "Notification log").await;
    text_until(&b, "notifications-table", |t| {
        t.contains("firing") && t.contains("acknowledged") && t.contains("ops-slack")
    })
    .await;
    screenshot(&b, "notifications.png").await;
    click_css(&b, "#filter-failed").await;
    text_until(&b, "notifications-table", |t| {
        t.contains("pager-team") && !t.contains("delivered")
    })
    .await;
    b.close().await.unwrap();
    drop(driver);
    s.stop().await;
}

#[tokio::test]
async fn chromium_shows_alerting_read_only() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let post = |path: &'static str, body: serde_json::Value| {
        let (c, csrf, url) = (c.clone(), csrf.clone(), s.url(path));
        async move {
            let res = c
                .post(url)
                .header("x-csrf-token", csrf)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "{path}");
        }
    };
    post(
        "/api/v1/roles",
        json!({"name": "alert_viewer", "permissions": ["alert:read"]}),
    )
    .await;
    let user = create_user(&s, &c, &csrf, "watcher", "watcher password 1").await;
    post(
        "/api/v1/role-assignments",
        json!({"subject": {"type": "user", "id": user["id"]}, "role": "alert_viewer"}),
    )
    .await;

    let driver = start_driver().await;
    let b = browser(&driver).await;
    b.goto(&s.url("/login")).await.unwrap();
    type_into(&b, "username", "watcher").await;
    type_into(&b, "password", "watcher password 1").await;
    click_css(&b, "button[type=submit]").await;
    text_until(&b, "dashboard-user", |t| t == "watcher").await;
    text_until(&b, "no-alerts", |_| true).await;

    click_link(&b, "Alerts").await;
    text_until(&b, "alerts-table", |_| true).await;
    click_link(&b, "Rules").await;
    text_until(&b, "rule-agent_down", |t| t.contains("on")).await;
    assert!(b.find(Locator::Id("new-rule")).await.is_err());
    assert!(b.find(Locator::Css(".toggle-rule")).await.is_err());
    click_link(&b, "agent_down").await;
    text_until(&b, "rule-name", |t| t == "agent_down").await;
    let disabled = b
        .find(Locator::Css("#rule-form fieldset"))
        .await
        .unwrap()
        .prop("disabled")
        .await
        .unwrap();
    assert_eq!(disabled.as_deref(), Some("true"));
    assert!(b.find(Locator::Id("save-rule")).await.is_err());
    assert!(b.find(Locator::Id("delete-rule")).await.is_err());
    b.goto(&s.url("/silences")).await.unwrap();
    text_until(&b, "silences-table", |_| true).await;
    assert!(b.find(Locator::Id("create-silence")).await.is_err());
    b.goto(&s.url("/channels")).await.unwrap();
    text_until(&b, "channels-table", |_| true).await;
    assert!(b.find(Locator::Id("new-channel")).await.is_err());
    b.goto(&s.url("/escalation-policies/standard"))
        .await
        .unwrap();
    b.find(Locator::Css("ol.steps")).await.unwrap();
    assert!(b.find(Locator::Id("policy-form")).await.is_err());
    assert!(b.find(Locator::Id("delete-policy")).await.is_err());
    b.goto(&s.url("/notifications")).await.unwrap();
    text_until(&b, "notifications-table", |t| {
        t.contains("No notifications")
    })
    .await;
    b.goto(&s.url("/alert-rules/new")).await.unwrap();
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

/// The text of element `id` once it is on the page (within 10 s).
/// How many elements match `css`.
pub(crate) async fn count(b: &fantoccini::Client, css: &str) -> usize {
    b.find_all(Locator::Css(css)).await.unwrap().len()
}

/// The rendered text of every element matching `css`, in order.
pub(crate) async fn texts(b: &fantoccini::Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in b.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

pub(crate) async fn element_text(b: &fantoccini::Client, id: &str) -> String {
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
