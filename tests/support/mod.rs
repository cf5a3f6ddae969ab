//! Test harness: the real appliance on `127.0.0.1:0` with its own
//! temporary data directory, and a real HTTP client.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;

use agentry::{Config, Running};
use reqwest::redirect::Policy;
use secrecy::SecretString;
pub mod receivers;

pub const ADMIN_PASSWORD: &str = "integration test password";

pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    running: Option<Running>,
}

/// A config rooted in `dir`, quiet and ready for tests.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.join("data"),
        admin_password: Some(SecretString::from(ADMIN_PASSWORD)),
        ..Config::default()
    };
    c.systemd.notify = false;
    // Most tests sign the admin in with a password alone; the second-factor
    // tests turn the requirement back on (its default is system_admin).
    c.login.require_second_factor = vec![];
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    /// Starts on an existing directory (for restart tests).
    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        Self::start_on(listener, dir, config).await
    }

    /// Starts on a listener bound beforehand (for a config that names the
    /// port, such as `public_url`).
    pub async fn start_on(
        listener: TcpListener,
        dir: tempfile::TempDir,
        config: Config,
    ) -> TestServer {
        let running = agentry::start(config, listener)
            .await
            .expect("server starts");
        TestServer {
            base: format!("http://{}", running.addr),
            dir,
            running: Some(running),
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn db_path(&self) -> PathBuf {
        self.running().app.config.database_path()
    }

    /// Stops the server and hands back its directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.dir
    }
}

