//! Browser login over plain HTTP: success, failure, lockout, CSRF, logout,
//! rate limiting and cookie flags.

use crate::support::*;

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.contains("agentry_session="))
}

#[tokio::test]
async fn login_success_shows_dashboard_and_sets_a_strict_cookie() {
    let s = TestServer::start().await;
    let c = client();
    let res = post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    let cookie = session_cookie(&res).expect("session cookie");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/"));
    let page = c
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"dashboard-user\">admin<"), "{page}");
    assert!(page.contains("system_admin"));
    let me: serde_json::Value = get_json(&c, &s, "/api/v1/me").await;
    assert_eq!(me["principal"]["name"], "admin");
    assert_eq!(me["principal"]["type"], "user");
    assert_eq!(me["roles"][0], "system_admin");
    assert_eq!(me["permissions"][0], "*");
    s.stop().await;
}

#[tokio::test]
async fn session_token_is_stored_hashed() {
    let s = TestServer::start().await;
    let c = client();
    let res = post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    let cookie = session_cookie(&res).unwrap();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 43);
    let db = s.db_path();
    let dir = s.stop().await;
    let mut all = Vec::new();
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let hay = String::from_utf8_lossy(&all);
    assert!(
        !hay.contains(&token),
        "the raw session token is in the data directory"
    );
    assert!(
        !hay.contains(ADMIN_PASSWORD),
        "the admin password is in the data directory"
    );
    drop(dir);
}

#[tokio::test]
async fn unauthenticated_pages_redirect_to_login() {
    let s = TestServer::start().await;
    let res = client().get(s.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
    // A deeper page is returned to after signing in; only local paths are.
    let res = client()
        .get(s.url("/alerts?state=all"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/login?next=%2Falerts%3Fstate%3Dall");
    let page = get_text(&client(), &s, &location).await;
    assert!(
        page.contains(r#"name="next" value="/alerts?state=all""#),
        "{page}"
    );
    for (next, lands) in [
        ("/alerts?state=all", "/alerts?state=all"),
        ("//evil.example/", "/"),
    ] {
        let c = client();
        let token = form_csrf(&get_text(&c, &s, "/login").await);
        let res = c
            .post(s.url("/login"))
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("csrf_token", token.as_str()),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], lands, "next={next}");
    }
    s.stop().await;
}

#[tokio::test]
async fn failures_look_the_same_whether_or_not_the_user_exists() {
    let s = TestServer::start().await;
    let c = client();
    let wrong = post_login(&s, &c, "admin", "not the password").await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    let missing = post_login(&s, &c, "nobody-here", "not the password").await;
    assert_eq!(missing.status(), 401);
    let missing = missing.text().await.unwrap();
    let msg = |page: &str| {
        let start = page.find("id=\"login-error\">").unwrap();
        page[start..start + page[start..].find('<').unwrap()].to_string()
    };
    assert_eq!(msg(&wrong), msg(&missing));
    // What was typed is kept.
    assert!(missing.contains("value=\"nobody-here\""));
    s.stop().await;
}

#[tokio::test]
async fn lockout_after_repeated_failures_then_admin_unlock() {
    let s = TestServer::start_with(|c| c.login.max_failures = 3).await;
    let (admin_c, csrf) = admin(&s).await;
    let created: serde_json::Value =
        create_user(&s, &admin_c, &csrf, "victim", "victim password 1").await;
    let id = created["id"].as_str().unwrap().to_string();

    let c = client();
    for _ in 0..3 {
        assert_eq!(
            post_login(&s, &c, "victim", "wrong wrong wrong")
                .await
                .status(),
            401
        );
    }
    // Locked now: even the right password fails, with the same message.
    assert_eq!(
        post_login(&s, &c, "victim", "victim password 1")
            .await
            .status(),
        401
    );
    let u: serde_json::Value = get_json(&admin_c, &s, &format!("/api/v1/users/{id}")).await;
    assert_eq!(u["locked"], true, "{u}");

    let res = admin_c
        .post(s.url(&format!("/api/v1/users/{id}/unlock")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        post_login(&s, &c, "victim", "victim password 1")
            .await
            .status(),
        303
    );
    s.stop().await;
}

#[tokio::test]
async fn login_without_or_with_wrong_csrf_is_rejected() {
    let s = TestServer::start().await;
    let c = client();
    c.get(s.url("/login")).send().await.unwrap();
    for token in ["", "forged"] {
        let res = c
            .post(s.url("/login"))
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("csrf_token", token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
    // A valid token but a cross-site request (Fetch-Metadata).
    let page = c
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = form_csrf(&page);
    let res = c
        .post(s.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // A fresh client (no nonce cookie) with a token from another client.
    let other = client();
    let res = other
        .post(s.url("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    s.stop().await;
}

#[tokio::test]
async fn logout_needs_csrf_and_ends_the_session() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let res = c
        .post(s.url("/logout"))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(c.get(s.url("/")).send().await.unwrap().status(), 200);
    let res = c
        .post(s.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
    assert_eq!(c.get(s.url("/")).send().await.unwrap().status(), 303);
    s.stop().await;
}

#[tokio::test]
async fn json_calls_with_cookie_need_the_csrf_header() {
    let s = TestServer::start().await;
    let (c, _csrf) = admin(&s).await;
    let body = serde_json::json!({"username": "eve", "password": "a long enough password"});
    let p = expect_problem(
        c.post(s.url("/api/v1/users"))
            .json(&body)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(p["code"], "csrf_failed");
    let p = expect_problem(
        c.post(s.url("/api/v1/users"))
            .header("x-csrf-token", "forged")
            .json(&body)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(p["code"], "csrf_failed");
    s.stop().await;
}

#[tokio::test]
async fn login_is_rate_limited_per_ip() {
    let s = TestServer::start_with(|c| c.login.rate_limit_per_minute = 3).await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = post_login(&s, &c, "nobody", "whatever whatever").await;
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[401, 401, 401]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
    s.stop().await;
}

#[tokio::test]
async fn secure_cookies_use_the_host_prefix() {
    let s = TestServer::start_with(|c| c.session.cookie_secure = true).await;
    let c = client();
    let page = c.get(s.url("/login")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-agentry_login="), "{cookie}");
    assert!(cookie.contains("Secure"));
    s.stop().await;
}

#[tokio::test]
async fn idle_sessions_expire() {
    let s = TestServer::start().await;
    let (c, _) = admin(&s).await;
    // Age every session past the idle timeout directly in the database.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute(
        "UPDATE sessions SET last_seen_at = last_seen_at - 31 * 60 * 1000",
        [],
    )
    .unwrap();
    assert_eq!(c.get(s.url("/")).send().await.unwrap().status(), 303);
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the idle session is deleted on sight");
    s.stop().await;
}
