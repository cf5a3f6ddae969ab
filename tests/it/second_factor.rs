//! Second factors (SPEC §16): forced enrolment of an administrator on
//! first sign-in, TOTP codes computed by an independent implementation
//! (pyotp), each code once, recovery codes once, wrong codes toward the
//! lockout, the administrator's reset and the CLI's break-glass reset.

use serde_json::Value;

use crate::support::*;

/// A server with the shipped default: system_admin must have a factor.
async fn server(max_failures: u32) -> TestServer {
    TestServer::start_with(|c| {
        c.login.require_second_factor = vec!["system_admin".into()];
        c.login.max_failures = max_failures;
    })
    .await
}

/// The TOTP code for `secret` (base32) at `unix` seconds, by pyotp.
pub(crate) async fn pyotp(secret: &str, unix: i64) -> String {
    let (secret, at) = (secret.to_string(), unix.to_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([
                "-c",
                "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
                &secret,
                &at,
            ])
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The text between `start` and the next `end` in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    &html[from..from + html[from..].find(end).unwrap()]
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

async fn form(
    c: &reqwest::Client,
    s: &TestServer,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    c.post(s.url(path)).form(fields).send().await.unwrap()
}

/// Enrols an authenticator app for the session in `c` (at the enrolment
/// page); returns its base32 secret and the recovery-codes page.
pub(crate) async fn enrol_totp(c: &reqwest::Client, s: &TestServer) -> (String, String) {
    let page = get_text(c, s, "/account/second-factor").await;
    let csrf = form_csrf(&page);
    let res = form(
        c,
        s,
        "/account/second-factor/totp",
        &[("label", "phone"), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("<svg role=\"img\""), "a QR code: {page}");
    let secret =
        between(&page, "id=\"totp-secret\" class=\"secret grouped\">", "<").replace(' ', "");
    let confirm = between(&page, "action=\"/account/second-factor/totp/", "\"").to_string();
    let code = pyotp(&secret, now()).await;
    let res = form(
        c,
        s,
        &format!("/account/second-factor/totp/{confirm}"),
        &[("code", &code), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200, "confirmed");
    (secret, res.text().await.unwrap())
}

fn recovery_codes(page: &str) -> Vec<String> {
    let list = between(page, "<ol class=\"codes\" id=\"codes\">", "</ol>");
    list.split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").unwrap()].to_string())
        .collect()
}

/// Password, then `code` at the second step; returns the step's answer.
async fn sign_in_with(
    c: &reqwest::Client,
    s: &TestServer,
    user: &str,
    password: &str,
    code: &str,
) -> reqwest::Response {
    let res = post_login(s, c, user, password).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login/second-factor");
    let page = get_text(c, s, "/login/second-factor").await;
    let csrf = form_csrf(&page);
    form(
        c,
        s,
        "/login/second-factor",
        &[("code", code), ("csrf_token", &csrf)],
    )
    .await
}

async fn audit_actions(c: &reqwest::Client, s: &TestServer, action: &str) -> Vec<Value> {
    items(&get_json(c, s, &format!("/api/v1/audit?action={action}&limit=100")).await).clone()
}

#[tokio::test]
async fn the_first_admin_enrols_on_first_sign_in_and_codes_work_once() {
    let s = server(5).await;
    let c = client();
    // The password leads to enrolment, and nothing else answers meanwhile.
    let res = post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/account/second-factor");
    for path in ["/", "/users", "/account", "/login/second-factor"] {
        let res = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(location(&res), "/account/second-factor", "{path}");
    }
    assert_eq!(
        c.get(s.url("/api/v1/me")).send().await.unwrap().status(),
        401
    );
    let page = get_text(&c, &s, "/account/second-factor").await;
    assert!(page.contains("id=\"enrol-required\""), "{page}");
    assert!(!page.contains("class=\"topbar\""), "no navigation yet");

    // A wrong first code keeps the enrolment (same QR), the right one
    // confirms it and hands out ten recovery codes and a full session.
    let csrf = form_csrf(&page);
    let res = form(
        &c,
        &s,
        "/account/second-factor/totp",
        &[("label", ""), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 422, "a device needs a name");
    let res = form(
        &c,
        &s,
        "/account/second-factor/totp",
        &[("label", "phone"), ("csrf_token", &csrf)],
    )
    .await;
    let page = res.text().await.unwrap();
    let secret =
        between(&page, "id=\"totp-secret\" class=\"secret grouped\">", "<").replace(' ', "");
    let confirm = between(&page, "action=\"/account/second-factor/totp/", "\"").to_string();
    let good = pyotp(&secret, now()).await;
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let res = form(
        &c,
        &s,
        &format!("/account/second-factor/totp/{confirm}"),
        &[("code", wrong), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 422);
    let again = res.text().await.unwrap();
    assert!(again.contains("id=\"error-code\""), "{again}");
    // The same key again (shown in fours).
    let grouped = format!("{} {}", &secret[..4], &secret[4..8]);
    assert!(
        again.contains(&grouped),
        "the same enrolment is shown again"
    );
    let res = form(
        &c,
        &s,
        &format!("/account/second-factor/totp/{confirm}"),
        &[("code", &good), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().contains("agentry_session=")));
    let page = res.text().await.unwrap();
    let codes = recovery_codes(&page);
    assert_eq!(codes.len(), 10, "{page}");
    assert_eq!(c.get(s.url("/")).send().await.unwrap().status(), 200);
    let account = get_text(&c, &s, "/account").await;
    assert!(
        account.contains("Authenticator app") && account.contains("10 of 10 unused"),
        "{account}"
    );

    // Sign in again: the code just used is refused (each code once), the
    // next step's code (one step of drift) is accepted.
    let fresh = client();
    let res = sign_in_with(&fresh, &s, "admin", ADMIN_PASSWORD, &good).await;
    assert_eq!(res.status(), 401, "the enrolment's code again");
    let page = res.text().await.unwrap();
    assert!(page.contains("already used"), "{page}");
    assert!(
        page.contains("the code your authenticator app shows"),
        "{page}"
    );
    let csrf = form_csrf(&page);
    let next = pyotp(&secret, now() + 30).await;
    let res = form(
        &fresh,
        &s,
        "/login/second-factor",
        &[("code", &next), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    assert_eq!(
        fresh
            .get(s.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A recovery code (typed loosely) works once.
    let other = client();
    let loose = codes[0].to_uppercase().replace('-', " ");
    let res = sign_in_with(&other, &s, "admin", ADMIN_PASSWORD, &loose).await;
    assert_eq!(res.status(), 303, "recovery code");
    let again = client();
    let res = sign_in_with(&again, &s, "admin", ADMIN_PASSWORD, &codes[0]).await;
    assert_eq!(res.status(), 401, "a used recovery code");
    assert!(get_text(&fresh, &s, "/account")
        .await
        .contains("9 of 10 unused"));

    // Everything is on the audit trail, without a secret or a code.
    let logins = audit_actions(&fresh, &s, "auth.login").await;
    let methods: Vec<&str> = logins
        .iter()
        .filter_map(|r| r["details"]["method"].as_str())
        .collect();
    for m in ["password+totp", "password+recovery_code"] {
        assert!(methods.contains(&m), "{methods:?}");
    }
    for action in [
        "auth.factor_enrol",
        "auth.factor_confirm",
        "auth.recovery_codes",
        "auth.password",
    ] {
        assert!(
            !audit_actions(&fresh, &s, action).await.is_empty(),
            "{action}"
        );
    }
    let failures = audit_actions(&fresh, &s, "auth.second_factor").await;
    assert!(
        failures.iter().any(|r| r["outcome"] == "failure"),
        "{failures:?}"
    );
    let export = fresh
        .get(s.url("/api/v1/audit/export"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !export.contains(&secret),
        "the TOTP secret is not in the audit trail"
    );
    assert!(
        !export.contains(&codes[1]),
        "recovery codes are not in the audit trail"
    );
    // The secret is sealed at rest.
    let db = std::fs::read(s.db_path()).unwrap();
    let wal = std::fs::read(s.db_path().with_extension("db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!String::from_utf8_lossy(bytes).contains(&secret));
    }
    s.stop().await;
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout() {
    let s = server(3).await;
    let c = client();
    post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    enrol_totp(&c, &s).await;
    let b = client();
    // One wrong password, then two wrong codes: the third failure locks.
    assert_eq!(
        post_login(&s, &b, "admin", "not the password")
            .await
            .status(),
        401
    );
    let res = sign_in_with(&b, &s, "admin", ADMIN_PASSWORD, "000001").await;
    assert_eq!(res.status(), 401);
    let csrf = form_csrf(&res.text().await.unwrap());
    let res = form(
        &b,
        &s,
        "/login/second-factor",
        &[("code", "not-a-code"), ("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("locked"));
    // The half-done sign-in is gone, and the right password and code no
    // longer get in.
    assert_eq!(
        location(&b.get(s.url("/login/second-factor")).send().await.unwrap()),
        "/login"
    );
    assert_eq!(
        post_login(&s, &b, "admin", ADMIN_PASSWORD).await.status(),
        401
    );
    let locks = audit_actions(&c, &s, "auth.lockout").await;
    assert_eq!(
        locks[0]["reason"], "too many failed second factors",
        "{locks:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_admin_resets_a_users_factors_and_a_required_factor_is_enrolled_again() {
    let s = server(5).await;
    let admin = client();
    post_login(&s, &admin, "admin", ADMIN_PASSWORD).await;
    enrol_totp(&admin, &s).await;
    let page = get_text(&admin, &s, "/").await;
    let csrf = meta_csrf(&page);

    // A user without a required role signs in with the password alone,
    // may add a factor, and is then asked for it.
    let bob = create_user(&s, &admin, &csrf, "bob", "bob's long password").await;
    let bob_id = bob["id"].as_str().unwrap().to_string();
    let b = client();
    let res = post_login(&s, &b, "bob", "bob's long password").await;
    assert_eq!(location(&res), "/");
    let account = get_text(&b, &s, "/account").await;
    assert!(account.contains("None yet"), "{account}");
    let (_, codes_page) = enrol_totp(&b, &s).await;
    assert_eq!(
        recovery_codes(&codes_page).len(),
        10,
        "first factor, first codes"
    );
    let res = post_login(&s, &client(), "bob", "bob's long password").await;
    assert_eq!(location(&res), "/login/second-factor");

    // The admin sees it and resets it (API); bob is signed out and back
    // to the password alone.
    let detail = get_text(&admin, &s, &format!("/users/{bob_id}")).await;
    assert!(detail.contains("id=\"reset-factors\""), "{detail}");
    let res = admin
        .delete(s.url(&format!("/api/v1/users/{bob_id}/factors")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["removed"], 1);
    assert_eq!(
        b.get(s.url("/")).send().await.unwrap().status(),
        303,
        "bob's session ended"
    );
    let res = post_login(&s, &client(), "bob", "bob's long password").await;
    assert_eq!(location(&res), "/");
    let resets = audit_actions(&admin, &s, "auth.factor_reset").await;
    assert_eq!(resets[0]["target_id"], bob_id.as_str(), "{resets:?}");
    let missing = admin
        .delete(s.url("/api/v1/users/nobody/factors"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    expect_problem(missing, 404).await;
    // Without user:manage: refused.
    let b = client();
    let bcsrf = login(&s, &b, "bob", "bob's long password").await;
    let res = b
        .delete(s.url(&format!("/api/v1/users/{bob_id}/factors")))
        .header("x-csrf-token", &bcsrf)
        .send()
        .await
        .unwrap();
    expect_problem(res, 403).await;

    // The admin's own last factor cannot be removed while the role
    // requires one.
    let account = get_text(&admin, &s, "/account").await;
    let factor = between(&account, "action=\"/account/factors/", "/remove").to_string();
    let res = form(
        &admin,
        &s,
        &format!("/account/factors/{factor}/remove"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("add another"));
    s.stop().await;
}

/// The break-glass path: a lost device and lost recovery codes. The CLI
/// clears the factors (audited) and the admin enrols again; reset-password
/// says the factors stay.
#[tokio::test]
async fn the_cli_clears_a_users_factors() {
    let s = server(5).await;
    let c = client();
    post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    enrol_totp(&c, &s).await;
    let config = s.running().app.config.as_ref().clone();
    let dir = s.stop().await;
    let data = config.data_dir.clone();
    let cli = |args: &[&str]| {
        command()
            .env("AGENTRY_DATA_DIR", &data)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = cli(&["admin", "reset-second-factor", "--username", "ghost"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named ghost"));
    let out = cli(&["admin", "reset-second-factor", "--username", "admin"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("1 factor(s)") && said.contains("session(s) ended"),
        "{said}"
    );
    let help = cli(&["admin", "reset-password", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("second factors stay"));

    let s = TestServer::start_in(dir, config).await;
    let c = client();
    let res = post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(location(&res), "/account/second-factor", "enrol again");
    enrol_totp(&c, &s).await;
    let resets = audit_actions(&c, &s, "auth.factor_reset").await;
    assert_eq!(resets[0]["details"]["via"], "cli", "{resets:?}");
    s.stop().await;
}

/// Hostile and broken input on the sign-in steps: refused with a clear
/// status, nothing signed in, nothing half-written.
#[tokio::test]
async fn the_sign_in_steps_refuse_hostile_input() {
    let s = server(50).await;
    let c = client();
    // Passkey sign-in without the login form's token, with garbage, with
    // an unknown ceremony, with an oversized credential.
    let page = get_text(&c, &s, "/login").await;
    let csrf = form_csrf(&page);
    let res = form(&c, &s, "/login/passkey/options", &[("csrf_token", "nope")]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "csrf_failed");
    // Passkeys are unavailable on an IP address: a clear refusal.
    let res = form(&c, &s, "/login/passkey/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 422, "passkeys need a host name");
    let big = "x".repeat(70 * 1024);
    for (ceremony, credential) in [
        ("", ""),
        ("unknown", "{\"id\": 1}"),
        ("unknown", "not json"),
        ("unknown", big.as_str()),
    ] {
        let res = form(
            &c,
            &s,
            "/login/passkey",
            &[
                ("csrf_token", &csrf),
                ("ceremony", ceremony),
                ("credential", credential),
            ],
        )
        .await;
        assert!(
            res.status().is_client_error(),
            "{ceremony} {}",
            res.status()
        );
    }
    let res = form(
        &c,
        &s,
        "/login/passkey",
        &[("csrf_token", "nope"), ("credential", "{}")],
    )
    .await;
    assert_eq!(res.status(), 403);

    // The second step without a sign-in under way goes to the login page;
    // an oversized code is refused like a wrong one.
    let res = c.get(s.url("/login/second-factor")).send().await.unwrap();
    assert_eq!(location(&res), "/login");
    post_login(&s, &c, "admin", ADMIN_PASSWORD).await;
    enrol_totp(&c, &s).await;
    let b = client();
    let res = sign_in_with(&b, &s, "admin", ADMIN_PASSWORD, &"9".repeat(5000)).await;
    assert_eq!(res.status(), 401);
    let res = sign_in_with(&client(), &s, "admin", ADMIN_PASSWORD, "12345\u{0}6").await;
    assert_eq!(res.status(), 401);
    // A forged form token at the step.
    let res = form(
        &b,
        &s,
        "/login/second-factor",
        &[("code", "123456"), ("csrf_token", "forged")],
    )
    .await;
    assert_eq!(res.status(), 403);
    // Sign-on is not configured here: a 404, not an error.
    assert_eq!(
        c.get(s.url("/login/oidc")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        c.get(s.url("/login/oidc/callback?state=x&code=y"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}