/// A client that keeps cookies and does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Extracts `name="csrf_token" value="..."` from a page.
pub fn form_csrf(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("form has a csrf_token field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Extracts the `<meta name="csrf-token">` content.
pub fn meta_csrf(html: &str) -> String {
    let marker = "<meta name=\"csrf-token\" content=\"";
    let start = html.find(marker).expect("page has a csrf meta tag") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Posts the login form of the server at `base`; returns the response.
pub async fn post_login_at(
    base: &str,
    c: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let page = c
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = form_csrf(&page);
    c.post(format!("{base}/login"))
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// Logs in at `base` and returns the session's CSRF token (for JSON calls).
pub async fn login_at(base: &str, c: &reqwest::Client, user: &str, password: &str) -> String {
    let res = post_login_at(base, c, user, password).await;
    assert_eq!(res.status(), 303, "login of {user} should succeed");
    let page = c
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    meta_csrf(&page)
}

pub async fn post_login(
    server: &TestServer,
    c: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    post_login_at(&server.base, c, user, password).await
}

pub async fn login(server: &TestServer, c: &reqwest::Client, user: &str, password: &str) -> String {
    login_at(&server.base, c, user, password).await
}

/// Waits (bounded: 5 s) until the server at `base` answers `/readyz` 200.
pub async fn wait_ready(base: &str) {
    let c = client();
    for _ in 0..200 {
        if c.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{base} did not become ready");
}

/// A free loopback port (for tests that start the binary itself).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A logged-in admin client and its CSRF token.
pub async fn admin(server: &TestServer) -> (reqwest::Client, String) {
    let c = client();
    let csrf = login(server, &c, "admin", ADMIN_PASSWORD).await;
    (c, csrf)
}

/// The status of `GET /api/v1/me` sent by `c` with a bearer credential
/// (API key or access token).
pub async fn me_with_bearer(s: &TestServer, c: &reqwest::Client, credential: &str) -> u16 {
    c.get(s.url("/api/v1/me"))
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `GET path` as `c`; asserts 200 and returns the JSON body.
pub async fn get_json(c: &reqwest::Client, s: &TestServer, path: &str) -> serde_json::Value {
    let res = c.get(s.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    res.json().await.unwrap()
}

/// `GET path` as `c`; returns the body as text, whatever the status (a
/// page, usually).
pub async fn get_text(c: &reqwest::Client, s: &TestServer, path: &str) -> String {
    c.get(s.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `POST path` with a JSON body and the CSRF header; asserts a 2xx and
/// returns the JSON body (null when there is none).
pub async fn post(
    c: &reqwest::Client,
    csrf: &str,
    s: &TestServer,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    send_json(c.post(s.url(path)), "POST", csrf, path, body).await
}

/// The `items` of a list page.
pub fn items(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    v["items"].as_array().unwrap()
}

/// `PUT path`, as [`post`].
pub async fn put(
    c: &reqwest::Client,
    csrf: &str,
    s: &TestServer,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    send_json(c.put(s.url(path)), "PUT", csrf, path, body).await
}

async fn send_json(
    req: reqwest::RequestBuilder,
    method: &str,
    csrf: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let res = req
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let v: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

/// Asserts a problem+json response with `status` and returns its body.
pub async fn expect_problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        res.status().as_u16(),
        status,
        "unexpected status for {}",
        res.url()
    );
    let ct = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(ct, "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    for k in ["type", "title", "detail", "code"] {
        assert!(body[k].is_string(), "problem lacks {k}: {body}");
    }
    body
}

/// Path of the built binary, for CLI tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_agentry")
}

/// A `Command` for the binary with a clean AGENTRY_* environment, but
/// for the admin's second factor, which these tests do not give (the
/// second-factor tests run the default).
pub fn command() -> std::process::Command {
    let mut cmd = std::process::Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTRY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AGENTRY_LOGIN__REQUIRE_SECOND_FACTOR", "[]");
    cmd
}

/// Creates a user through the API as the signed-in `c`; asserts 201.
pub async fn create_user(
    server: &TestServer,
    c: &reqwest::Client,
    csrf: &str,
    username: &str,
    password: &str,
) -> serde_json::Value {
    let res = c
        .post(server.url("/api/v1/users"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "creating {username}");
    res.json().await.unwrap()
}

/// Creates an agent through the API as the signed-in `c`; asserts 201 and
/// returns its id.
pub async fn create_agent(
    server: &TestServer,
    c: &reqwest::Client,
    csrf: &str,
    name: &str,
    agent_type: &str,
) -> String {
    let res = c
        .post(server.url("/api/v1/agents"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"name": name, "agent_type": agent_type}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "creating agent {name}");
    let v: serde_json::Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Issues an API key for agent `id` as the signed-in `c`; returns the key.
pub async fn create_agent_key(
    server: &TestServer,
    c: &reqwest::Client,
    csrf: &str,
    id: &str,
) -> String {
    let res = c
        .post(server.url(&format!("/api/v1/agents/{id}/keys")))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "creating a key for agent {id}");
    let v: serde_json::Value = res.json().await.unwrap();
    v["key"].as_str().unwrap().to_string()
}

/// Starts the real binary on `127.0.0.1:port` over `<dir>/data` with the
/// test admin password, quiet, plus `env`; for tests that must kill or
/// signal a real process.
pub fn spawn_agentry(
    dir: &std::path::Path,
    port: u16,
    env: &[(&str, &str)],
) -> std::process::Child {
    let mut cmd = command();
    cmd.current_dir(dir)
        .env("AGENTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENTRY_DATA_DIR", dir.join("data"))
        .env("AGENTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("AGENTRY_SYSTEMD__NOTIFY", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("the agentry binary starts")
}

/// `agentry audit verify` over `<dir>/data` succeeds.
pub fn assert_audit_verifies(dir: &std::path::Path) {
    let out = command()
        .env("AGENTRY_DATA_DIR", dir.join("data"))
        .args(["audit", "verify"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Waits (up to 15 s) until at least `n` alerts fire; returns them.
pub async fn firing_alerts(
    c: &reqwest::Client,
    s: &TestServer,
    n: usize,
) -> Vec<serde_json::Value> {
    for _ in 0..150 {
        let v = get_json(c, s, "/api/v1/alerts?state=firing").await;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{n} alerts never fired");
}
