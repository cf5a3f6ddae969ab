//! The users API end to end.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn create_read_update_delete() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let res = c
        .post(s.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"username": "jane", "password": "jane's long password", "email": "jane@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let u: serde_json::Value = res.json().await.unwrap();
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(u["username"], "jane");
    assert!(u.get("password").is_none() && u.get("password_hash").is_none());

    // Duplicate (case-insensitive) is a conflict.
    let dup = c
        .post(s.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"username": "JANE", "password": "another long password"}))
        .send()
        .await
        .unwrap();
    expect_problem(dup, 409).await;

    let patched: serde_json::Value = c
        .patch(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"display_name": "Jane Doe", "email": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["display_name"], "Jane Doe");
    assert!(patched["email"].is_null());

    let bad = c
        .patch(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"email": "not-an-address"}))
        .send()
        .await
        .unwrap();
    let p = expect_problem(bad, 422).await;
    assert!(p["errors"]["email"].is_string());

    let res = c
        .delete(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_problem(
        c.get(s.url(&format!("/api/v1/users/{id}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted_or_disabled() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let me: serde_json::Value = get_json(&c, &s, "/api/v1/me").await;
    let id = me["principal"]["id"].as_str().unwrap();
    let res = c
        .delete(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    expect_problem(res, 409).await;
    let res = c
        .patch(s.url(&format!("/api/v1/users/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 409).await;
    s.stop().await;
}

#[tokio::test]
async fn users_without_user_manage_are_forbidden() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let u: serde_json::Value = create_user(&s, &c, &csrf, "plain", "plain user password").await;
    let plain = client();
    let pcsrf = login(&s, &plain, "plain", "plain user password").await;
    let res = plain.get(s.url("/api/v1/users")).send().await.unwrap();
    expect_problem(res, 403).await;
    let res = plain
        .post(s.url("/api/v1/users"))
        .header("x-csrf-token", &pcsrf)
        .json(&json!({"username": "sneaky", "password": "sneaky long password"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 403).await;
    // But they may read themselves and change their own password.
    let id = u["id"].as_str().unwrap();
    assert_eq!(
        plain
            .get(s.url(&format!("/api/v1/users/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = plain
        .post(s.url(&format!("/api/v1/users/{id}/password")))
        .header("x-csrf-token", &pcsrf)
        .json(&json!({"password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, 422).await;
    assert!(p["errors"]["current_password"].is_string());
    let res = plain
        .post(s.url(&format!("/api/v1/users/{id}/password")))
        .header("x-csrf-token", &pcsrf)
        .json(
            &json!({"password": "a brand new password", "current_password": "plain user password"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // The session that changed it survives; the old password no longer works.
    assert_eq!(
        plain
            .get(s.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post_login(&s, &client(), "plain", "plain user password")
            .await
            .status(),
        401
    );
    assert_eq!(
        post_login(&s, &client(), "plain", "a brand new password")
            .await
            .status(),
        303
    );
    s.stop().await;
}

#[tokio::test]
async fn pagination_walks_every_user_once() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    for i in 0..7 {
        create_user(&s, &c, &csrf, &format!("user{i}"), "some long password").await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = s.url("/api/v1/users?limit=3");
        if let Some(cur) = &cursor {
            url.push_str(&format!("&cursor={cur}"));
        }
        let page: serde_json::Value = c.get(url).send().await.unwrap().json().await.unwrap();
        for u in page["items"].as_array().unwrap() {
            seen.push(u["username"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 8);
    for q in [
        "limit=0",
        "limit=1001",
        "limit=-5",
        "limit=abc",
        "cursor=%%%",
        "bogus=1",
    ] {
        expect_problem(
            c.get(s.url(&format!("/api/v1/users?{q}")))
                .send()
                .await
                .unwrap(),
            400,
        )
        .await;
    }
    s.stop().await;
}

#[tokio::test]
async fn revoking_sessions_logs_the_user_out() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let u: serde_json::Value = create_user(&s, &c, &csrf, "mobile", "mobile long password").await;
    let other = client();
    login(&s, &other, "mobile", "mobile long password").await;
    let id = u["id"].as_str().unwrap();
    let res: serde_json::Value = c
        .delete(s.url(&format!("/api/v1/users/{id}/sessions")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["ended"], 1);
    assert_eq!(other.get(s.url("/")).send().await.unwrap().status(), 303);
    s.stop().await;
}
