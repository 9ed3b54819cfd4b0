//! The data pages, write side: the new and edit forms generated from the field types, errors
//! beside their fields with the typed values kept, unique conflicts, delete with confirmation
//! (and a restrict relation refusing it), rules on writes, and CSRF.

use serde_json::json;

use crate::helpers::TestApp;
use crate::site_client::Page;
use crate::site_records::{admin_site, href, library, private_notes, user_site};

/// The value of column `column` of record `id`, as SQLite holds it (as text, or NULL).
fn stored(app: &TestApp, table: &str, id: &str, column: &str) -> Option<String> {
    app.sqlite()
        .query_row(
            &format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\" WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

fn count(app: &TestApp, table: &str) -> i64 {
    app.sqlite()
        .query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// The opening tag of the element with id `id`.
fn tag<'p>(page: &'p Page, id: &str) -> &'p str {
    let at = page
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let start = page.body[..at].rfind('<').unwrap();
    let end = page.body[at..].find('>').unwrap() + at;
    &page.body[start..=end]
}

/// The id of the record a successful form redirected to.
fn created_id(page: &Page) -> String {
    assert_eq!(page.status, 303, "{}", page.body);
    page.location().rsplit('/').next().unwrap().to_string()
}

#[rocket::async_test]
async fn the_new_form_has_an_input_per_field_type() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let ann = app.record("authors", json!({ "name": "Ann" })).await;
    let site = admin_site(&app).await;
    let page = site.get("/c/books/new").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<form method=\"post\" action=\"/c/books/new\"")
    );
    assert!(page.hidden("csrf").is_some());
    let title = tag(&page, "field-title");
    assert!(
        title.contains("type=\"text\"")
            && title.contains("required")
            && title.contains("maxlength=\"100\"")
    );
    let year = tag(&page, "field-year");
    assert!(
        year.contains("type=\"number\"")
            && year.contains("step=\"1\"")
            && year.contains("min=\"0\"")
            && year.contains("max=\"3000\""),
        "{year}"
    );
    assert!(tag(&page, "field-price").contains("step=\"any\""));
    assert!(tag(&page, "field-done").contains("type=\"checkbox\""));
    assert!(tag(&page, "field-due").contains("type=\"datetime-local\""));
    assert!(
        page.body
            .contains("<small id=\"hint-due\">Date and time in UTC.</small>")
    );
    assert!(tag(&page, "field-contact").contains("type=\"email\""));
    assert!(tag(&page, "field-site").contains("type=\"url\""));
    assert!(tag(&page, "field-status").starts_with("<select"));
    assert!(tag(&page, "field-tags").starts_with("<fieldset"));
    assert!(tag(&page, "field-tags-3").contains("value=\"c\""));
    assert!(tag(&page, "field-meta").starts_with("<textarea"));
    assert!(
        tag(&page, "field-notes").starts_with("<textarea"),
        "text without max"
    );
    assert!(tag(&page, "field-author").starts_with("<select"));
    let ann_id = ann["id"].as_str().unwrap();
    assert!(page.body.contains(&format!(
        "<option value=\"{ann_id}\">{ann_id} — Ann</option>"
    )));
    // Every input has its label.
    for field in [
        "title", "year", "done", "due", "status", "meta", "author", "tags-1",
    ] {
        assert!(
            page.body
                .contains(&format!("<label for=\"field-{field}\">")),
            "{field}"
        );
    }
}

