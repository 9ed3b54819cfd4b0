//! The collections editor through its forms — create, fields, rules, indexes, rename, delete —
//! checked through the API and the database, and what it renders from hostile definitions.

use serde_json::json;

use crate::helpers::TestApp;
use crate::site_admin::{admin_site, assert_redirect, books, definition, field, snapshot};

#[rocket::async_test]
async fn a_collection_with_every_kind_of_field_is_built_through_the_forms() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "authors", "fields": [{ "name": "name", "type": "text" }] }))
        .await;
    let admin = admin_site(&app).await;
    let page = admin.get("/admin/collections/new").await;
    assert!(page.body.contains("id=\"field-0-name\""), "{}", page.body);
    let created = admin
        .post(
            "/admin/collections/new",
            &[
                ("name", "posts"),
                ("fields[0].name", "title"),
                ("fields[0].type", "text"),
                ("fields[0].required", "on"),
                ("fields[0].unique", "on"),
                ("fields[1].name", "score"),
                ("fields[1].type", "number"),
                ("fields[1].indexed", "on"),
                ("fields[2].name", ""),
                ("fields[2].type", "text"),
                ("fields[3].name", "published"),
                ("fields[3].type", "bool"),
            ],
        )
        .await;
    assert_redirect(&created, "/admin/collections/posts");
    let editor = admin.get(created.location()).await;
    assert!(editor.body.contains("Collection posts created."));
    assert!(editor.body.contains("id=\"fields\""));
    let color = admin
        .post(
            "/admin/collections/posts/fields",
            &[
                ("name", "color"),
                ("type", "select"),
                ("values", "red, green\n"),
                ("default", "green"),
                // Options of other types are left out, not refused.
                ("min", "3"),
                ("collection", "users"),
            ],
        )
        .await;
    assert_redirect(&color, "/admin/collections/posts");
    let tags = admin
        .post(
            "/admin/collections/posts/fields",
            &[
                ("name", "tags"),
                ("type", "select"),
                ("values", "a, b\nc"),
                ("multiple", "on"),
            ],
        )
        .await;
    assert_redirect(&tags, "/admin/collections/posts");
    for (name, target, on_delete) in [
        ("author", "authors", "cascade"),
        ("owner", "users", "set_null"),
    ] {
        let added = admin
            .post(
                "/admin/collections/posts/fields",
                &[
                    ("name", name),
                    ("type", "relation"),
                    ("collection", target),
                    ("on_delete", on_delete),
                ],
            )
            .await;
        assert_redirect(&added, "/admin/collections/posts");
    }
    let stars = admin
        .post(
            "/admin/collections/posts/fields",
            &[
                ("name", "stars"),
                ("type", "number"),
                ("integer", "on"),
                ("min", "0"),
                ("max", "5"),
                ("default", "3"),
                ("required", "on"),
            ],
        )
        .await;
    assert_redirect(&stars, "/admin/collections/posts");
    let def = definition(&app, "posts").await;
    let names: Vec<&str> = def["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "title",
            "score",
            "published",
            "color",
            "tags",
            "author",
            "owner",
            "stars"
        ]
    );
    assert_eq!(
        field(&def, "title"),
        &json!({ "name": "title", "type": "text", "required": true, "unique": true })
    );
    assert_eq!(field(&def, "score")["indexed"], true);
    assert_eq!(field(&def, "published")["type"], "bool");
    assert_eq!(
        field(&def, "color"),
        &json!({ "name": "color", "type": "select", "values": ["red", "green"], "default": "green" })
    );
    assert_eq!(field(&def, "tags")["values"], json!(["a, b", "c"]));
    assert_eq!(field(&def, "tags")["multiple"], true);
    assert_eq!(field(&def, "author")["collection"], "authors");
    assert_eq!(field(&def, "author")["on_delete"], "cascade");
    assert_eq!(field(&def, "owner")["on_delete"], "set_null");
    assert_eq!(
        field(&def, "stars"),
        &json!({ "name": "stars", "type": "number", "integer": true, "min": 0, "max": 5,
                 "default": 3, "required": true })
    );
    // The collection works: a record takes the defaults.
    let rec = app.record("posts", json!({ "title": "Hello" })).await;
    assert_eq!(
        (rec["color"].clone(), rec["stars"].clone()),
        (json!("green"), json!(3))
    );
    // The editor shows the options in words, and the list links to it.
    let editor = admin.get("/admin/collections/posts").await;
    assert!(
        editor.body.contains("values: red, green"),
        "{}",
        editor.body
    );
    assert!(editor.body.contains("→ authors, on delete cascade"));
    let list = admin.get("/admin/collections").await;
    assert!(list.body.contains("href=\"/admin/collections/posts\""));
}

