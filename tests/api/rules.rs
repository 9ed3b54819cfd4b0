//! Rules: a user sees and changes only what the collection's rules allow; hidden rows are 404.

use serde_json::json;

use crate::helpers::*;

async fn notes(app: &TestApp) {
    app.collection(json!({
        "name": "notes",
        "fields": [
            { "name": "owner", "type": "relation", "collection": "users", "required": true },
            { "name": "body", "type": "text" },
            { "name": "public", "type": "bool", "default": false }
        ],
        "rules": {
            "list": "owner = @me || public = true",
            "view": "owner = @me || public = true",
            "create": "owner = @me",
            "update": "owner = @me",
            "delete": "owner = @me"
        }
    }))
    .await;
}

#[rocket::async_test]
async fn users_see_only_rows_their_rules_allow() {
    let app = TestApp::spawn().await;
    notes(&app).await;
    let (alice, a) = app.user("alice@example.com").await;
    let (bob, b) = app.user("bob@example.com").await;
    let mine = app
        .post(
            "/api/collections/notes/records",
            Some(&a),
            json!({ "owner": alice, "body": "alice secret" }),
        )
        .await;
    assert_eq!(mine.status, 201, "{:?}", mine.json);
    let aid = mine.json["id"].as_str().unwrap().to_string();
    app.post(
        "/api/collections/notes/records",
        Some(&b),
        json!({ "owner": bob, "body": "bob public", "public": true }),
    )
    .await;
    let bob_list = app
        .get("/api/collections/notes/records?count=true", Some(&b))
        .await;
    assert_eq!(column(&bob_list.json, "body"), vec!["bob public"]);
    assert_eq!(
        bob_list.json["total"], 1,
        "counts never include hidden rows"
    );
    let alice_list = app
        .get("/api/collections/notes/records?sort=body", Some(&a))
        .await;
    assert_eq!(
        column(&alice_list.json, "body"),
        vec!["alice secret", "bob public"]
    );
    // Bob cannot view, update or delete Alice's note: 404, not 403.
    let path = format!("/api/collections/notes/records/{aid}");
    assert_eq!(app.get(&path, Some(&b)).await.status, 404);
    assert_eq!(
        app.patch(&path, Some(&b), json!({ "body": "pwned" }))
            .await
            .status,
        404
    );
    assert_eq!(app.delete(&path, Some(&b)).await.status, 404);
    let still = app.get(&path, Some(&a)).await;
    assert_eq!(still.json["body"], "alice secret");
    // Anonymous callers see only public rows.
    let anon = app.get("/api/collections/notes/records", None).await;
    assert_eq!(column(&anon.json, "body"), vec!["bob public"]);
    // Admins pass every rule.
    let all = app
        .get("/api/collections/notes/records", Some(&app.admin))
        .await;
    assert_eq!(all.json["items"].as_array().unwrap().len(), 2);
}

#[rocket::async_test]
async fn create_and_update_rules_hold_for_the_new_values() {
    let app = TestApp::spawn().await;
    notes(&app).await;
    let (alice, a) = app.user("alice@example.com").await;
    let (bob, _) = app.user("bob@example.com").await;
    // Alice cannot create a note owned by Bob.
    let forged = app
        .post(
            "/api/collections/notes/records",
            Some(&a),
            json!({ "owner": bob, "body": "x" }),
        )
        .await;
    assert_eq!(forged.status, 403, "{:?}", forged.json);
    let n: i64 = app
        .sqlite()
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    // Nor give her note away.
    let mine = app
        .post(
            "/api/collections/notes/records",
            Some(&a),
            json!({ "owner": alice, "body": "x" }),
        )
        .await;
    let path = format!(
        "/api/collections/notes/records/{}",
        mine.json["id"].as_str().unwrap()
    );
    let give = app.patch(&path, Some(&a), json!({ "owner": bob })).await;
    assert_eq!(give.status, 403);
    assert_eq!(app.get(&path, Some(&a)).await.json["owner"], alice);
    let ok = app.patch(&path, Some(&a), json!({ "body": "y" })).await;
    assert_eq!(ok.status, 200);
    assert_eq!(app.delete(&path, Some(&a)).await.status, 204);
}

#[rocket::async_test]
async fn admin_only_rules_refuse_users_and_anonymous() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "secrets", "fields": [ { "name": "v", "type": "text" } ] }))
        .await;
    let rec = app.record("secrets", json!({ "v": "s" })).await;
    let (_, u) = app.user("u@example.com").await;
    assert_eq!(
        app.get("/api/collections/secrets/records", None)
            .await
            .status,
        401
    );
    assert_eq!(
        app.get("/api/collections/secrets/records", Some(&u))
            .await
            .status,
        403
    );
    let path = format!(
        "/api/collections/secrets/records/{}",
        rec["id"].as_str().unwrap()
    );
    assert_eq!(app.get(&path, Some(&u)).await.status, 404);
    assert_eq!(
        app.post(
            "/api/collections/secrets/records",
            Some(&u),
            json!({ "v": "x" })
        )
        .await
        .status,
        403
    );
    assert_eq!(app.get(&path, Some(&app.admin)).await.status, 200);
}