#[rocket::async_test]
async fn the_new_form_creates_a_record_from_every_field_type() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let ann = app.record("authors", json!({ "name": "Ann" })).await;
    let ann_id = ann["id"].as_str().unwrap();
    let site = admin_site(&app).await;
    site.get("/c/books/new").await;
    let done = site
        .post(
            "/c/books/new",
            &[
                ("title", "Dune"),
                ("year", "1965"),
                ("price", "9.5"),
                ("done", "on"),
                ("due", "2024-05-01T12:30"),
                ("contact", "a@b.io"),
                ("site", "https://dune.example/"),
                ("status", "live"),
                ("tags", "a"),
                ("tags", "c"),
                ("meta", "{\"k\": [1, 2]}"),
                ("notes", ""),
                ("author", ann_id),
            ],
        )
        .await;
    let id = created_id(&done);
    assert_eq!(done.location(), format!("/c/books/{id}"));
    let shown = site.get(done.location()).await;
    assert!(
        shown.body.contains("role=\"status\">Created</p>"),
        "the flash notice"
    );
    assert!(shown.body.contains("<h1>Dune</h1>"));
    let value = |c| stored(&app, "books", &id, c);
    assert_eq!(value("year").as_deref(), Some("1965"));
    assert_eq!(value("price").as_deref(), Some("9.5"));
    assert_eq!(value("done").as_deref(), Some("1"));
    assert_eq!(value("due").as_deref(), Some("2024-05-01T12:30:00.000Z"));
    assert_eq!(value("site").as_deref(), Some("https://dune.example/"));
    assert_eq!(value("tags").as_deref(), Some("[\"a\",\"c\"]"));
    assert_eq!(value("meta").as_deref(), Some("{\"k\":[1,2]}"));
    assert_eq!(value("notes"), None, "an empty input is null");
    assert_eq!(value("author").as_deref(), Some(ann_id));
}

#[rocket::async_test]
async fn invalid_values_come_back_beside_their_fields_with_the_typed_values() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let site = admin_site(&app).await;
    site.get("/c/books/new").await;
    let page = site
        .post(
            "/c/books/new",
            &[
                ("title", ""),
                ("year", "12.5"),
                ("contact", "not an email"),
                ("site", "javascript:alert(1)"),
                ("meta", "{broken"),
                ("notes", "kept <b>as typed</b>"),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    for (field, message) in [
        ("title", "required"),
        ("year", "must be a whole number"),
        ("contact", "must be a valid email address"),
        ("site", "must be a valid http or https URL"),
        ("meta", "is not valid JSON"),
    ] {
        let small = page
            .body
            .find(&format!("<small id=\"error-{field}\" class=\"error\">"))
            .unwrap_or_else(|| panic!("no error for {field}: {}", page.body));
        assert!(
            page.body[small..].starts_with(&format!(
                "<small id=\"error-{field}\" class=\"error\">{message}"
            )),
            "{field}"
        );
        let input = tag(&page, &format!("field-{field}"));
        assert!(input.contains("aria-invalid=\"true\""), "{input}");
        assert!(
            input.contains(&format!("error-{field}")),
            "described by its error: {input}"
        );
    }
    assert!(tag(&page, "field-year").contains("value=\"12.5\""));
    assert!(tag(&page, "field-contact").contains("value=\"not an email\""));
    assert!(page.body.contains("{broken</textarea>"));
    assert!(
        page.body
            .contains("kept &#60;b&#62;as typed&#60;/b&#62;</textarea>")
    );
    assert_eq!(count(&app, "books"), 0);
}

#[rocket::async_test]
async fn a_duplicate_unique_value_is_shown_beside_its_field() {
    let app = TestApp::spawn().await;
    library(&app).await;
    app.record("books", json!({ "title": "Dune" })).await;
    let site = admin_site(&app).await;
    site.get("/c/books/new").await;
    let page = site
        .post("/c/books/new", &[("title", "Dune"), ("year", "1")])
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<small id=\"error-title\" class=\"error\">another record already has this title</small>"), "{}", page.body);
    assert!(tag(&page, "field-year").contains("value=\"1\""));
    assert_eq!(count(&app, "books"), 1);
}

