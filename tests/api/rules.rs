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

/// A read under a rule, and a create's read-back through its rule, are built once per
/// collection version and rule; each caller's own values must still decide what they reach.
#[rocket::async_test]
async fn reads_and_writes_kept_per_rule_still_answer_each_caller_by_their_own_values() {
    let app = TestApp::spawn().await;
    notes(&app).await;
    let (alice, a) = app.user("alice@example.com").await;
    let (bob, b) = app.user("bob@example.com").await;
    let create = |token: String, owner: String, body: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/collections/notes/records",
                Some(&token),
                json!({ "owner": owner, "body": body }),
            )
            .await
        }
    };
    // Alice's create builds the read-back; Bob's forgery must not pass through it, nor
    // Alice's through the one Bob's refusal used.
    assert_eq!(create(a.clone(), alice.clone(), "a1").await.status, 201);
    assert_eq!(create(b.clone(), alice.clone(), "forged").await.status, 403);
    assert_eq!(create(a.clone(), bob.clone(), "forged").await.status, 403);
    let bobs = create(b.clone(), bob.clone(), "b1").await;
    assert_eq!(bobs.status, 201, "{:?}", bobs.json);
    assert_eq!(bobs.json["owner"], bob);
    let bodies: Vec<String> = app
        .sqlite()
        .prepare("SELECT body FROM notes ORDER BY body")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(bodies, ["a1", "b1"]);
    // Bob's note by Bob (builds the view's read), then by Alice, then by nobody.
    let path = format!(
        "/api/collections/notes/records/{}",
        bobs.json["id"].as_str().unwrap()
    );
    assert_eq!(app.get(&path, Some(&b)).await.json, bobs.json);
    assert_eq!(app.get(&path, Some(&a)).await.status, 404);
    assert_eq!(app.get(&path, None).await.status, 404);
    assert_eq!(app.get(&path, Some(&b)).await.json, bobs.json);
}

/// A listing's query is built once and kept per collection version when it does not depend on
/// the caller; the same URL asked by different callers must still give each their own rows.
#[rocket::async_test]
async fn the_same_list_url_gives_each_caller_only_their_rows() {
    let app = TestApp::spawn().await;
    notes(&app).await;
    // Rows behind a rule without `@me`, which admins skip and users do not.
    app.collection(json!({
        "name": "posts",
        "fields": [
            { "name": "owner", "type": "relation", "collection": "users" },
            { "name": "body", "type": "text" },
            { "name": "public", "type": "bool", "default": false }
        ],
        "rules": { "list": "public = true" }
    }))
    .await;
    let (alice, a) = app.user("alice@example.com").await;
    let (bob, b) = app.user("bob@example.com").await;
    for (owner, token, body) in [(&alice, &a, "alice"), (&bob, &b, "bob")] {
        let r = app
            .post(
                "/api/collections/notes/records",
                Some(token),
                json!({ "owner": owner, "body": body }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    for (owner, body, public) in [
        (&alice, "open", true),
        (&alice, "hidden", false),
        (&bob, "bobs", true),
    ] {
        app.record(
            "posts",
            json!({ "owner": owner, "body": body, "public": public }),
        )
        .await;
    }
    for round in 0..2 {
        for (token, want) in [(&a, "alice"), (&b, "bob")] {
            for url in [
                "/api/collections/notes/records?sort=body",
                "/api/collections/notes/records?sort=body&filter=owner%20%3D%20%40me",
            ] {
                let got = app.get(url, Some(token)).await;
                assert_eq!(got.status, 200, "{url}: {:?}", got.json);
                assert_eq!(
                    column(&got.json, "body"),
                    vec![want],
                    "round {round}, {url}"
                );
            }
        }
        // `@me` in a filter of an admin, whom the rule does not restrict: their own rows only.
        let mine = app
            .get(
                "/api/collections/notes/records?sort=body&filter=owner%20%3D%20%40me",
                Some(&app.admin),
            )
            .await;
        assert_eq!(column(&mine.json, "body"), Vec::<String>::new());
        let url = "/api/collections/posts/records?sort=body&count=true";
        let all = app.get(url, Some(&app.admin)).await;
        assert_eq!(column(&all.json, "body"), vec!["bobs", "hidden", "open"]);
        assert_eq!(all.json["total"], 3);
        for token in [Some(a.as_str()), None] {
            let some = app.get(url, token).await;
            assert_eq!(
                column(&some.json, "body"),
                vec!["bobs", "open"],
                "round {round}"
            );
            assert_eq!(some.json["total"], 2, "counts never include hidden rows");
        }
        let mine = "/api/collections/posts/records?sort=body&filter=owner%20%3D%20%40me";
        for (token, want) in [(&a, "open"), (&b, "bobs")] {
            let got = app.get(mine, Some(token)).await;
            assert_eq!(column(&got.json, "body"), vec![want], "round {round}");
        }
    }
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
    assert_eq!(mine.status, 201, "{:?}", mine.json);
    // The answer is the row as stored, read back through the rule that let it be written.
    let stored = app.get(&path, Some(&a)).await;
    assert_eq!(mine.json, stored.json);
    let give = app.patch(&path, Some(&a), json!({ "owner": bob })).await;
    assert_eq!(give.status, 403);
    assert_eq!(app.get(&path, Some(&a)).await.json, stored.json);
    let ok = app.patch(&path, Some(&a), json!({ "body": "y" })).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json["body"], "y");
    assert_eq!(ok.json, app.get(&path, Some(&a)).await.json);
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
