//! Records: validation per field type, unique conflicts, system fields, relations.

use serde_json::{Value, json};

use crate::helpers::*;

async fn things(app: &TestApp) {
    app.collection(json!({
        "name": "things",
        "fields": [
            { "name": "title", "type": "text", "required": true, "max": 10, "min": 2, "unique": true },
            { "name": "code", "type": "text", "pattern": "^[A-Z]{3}$" },
            { "name": "qty", "type": "number", "integer": true, "min": 0, "max": 100, "default": 1 },
            { "name": "price", "type": "number" },
            { "name": "active", "type": "bool", "default": true },
            { "name": "due", "type": "datetime" },
            { "name": "contact", "type": "email" },
            { "name": "site", "type": "url" },
            { "name": "color", "type": "select", "values": ["red", "green"] },
            { "name": "tags", "type": "select", "values": ["a", "b", "c"], "multiple": true },
            { "name": "meta", "type": "json" }
        ],
        "rules": { "list": "", "view": "", "create": "", "update": "", "delete": "" }
    }))
    .await;
}

#[rocket::async_test]
async fn every_field_type_round_trips() {
    let app = TestApp::spawn().await;
    things(&app).await;
    let r = app
        .post(
            "/api/collections/things/records",
            None,
            json!({
                "title": "Widget", "code": "ABC", "qty": 5, "price": 2.5, "active": false,
                "due": "2024-05-01T14:00:00+02:00", "contact": "a@example.com",
                "site": "https://example.com/x", "color": "red", "tags": ["a", "c"],
                "meta": { "k": [1, 2, { "z": null }] }
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let rec = &r.json;
    assert_eq!(rec["due"], "2024-05-01T12:00:00.000Z");
    assert_eq!(rec["active"], false);
    assert_eq!(rec["qty"], 5);
    assert_eq!(rec["tags"], json!(["a", "c"]));
    assert_eq!(rec["meta"], json!({ "k": [1, 2, { "z": null }] }));
    let id = rec["id"].as_str().unwrap();
    assert_eq!(id.len(), 26, "ULID ids");
    assert!(rec["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rec["created"], rec["updated"]);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/collections/things/records/{id}").as_str())
    );
    let got = app
        .get(&format!("/api/collections/things/records/{id}"), None)
        .await;
    assert_eq!(&got.json, rec);
    // Defaults apply when a field is missing.
    let d = app
        .post(
            "/api/collections/things/records",
            None,
            json!({ "title": "Dflt" }),
        )
        .await;
    assert_eq!(d.json["qty"], 1);
    assert_eq!(d.json["active"], true);
    assert_eq!(d.json["code"], Value::Null);
}

/// A create's answer is made from the values it bound, not read back: byte for byte (and so
/// by ETag) it must be what a read of the stored row gives, for every field type, for values
/// SQLite stores in another form (a REAL whole number is kept as an integer, so `-0.0` comes
/// back as `0.0`), for text JSON must escape, and for nulls and defaults.
#[rocket::async_test]
async fn a_create_answers_exactly_what_a_read_of_the_record_gives() {
    let app = TestApp::spawn().await;
    things(&app).await;
    let inputs = [
        json!({
            "title": "Widget", "code": "ABC", "qty": 5, "price": 2.5, "active": false,
            "due": "2024-05-01T14:00:00+02:00", "contact": "a@example.com",
            "site": "https://example.com/x", "color": "red", "tags": ["a", "c"],
            "meta": { "k": [1, 2.50, { "z": null }], "s": "\u{e9}\"" }
        }),
        json!({ "title": "Zero", "price": -0.0, "qty": 0, "meta": [] }),
        json!({ "title": "Whole", "price": 2000, "meta": 1e300 }),
        json!({ "title": "Big", "price": 1.7976931348623157e308, "qty": 100 }),
        json!({ "title": "\"q\"\\\n\u{1}", "price": -1e-300, "tags": [] }),
        json!({ "title": "Dflt" }),
    ];
    for input in inputs {
        let r = app
            .post("/api/collections/things/records", None, input.clone())
            .await;
        assert_eq!(r.status, 201, "{input}: {:?}", r.json);
        let id = r.json["id"].as_str().unwrap();
        let got = app
            .get(&format!("/api/collections/things/records/{id}"), None)
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            String::from_utf8_lossy(&got.body),
            "{input}"
        );
        assert_eq!(r.header("etag"), got.header("etag"), "{input}");
        assert!(r.header("etag").is_some());
    }
    let zero = app
        .get(
            "/api/collections/things/records?filter=title%3D%22Zero%22",
            None,
        )
        .await;
    assert!(
        String::from_utf8_lossy(&zero.body).contains("\"price\":0.0,"),
        "{}",
        String::from_utf8_lossy(&zero.body)
    );
}

#[rocket::async_test]
async fn validation_reports_every_failing_field_at_once() {
    let app = TestApp::spawn().await;
    things(&app).await;
    let r = app
        .post(
            "/api/collections/things/records",
            None,
            json!({
                "title": "x", "code": "abc", "qty": 1.5, "price": "cheap", "active": "yes",
                "due": "tomorrow", "contact": "not-an-email", "site": "javascript:alert(1)",
                "color": "blue", "tags": ["a", "z"], "nope": 1, "id": "mine", "created": "2020-01-01T00:00:00Z"
            }),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
    let errors = r.json["errors"].as_object().unwrap();
    for f in [
        "title", "code", "qty", "price", "active", "due", "contact", "site", "color", "tags",
        "nope", "id", "created",
    ] {
        assert!(errors.contains_key(f), "missing error for {f}: {errors:?}");
    }
    // Nothing was stored.
    let n: i64 = app
        .sqlite()
        .query_row("SELECT count(*) FROM things", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    let missing = app
        .post("/api/collections/things/records", None, json!({}))
        .await;
    assert_eq!(missing.status, 422);
    assert!(missing.json["errors"]["title"].is_string());
    let bounds = app
        .post(
            "/api/collections/things/records",
            None,
            json!({ "title": "this is far too long", "qty": 101 }),
        )
        .await;
    assert!(
        bounds.json["errors"]["title"].is_string() && bounds.json["errors"]["qty"].is_string(),
        "{:?}",
        bounds.json
    );
}

#[rocket::async_test]
async fn unique_conflict_is_409_naming_the_field() {
    let app = TestApp::spawn().await;
    things(&app).await;
    app.record("things", json!({ "title": "Same" })).await;
    let r = app
        .post(
            "/api/collections/things/records",
            None,
            json!({ "title": "Same" }),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert!(r.json["errors"]["title"].is_string(), "{:?}", r.json);
    let n: i64 = app
        .sqlite()
        .query_row("SELECT count(*) FROM things", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[rocket::async_test]
async fn update_changes_only_given_fields_and_refuses_system_fields() {
    let app = TestApp::spawn().await;
    things(&app).await;
    let rec = app
        .record("things", json!({ "title": "Before", "qty": 3 }))
        .await;
    let id = rec["id"].as_str().unwrap();
    let path = format!("/api/collections/things/records/{id}");
    let r = app.patch(&path, None, json!({ "title": "After" })).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["title"], "After");
    assert_eq!(r.json["qty"], 3);
    assert_eq!(r.json["created"], rec["created"]);
    assert!(r.json["updated"].as_str().unwrap() >= rec["updated"].as_str().unwrap());
    let sys = app
        .patch(
            &path,
            None,
            json!({ "id": "x", "updated": "2000-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(sys.status, 422);
    let req = app.patch(&path, None, json!({ "title": null })).await;
    assert_eq!(req.status, 422);
    let after = app.get(&path, None).await;
    assert_eq!(after.json["title"], "After");
    assert_eq!(after.json["id"], id);
    assert_eq!(
        app.patch(
            "/api/collections/things/records/nope",
            None,
            json!({ "qty": 1 })
        )
        .await
        .status,
        404
    );
}

#[rocket::async_test]
async fn delete_removes_the_record_and_logs_it() {
    let app = TestApp::spawn().await;
    things(&app).await;
    let rec = app.record("things", json!({ "title": "Gone" })).await;
    let path = format!(
        "/api/collections/things/records/{}",
        rec["id"].as_str().unwrap()
    );
    assert_eq!(app.delete(&path, None).await.status, 204);
    assert_eq!(app.get(&path, None).await.status, 404);
    assert_eq!(app.delete(&path, None).await.status, 404);
    let ops: Vec<String> = {
        let db = app.sqlite();
        let mut s = db
            .prepare("SELECT op FROM _changes WHERE collection = 'things' ORDER BY seq")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(ops, vec!["schema", "insert", "delete"]);
}

async fn relations(app: &TestApp, mode: &str) -> (String, String) {
    app.collection(json!({ "name": "parents", "fields": [ { "name": "name", "type": "text" } ], "rules": { "list": "", "view": "", "delete": "" } })).await;
    app.collection(json!({
        "name": "kids",
        "fields": [ { "name": "parent", "type": "relation", "collection": "parents", "on_delete": mode } ],
        "rules": { "list": "", "view": "", "create": "" }
    }))
    .await;
    let p = app.record("parents", json!({ "name": "P" })).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let k = app.record("kids", json!({ "parent": pid })).await;
    (pid, k["id"].as_str().unwrap().to_string())
}

#[rocket::async_test]
async fn relation_to_a_missing_record_is_422() {
    let app = TestApp::spawn().await;
    relations(&app, "restrict").await;
    let r = app
        .post(
            "/api/collections/kids/records",
            None,
            json!({ "parent": "01HZZZZZZZZZZZZZZZZZZZZZZZ" }),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert!(r.json["errors"]["parent"].is_string());
}

/// SQLite's foreign key refuses the write; the answer still names each field whose record is
/// missing, and nothing of the write is kept.
#[rocket::async_test]
async fn a_broken_relation_names_only_its_own_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (pid, _) = relations(&app, "restrict").await;
    app.collection(json!({
        "name": "pairs",
        "fields": [
            { "name": "parent", "type": "relation", "collection": "parents" },
            { "name": "owner", "type": "relation", "collection": "users" },
            { "name": "note", "type": "text" }
        ],
        "rules": { "list": "", "view": "", "create": "", "update": "" }
    }))
    .await;
    let (user, _) = app.user("owner@example.com").await;
    let missing = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
    let count = |table: &str| -> i64 {
        app.sqlite()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let changes = count("_changes");
    for (parent, owner, broken) in [
        (pid.as_str(), missing, "owner"),
        (missing, user.as_str(), "parent"),
    ] {
        let r = app
            .post(
                "/api/collections/pairs/records",
                None,
                json!({ "parent": parent, "owner": owner, "note": "x" }),
            )
            .await;
        assert_eq!(r.status, 422, "{:?}", r.json);
        let errors = r.json["errors"].as_object().unwrap();
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            vec![broken],
            "{errors:?}"
        );
    }
    assert_eq!(count("pairs"), 0);
    assert_eq!(count("_changes"), changes, "a refused write logs nothing");
    // Both valid: written.
    let ok = app
        .post(
            "/api/collections/pairs/records",
            None,
            json!({ "parent": pid, "owner": user, "note": "x" }),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.json);
    // An update to a missing record is refused the same way and changes nothing.
    let path = format!(
        "/api/collections/pairs/records/{}",
        ok.json["id"].as_str().unwrap()
    );
    let r = app
        .patch(&path, None, json!({ "owner": missing, "note": "changed" }))
        .await;
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert!(r.json["errors"]["owner"].is_string(), "{:?}", r.json);
    assert_eq!(app.get(&path, None).await.json, ok.json);
}

#[rocket::async_test]
async fn on_delete_restrict_refuses_with_409_and_keeps_both() {
    let app = TestApp::spawn().await;
    let (pid, kid) = relations(&app, "restrict").await;
    let r = app
        .delete(&format!("/api/collections/parents/records/{pid}"), None)
        .await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert_eq!(
        app.get(&format!("/api/collections/parents/records/{pid}"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(&format!("/api/collections/kids/records/{kid}"), None)
            .await
            .status,
        200
    );
}

#[rocket::async_test]
async fn on_delete_cascade_removes_children_and_logs_them() {
    let app = TestApp::spawn().await;
    let (pid, kid) = relations(&app, "cascade").await;
    // Prime the list ETag so we can check it changes.
    let before = app.get("/api/collections/kids/records", None).await;
    assert_eq!(
        app.delete(&format!("/api/collections/parents/records/{pid}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&format!("/api/collections/kids/records/{kid}"), None)
            .await
            .status,
        404
    );
    let after = app
        .call_with(
            rocket::http::Method::Get,
            "/api/collections/kids/records",
            None,
            None,
            &[("If-None-Match", before.header("etag").unwrap())],
        )
        .await;
    assert_eq!(
        after.status, 200,
        "a cascade must change the child list's ETag"
    );
    let n: i64 = app
        .sqlite()
        .query_row(
            "SELECT count(*) FROM _changes WHERE collection = 'kids' AND op = 'delete'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[rocket::async_test]
async fn on_delete_set_null_clears_the_reference() {
    let app = TestApp::spawn().await;
    let (pid, kid) = relations(&app, "set_null").await;
    assert_eq!(
        app.delete(&format!("/api/collections/parents/records/{pid}"), None)
            .await
            .status,
        204
    );
    let k = app
        .get(&format!("/api/collections/kids/records/{kid}"), None)
        .await;
    assert_eq!(k.status, 200);
    assert_eq!(k.json["parent"], Value::Null);
}

#[rocket::async_test]
async fn relations_to_users_follow_user_deletion() {
    let app = TestApp::spawn().await;
    app.collection(json!({
        "name": "posts",
        "fields": [ { "name": "author", "type": "relation", "collection": "users", "on_delete": "cascade" } ],
        "rules": { "list": "" }
    }))
    .await;
    let (uid, _) = app.user("writer@example.com").await;
    app.record("posts", json!({ "author": uid })).await;
    assert_eq!(
        app.delete(&format!("/api/users/{uid}"), Some(&app.admin))
            .await
            .status,
        204
    );
    let list = app.get("/api/collections/posts/records", None).await;
    assert!(
        list.json["items"].as_array().unwrap().is_empty(),
        "{:?}",
        list.json
    );
}

#[rocket::async_test]
async fn unknown_collection_is_404_problem() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/collections/nope/records", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
}
