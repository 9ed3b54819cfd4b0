//! Collection definitions: every field type and option, validation, and alterations that keep
//! data.

use serde_json::{Value, json};

use crate::helpers::*;

fn all_types_spec() -> Value {
    json!({
        "name": "things",
        "fields": [
            { "name": "title", "type": "text", "required": true, "max": 20, "min": 2, "unique": true },
            { "name": "code", "type": "text", "pattern": "^[A-Z]{3}$" },
            { "name": "qty", "type": "number", "integer": true, "min": 0, "max": 100, "indexed": true, "default": 1 },
            { "name": "price", "type": "number" },
            { "name": "active", "type": "bool", "default": true },
            { "name": "due", "type": "datetime" },
            { "name": "contact", "type": "email" },
            { "name": "site", "type": "url" },
            { "name": "color", "type": "select", "values": ["red", "green"] },
            { "name": "tags", "type": "select", "values": ["a", "b", "c"], "multiple": true },
            { "name": "meta", "type": "json" },
            { "name": "owner", "type": "relation", "collection": "users", "on_delete": "set_null" }
        ],
        "rules": { "list": "", "view": "" }
    })
}

#[rocket::async_test]
async fn create_collection_with_every_field_type_and_read_it_back() {
    let app = TestApp::spawn().await;
    let created = app.collection(all_types_spec()).await;
    assert_eq!(created["name"], "things");
    let got = app.get("/api/collections/things", Some(&app.admin)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["fields"].as_array().unwrap().len(), 12);
    // Bounds read back as sent: whole numbers stay integers.
    assert_eq!(got.json["fields"][0]["max"], json!(20), "{}", got.json);
    assert_eq!(got.json["fields"][2]["min"], json!(0), "{}", got.json);
    assert_eq!(got.json["rules"]["list"], "");
    assert_eq!(got.json["rules"]["create"], Value::Null);
    let list = app.get("/api/collections", Some(&app.admin)).await;
    assert_eq!(column(&list.json, "name"), vec!["things"]);
    // The table really exists, STRICT, with the unique and plain indexes.
    let db = app.sqlite();
    let sql: String = db
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'things'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("STRICT"), "{sql}");
    let indexes: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'things' AND sql IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        indexes >= 3,
        "unique, indexed and relation indexes expected, got {indexes}"
    );
}

#[rocket::async_test]
async fn invalid_definition_reports_every_problem_at_once() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/collections",
            Some(&app.admin),
            json!({
                "name": "_bad",
                "fields": [
                    { "name": "id", "type": "text" },
                    { "name": "n", "type": "number", "pattern": "x" },
                    { "name": "s", "type": "select" },
                    { "name": "r", "type": "relation", "collection": "nowhere" },
                    { "name": "w", "type": "wat" }
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
    let errors = r.json["errors"].as_object().unwrap();
    assert!(errors.len() >= 6, "{errors:?}");
    assert!(errors.contains_key("name"), "{errors:?}");
    // Nothing was created.
    let list = app.get("/api/collections", Some(&app.admin)).await;
    assert!(list.json["items"].as_array().unwrap().is_empty());
}

#[rocket::async_test]
async fn duplicate_collection_name_is_409_and_reserved_names_422() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "posts", "fields": [] }))
        .await;
    let dup = app
        .post(
            "/api/collections",
            Some(&app.admin),
            json!({ "name": "posts", "fields": [] }),
        )
        .await;
    assert_eq!(dup.status, 409);
    for bad in ["users", "Posts", "1x", "x\"--", "sqlite_master\n"] {
        let r = app
            .post(
                "/api/collections",
                Some(&app.admin),
                json!({ "name": bad, "fields": [] }),
            )
            .await;
        assert_eq!(r.status, 422, "{bad}: {:?}", r.json);
    }
}

#[rocket::async_test]
async fn collection_admin_endpoints_refuse_users_and_anonymous() {
    let app = TestApp::spawn().await;
    let (_, user) = app.user("u@example.com").await;
    let spec = json!({ "name": "posts", "fields": [] });
    let anon = app.post("/api/collections", None, spec.clone()).await;
    assert_eq!(anon.status, 401);
    let plain = app.post("/api/collections", Some(&user), spec).await;
    assert_eq!(plain.status, 403);
    assert_eq!(app.get("/api/collections", Some(&user)).await.status, 403);
    assert_eq!(app.get("/api/collections", None).await.status, 401);
}

