//! The site's foundation: sign-in, sessions, CSRF, first-run setup, static files, error pages.

use onebox::app::{App, build_rocket};
use rocket::http::Method;
use rocket::local::asynchronous::Client;
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, test_settings};
use crate::site_client::SiteClient;

fn session_cookie(page: &crate::site_client::Page) -> Option<&String> {
    page.set_cookies
        .iter()
        .find(|c| c.starts_with("onebox_session="))
}

#[rocket::async_test]
async fn the_sign_in_page_is_html_with_a_csrf_token_and_the_security_headers() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    let page = site.get("/sign-in").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        page.body
            .contains("<form method=\"post\" action=\"/sign-in\">")
    );
    let token = page.hidden("csrf").unwrap();
    assert_eq!(token.len(), 43);
    // The pre-sign-in token is also in an HttpOnly, SameSite=Strict cookie (double submit).
    assert_eq!(site.cookie("onebox_csrf").as_deref(), Some(token.as_str()));
    let set = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("onebox_csrf="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
}

#[rocket::async_test]
async fn signing_in_sets_an_httponly_lax_cookie_and_the_home_page_knows_the_user() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    let page = site.sign_in(ADMIN_EMAIL, PASSWORD).await;
    assert_eq!(page.location(), "/");
    let cookie = session_cookie(&page).unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "no TLS, no Secure: {cookie}");
    let home = site.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains(ADMIN_EMAIL));
    assert!(home.body.contains("action=\"/sign-out\""));
    // Only the hash of the cookie's secret is stored.
    let secret = site.cookie("onebox_session").unwrap();
    let stored: i64 = app
        .sqlite()
        .query_row(
            "SELECT count(*) FROM _sessions WHERE hash = ?1 OR csrf = ?1",
            [secret.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0);
    // The sign-in is in the audit trail.
    let audited: i64 = app
        .sqlite()
        .query_row(
            "SELECT count(*) FROM _audit WHERE action = 'auth.login' AND detail LIKE '%browser%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
}

#[rocket::async_test]
async fn a_wrong_password_shows_a_generic_error_and_starts_no_session() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    site.get("/sign-in").await;
    for email in [ADMIN_EMAIL, "nobody@example.com"] {
        let page = site
            .post(
                "/sign-in",
                &[("email", email), ("password", "wrong-password")],
            )
            .await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("Wrong email or password."),
            "{}",
            page.body
        );
        // The typed email is kept; the password never is.
        assert!(page.body.contains(&format!("value=\"{email}\"")));
        assert!(!page.body.contains("wrong-password"));
        assert!(session_cookie(&page).is_none());
    }
    let sessions: i64 = app
        .sqlite()
        .query_row("SELECT count(*) FROM _sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sessions, 0);
}

#[rocket::async_test]
async fn a_form_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    site.get("/sign-in").await;
    let creds = [("email", ADMIN_EMAIL), ("password", PASSWORD)];
    let missing = site.post_raw("/sign-in", &creds).await;
    assert_eq!(missing.status, 403);
    assert!(
        missing
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let wrong = site
        .post_raw(
            "/sign-in",
            &[("csrf", "x".repeat(43).as_str()), creds[0], creds[1]],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(session_cookie(&wrong).is_none());
    // Signed in, the session's own token is required: the pre-sign-in one no longer works.
    let old = site.csrf();
    site.sign_in(ADMIN_EMAIL, PASSWORD).await;
    site.get("/").await;
    assert_ne!(site.csrf(), old);
    let out = site.post_raw("/sign-out", &[("csrf", old.as_str())]).await;
    assert_eq!(out.status, 403);
    assert!(
        site.get("/").await.body.contains(ADMIN_EMAIL),
        "still signed in"
    );
}

#[rocket::async_test]
async fn signing_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    site.sign_in(ADMIN_EMAIL, PASSWORD).await;
    let stolen = site.cookie("onebox_session").unwrap();
    site.get("/").await;
    let out = site.post("/sign-out", &[]).await;
    assert_eq!((out.status, out.location()), (303, "/sign-in"));
    assert!(site.cookie("onebox_session").is_none());
    // Replaying the old cookie signs nobody in, on the site or the API.
    let replay = SiteClient::new(&app);
    replay
        .cookies
        .borrow_mut()
        .insert("onebox_session".into(), stolen);
    assert!(!replay.get("/").await.body.contains(ADMIN_EMAIL));
    let me = replay.get("/api/auth/me").await;
    assert_eq!(me.status, 401);
}