#[rocket::async_test]
async fn a_refused_new_collection_shows_the_errors_beside_the_inputs_and_keeps_the_values() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    admin.get("/admin/collections/new").await;
    let page = admin
        .post(
            "/admin/collections/new",
            &[
                ("name", "Bad Name"),
                ("fields[0].name", "ok_field"),
                ("fields[0].type", "text"),
                ("fields[1].name", "id"),
                ("fields[1].type", "number"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"collection-name-error\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"Bad Name\""));
    assert!(page.body.contains("value=\"ok_field\""));
    assert!(
        page.body.contains("id=\"field-1-name-error\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("aria-invalid=\"true\""));
    let list = app.get("/api/collections", Some(&app.admin)).await;
    assert!(list.json["items"].as_array().unwrap().is_empty());
}

#[rocket::async_test]
async fn adding_renaming_editing_and_dropping_fields_keep_the_other_data() {
    let app = TestApp::spawn().await;
    books(&app).await;
    let admin = admin_site(&app).await;
    admin.get("/admin/collections/books").await;
    let added = admin
        .post(
            "/admin/collections/books/fields",
            &[
                ("name", "year"),
                ("type", "number"),
                ("integer", "on"),
                ("default", "1965"),
            ],
        )
        .await;
    assert_redirect(&added, "/admin/collections/books");
    let page = admin.get("/admin/collections/books/fields/title").await;
    assert!(page.body.contains("id=\"rename-name\""));
    let renamed = admin
        .post(
            "/admin/collections/books/fields/title/rename",
            &[("name", "name")],
        )
        .await;
    assert_redirect(&renamed, "/admin/collections/books");
    let edited = admin
        .post(
            "/admin/collections/books/fields/pages",
            &[
                ("type", "number"),
                ("integer", "on"),
                ("min", "1"),
                ("max", "5000"),
            ],
        )
        .await;
    assert_redirect(&edited, "/admin/collections/books");
    let confirm = admin.get("/admin/collections/books/fields/junk/drop").await;
    assert!(confirm.body.contains("id=\"confirm-drop\""));
    let dropped = admin
        .post("/admin/collections/books/fields/junk/drop", &[])
        .await;
    assert_redirect(&dropped, "/admin/collections/books");
    let def = definition(&app, "books").await;
    assert_eq!(
        def["fields"],
        json!([
            { "name": "name", "type": "text", "required": true },
            { "name": "pages", "type": "number", "integer": true, "min": 1, "max": 5000 },
            { "name": "year", "type": "number", "integer": true, "default": 1965 }
        ])
    );
    let list = app.get("/api/collections/books/records", None).await;
    let rec = &list.json["items"][0];
    assert_eq!(rec["name"], "Dune");
    assert_eq!(rec["pages"], 412);
    assert!(rec.get("junk").is_none() && rec.get("title").is_none());
    let columns: Vec<String> = app
        .sqlite()
        .prepare("SELECT name FROM pragma_table_info('books')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!columns.contains(&"junk".to_string()), "{columns:?}");
}

#[rocket::async_test]
async fn a_refused_field_change_shows_the_services_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    books(&app).await;
    let admin = admin_site(&app).await;
    admin.get("/admin/collections/books").await;
    let before = snapshot(&app);
    // A field with a bad name and a pattern that does not compile: both beside their inputs.
    let bad = admin
        .post(
            "/admin/collections/books/fields",
            &[("name", "Bad Name"), ("type", "text"), ("pattern", "(")],
        )
        .await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("id=\"field-name-error\""), "{}", bad.body);
    assert!(
        bad.body.contains("id=\"field-pattern-error\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"Bad Name\""));
    // A default the form cannot read is caught before the service.
    let typed = admin
        .post(
            "/admin/collections/books/fields",
            &[("name", "n"), ("type", "number"), ("default", "many")],
        )
        .await;
    assert!(
        typed.body.contains("id=\"field-default-error\""),
        "{}",
        typed.body
    );
    assert_eq!(snapshot(&app), before);
    // Making a field required fails when a record has no value; the message is on the page.
    app.record("books", json!({ "title": "Emma" })).await;
    let before_required = snapshot(&app);
    let required = admin
        .post(
            "/admin/collections/books/fields/pages",
            &[("type", "number"), ("integer", "on"), ("required", "on")],
        )
        .await;
    assert_eq!(required.status, 200, "{}", required.body);
    assert!(
        required.body.contains("class=\"error\"") || required.body.contains("id=\"problems\""),
        "{}",
        required.body
    );
    assert!(required.body.contains(" checked"), "typed values kept");
    assert_eq!(snapshot(&app), before_required);
    // Renaming onto an existing field is refused beside the rename input.
    let clash = admin
        .post(
            "/admin/collections/books/fields/junk/rename",
            &[("name", "pages")],
        )
        .await;
    assert_eq!(clash.status, 200);
    assert!(
        clash.body.contains("id=\"rename-name-error\""),
        "{}",
        clash.body
    );
    assert_eq!(snapshot(&app), before_required);
    assert_eq!(
        definition(&app, "books").await["fields"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[rocket::async_test]
async fn rules_are_saved_and_an_invalid_expression_is_shown_beside_its_rule() {
    let app = TestApp::spawn().await;
    books(&app).await;
    let admin = admin_site(&app).await;
    admin.get("/admin/collections/books").await;
    let modes = [
        ("list_mode", "anyone"),
        ("view_mode", "expression"),
        ("view_expr", "pages > 100"),
        ("create_mode", "admins"),
        ("update_mode", "admins"),
        ("delete_mode", "admins"),
    ];
    let saved = admin.post("/admin/collections/books/rules", &modes).await;
    assert_redirect(&saved, "/admin/collections/books");
    let def = definition(&app, "books").await;
    assert_eq!(
        def["rules"],
        json!({ "list": "", "view": "pages > 100", "create": null, "update": null, "delete": null })
    );
    let before = snapshot(&app);
    let bad = admin
        .post(
            "/admin/collections/books/rules",
            &[
                ("list_mode", "expression"),
                ("list_expr", "nope = 1"),
                ("view_mode", "anyone"),
                ("create_mode", "admins"),
                ("update_mode", "admins"),
                ("delete_mode", "admins"),
            ],
        )
        .await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("id=\"rule-list-error\""), "{}", bad.body);
    assert!(bad.body.contains("value=\"nope = 1\""));
    assert!(!bad.body.contains("id=\"rule-view-error\""));
    assert_eq!(snapshot(&app), before);
    assert_eq!(definition(&app, "books").await["rules"], def["rules"]);
}

#[rocket::async_test]
async fn a_composite_index_is_added_and_dropped() {
    let app = TestApp::spawn().await;
    books(&app).await;
    let admin = admin_site(&app).await;
    admin.get("/admin/collections/books").await;
    let added = admin
        .post(
            "/admin/collections/books/indexes",
            &[
                ("name", "by_title_pages"),
                ("fields", "title, pages"),
                ("unique", "on"),
            ],
        )
        .await;
    assert_redirect(&added, "/admin/collections/books");
    let def = definition(&app, "books").await;
    assert_eq!(
        def["indexes"],
        json!([{ "name": "by_title_pages", "fields": ["title", "pages"], "unique": true }])
    );
    let indexes = || -> i64 {
        app.sqlite()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'books' AND sql LIKE '%by_title_pages%'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(indexes(), 1);
    let editor = admin.get("/admin/collections/books").await;
    assert!(editor.body.contains("id=\"drop-index-by_title_pages\""));
    let bad = admin
        .post(
            "/admin/collections/books/indexes",
            &[("name", "by_ghost"), ("fields", "ghost")],
        )
        .await;
    assert_eq!(bad.status, 200);
    assert!(
        bad.body.contains("id=\"index-fields-error\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"by_ghost\""));
    let dropped = admin
        .post("/admin/collections/books/indexes/by_title_pages/drop", &[])
        .await;
    assert_redirect(&dropped, "/admin/collections/books");
    assert!(definition(&app, "books").await.get("indexes").is_none());
    assert_eq!(indexes(), 0);
}

#[rocket::async_test]
async fn a_collection_is_renamed_and_deleted_but_not_while_another_relates_to_it() {
    let app = TestApp::spawn().await;
    books(&app).await;
    app.collection(json!({
        "name": "reviews",
        "fields": [{ "name": "book", "type": "relation", "collection": "books" }]
    }))
    .await;
    let admin = admin_site(&app).await;
    admin.get("/admin/collections/books").await;
    let renamed = admin
        .post("/admin/collections/books/rename", &[("name", "novels")])
        .await;
    assert_redirect(&renamed, "/admin/collections/novels");
    assert_eq!(
        field(&definition(&app, "reviews").await, "book")["collection"],
        "novels"
    );
    let clash = admin
        .post("/admin/collections/novels/rename", &[("name", "reviews")])
        .await;
    assert_eq!(clash.status, 200);
    assert!(clash.body.contains("already exists"), "{}", clash.body);
    let confirm = admin.get("/admin/collections/novels/delete").await;
    assert!(confirm.body.contains("id=\"confirm-delete\""));
    let before = snapshot(&app);
    let refused = admin.post("/admin/collections/novels/delete", &[]).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("id=\"problems\""), "{}", refused.body);
    assert!(refused.body.contains("reviews"));
    assert_eq!(snapshot(&app), before);
    let first = admin.post("/admin/collections/reviews/delete", &[]).await;
    assert_redirect(&first, "/admin/collections");
    let second = admin.post("/admin/collections/novels/delete", &[]).await;
    assert_redirect(&second, "/admin/collections");
    let list = app.get("/api/collections", Some(&app.admin)).await;
    assert!(list.json["items"].as_array().unwrap().is_empty());
    let page = admin.get("/admin/collections").await;
    assert!(page.body.contains("Collection novels deleted."));
}

#[rocket::async_test]
async fn payloads_in_defaults_select_values_and_expressions_render_escaped() {
    let app = TestApp::spawn().await;
    let xss = "\"><svg onload=alert(1)>";
    app.collection(json!({
        "name": "notes",
        "fields": [
            { "name": "body", "type": "text", "default": xss },
            { "name": "kind", "type": "select", "values": [xss, "plain"] }
        ]
    }))
    .await;
    let admin = admin_site(&app).await;
    for path in [
        "/admin/collections/notes",
        "/admin/collections/notes/fields/body",
        "/admin/collections/notes/fields/kind",
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains(xss), "{path}: {}", page.body);
        assert!(!page.body.contains("<svg"), "{path}");
        assert!(
            page.body.contains("&#34;&#62;&#60;svg"),
            "{path}: {}",
            page.body
        );
    }
    // askama escapes `"` as `&#34;` and `<`/`>` as `&#60;`/`&#62;`.
    // A refused rule keeps the typed payload, escaped.
    let bad = admin
        .post(
            "/admin/collections/notes/rules",
            &[("list_mode", "expression"), ("list_expr", xss)],
        )
        .await;
    assert_eq!(bad.status, 200);
    assert!(!bad.body.contains("<svg"));
    assert!(bad.body.contains("&#34;&#62;&#60;svg"));
}

#[rocket::async_test]
async fn patches_built_under_the_schema_lock_keep_a_concurrent_change() {
    let app = TestApp::spawn().await;
    books(&app).await;
    let state = app.client.rocket().state::<onebox::app::App>().unwrap();
    // Each patch lists every field (as the editor's do); built from the definition current
    // when its turn comes, neither undoes the other.
    let add = |name: &'static str| {
        state.collections.update_with(
            onebox::services::identity::Actor::default(),
            "books",
            move |spec| {
                let mut fields = serde_json::to_value(&spec.fields).unwrap();
                fields
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "name": name, "type": "text" }));
                Ok(json!({ "fields": fields }))
            },
        )
    };
    let (one, two) = rocket::tokio::join!(add("one"), add("two"));
    one.unwrap();
    two.unwrap();
    let def = definition(&app, "books").await;
    field(&def, "one");
    field(&def, "two");
    assert_eq!(def["fields"].as_array().unwrap().len(), 5);
}
