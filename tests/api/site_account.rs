//! The account page: sessions, password change and API tokens — each for the right person
//! only, each form refused without its CSRF token — and the fixtures `site_totp` shares.

use rocket::http::Method;
use serde_json::json;
use totp_rs::{Builder, Secret};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp};
use crate::site_client::{Page, SiteClient};

pub(crate) const ANN: &str = "ann@example.com";
pub(crate) const XSS: &str = "\"><svg onload=alert(1)>";
/// `XSS` as askama escapes it (numeric character references).
pub(crate) const ESCAPED: &str = "&#34;&#62;&#60;svg onload=alert(1)&#62;";

/// The current code of a base32 seed, computed the way an authenticator app does.
pub(crate) fn code_now(seed: &str) -> String {
    let secret = Secret::try_from_base32(seed).unwrap();
    Builder::new()
        .with_secret(secret)
        .build()
        .unwrap()
        .generate_current()
        .to_string()
}

/// A read-write connection, for the one thing a test cannot wait for: time passing.
pub(crate) fn writable(app: &TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(app.dir.path().join("onebox.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// Stand-in for waiting a minute and a half: the last accepted step moves three steps back, so
/// the current code is new again. (A code is good once; the server's clock cannot be moved.)
pub(crate) fn let_time_pass(app: &TestApp, email: &str) {
    writable(app)
        .execute(
            "UPDATE _users SET totp_last_step = totp_last_step - 3 WHERE email = ?1",
            [email],
        )
        .unwrap();
}

pub(crate) fn count(app: &TestApp, sql: &str) -> i64 {
    app.sqlite().query_row(sql, [], |r| r.get(0)).unwrap()
}

pub(crate) fn audited(app: &TestApp, action: &str) -> i64 {
    app.sqlite()
        .query_row(
            "SELECT count(*) FROM _audit WHERE action = ?1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}

pub(crate) fn column_of(app: &TestApp, column: &str, email: &str) -> Option<String> {
    app.sqlite()
        .query_row(
            &format!("SELECT {column} FROM _users WHERE email = ?1"),
            [email],
            |r| r.get(0),
        )
        .unwrap()
}

/// The text of the element with `id`, up to its first tag.
pub(crate) fn text_of(page: &Page, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id}: {}", page.body));
    let start = start + page.body[start..].find('>').unwrap() + 1;
    let end = start + page.body[start..].find('<').unwrap();
    page.body[start..end].trim().to_string()
}

/// A signed-in browser of a new plain user.
pub(crate) async fn member<'a>(app: &'a TestApp, email: &str) -> SiteClient<'a> {
    app.user(email).await;
    let site = SiteClient::new(app);
    site.sign_in(email, PASSWORD).await;
    site.get("/account").await;
    site
}

/// Turn TOTP on for the browser's user; returns the seed and the recovery codes.
pub(crate) async fn enrol(
    app: &TestApp,
    site: &SiteClient<'_>,
    email: &str,
) -> (String, Vec<String>) {
    site.get("/account").await;
    let start = site.post("/account/totp/start", &[]).await;
    assert_eq!((start.status, start.location()), (303, "/account/totp"));
    let setup = site.get("/account/totp").await;
    assert_eq!(setup.status, 200);
    let seed = column_of(app, "totp_pending", email).unwrap();
    assert_eq!(text_of(&setup, "totp-secret"), seed);
    let done = site
        .post("/account/totp/confirm", &[("code", &code_now(&seed))])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let list = &done.body[done.body.find("id=\"recovery-codes\"").unwrap()..];
    let list = &list[..list.find("</ul>").unwrap()];
    let codes: Vec<String> = list
        .split("<li>")
        .skip(1)
        .map(|s| s[..s.find("</li>").unwrap()].trim().to_string())
        .collect();
    (seed, codes)
}

/// Sign in with the password; the answer must ask for the second factor.
pub(crate) async fn password_step<'a>(app: &'a TestApp, email: &str) -> SiteClient<'a> {
    let site = SiteClient::new(app);
    let page = site.sign_in(email, PASSWORD).await;
    assert_eq!(page.location(), "/sign-in/totp?next=%2F");
    let form = site.get("/sign-in/totp?next=%2F").await;
    assert_eq!(form.status, 200, "{}", form.body);
    site
}

pub(crate) async fn second_step(site: &SiteClient<'_>, code: &str) -> Page {
    site.post("/sign-in/totp", &[("code", code), ("next", "/")])
        .await
}