#[rocket::async_test]
async fn a_password_change_ends_the_users_sessions() {
    let app = TestApp::spawn().await;
    let (id, _) = app.user("ann@example.com").await;
    let site = SiteClient::new(&app);
    site.sign_in("ann@example.com", PASSWORD).await;
    assert!(site.get("/").await.body.contains("ann@example.com"));
    let r = app
        .patch(
            &format!("/api/users/{id}"),
            Some(&app.admin),
            json!({ "password": "another-long-passphrase" }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(!site.get("/").await.body.contains("ann@example.com"));
}

#[rocket::async_test]
async fn the_api_accepts_the_session_cookie_but_unsafe_calls_need_the_csrf_header() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    site.sign_in(ADMIN_EMAIL, PASSWORD).await;
    let home = site.get("/").await;
    let csrf = home.hidden("csrf").unwrap();
    let me = site.get("/api/auth/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(me.body.contains(ADMIN_EMAIL));
    let spec = json!({ "name": "notes", "fields": [{ "name": "title", "type": "text" }] });
    let path = "/api/collections";
    let bare = site.api(Method::Post, path, spec.clone(), &[]).await;
    assert_eq!(bare.status, 403);
    let wrong = site
        .api(
            Method::Post,
            path,
            spec.clone(),
            &[("X-CSRF-Token", "nope")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(
        app.get("/api/collections/notes", Some(&app.admin))
            .await
            .status,
        404
    );
    let created = site
        .api(Method::Post, path, spec, &[("X-CSRF-Token", &csrf)])
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

#[rocket::async_test]
async fn next_after_sign_in_stays_on_this_site() {
    let app = TestApp::spawn().await;
    for (next, expected) in [
        ("/c/notes?sort=-created", "/c/notes?sort=-created"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ] {
        let site = SiteClient::new(&app);
        site.get("/sign-in").await;
        let page = site
            .post(
                "/sign-in",
                &[
                    ("email", ADMIN_EMAIL),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!((page.status, page.location()), (303, expected), "{next}");
    }
}

#[rocket::async_test]
async fn cookies_are_secure_when_configured_for_a_tls_proxy() {
    let app = TestApp::spawn_with(|s| s.secure_cookies = true).await;
    let site = SiteClient::new(&app);
    let page = site.sign_in(ADMIN_EMAIL, PASSWORD).await;
    assert!(session_cookie(&page).unwrap().contains("Secure"));
}

#[rocket::async_test]
async fn static_files_have_hashed_names_immutable_caching_and_etags() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    let page = site.get("/sign-in").await;
    let start = page.body.find("/static/app.").unwrap();
    let end = start + page.body[start..].find('"').unwrap();
    let url = &page.body[start..end];
    assert!(
        url.ends_with(".css") && url.len() > "/static/app..css".len() + 8,
        "{url}"
    );
    let css = site.get(url).await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = css.header("etag").unwrap().to_string();
    let again = site
        .request(Method::Get, url, None, &[("If-None-Match", &etag)])
        .await;
    assert_eq!(again.status, 304);
    for path in [
        "/static/app.css",
        "/static/",
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/..%2fsrc%2fmain.rs",
        "/static/.gitkeep",
    ] {
        assert_eq!(site.get(path).await.status, 404, "{path}");
    }
}

#[rocket::async_test]
async fn unknown_pages_get_a_friendly_html_404_and_the_api_keeps_problem_json() {
    let app = TestApp::spawn().await;
    let site = SiteClient::new(&app);
    let page = site.get("/no/such/page").await;
    assert_eq!(page.status, 404);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("Request id"));
    let api = app.get("/api/no-such-thing", None).await;
    assert_eq!(api.status, 404);
    assert_eq!(
        api.content_type.as_deref(),
        Some("application/problem+json")
    );
}

#[rocket::async_test]
async fn the_setup_link_creates_the_first_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(test_settings(dir.path())).await.unwrap();
    let token = onebox::services::setup::prepare(&app)
        .await
        .unwrap()
        .unwrap();
    let file = dir.path().join("setup.token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&token));
    let client = Client::untracked(build_rocket(app)).await.unwrap();
    let app = TestApp {
        client,
        dir,
        admin: String::new(),
    };
    let site = SiteClient::new(&app);
    assert_eq!(site.get("/setup/not-the-token").await.status, 404);
    let page = site.get(&format!("/setup/{token}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // A weak password is refused beside its field; nothing is created.
    let weak = site
        .post(
            "/setup",
            &[
                ("token", token.as_str()),
                ("email", "first@example.com"),
                ("password", "password"),
                ("confirm", "password"),
            ],
        )
        .await;
    assert_eq!(weak.status, 200);
    assert!(weak.body.contains("id=\"password-error\""), "{}", weak.body);
    let done = site
        .post(
            "/setup",
            &[
                ("token", token.as_str()),
                ("email", "first@example.com"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!((done.status, done.location()), (303, "/"), "{}", done.body);
    let home = site.get("/").await;
    assert!(home.body.contains("first@example.com"));
    assert!(home.body.contains("You are the first admin"));
    assert!(!file.exists());
    let again = SiteClient::new(&app);
    assert_eq!(again.get(&format!("/setup/{token}")).await.status, 404);
    let admins: i64 = app
        .sqlite()
        .query_row(
            "SELECT count(*) FROM _users WHERE role = 'admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(admins, 1);
}