#[rocket::async_test]
async fn add_rename_and_drop_fields_keep_data() {
    let app = TestApp::spawn().await;
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
    let rec = app
        .record(
            "books",
            json!({ "title": "Dune", "pages": 412, "junk": "x" }),
        )
        .await;
    let id = rec["id"].as_str().unwrap();
    // Listings made before the change, whose queries are kept per collection version.
    let listed = app
        .get("/api/collections/books/records?sort=-pages", None)
        .await;
    assert_eq!(listed.json["items"][0]["title"], "Dune");
    let by_title = app
        .get("/api/collections/books/records?sort=title", None)
        .await;
    assert_eq!(by_title.status, 200);
    let r = app
        .patch(
            "/api/collections/books",
            Some(&app.admin),
            json!({ "fields": [
                { "name": "name", "type": "text", "required": true, "rename_from": "title" },
                { "name": "pages", "type": "number", "integer": true },
                { "name": "year", "type": "number", "integer": true, "default": 1965 }
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let got = app
        .get(&format!("/api/collections/books/records/{id}"), None)
        .await;
    assert_eq!(got.status, 200, "{:?}", got.json);
    assert_eq!(got.json["name"], "Dune");
    assert_eq!(got.json["pages"], 412);
    assert!(got.json.get("junk").is_none());
    assert!(got.json.get("title").is_none());
    assert_eq!(got.json["created"], rec["created"]);
    // The same listings now select and sort by the new columns.
    let listed = app
        .get("/api/collections/books/records?sort=-pages", None)
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.json);
    let first = &listed.json["items"][0];
    assert_eq!(first["name"], "Dune");
    assert!(first.get("year").is_some(), "{first}");
    assert!(first.get("title").is_none() && first.get("junk").is_none());
    let by_title = app
        .get("/api/collections/books/records?sort=title", None)
        .await;
    assert_eq!(by_title.status, 400, "{:?}", by_title.json);
    // A create after the change writes the new fields: nothing of the old version's INSERT
    // (built once per version of a collection) is reused.
    let after = app
        .record("books", json!({ "name": "Emma", "pages": 474 }))
        .await;
    assert_eq!(after["name"], "Emma");
    assert_eq!(after["year"], 1965);
    assert!(after.get("title").is_none() && after.get("junk").is_none());
}

#[rocket::async_test]
async fn type_change_converts_values_or_fails_leaving_data_intact() {
    let app = TestApp::spawn().await;
    app.collection(json!({
        "name": "items",
        "fields": [ { "name": "n", "type": "text" } ],
        "rules": { "list": "", "view": "" }
    }))
    .await;
    let a = app.record("items", json!({ "n": "12" })).await;
    app.record("items", json!({ "n": "7.5" })).await;
    // text → number works when every value parses.
    let ok = app
        .patch(
            "/api/collections/items",
            Some(&app.admin),
            json!({ "fields": [ { "name": "n", "type": "number" } ] }),
        )
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.json);
    let got = app
        .get(
            &format!(
                "/api/collections/items/records/{}",
                a["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(got.json["n"].as_f64(), Some(12.0));
    // number → bool fails for 7.5; the data stays as it was.
    let bad = app
        .patch(
            "/api/collections/items",
            Some(&app.admin),
            json!({ "fields": [ { "name": "n", "type": "bool" } ] }),
        )
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.json);
    assert!(
        bad.json["errors"]
            .as_object()
            .unwrap()
            .values()
            .any(|m| m.as_str().unwrap().contains('n')),
        "{:?}",
        bad.json
    );
    let list = app.get("/api/collections/items/records?sort=n", None).await;
    assert_eq!(list.status, 200);
    let values: Vec<f64> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![7.5, 12.0]);
    let def = app.get("/api/collections/items", Some(&app.admin)).await;
    assert_eq!(def.json["fields"][0]["type"], "number");
}

#[rocket::async_test]
async fn making_a_field_unique_fails_on_duplicates_and_required_needs_values() {
    let app = TestApp::spawn().await;
    app.collection(json!({
        "name": "tags",
        "fields": [ { "name": "label", "type": "text" }, { "name": "note", "type": "text" } ],
        "rules": { "list": "" }
    }))
    .await;
    app.record("tags", json!({ "label": "x" })).await;
    app.record("tags", json!({ "label": "x", "note": "n" }))
        .await;
    let unique = app
        .patch(
            "/api/collections/tags",
            Some(&app.admin),
            json!({ "fields": [ { "name": "label", "type": "text", "unique": true }, { "name": "note", "type": "text" } ] }),
        )
        .await;
    assert_eq!(unique.status, 422, "{:?}", unique.json);
    let required = app
        .patch(
            "/api/collections/tags",
            Some(&app.admin),
            json!({ "fields": [ { "name": "label", "type": "text" }, { "name": "note", "type": "text", "required": true } ] }),
        )
        .await;
    assert_eq!(required.status, 422, "{:?}", required.json);
    let with_default = app
        .patch(
            "/api/collections/tags",
            Some(&app.admin),
            json!({ "fields": [ { "name": "label", "type": "text" }, { "name": "note", "type": "text", "required": true, "default": "none" } ] }),
        )
        .await;
    assert_eq!(with_default.status, 200, "{:?}", with_default.json);
    let list = app
        .get("/api/collections/tags/records?sort=note", None)
        .await;
    assert_eq!(column(&list.json, "note"), vec!["n", "none"]);
}

#[rocket::async_test]
async fn rules_and_indexes_can_be_patched_and_rules_are_validated() {
    let app = TestApp::spawn().await;
    app.collection(json!({
        "name": "notes",
        "fields": [ { "name": "owner", "type": "relation", "collection": "users" }, { "name": "body", "type": "text" } ]
    }))
    .await;
    let bad = app
        .patch(
            "/api/collections/notes",
            Some(&app.admin),
            json!({ "rules": { "list": "nope = 1" } }),
        )
        .await;
    assert_eq!(bad.status, 422, "{:?}", bad.json);
    assert!(
        bad.json["errors"]["rules.list"].is_string(),
        "{:?}",
        bad.json
    );
    let ok = app
        .patch(
            "/api/collections/notes",
            Some(&app.admin),
            json!({ "rules": { "list": "owner = @me", "view": "owner = @me" },
                    "indexes": [ { "name": "by_owner_body", "fields": ["owner", "body"] } ] }),
        )
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.json);
    assert_eq!(ok.json["rules"]["list"], "owner = @me");
    let db = app.sqlite();
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql LIKE '%by_owner_body%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    // Merge patch: only `view` changes, `list` stays.
    let merged = app
        .patch(
            "/api/collections/notes",
            Some(&app.admin),
            json!({ "rules": { "view": "" } }),
        )
        .await;
    assert_eq!(merged.json["rules"]["list"], "owner = @me");
    assert_eq!(merged.json["rules"]["view"], "");
}

#[rocket::async_test]
async fn renaming_a_collection_keeps_records_and_relations() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "authors", "fields": [ { "name": "name", "type": "text" } ], "rules": { "view": "" } })).await;
    app.collection(json!({
        "name": "books",
        "fields": [ { "name": "author", "type": "relation", "collection": "authors", "on_delete": "cascade" } ],
        "rules": { "list": "" }
    }))
    .await;
    let author = app.record("authors", json!({ "name": "Le Guin" })).await;
    let aid = author["id"].as_str().unwrap();
    app.record("books", json!({ "author": aid })).await;
    let r = app
        .patch(
            "/api/collections/authors",
            Some(&app.admin),
            json!({ "name": "writers" }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        app.get(&format!("/api/collections/writers/records/{aid}"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get("/api/collections/authors", Some(&app.admin))
            .await
            .status,
        404
    );
    let books = app.get("/api/collections/books", Some(&app.admin)).await;
    assert_eq!(books.json["fields"][0]["collection"], "writers");
    // The cascade still works under the new name.
    let del = app
        .delete(
            &format!("/api/collections/writers/records/{aid}"),
            Some(&app.admin),
        )
        .await;
    assert_eq!(del.status, 204);
    let list = app.get("/api/collections/books/records", None).await;
    assert!(list.json["items"].as_array().unwrap().is_empty());
}

#[rocket::async_test]
async fn deleting_a_collection_drops_it_unless_others_relate_to_it() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "a", "fields": [] })).await;
    app.collection(json!({ "name": "b", "fields": [ { "name": "a", "type": "relation", "collection": "a" } ] })).await;
    let refused = app.delete("/api/collections/a", Some(&app.admin)).await;
    assert_eq!(refused.status, 409);
    assert_eq!(
        app.delete("/api/collections/b", Some(&app.admin))
            .await
            .status,
        204
    );
    assert_eq!(
        app.delete("/api/collections/a", Some(&app.admin))
            .await
            .status,
        204
    );
    let n: i64 = app
        .sqlite()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('a','b')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        app.delete("/api/collections/a", Some(&app.admin))
            .await
            .status,
        404
    );
}

#[rocket::async_test]
async fn schema_changes_are_in_the_change_log() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "logme", "fields": [ { "name": "x", "type": "text" } ] }))
        .await;
    app.record("logme", json!({ "x": "1" })).await;
    let rows: Vec<(String, String)> = {
        let db = app.sqlite();
        let mut stmt = db
            .prepare("SELECT collection, op FROM _changes ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        rows,
        vec![
            ("logme".to_string(), "schema".to_string()),
            ("logme".to_string(), "insert".to_string())
        ]
    );
}
