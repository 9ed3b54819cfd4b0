//! Browser tests in real headless Chromium: the whole path a person takes, from the first-run
//! setup link to signing out, with no console errors and no CSP violations on any page.
//! Screenshots of the main pages are saved under `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::Harness;
use totp_rs::{Builder, Secret};

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

/// The admin builds a collection in the editor, then works with its records: create, filter,
/// sort, an edit refused (a duplicate unique title) then fixed, delete behind confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_defines_a_collection_and_works_with_its_records() {
    if !harness::available() {
        return;
    }
    let b = Harness::start("records").await;
    b.goto(&b.setup_link()).await;
    b.fill("#email", EMAIL).await;
    b.fill("#password", PASSWORD).await;
    b.fill("#confirm", PASSWORD).await;
    b.submit("form[action='/setup'] button[type=submit]").await;

    // A collection with several field types, from the new-collection form.
    b.goto("/admin/collections/new").await;
    b.fill("#collection-name", "books").await;
    b.fill("#field-0-name", "title").await;
    b.choose("#field-0-type", "text").await;
    b.tick("#field-0-required", true).await;
    b.tick("#field-0-unique", true).await;
    b.fill("#field-1-name", "pages").await;
    b.choose("#field-1-type", "number").await;
    b.tick("#field-1-indexed", true).await;
    b.fill("#field-2-name", "read").await;
    b.choose("#field-2-type", "bool").await;
    b.fill("#field-3-name", "link").await;
    b.choose("#field-3-type", "url").await;
    b.screenshot("01-new-collection").await;
    b.submit("#create-collection").await;
    // A select field, added in the editor.
    b.fill("#add-field-form #field-name", "genre").await;
    b.choose("#add-field-form #field-type", "select").await;
    b.fill("#add-field-form #field-values", "novel, essay, poetry")
        .await;
    b.submit("#add-field-submit").await;
    let fields = b.text("#fields").await;
    for name in ["title", "pages", "read", "link", "genre"] {
        assert!(fields.contains(name), "{name} missing from {fields}");
    }
    b.screenshot("02-collection-editor").await;

    // Three records through the generated form.
    for (title, pages, read, genre) in [
        ("Middlemarch", "880", true, "novel"),
        ("Walden", "352", false, "essay"),
        ("Leaves of Grass", "145", true, "poetry"),
    ] {
        b.goto("/c/books/new").await;
        b.fill("#field-title", title).await;
        b.fill("#field-pages", pages).await;
        b.tick("#field-read", read).await;
        b.choose("#field-genre", genre).await;
        b.submit("#save-record").await;
        assert!(b.text("#record").await.contains(title));
    }
    b.screenshot("03-record").await;

    // Filter and sort.
    b.goto("/c/books").await;
    assert_eq!(b.texts("#records tbody tr").await.len(), 3);
    b.fill("#filter", "pages > 300").await;
    b.submit("#filter-form button[type=submit]").await;
    let rows = b.texts("#records tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| !r.contains("Leaves of Grass")));
    b.fill("#filter", "pages >").await;
    b.submit("#filter-form button[type=submit]").await;
    assert!(b.text("#filter-problem").await.contains("position"));
    b.screenshot("04-filter-error").await;
    b.goto("/c/books?sort=pages").await;
    let rows = b.texts("#records tbody tr").await;
    assert!(
        rows[0].contains("Leaves of Grass") && rows[2].contains("Middlemarch"),
        "{rows:?}"
    );
    b.screenshot("05-collection").await;
    // The same page on a phone: the table scrolls inside its own box, the page does not.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto("/c/books?sort=pages").await;
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    let wide = b
        .client
        .execute(
            "return [...document.querySelectorAll('body *')]\
               .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)\
               .slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + \
                 Math.round(e.getBoundingClientRect().right));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow.as_bool(),
        Some(false),
        "the page scrolls sideways on a phone: {wide}"
    );
    b.screenshot("05-collection-phone").await;
    b.client.set_window_size(1280, 900).await.unwrap();

    // Edit: a duplicate title is refused beside the field, the typed values stay; then fixed.
    b.goto("/c/books?filter=title%20%3D%20%22Walden%22").await;
    b.submit("#records tbody tr th a").await;
    b.submit("#edit-record").await;
    b.fill("#field-title", "Middlemarch").await;
    b.fill("#field-pages", "353").await;
    b.submit("#save-record").await;
    let err = b.text("#error-title").await;
    assert!(err.contains("another record"), "{err}");
    assert_eq!(
        b.find("#field-pages")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("353")
    );
    b.screenshot("06-edit-error").await;
    b.fill("#field-title", "Walden; or, Life in the Woods")
        .await;
    b.submit("#save-record").await;
    let record = b.text("#record").await;
    assert!(record.contains("Walden; or, Life in the Woods") && record.contains("353"));

    // Delete behind a confirmation page.
    b.submit("#delete-record").await;
    b.screenshot("07-delete-confirm").await;
    b.submit("#confirm-delete").await;
    assert!(b.body().await.contains("Deleted"));
    assert_eq!(b.texts("#records tbody tr").await.len(), 2);

    // The other main pages render cleanly too (each `goto` checks the console).
    b.goto("/").await;
    assert!(b.text("main").await.contains("books"));
    b.screenshot("08-home").await;
    b.goto("/admin/users").await;
    assert!(b.text("#users").await.contains(EMAIL));
    b.screenshot("09-admin-users").await;
    b.goto("/admin/audit").await;
    assert!(b.text("#audit").await.contains("setup.admin"));
    b.screenshot("10-audit").await;
}

