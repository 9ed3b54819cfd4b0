//! Lists: filter, sort, fields, count, page and keyset cursors (stable under inserts).

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::*;

async fn seeded(app: &TestApp) {
    app.collection(json!({
        "name": "posts",
        "fields": [
            { "name": "title", "type": "text", "indexed": true },
            { "name": "year", "type": "number", "integer": true, "indexed": true },
            { "name": "featured", "type": "bool" },
            { "name": "tags", "type": "select", "values": ["rust", "go"], "multiple": true }
        ],
        "rules": { "list": "", "view": "", "create": "" }
    }))
    .await;
    for (title, year, featured) in [
        ("Hello rust", 2021, false),
        ("Rust in prod", 2019, true),
        ("Go notes", 2022, false),
        ("Old news", 2010, false),
        ("Rusty nails", 2020, false),
    ] {
        app.record(
            "posts",
            json!({ "title": title, "year": year, "featured": featured }),
        )
        .await;
    }
}

#[rocket::async_test]
async fn filter_and_sort_select_the_right_rows() {
    let app = TestApp::spawn().await;
    seeded(&app).await;
    let f = enc(r#"title ~ "rust" && (year >= 2020 || featured = true)"#);
    let r = app
        .get(
            &format!("/api/collections/posts/records?filter={f}&sort=-year"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        column(&r.json, "title"),
        vec!["Hello rust", "Rusty nails", "Rust in prod"]
    );
    assert!(r.json.get("total").is_none());
    let asc = app
        .get("/api/collections/posts/records?sort=title", None)
        .await;
    assert_eq!(
        column(&asc.json, "title"),
        vec![
            "Go notes",
            "Hello rust",
            "Old news",
            "Rust in prod",
            "Rusty nails"
        ]
    );
}

#[rocket::async_test]
async fn bad_filter_is_400_with_the_error_position() {
    let app = TestApp::spawn().await;
    seeded(&app).await;
    let f = enc(r#"title ~ "x" && nope = 1"#);
    let r = app
        .get(&format!("/api/collections/posts/records?filter={f}"), None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(r.json["position"], 15, "{:?}", r.json);
    assert!(r.json["detail"].as_str().unwrap().contains("position 15"));
    for hostile in [
        r#"title = "x" -- "#,
        "rowid = 1",
        "sqlite_master = 1",
        r#"title = "unterminated"#,
        "((((((((((((((((((((((((((((((((((title = \"a\"))))))))))))))))))))))))))))))))))",
    ] {
        let r = app
            .get(
                &format!("/api/collections/posts/records?filter={}", enc(hostile)),
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{hostile}: {:?}", r.json);
        // The error is about the filter text, never SQL.
        let detail = r.json["detail"].as_str().unwrap().to_lowercase();
        assert!(
            !detail.contains("select ")
                && !detail.contains("rusqlite")
                && !detail.contains("no such"),
            "{detail}"
        );
    }
    let sort = app
        .get("/api/collections/posts/records?sort=-nope", None)
        .await;
    assert_eq!(sort.status, 400);
    assert_eq!(sort.json["parameter"], "sort");
}

#[rocket::async_test]
async fn count_fields_and_limit_cap() {
    let app = TestApp::spawn().await;
    seeded(&app).await;
    let r = app
        .get(
            "/api/collections/posts/records?count=true&limit=2&fields=title",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["total"], 5);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let keys: HashSet<&str> = items[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["id", "title"]));
    assert!(r.json["next"].is_string());
    let f = enc("year < 2015");
    let c = app
        .get(
            &format!("/api/collections/posts/records?count=true&filter={f}"),
            None,
        )
        .await;
    assert_eq!(c.json["total"], 1);
    assert_eq!(
        app.get("/api/collections/posts/records?limit=abc", None)
            .await
            .status,
        400
    );
    let big = app
        .get("/api/collections/posts/records?limit=100000", None)
        .await;
    assert_eq!(big.status, 200);
}

#[rocket::async_test]
async fn page_parameter_pages_through_in_order() {
    let app = TestApp::spawn().await;
    seeded(&app).await;
    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = app
            .get(
                &format!("/api/collections/posts/records?sort=year&limit=2&page={page}"),
                None,
            )
            .await;
        seen.extend(column(&r.json, "year"));
    }
    assert_eq!(seen, vec!["2010", "2019", "2020", "2021", "2022"]);
    assert_eq!(
        app.get("/api/collections/posts/records?page=0", None)
            .await
            .status,
        400
    );
}

#[rocket::async_test]
async fn cursor_pagination_is_stable_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    app.collection(json!({
        "name": "events",
        "fields": [ { "name": "n", "type": "number", "integer": true }, { "name": "grp", "type": "text" } ],
        "rules": { "list": "", "create": "" }
    }))
    .await;
    for i in 0..30 {
        let grp = if i % 3 == 0 {
            None
        } else {
            Some(format!("g{}", i % 4))
        };
        app.record("events", json!({ "n": i, "grp": grp })).await;
    }
    // Mixed directions with duplicates and NULLs, paged 7 at a time, inserting between pages.
    let mut url = "/api/collections/events/records?sort=-grp,n&limit=7".to_string();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let r = app.get(&url, None).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        ids.extend(column(&r.json, "id"));
        pages += 1;
        // Concurrent writers: these sort before the cursor (n < 0) or after it.
        app.record("events", json!({ "n": -pages, "grp": "g1" }))
            .await;
        match r.json["next"].as_str() {
            Some(next) => {
                url = format!(
                    "/api/collections/events/records?sort=-grp,n&limit=7&after={}",
                    enc(next)
                )
            }
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a row was repeated");
    // Every one of the original 30 rows was visited exactly once.
    let original: HashSet<String> = {
        let db = app.sqlite();
        let mut s = db.prepare("SELECT id FROM events WHERE n >= 0").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for id in &original {
        assert!(unique.contains(id), "row {id} was skipped");
    }
    let bad = app
        .get("/api/collections/events/records?after=garbage", None)
        .await;
    assert_eq!(bad.status, 400);
    let other_sort = app
        .get("/api/collections/events/records?sort=n&limit=2", None)
        .await;
    let cursor = other_sort.json["next"].as_str().unwrap();
    let mismatch = app
        .get(
            &format!(
                "/api/collections/events/records?sort=-n&after={}",
                enc(cursor)
            ),
            None,
        )
        .await;
    assert_eq!(mismatch.status, 400, "a cursor is bound to its sort");
}

#[rocket::async_test]
async fn before_cursors_walk_back_through_the_pages_that_next_walked_forward() {
    let app = TestApp::spawn().await;
    app.collection(json!({
        "name": "events",
        "fields": [ { "name": "n", "type": "number", "integer": true }, { "name": "grp", "type": "text" } ],
        "rules": { "list": "" }
    }))
    .await;
    for i in 0..11 {
        let grp = (i % 3 != 0).then(|| format!("g{}", i % 4));
        app.record("events", json!({ "n": i, "grp": grp })).await;
    }
    let base = "/api/collections/events/records?sort=-grp,n&limit=4";
    let first = app.get(base, None).await;
    assert_eq!(
        first.json["prev"],
        json!(null),
        "the first page has no prev"
    );
    let mut forward = vec![column(&first.json, "id")];
    let mut page = first.json;
    while let Some(next) = page["next"].as_str() {
        page = app
            .get(&format!("{base}&after={}", enc(next)), None)
            .await
            .json;
        forward.push(column(&page, "id"));
    }
    assert_eq!(forward.len(), 3);
    let mut backward = vec![column(&page, "id")];
    while let Some(prev) = page["prev"].as_str() {
        let r = app.get(&format!("{base}&before={}", enc(prev)), None).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        page = r.json;
        backward.push(column(&page, "id"));
        assert!(page["next"].is_string(), "a page before another has a next");
    }
    backward.reverse();
    assert_eq!(backward, forward);
    // The OpenAPI document describes the parameter and the cursor.
    let doc = app.get("/api/openapi.json", None).await.json;
    assert!(doc["components"]["parameters"]["before"].is_object());
    let list = &doc["paths"]["/api/collections/events/records"]["get"];
    assert!(
        list["parameters"]
            .as_array()
            .unwrap()
            .contains(&json!({ "$ref": "#/components/parameters/before" }))
    );
    let answer = &list["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(answer["properties"]["prev"].is_object());
    // Cursors are bound to their sort, and only one position may be given.
    let prev = app
        .get(
            &format!("{base}&after={}", enc(page["next"].as_str().unwrap())),
            None,
        )
        .await;
    let cursor = prev.json["prev"].as_str().unwrap();
    for query in [
        format!("sort=n&before={}", enc(cursor)),
        format!("sort=-grp,n&before={0}&after={0}", enc(cursor)),
        format!("sort=-grp,n&before={}&page=2", enc(cursor)),
    ] {
        let r = app
            .get(&format!("/api/collections/events/records?{query}"), None)
            .await;
        assert_eq!(r.status, 400, "{query}: {:?}", r.json);
    }
}
