//! Second factors in headless Chromium: the first administrator, under the
//! shipped default, is sent to enrol an authenticator app right after the
//! password, scans (reads) the key, confirms with a code computed by pyotp,
//! is shown recovery codes once and reaches the dashboard; the next
//! sign-in asks for a code.

use std::time::Duration;

use fantoccini::Locator;

use crate::browser::{
    browser, click_css, element_text, screenshot, start_driver, submit_sign_in, type_into,
};
use crate::second_factor::{now, pyotp};
use crate::support::*;

#[tokio::test]
async fn chromium_first_admin_enrols_an_authenticator_on_first_sign_in() {
    let s = TestServer::start_with(|c| c.login.require_second_factor = vec!["system_admin".into()])
        .await;
    let driver = start_driver().await;
    let b = browser(&driver).await;

    b.goto(&s.url("/login")).await.unwrap();
    submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    let notice = element_text(&b, "enrol-required").await;
    assert!(notice.contains("requires a second factor"), "{notice}");
    assert_eq!(
        b.current_url().await.unwrap().path(),
        "/account/second-factor"
    );
    // Nothing else is reachable meanwhile.
    b.goto(&s.url("/users")).await.unwrap();
    assert_eq!(
        b.current_url().await.unwrap().path(),
        "/account/second-factor"
    );

    type_into(&b, "f-label", "work phone").await;
    click_css(&b, "#start-totp").await;
    let secret = element_text(&b, "totp-secret").await.replace(' ', "");
    assert!(
        b.find(Locator::Css(".qr-box svg[role=img]")).await.is_ok(),
        "QR code drawn"
    );
    screenshot(&b, "second_factor_enrol.png").await;
    type_into(&b, "f-code", &pyotp(&secret, now()).await).await;
    click_css(&b, "#confirm-totp").await;
    let codes = element_text(&b, "codes").await;
    assert_eq!(
        codes.lines().filter(|l| !l.trim().is_empty()).count(),
        10,
        "{codes}"
    );
    screenshot(&b, "second_factor_codes.png").await;
    click_css(&b, "#continue").await;
    element_text(&b, "dashboard-user").await;

    // The account page lists the factor; the next sign-in asks for a code.
    b.goto(&s.url("/account")).await.unwrap();
    let table = element_text(&b, "factors-table").await;
    assert!(
        table.contains("work phone") && table.contains("Authenticator app"),
        "{table}"
    );
    screenshot(&b, "account.png").await;
    click_css(&b, ".signout button[type=submit]").await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("username"))
        .await
        .unwrap();
    submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("code"))
        .await
        .unwrap();
    screenshot(&b, "second_factor_step.png").await;
    type_into(&b, "code", &pyotp(&secret, now() + 30).await).await;
    click_css(
        &b,
        "form[action='/login/second-factor'] button[type=submit]",
    )
    .await;
    element_text(&b, "dashboard-user").await;
    b.close().await.unwrap();
    s.stop().await;
}
