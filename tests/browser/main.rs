//! Browser tests in real headless Chromium: the whole path a person takes, from the first-run
//! setup link to signing out, with no console errors and no CSP violations on any page.
//! Screenshots of the main pages are saved under `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::Harness;

const EMAIL: &str = "first@example.com";
const PASSWORD: &str = "a-long-passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_setup_sign_in_and_sign_out() {
    if !harness::available() {
        return;
    }
    let b = Harness::start("first_run").await;
    b.goto(&b.setup_link()).await;
    b.screenshot("01-setup").await;
    b.fill("#email", EMAIL).await;
    b.fill("#password", PASSWORD).await;
    b.fill("#confirm", PASSWORD).await;
    b.submit("form[action='/setup'] button[type=submit]").await;
    let body = b.body().await;
    assert!(body.contains("You are the first admin"), "{body}");
    assert!(body.contains(EMAIL));
    b.screenshot("02-home").await;

    b.submit("#sign-out").await;
    assert!(b.body().await.contains("You are signed out."));
    b.screenshot("03-signed-out").await;

    b.goto("/").await;
    b.goto("/sign-in").await;
    b.fill("#email", EMAIL).await;
    b.fill("#password", "not-the-password").await;
    b.submit("form[action='/sign-in'] button[type=submit]")
        .await;
    assert!(
        b.text("#form-error")
            .await
            .contains("Wrong email or password")
    );
    b.fill("#password", PASSWORD).await;
    b.submit("form[action='/sign-in'] button[type=submit]")
        .await;
    assert!(b.text("#nav-account").await.contains(EMAIL));
}