#[rocket::async_test]
async fn the_edit_form_is_prefilled_and_saves_with_unchecked_boxes_false() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let id = app
        .record(
            "books",
            json!({ "title": "Dune", "done": true, "tags": ["b"], "due": "2024-05-01T12:30:15.250Z",
                    "meta": {"a": 1}, "status": "draft" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let site = admin_site(&app).await;
    let form = site.get(&format!("/c/books/{id}/edit")).await;
    assert_eq!(form.status, 200);
    assert!(tag(&form, "field-title").contains("value=\"Dune\""));
    assert!(tag(&form, "field-done").contains("checked"));
    assert!(tag(&form, "field-tags-2").contains("checked"));
    assert!(!tag(&form, "field-tags-1").contains("checked"));
    assert!(tag(&form, "field-due").contains("value=\"2024-05-01T12:30:15.250\""));
    assert!(form.body.contains("<option value=\"draft\" selected>"));
    assert!(form.body.contains("&#34;a&#34;: 1"), "json pretty-printed");
    let version = form.hidden("_version").unwrap();
    // Save: the checkbox and the tags unticked, the rest as shown.
    let saved = site
        .post(
            &format!("/c/books/{id}/edit"),
            &[
                ("_version", &version.replace("&#34;", "\"")),
                ("title", "Dune II"),
                ("due", "2024-05-01T12:30:15.250"),
                ("meta", "{\"a\": 1}"),
                ("status", "draft"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), format!("/c/books/{id}"));
    assert!(site.get(saved.location()).await.body.contains(">Saved</p>"));
    let value = |c| stored(&app, "books", &id, c);
    assert_eq!(value("title").as_deref(), Some("Dune II"));
    assert_eq!(value("done").as_deref(), Some("0"));
    assert_eq!(value("tags").as_deref(), Some("[]"));
    assert_eq!(
        value("due").as_deref(),
        Some("2024-05-01T12:30:15.250Z"),
        "unchanged"
    );
}

#[rocket::async_test]
async fn saving_a_form_opened_before_someone_elses_change_warns_first() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let id = app.record("books", json!({ "title": "Dune" })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let site = admin_site(&app).await;
    let form = site.get(&format!("/c/books/{id}/edit")).await;
    let version = form.hidden("_version").unwrap().replace("&#34;", "\"");
    let path = format!("/api/collections/books/records/{id}");
    app.patch(&path, Some(&app.admin), json!({ "year": 1 }))
        .await;
    let stale = site
        .post(
            &format!("/c/books/{id}/edit"),
            &[("_version", &version), ("title", "Mine")],
        )
        .await;
    assert_eq!(stale.status, 200);
    assert!(stale.body.contains("id=\"form-error\""));
    assert!(tag(&stale, "field-title").contains("value=\"Mine\""));
    assert_eq!(stored(&app, "books", &id, "title").as_deref(), Some("Dune"));
    // The form now carries the current version: saving again is deliberate.
    let fresh = stale.hidden("_version").unwrap().replace("&#34;", "\"");
    let saved = site
        .post(
            &format!("/c/books/{id}/edit"),
            &[("_version", &fresh), ("title", "Mine")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(stored(&app, "books", &id, "title").as_deref(), Some("Mine"));
}

#[rocket::async_test]
async fn delete_asks_for_confirmation_and_a_restrict_relation_refuses_it() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let ann = app.record("authors", json!({ "name": "Ann" })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let book = app
        .record("books", json!({ "title": "Dune", "author": ann }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let site = admin_site(&app).await;
    let confirm = site.get(&format!("/c/authors/{ann}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm
            .body
            .contains("<h1>Delete record Ann from authors?</h1>")
    );
    assert!(
        confirm
            .body
            .contains(&format!("action=\"/c/authors/{ann}/delete\""))
    );
    let refused = site.post(&format!("/c/authors/{ann}/delete"), &[]).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("id=\"form-error\""));
    assert!(refused.body.contains("other records refer to this record"));
    assert_eq!(count(&app, "authors"), 1);
    // Without the book pointing at it, the author goes.
    site.get(&format!("/c/books/{book}/delete")).await;
    let gone = site.post(&format!("/c/books/{book}/delete"), &[]).await;
    assert_eq!((gone.status, gone.location()), (303, "/c/books"));
    assert!(site.get("/c/books").await.body.contains(">Deleted</p>"));
    site.get(&format!("/c/authors/{ann}/delete")).await;
    let gone = site.post(&format!("/c/authors/{ann}/delete"), &[]).await;
    assert_eq!((gone.status, gone.location()), (303, "/c/authors"));
    assert_eq!(count(&app, "authors"), 0);
    assert_eq!(
        site.get(&format!("/c/authors/{ann}/delete")).await.status,
        404
    );
}

#[rocket::async_test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let id = app.record("books", json!({ "title": "Dune" })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let site = admin_site(&app).await;
    site.get(&format!("/c/books/{id}/edit")).await;
    let attempts = [
        ("/c/books/new".to_string(), vec![("title", "New")]),
        (format!("/c/books/{id}/edit"), vec![("title", "Changed")]),
        (format!("/c/books/{id}/delete"), vec![]),
    ];
    for (path, fields) in &attempts {
        let p = site.post_raw(path, fields).await;
        assert_eq!(p.status, 403, "{path}");
        let mut wrong = vec![("csrf", "not-the-token")];
        wrong.extend_from_slice(fields);
        assert_eq!(site.post_raw(path, &wrong).await.status, 403, "{path}");
    }
    assert_eq!(count(&app, "books"), 1);
    assert_eq!(stored(&app, "books", &id, "title").as_deref(), Some("Dune"));
}

#[rocket::async_test]
async fn users_create_and_change_only_what_the_rules_allow() {
    let app = TestApp::spawn().await;
    private_notes(&app).await;
    let (ann, site) = user_site(&app, "ann@example.com").await;
    let (bob, _) = user_site(&app, "bob@example.com").await;
    let form = site.get("/c/notes/new").await;
    assert_eq!(form.status, 200);
    // A relation to users is typed as an id.
    assert!(tag(&form, "field-owner").contains("type=\"text\""));
    let mine = site
        .post("/c/notes/new", &[("text", "mine"), ("owner", &ann)])
        .await;
    let id = created_id(&mine);
    // The create rule holds for what is written: a note for Bob is refused, nothing stored.
    let theirs = site
        .post("/c/notes/new", &[("text", "for bob"), ("owner", &bob)])
        .await;
    assert_eq!(theirs.status, 200);
    assert!(theirs.body.contains("id=\"form-error\""));
    assert_eq!(count(&app, "notes"), 1);
    // Editing may not hand the note to someone else either.
    site.get(&format!("/c/notes/{id}/edit")).await;
    let give = site
        .post(
            &format!("/c/notes/{id}/edit"),
            &[("text", "yours"), ("owner", &bob)],
        )
        .await;
    assert_eq!(give.status, 200);
    assert_eq!(
        stored(&app, "notes", &id, "owner").as_deref(),
        Some(ann.as_str())
    );
    let page = site.get(&format!("/c/notes/{id}")).await;
    assert_eq!(
        href(&page, "edit-record").unwrap(),
        format!("/c/notes/{id}/edit")
    );
}

#[rocket::async_test]
async fn a_relation_to_more_than_200_records_is_typed_as_an_id() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let site = admin_site(&app).await;
    let few = site.get("/c/books/new").await;
    assert!(tag(&few, "field-author").starts_with("<select"));
    {
        // 201 authors, written straight into the table (the API would take a while).
        let mut db = rusqlite::Connection::open(app.dir.path().join("onebox.db")).unwrap();
        let tx = db.transaction().unwrap();
        for i in 0..201 {
            tx.execute(
                "INSERT INTO authors (id, created, updated, name) VALUES (?1, ?2, ?2, ?3)",
                rusqlite::params![
                    format!("01A{i:023}"),
                    "2024-01-01T00:00:00.000Z",
                    format!("a{i}")
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let many = site.get("/c/books/new").await;
    let input = tag(&many, "field-author");
    assert!(
        input.starts_with("<input") && input.contains("type=\"text\""),
        "{input}"
    );
    assert!(
        many.body
            .contains("<small id=\"hint-author\">The id of a record in authors.</small>")
    );
}

#[rocket::async_test]
async fn anonymous_visitors_can_post_where_the_create_rule_lets_anyone() {
    let app = TestApp::spawn().await;
    app.collection(json!({
        "name": "guestbook",
        "fields": [ { "name": "message", "type": "text", "required": true, "max": 140 } ],
        "rules": { "list": "", "view": "", "create": "" }
    }))
    .await;
    let site = crate::site_client::SiteClient::new(&app);
    let form = site.get("/c/guestbook/new").await;
    assert_eq!(form.status, 200);
    assert!(tag(&form, "field-message").contains("type=\"text\""));
    // The pre-sign-in CSRF token (cookie + form field) protects the form.
    let done = site.post("/c/guestbook/new", &[("message", "hello")]).await;
    let id = created_id(&done);
    assert_eq!(
        stored(&app, "guestbook", &id, "message").as_deref(),
        Some("hello")
    );
    // Updates are for admins: no Edit button, and the edit form asks an anonymous visitor
    // to sign in (an admin could).
    let page = site.get(&format!("/c/guestbook/{id}")).await;
    assert!(!page.body.contains("id=\"edit-record\""));
    let edit = site.get(&format!("/c/guestbook/{id}/edit")).await;
    assert_eq!(edit.status, 303);
    assert!(edit.location().starts_with("/sign-in?next="));
}