#[rocket::async_test]
async fn the_account_page_lists_the_users_sessions_and_sends_anonymous_visitors_to_sign_in() {
    let app = TestApp::spawn().await;
    let anon = SiteClient::new(&app);
    for path in ["/account", "/account/totp", "/account/totp/qr.svg"] {
        let page = anon.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(page.location().starts_with("/sign-in?next="), "{path}");
    }
    let other = member(&app, ANN).await;
    let site = SiteClient::new(&app);
    site.get("/sign-in").await;
    let signed = site
        .request(
            Method::Post,
            "/sign-in",
            Some(&[
                ("csrf", site.csrf().as_str()),
                ("email", ANN),
                ("password", PASSWORD),
            ]),
            &[("User-Agent", XSS)],
        )
        .await;
    assert_eq!(signed.status, 303);
    let page = site.get("/account").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(text_of(&page, "account-email"), ANN);
    assert_eq!(text_of(&page, "account-role"), "user");
    let table = &page.body[page.body.find("id=\"sessions\"").unwrap()..];
    assert_eq!(table.matches("<tr").count(), 3, "a header and two sessions");
    assert_eq!(table.matches("this session").count(), 1);
    assert!(table.contains("127.0.0.1"));
    // A user agent is the client's to choose: it is shown escaped.
    assert!(!page.body.contains(XSS));
    assert!(page.body.contains(ESCAPED));
    drop(other);
}

#[rocket::async_test]
async fn signing_out_all_other_sessions_keeps_this_one() {
    let app = TestApp::spawn().await;
    let here = member(&app, ANN).await;
    let there = SiteClient::new(&app);
    there.sign_in(ANN, PASSWORD).await;
    let refused = here.post_raw("/account/sessions/end-others", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(count(&app, "SELECT count(*) FROM _sessions"), 2);
    let done = here.post("/account/sessions/end-others", &[]).await;
    assert_eq!((done.status, done.location()), (303, "/account"));
    let page = here.get("/account").await;
    assert!(page.body.contains("Signed out 1 other session."));
    assert!(!there.get("/").await.body.contains(ANN));
    assert_eq!(count(&app, "SELECT count(*) FROM _sessions"), 1);
    assert_eq!(audited(&app, "session.end_all"), 1);
}

#[rocket::async_test]
async fn a_password_change_refuses_a_wrong_current_password_and_a_weak_or_mistyped_new_one() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let before = column_of(&app, "password_hash", ANN);
    let new = "another-long-passphrase";
    for (fields, error_id) in [
        (
            [
                ("current", "not-my-password"),
                ("password", new),
                ("confirm", new),
            ],
            "current-error",
        ),
        (
            [
                ("current", PASSWORD),
                ("password", "password"),
                ("confirm", "password"),
            ],
            "password-error",
        ),
        (
            [
                ("current", PASSWORD),
                ("password", new),
                ("confirm", "another-long-passphrasE"),
            ],
            "confirm-error",
        ),
    ] {
        let page = site.post("/account/password", &fields).await;
        assert_eq!(page.status, 200, "{error_id}");
        assert!(
            page.body.contains(&format!("id=\"{error_id}\"")),
            "{error_id}: {}",
            page.body
        );
        assert!(
            page.body
                .contains(&format!("aria-describedby=\"{error_id}\""))
        );
        // Passwords are never echoed back.
        assert!(!page.body.contains(new) && !page.body.contains("not-my-password"));
    }
    let refused = site
        .post_raw(
            "/account/password",
            &[("current", PASSWORD), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(column_of(&app, "password_hash", ANN), before);
    assert_eq!(audited(&app, "user.password_change"), 0);
    // The wrong current password counted like a failed sign-in.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM _login_attempts WHERE key LIKE 'acct:ann@%'"
        ),
        1
    );
}

#[rocket::async_test]
async fn a_password_change_keeps_this_session_and_ends_the_others_and_login_tokens() {
    let app = TestApp::spawn().await;
    let (_, login_token) = app.user(ANN).await;
    let site = SiteClient::new(&app);
    site.sign_in(ANN, PASSWORD).await;
    let elsewhere = SiteClient::new(&app);
    elsewhere.sign_in(ANN, PASSWORD).await;
    assert!(elsewhere.get("/").await.body.contains(ANN));
    site.get("/account").await;
    let new = "another-long-passphrase";
    let done = site
        .post(
            "/account/password",
            &[("current", PASSWORD), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (303, "/account"),
        "{}",
        done.body
    );
    let page = site.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Password changed"));
    assert!(!elsewhere.get("/").await.body.contains(ANN));
    assert_eq!(
        app.get("/api/auth/me", Some(&login_token)).await.status,
        401
    );
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": ANN, "password": new }),
        )
        .await;
    assert_eq!(login.status, 200);
    assert_eq!(audited(&app, "user.password_change"), 1);
}