/// The code an authenticator app shows for `seed`, `ahead` 30-second steps from now.
fn totp_code(seed: &str, ahead: u64) -> String {
    let totp = Builder::new()
        .with_secret(Secret::try_from_base32(seed).unwrap())
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now + 30 * ahead).to_string()
}

/// A user enrols TOTP from the account page, signs out, and signs in again with the password
/// and then a code; a wrong code is refused on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_enrols_totp_and_signs_in_with_it() {
    if !harness::available() {
        return;
    }
    let b = Harness::start("totp").await;
    b.goto(&b.setup_link()).await;
    b.fill("#email", EMAIL).await;
    b.fill("#password", PASSWORD).await;
    b.fill("#confirm", PASSWORD).await;
    b.submit("form[action='/setup'] button[type=submit]").await;

    b.goto("/account").await;
    b.screenshot("01-account").await;
    b.submit("#totp-start").await;
    let seed = b.text("#totp-secret").await.replace(' ', "");
    assert!(seed.len() >= 16, "{seed}");
    b.screenshot("02-totp-setup").await;
    b.fill("#field-code", &totp_code(&seed, 0)).await;
    b.submit("#totp-confirm-form button[type=submit]").await;
    assert_eq!(b.texts("#recovery-codes li").await.len(), 10);
    b.screenshot("03-recovery-codes").await;

    b.goto("/").await;
    b.submit("#sign-out").await;
    b.goto("/sign-in").await;
    b.fill("#email", EMAIL).await;
    b.fill("#password", PASSWORD).await;
    b.submit("form[action='/sign-in'] button[type=submit]")
        .await;
    // The password alone is not a sign-in yet.
    assert!(
        b.client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/sign-in/totp")
    );
    b.screenshot("04-sign-in-code").await;
    // A wrong code (the next step's code with its first digit changed) is refused.
    let right = totp_code(&seed, 1);
    let wrong: String = std::iter::once(if right.starts_with('1') { '2' } else { '1' })
        .chain(right.chars().skip(1))
        .collect();
    b.fill("#field-code", &wrong).await;
    b.submit("form[action='/sign-in/totp'] button[type=submit]")
        .await;
    assert!(!b.text("#code-error").await.is_empty());
    // The enrolment used this step's code; the next step's is fresh.
    b.fill("#field-code", &right).await;
    b.submit("form[action='/sign-in/totp'] button[type=submit]")
        .await;
    assert!(b.text("#nav-account").await.contains(EMAIL));
    b.submit("#sign-out").await;
    assert!(b.body().await.contains("You are signed out."));
}
