//! Admin pages: who may open and submit them (role, CSRF), unknown ids, and the helpers the
//! other admin test files share.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp};
use crate::site_client::{Page, SiteClient};

/// A browser signed in as the test admin.
pub async fn admin_site(app: &TestApp) -> SiteClient<'_> {
    let site = SiteClient::new(app);
    site.sign_in(ADMIN_EMAIL, PASSWORD).await;
    site
}

/// Everything an admin form could change: definitions, tables, users, sessions, tokens, and
/// job runs (a started job is a run).
pub fn snapshot(app: &TestApp) -> String {
    let db = app.sqlite();
    let mut out = String::new();
    for sql in [
        "SELECT name || definition FROM _collections ORDER BY name",
        "SELECT name || coalesce(sql, '') FROM sqlite_master ORDER BY name",
        "SELECT id || email || role || disabled || password_hash FROM _users ORDER BY id",
        "SELECT id FROM _sessions ORDER BY id",
        "SELECT id FROM _tokens ORDER BY id",
        "SELECT id || job FROM _job_runs ORDER BY id",
    ] {
        let mut stmt = db.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

/// The collection's definition through the API.
pub async fn definition(app: &TestApp, name: &str) -> Value {
    let r = app
        .get(&format!("/api/collections/{name}"), Some(&app.admin))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json
}

pub fn field<'v>(def: &'v Value, name: &str) -> &'v Value {
    def["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {def}"))
}

pub fn assert_redirect(page: &Page, to: &str) {
    assert_eq!((page.status, page.location()), (303, to), "{}", page.body);
}

/// A collection `books` (title, pages, junk) with one record and a user; returns the user's id.
pub async fn books(app: &TestApp) -> String {
    app.collection(json!({
        "name": "books",
        "fields": [
            { "name": "title", "type": "text", "required": true },
            { "name": "pages", "type": "number", "integer": true },
            { "name": "junk", "type": "text" }
        ],
        "rules": { "list": "", "view": "" }
    }))
    .await;
    app.record(
        "books",
        json!({ "title": "Dune", "pages": 412, "junk": "x" }),
    )
    .await;
    app.user("ann@example.com").await.0
}

fn get_pages(user: &str) -> Vec<String> {
    [
        "/admin",
        "/admin/collections",
        "/admin/collections/new",
        "/admin/collections/books",
        "/admin/collections/books/fields/title",
        "/admin/collections/books/fields/title/drop",
        "/admin/collections/books/delete",
        "/admin/users",
        "/admin/users/{user}",
        "/admin/users/{user}/delete",
        "/admin/audit",
        "/admin/audit?action=auth.",
        "/admin/jobs",
        "/admin/backups",
    ]
    .iter()
    .map(|p| p.replace("{user}", user))
    .collect()
}

/// Every admin form with fields that would change something if accepted.
fn post_forms(user: &str) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/admin/collections/new",
            vec![("name", "fresh"), ("fields[0].name", "a")],
        ),
        (
            "/admin/collections/books/fields",
            vec![("name", "isbn"), ("type", "text")],
        ),
        (
            "/admin/collections/books/fields/pages",
            vec![("name", "pages"), ("type", "number"), ("min", "1")],
        ),
        (
            "/admin/collections/books/fields/pages/rename",
            vec![("name", "page_count")],
        ),
        ("/admin/collections/books/fields/junk/drop", vec![]),
        (
            "/admin/collections/books/rules",
            vec![("create_mode", "anyone")],
        ),
        (
            "/admin/collections/books/indexes",
            vec![("name", "by_title"), ("fields", "title")],
        ),
        ("/admin/collections/books/rename", vec![("name", "novels")]),
        ("/admin/collections/books/delete", vec![]),
        (
            "/admin/users",
            vec![("email", "new@example.com"), ("password", PASSWORD)],
        ),
        ("/admin/users/{user}/role", vec![("role", "admin")]),
        ("/admin/users/{user}/disabled", vec![("disabled", "true")]),
        (
            "/admin/users/{user}/password",
            vec![
                ("password", "another-long-passphrase"),
                ("confirm", "another-long-passphrase"),
            ],
        ),
        ("/admin/users/{user}/sessions/end", vec![]),
        ("/admin/users/{user}/delete", vec![]),
        ("/admin/jobs/backup/run", vec![]),
        ("/admin/backups", vec![]),
    ];
    forms
        .into_iter()
        .map(|(p, f)| (p.replace("{user}", user), f))
        .collect()
}

#[rocket::async_test]
async fn every_admin_page_opens_for_an_admin_and_is_refused_to_users_and_anonymous() {
    let app = TestApp::spawn().await;
    let ann = books(&app).await;
    let admin = admin_site(&app).await;
    let user = SiteClient::new(&app);
    user.sign_in("ann@example.com", PASSWORD).await;
    let anonymous = SiteClient::new(&app);
    for path in get_pages(&ann) {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
        let refused = user.get(&path).await;
        assert_eq!(refused.status, 403, "{path}");
        let away = anonymous.get(&path).await;
        assert_eq!(away.status, 303, "{path}");
        assert!(away.location().starts_with("/sign-in?next="), "{path}");
    }
}

#[rocket::async_test]
async fn admin_forms_from_a_plain_user_or_nobody_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ann = books(&app).await;
    let user = SiteClient::new(&app);
    user.sign_in("ann@example.com", PASSWORD).await;
    user.get("/").await;
    let anonymous = SiteClient::new(&app);
    anonymous.get("/sign-in").await;
    let before = snapshot(&app);
    for (path, fields) in post_forms(&ann) {
        let refused = user.post(&path, &fields).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
        let nobody = anonymous.post(&path, &fields).await;
        assert_eq!(nobody.status, 401, "{path}: {}", nobody.body);
    }
    assert_eq!(snapshot(&app), before);
}

#[rocket::async_test]
async fn admin_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ann = books(&app).await;
    let admin = admin_site(&app).await;
    admin.get("/admin").await;
    let before = snapshot(&app);
    for (path, fields) in post_forms(&ann) {
        let missing = admin.post_raw(&path, &fields).await;
        assert_eq!(missing.status, 403, "{path}: {}", missing.body);
        let mut wrong = vec![("csrf", "forged-token-forged-token-forged-token-123")];
        wrong.extend(fields.iter().copied());
        assert_eq!(admin.post_raw(&path, &wrong).await.status, 403, "{path}");
    }
    assert_eq!(snapshot(&app), before);
}

#[rocket::async_test]
async fn unknown_collections_fields_indexes_users_and_jobs_are_404_pages() {
    let app = TestApp::spawn().await;
    books(&app).await;
    let admin = admin_site(&app).await;
    for path in [
        "/admin/collections/nope",
        "/admin/collections/users",
        "/admin/collections/books/fields/nope",
        "/admin/collections/books/fields/id",
        "/admin/collections/books/fields/nope/drop",
        "/admin/collections/nope/delete",
        "/admin/users/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/admin/users/nope/delete",
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.body.contains("Request id"), "{path}");
    }
    admin.get("/admin").await;
    let before = snapshot(&app);
    for path in [
        "/admin/collections/books/indexes/nope/drop",
        "/admin/collections/nope/delete",
        "/admin/collections/books/fields/nope/drop",
        "/admin/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/delete",
        "/admin/jobs/vacuum/run",
    ] {
        assert_eq!(admin.post(path, &[]).await.status, 404, "{path}");
    }
    assert_eq!(snapshot(&app), before);
}