#[rocket::async_test]
async fn an_api_token_is_shown_once_and_revoking_it_ends_it() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    assert!(site.get("/account").await.body.contains("id=\"no-tokens\""));
    let created = site
        .post("/account/tokens", &[("name", XSS), ("expires", "30d")])
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let token = text_of(&created, "new-token");
    assert!(token.starts_with("obx_"), "{token}");
    assert!(created.body.contains("data-copy=\"#new-token\""));
    assert!(!created.body.contains(XSS));
    assert!(created.body.contains(ESCAPED));
    assert_eq!(app.get("/api/auth/me", Some(&token)).await.status, 200);
    let page = site.get("/account").await;
    assert!(page.body.contains("id=\"tokens\""));
    assert!(page.body.contains(ESCAPED));
    assert!(!page.body.contains(XSS));
    assert!(!page.body.contains(&token), "shown once only");
    assert!(page.body.contains("data-confirm="));
    let id: String = app
        .sqlite()
        .query_row(
            "SELECT id FROM _tokens WHERE kind = 'api' AND name = ?1",
            [XSS],
            |r| r.get(0),
        )
        .unwrap();
    let path = format!("/account/tokens/{id}/revoke");
    assert_eq!(site.post_raw(&path, &[]).await.status, 403);
    assert_eq!(app.get("/api/auth/me", Some(&token)).await.status, 200);
    let done = site.post(&path, &[]).await;
    assert_eq!((done.status, done.location()), (303, "/account"));
    assert_eq!(app.get("/api/auth/me", Some(&token)).await.status, 401);
    assert!(
        site.get("/account")
            .await
            .body
            .contains("The token is revoked.")
    );
    assert_eq!(site.post(&path, &[]).await.status, 404);
}

#[rocket::async_test]
async fn a_token_form_with_errors_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    let page = site
        .post("/account/tokens", &[("name", "ci"), ("expires", "soon")])
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"token-expires-error\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"ci\"") && page.body.contains("value=\"soon\""));
    let page = site
        .post("/account/tokens", &[("name", " "), ("expires", "")])
        .await;
    assert!(page.body.contains("id=\"token-name-error\""));
    assert_eq!(
        count(&app, "SELECT count(*) FROM _tokens WHERE kind = 'api'"),
        1,
        "the admin's"
    );
}

#[rocket::async_test]
async fn another_users_token_cannot_be_revoked_from_the_account_page() {
    let app = TestApp::spawn().await;
    let admin_token: String = app
        .sqlite()
        .query_row("SELECT id FROM _tokens WHERE kind = 'api'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let site = member(&app, ANN).await;
    let page = site
        .post(&format!("/account/tokens/{admin_token}/revoke"), &[])
        .await;
    assert_eq!(page.status, 404);
    assert_eq!(app.get("/api/auth/me", Some(&app.admin)).await.status, 200);
    // An admin, too, revokes only their own tokens here.
    site.post("/account/tokens", &[("name", "ann's"), ("expires", "")])
        .await;
    let id: String = app
        .sqlite()
        .query_row("SELECT id FROM _tokens WHERE name = 'ann''s'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let admin = SiteClient::new(&app);
    admin.sign_in(ADMIN_EMAIL, PASSWORD).await;
    admin.get("/account").await;
    let page = admin
        .post(&format!("/account/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(page.status, 404);
    assert_eq!(
        count(&app, "SELECT count(*) FROM _tokens WHERE name = 'ann''s'"),
        1
    );
}

#[rocket::async_test]
async fn every_account_form_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let site = member(&app, ANN).await;
    site.post("/account/tokens", &[("name", "keep"), ("expires", "")])
        .await;
    let token_id: String = app
        .sqlite()
        .query_row("SELECT id FROM _tokens WHERE name = 'keep'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let other = SiteClient::new(&app);
    other.sign_in(ANN, PASSWORD).await;
    let snapshot = |app: &TestApp| -> String {
        app.sqlite()
            .query_row(
                "SELECT (SELECT password_hash || ifnull(totp_pending, '-') || ifnull(totp_secret, '-')
                         FROM _users WHERE email = 'ann@example.com')
                     || (SELECT count(*) FROM _sessions)
                     || (SELECT count(*) FROM _tokens)
                     || (SELECT count(*) FROM _recovery_codes)",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let before = snapshot(&app);
    let new = "another-long-passphrase";
    let revoke = format!("/account/tokens/{token_id}/revoke");
    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/account/password",
            vec![("current", PASSWORD), ("password", new), ("confirm", new)],
        ),
        ("/account/sessions/end-others", vec![]),
        ("/account/totp/start", vec![]),
        ("/account/totp/confirm", vec![("code", "123456")]),
        ("/account/totp/disable", vec![("code", "123456")]),
        ("/account/tokens", vec![("name", "new"), ("expires", "")]),
        (revoke.as_str(), vec![]),
        ("/sign-in/totp", vec![("code", "123456")]),
    ];
    for (path, fields) in &forms {
        let missing = site.post_raw(path, fields).await;
        assert_eq!(missing.status, 403, "{path}");
        let mut wrong = vec![("csrf", "x".repeat(43))];
        wrong.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
        let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(site.post_raw(path, &wrong).await.status, 403, "{path}");
    }
    assert_eq!(snapshot(&app), before);
    assert!(other.get("/").await.body.contains(ANN));
}
