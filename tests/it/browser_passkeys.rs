//! Passkeys in headless Chromium with its virtual authenticator (the
//! WebAuthn extension of WebDriver): the first administrator enrols a
//! passkey instead of an app, signs in with it without a password, and
//! gives it as the second step after the password; another user's
//! passkey is refused at that step.

use std::net::TcpListener;
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{
    browser, click_css, element_text, screenshot, start_driver, submit_sign_in, type_into,
};
use crate::support::*;

/// A command of WebDriver's WebAuthn extension.
#[derive(Debug)]
struct WebAuthn {
    method: http::Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// Adds a platform authenticator that keeps passkeys and verifies its user
/// (as a fingerprint would) without asking; returns its id.
async fn virtual_authenticator(b: &fantoccini::Client) -> String {
    let out = b
        .issue_cmd(WebAuthn {
            method: http::Method::POST,
            path: "authenticator".into(),
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            })),
        })
        .await
        .expect("chromedriver adds a virtual authenticator");
    out.as_str()
        .unwrap_or_else(|| out["authenticatorId"].as_str().unwrap())
        .to_string()
}

async fn credentials(b: &fantoccini::Client, authenticator: &str) -> Vec<Value> {
    let out = b
        .issue_cmd(WebAuthn {
            method: http::Method::GET,
            path: format!("authenticator/{authenticator}/credentials"),
            body: None,
        })
        .await
        .unwrap();
    out.as_array().cloned().unwrap_or_default()
}

async fn sign_out(b: &fantoccini::Client) {
    click_css(b, ".signout button[type=submit]").await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
}

#[tokio::test]
async fn chromium_enrols_and_signs_in_with_a_passkey() {
    // WebAuthn needs a host name (browsers refuse IP addresses): the
    // appliance is reached as localhost, its public_url.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = format!("http://localhost:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.public_url = Some(origin.clone());
    config.login.require_second_factor = vec!["system_admin".into()];
    let s = TestServer::start_on(listener, dir, config).await;
    let url = |p: &str| format!("{origin}{p}");
    let driver = start_driver().await;
    let b = browser(&driver).await;
    b.goto(&url("/login")).await.unwrap();
    let authenticator = virtual_authenticator(&b).await;

    // First sign-in: the password, then a passkey as the required factor.
    submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    element_text(&b, "enrol-required").await;
    type_into(&b, "f-passkey-label", "laptop").await;
    click_css(&b, "#add-passkey").await;
    let codes = element_text(&b, "codes").await;
    assert_eq!(codes.lines().filter(|l| !l.trim().is_empty()).count(), 10);
    click_css(&b, "#continue").await;
    element_text(&b, "dashboard-user").await;
    b.goto(&url("/account")).await.unwrap();
    let table = element_text(&b, "factors-table").await;
    assert!(
        table.contains("Passkey") && table.contains("laptop"),
        "{table}"
    );
    assert_eq!(
        credentials(&b, &authenticator).await.len(),
        1,
        "the authenticator keeps it"
    );

    // Without a password: the passkey alone signs in.
    sign_out(&b).await;
    screenshot(&b, "passkey_login.png").await;
    click_css(&b, "#passkey-sign-in").await;
    element_text(&b, "dashboard-user").await;

    // After the password, the passkey is the second step.
    sign_out(&b).await;
    submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("use-passkey"))
        .await
        .unwrap();
    let hint = element_text(&b, "step-hint").await;
    assert!(
        hint.contains("Use your passkey") && !hint.contains("authenticator app"),
        "{hint}"
    );
    screenshot(&b, "passkey_step.png").await;
    click_css(&b, "#use-passkey").await;
    element_text(&b, "dashboard-user").await;

    // Bob (no role that requires a factor) adds his own passkey.
    let admin_page = b.source().await.unwrap();
    let admin_csrf = meta_csrf(&admin_page);
    let created: Value = b
        .execute_async(
            r#"const [csrf, done] = arguments;
               fetch("/api/v1/users", {method: "POST", headers: {"content-type": "application/json", "x-csrf-token": csrf},
                 body: JSON.stringify({username: "bob", password: "bob's long password"})})
               .then(r => r.json()).then(done);"#,
            vec![json!(admin_csrf)],
        )
        .await
        .unwrap();
    let bob_id = created["id"].as_str().unwrap().to_string();
    sign_out(&b).await;
    submit_sign_in(&b, "bob", "bob's long password").await;
    element_text(&b, "dashboard-user").await;
    b.goto(&url("/account/second-factor")).await.unwrap();
    type_into(&b, "f-passkey-label", "bob's key").await;
    click_css(&b, "#add-passkey").await;
    element_text(&b, "codes").await;
    click_css(&b, "#continue").await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("factors-table"))
        .await
        .unwrap();
    let creds = credentials(&b, &authenticator).await;
    assert_eq!(creds.len(), 2);
    sign_out(&b).await;

    // The admin's second step answered with bob's passkey: refused.
    submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("use-passkey"))
        .await
        .unwrap();
    let bob_handle = {
        use base64::Engine as _;
        let uuid = uuid::Uuid::parse_str(&bob_id).unwrap();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid.as_bytes())
    };
    let bob_cred = creds
        .iter()
        .find(|c| {
            c["userHandle"].as_str().map(|h| h.trim_end_matches('=')) == Some(bob_handle.as_str())
        })
        .unwrap_or_else(|| panic!("bob's credential among {creds:?}"))["credentialId"]
        .as_str()
        .unwrap()
        .to_string();
    let outcome: Value = b
        .execute_async(
            r#"const [credId, done] = arguments;
               const form = document.getElementById("use-passkey-form");
               const body = new URLSearchParams({csrf_token: form.elements.csrf_token.value});
               fetch(form.dataset.options, {method: "POST", body}).then(r => r.json()).then(opts => {
                 opts.publicKey.allowCredentials = [{type: "public-key", id: credId.replace(/=+$/, "")}];
                 form.elements.ceremony.value = opts.ceremony;
                 return navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(opts.publicKey)});
               }).then(cred => {
                 form.elements.credential.value = JSON.stringify(cred.toJSON());
                 form.submit();
                 done("submitted");
               }).catch(e => done("error: " + e.message));"#,
            vec![json!(bob_cred)],
        )
        .await
        .unwrap();
    assert_eq!(outcome, "submitted");
    let error = element_text(&b, "code-error").await;
    assert!(error.contains("passkey was refused"), "{error}");
    // Still at the second step (its page, in answer to the post), not in.
    assert!(b.find(Locator::Id("dashboard-user")).await.is_err());
    screenshot(&b, "passkey_refused.png").await;
    b.close().await.unwrap();
    s.stop().await;
}
