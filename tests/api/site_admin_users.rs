//! Admin pages for users (create, role, disable, password, sessions, delete) and the audit
//! trail, checked through the API, the database and the affected users' own browsers.

use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp};
use crate::site_admin::{admin_site, snapshot};
use crate::site_client::SiteClient;

const NEW_PASSWORD: &str = "another-long-passphrase";

fn user_id(app: &TestApp, email: &str) -> String {
    app.sqlite()
        .query_row("SELECT id FROM _users WHERE email = ?1", [email], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Whether this browser is signed in as `email`.
async fn signed_in_as(site: &SiteClient<'_>, email: &str) -> bool {
    site.get("/")
        .await
        .body
        .contains(&format!("id=\"nav-account\">{email}<"))
}

#[rocket::async_test]
async fn an_admin_creates_a_user_who_can_then_sign_in() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    let list = admin.get("/admin/users").await;
    assert!(list.body.contains("id=\"users\""));
    assert!(list.body.contains(ADMIN_EMAIL));
    let created = admin
        .post(
            "/admin/users",
            &[
                ("email", "Bob@Example.com"),
                ("password", PASSWORD),
                ("role", "user"),
            ],
        )
        .await;
    let id = user_id(&app, "bob@example.com");
    assert_eq!(
        (created.status, created.location()),
        (303, format!("/admin/users/{id}").as_str())
    );
    let page = admin.get(created.location()).await;
    assert!(page.body.contains("User bob@example.com created."));
    let api = app.get(&format!("/api/users/{id}"), Some(&app.admin)).await;
    assert_eq!(
        (api.json["role"].clone(), api.json["disabled"].clone()),
        (json!("user"), json!(false))
    );
    let bob = SiteClient::new(&app);
    bob.sign_in("bob@example.com", PASSWORD).await;
    assert!(signed_in_as(&bob, "bob@example.com").await);
    let list = admin.get("/admin/users").await;
    assert!(list.body.contains(&format!("href=\"/admin/users/{id}\"")));
}

#[rocket::async_test]
async fn a_refused_new_user_shows_errors_beside_the_inputs_and_keeps_the_email() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    admin.get("/admin/users").await;
    let before = snapshot(&app);
    let weak = admin
        .post(
            "/admin/users",
            &[
                ("email", "carl@example.com"),
                ("password", "password"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(weak.status, 200);
    assert!(
        weak.body.contains("id=\"user-password-error\""),
        "{}",
        weak.body
    );
    assert!(weak.body.contains("value=\"carl@example.com\""));
    assert!(
        !weak.body.contains("value=\"password\""),
        "the password is never echoed"
    );
    let taken = admin
        .post(
            "/admin/users",
            &[
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(taken.status, 200);
    assert!(
        taken.body.contains("id=\"user-email-error\""),
        "{}",
        taken.body
    );
    assert!(taken.body.contains("<option value=\"admin\" selected>"));
    let bad_role = admin
        .post(
            "/admin/users",
            &[
                ("email", "dan@example.com"),
                ("password", PASSWORD),
                ("role", "root"),
            ],
        )
        .await;
    assert!(
        bad_role.body.contains("id=\"user-role-error\""),
        "{}",
        bad_role.body
    );
    assert_eq!(snapshot(&app), before);
}

#[rocket::async_test]
async fn changing_a_role_takes_effect_and_ends_the_users_sessions() {
    let app = TestApp::spawn().await;
    let (id, _) = app.user("ann@example.com").await;
    let ann = SiteClient::new(&app);
    ann.sign_in("ann@example.com", PASSWORD).await;
    assert_eq!(ann.get("/admin").await.status, 403);
    let admin = admin_site(&app).await;
    let page = admin.get(&format!("/admin/users/{id}")).await;
    assert!(page.body.contains("id=\"role-form\""));
    let same = admin
        .post(&format!("/admin/users/{id}/role"), &[("role", "user")])
        .await;
    assert!(
        admin
            .get(same.location())
            .await
            .body
            .contains("nothing changed")
    );
    assert!(signed_in_as(&ann, "ann@example.com").await);
    let changed = admin
        .post(&format!("/admin/users/{id}/role"), &[("role", "admin")])
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let api = app.get(&format!("/api/users/{id}"), Some(&app.admin)).await;
    assert_eq!(api.json["role"], "admin");
    // The old session ended with the change; a new sign-in gets the new role.
    assert!(!signed_in_as(&ann, "ann@example.com").await);
    ann.sign_in("ann@example.com", PASSWORD).await;
    assert_eq!(ann.get("/admin").await.status, 200);
}

#[rocket::async_test]
async fn disabling_a_user_stops_their_existing_session_and_enabling_lets_them_back() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user("ann@example.com").await;
    let ann = SiteClient::new(&app);
    ann.sign_in("ann@example.com", PASSWORD).await;
    assert!(signed_in_as(&ann, "ann@example.com").await);
    let admin = admin_site(&app).await;
    let page = admin.get(&format!("/admin/users/{id}")).await;
    assert!(
        page.body.contains("id=\"sessions\""),
        "ann's session is listed"
    );
    let disabled = admin
        .post(
            &format!("/admin/users/{id}/disabled"),
            &[("disabled", "true")],
        )
        .await;
    assert_eq!(disabled.status, 303, "{}", disabled.body);
    assert!(!signed_in_as(&ann, "ann@example.com").await);
    assert_eq!(app.get("/api/auth/me", Some(&token)).await.status, 401);
    let again = SiteClient::new(&app);
    again.get("/sign-in").await;
    let refused = again
        .post(
            "/sign-in",
            &[("email", "ann@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, 200, "a disabled user cannot sign in");
    let page = admin.get(&format!("/admin/users/{id}")).await;
    assert!(page.body.contains("id=\"enable-user\""));
    let enabled = admin
        .post(
            &format!("/admin/users/{id}/disabled"),
            &[("disabled", "false")],
        )
        .await;
    assert_eq!(enabled.status, 303);
    again.sign_in("ann@example.com", PASSWORD).await;
}

#[rocket::async_test]
async fn an_admin_sets_a_new_password_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let (id, _) = app.user("ann@example.com").await;
    let ann = SiteClient::new(&app);
    ann.sign_in("ann@example.com", PASSWORD).await;
    let admin = admin_site(&app).await;
    admin.get(&format!("/admin/users/{id}")).await;
    let before = snapshot(&app);
    let differ = admin
        .post(
            &format!("/admin/users/{id}/password"),
            &[
                ("password", NEW_PASSWORD),
                ("confirm", "something-else-entirely"),
            ],
        )
        .await;
    assert_eq!(differ.status, 200);
    assert!(differ.body.contains("id=\"confirm-password-error\""));
    let weak = admin
        .post(
            &format!("/admin/users/{id}/password"),
            &[("password", "password"), ("confirm", "password")],
        )
        .await;
    assert_eq!(weak.status, 200);
    assert!(
        weak.body.contains("id=\"new-password-error\""),
        "{}",
        weak.body
    );
    assert_eq!(snapshot(&app), before);
    let set = admin
        .post(
            &format!("/admin/users/{id}/password"),
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    assert!(!signed_in_as(&ann, "ann@example.com").await);
    let old = app
        .post(
            "/api/auth/login",
            None,
            json!({ "email": "ann@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(old.status, 401);
    ann.sign_in("ann@example.com", NEW_PASSWORD).await;
}

#[rocket::async_test]
async fn ending_sessions_signs_the_user_out_everywhere_but_keeps_the_admins_own() {
    let app = TestApp::spawn().await;
    let (id, _) = app.user("ann@example.com").await;
    let ann = SiteClient::new(&app);
    ann.sign_in("ann@example.com", PASSWORD).await;
    let admin = admin_site(&app).await;
    let other_admin_browser = SiteClient::new(&app);
    other_admin_browser.sign_in(ADMIN_EMAIL, PASSWORD).await;
    admin.get(&format!("/admin/users/{id}")).await;
    let ended = admin
        .post(&format!("/admin/users/{id}/sessions/end"), &[])
        .await;
    assert_eq!(ended.status, 303);
    assert!(
        admin
            .get(ended.location())
            .await
            .body
            .contains("1 session(s) ended.")
    );
    assert!(!signed_in_as(&ann, "ann@example.com").await);
    let me = user_id(&app, ADMIN_EMAIL);
    let own = admin
        .post(&format!("/admin/users/{me}/sessions/end"), &[])
        .await;
    assert_eq!(own.status, 303);
    assert!(
        signed_in_as(&admin, ADMIN_EMAIL).await,
        "this browser stays signed in"
    );
    assert!(!signed_in_as(&other_admin_browser, ADMIN_EMAIL).await);
}

#[rocket::async_test]
async fn the_last_admin_cannot_be_demoted_disabled_or_deleted() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    let me = user_id(&app, ADMIN_EMAIL);
    admin.get(&format!("/admin/users/{me}")).await;
    let before = snapshot(&app);
    for (path, fields) in [
        (format!("/admin/users/{me}/role"), vec![("role", "user")]),
        (
            format!("/admin/users/{me}/disabled"),
            vec![("disabled", "true")],
        ),
        (format!("/admin/users/{me}/delete"), vec![]),
    ] {
        let page = admin.post(&path, &fields).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains("id=\"problems\""), "{path}");
        assert!(
            page.body.contains("no enabled admin"),
            "{path}: {}",
            page.body
        );
    }
    assert_eq!(snapshot(&app), before);
    assert!(signed_in_as(&admin, ADMIN_EMAIL).await);
}

#[rocket::async_test]
async fn a_user_is_deleted_after_the_confirmation_page() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user("ann@example.com").await;
    let admin = admin_site(&app).await;
    let confirm = admin.get(&format!("/admin/users/{id}/delete")).await;
    assert!(confirm.body.contains("id=\"confirm-delete\""));
    assert_eq!(
        app.get(&format!("/api/users/{id}"), Some(&app.admin))
            .await
            .status,
        200
    );
    let deleted = admin.post(&format!("/admin/users/{id}/delete"), &[]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/admin/users"));
    assert_eq!(
        app.get(&format!("/api/users/{id}"), Some(&app.admin))
            .await
            .status,
        404
    );
    assert_eq!(app.get("/api/auth/me", Some(&token)).await.status, 401);
    assert_eq!(admin.get(&format!("/admin/users/{id}")).await.status, 404);
}

#[rocket::async_test]
async fn the_audit_trail_shows_failed_sign_ins_and_schema_changes_newest_first() {
    let app = TestApp::spawn().await;
    let stranger = SiteClient::new(&app);
    stranger.get("/sign-in").await;
    stranger
        .post(
            "/sign-in",
            &[
                ("email", "mallory@example.com"),
                ("password", "guess-guess"),
            ],
        )
        .await;
    let admin = admin_site(&app).await;
    admin.get("/admin/collections/new").await;
    let created = admin
        .post(
            "/admin/collections/new",
            &[("name", "notes"), ("fields[0].name", "title")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let page = admin.get("/admin/audit").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    let failed = body
        .find("auth.login_failed")
        .expect("failed sign-in listed");
    let schema = body
        .find("collection.create")
        .expect("schema change listed");
    assert!(schema < failed, "newest first");
    assert!(body.contains("mallory@example.com"));
    assert!(body.contains("anonymous"));
    assert!(body.contains("127.0.0.1"));
    assert!(body.contains(ADMIN_EMAIL));
    assert!(body.contains(" UTC</time>"));
    assert!(
        body.contains("CLI"),
        "the test admin was created without an actor"
    );
    let auth = admin.get("/admin/audit?action=auth.").await;
    assert!(auth.body.contains("auth.login_failed"));
    assert!(!auth.body.contains("collection.create"));
    assert!(auth.body.contains("value=\"auth.\""));
}

#[rocket::async_test]
async fn the_audit_trail_pages_by_id_and_keeps_the_filter() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    for i in 0..55 {
        let email = format!("nobody{i}@example.com");
        let r = app
            .post(
                "/api/users",
                Some(&app.admin),
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let first = admin.get("/admin/audit?action=user.create").await;
    assert!(first.body.contains("nobody54@"));
    assert!(!first.body.contains("nobody4@"));
    let start = first
        .body
        .find("href=\"/admin/audit?before=")
        .expect("a next link")
        + 6;
    let end = start + first.body[start..].find('"').unwrap();
    let next = first.body[start..end].replace("&#38;", "&");
    assert!(next.ends_with("&action=user.create"), "{next}");
    let second = admin.get(&next).await;
    assert!(second.body.contains("nobody4@"));
    assert!(!second.body.contains("nobody54@"));
    assert!(!second.body.contains("id=\"older\""));
}

#[rocket::async_test]
async fn payloads_in_emails_render_escaped_on_the_user_and_audit_pages() {
    let app = TestApp::spawn().await;
    let xss = "\"><svg/onload=alert(1)>@x.io";
    let admin = admin_site(&app).await;
    admin.get("/admin/users").await;
    let created = admin
        .post(
            "/admin/users",
            &[("email", xss), ("password", PASSWORD), ("role", "user")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let refused = admin
        .post(
            "/admin/users",
            &[("email", xss), ("password", "short"), ("role", "user")],
        )
        .await;
    assert_eq!(refused.status, 200);
    let id = user_id(&app, xss);
    for page in [
        admin.get("/admin/users").await,
        admin.get(&format!("/admin/users/{id}")).await,
        admin.get(&format!("/admin/users/{id}/delete")).await,
        admin.get("/admin/audit").await,
        refused,
    ] {
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("<svg"), "{}", page.body);
        assert!(page.body.contains("&#34;&#62;&#60;svg"), "{}", page.body);
    }
}
