//! Tests of the records service's helpers for the site (rules per operation, buttons, form
//! validation) against a real `App` on a fresh data dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::auth::{PasswordParams, Role};
use crate::config::Settings;
use crate::services::identity::{self, Actor};

struct Fixture {
    _dir: tempfile::TempDir,
    app: App,
    admin: Caller,
    owner: Caller,
    other: Caller,
    /// A note owned by `owner`.
    note: String,
}

fn caller(user: crate::auth::User) -> Caller {
    Caller {
        user: Some(user),
        ..Caller::anonymous()
    }
}

/// Define the collection `spec` (as a system actor).
async fn define(app: &App, spec: Value) {
    let actor = Actor {
        user_id: None,
        ip: None,
    };
    let spec = serde_json::from_value(spec).unwrap();
    app.collections.create(actor, spec).await.unwrap();
}

/// `notes`: anyone views, owners update, admins delete, admins create.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults(dir.path());
    settings.password = PasswordParams::insecure_fast();
    let app = App::start(settings).await.unwrap();
    let mut users = Vec::new();
    for (email, role) in [
        ("admin@example.com", Role::Admin),
        ("owner@example.com", Role::User),
        ("other@example.com", Role::User),
    ] {
        let user = identity::create_user(&app, None, email, "a-long-passphrase", role)
            .await
            .unwrap();
        users.push(caller(user));
    }
    define(
        &app,
        json!({
            "name": "notes",
            "fields": [
                { "name": "title", "type": "text", "required": true, "max": 10 },
                { "name": "n", "type": "number", "integer": true },
                { "name": "owner", "type": "text" }
            ],
            "rules": { "list": "", "view": "", "update": "owner = @me" }
        }),
    )
    .await;
    let [admin, owner, other] = <[Caller; 3]>::try_from(users).ok().unwrap();
    let input = json!({ "title": "mine", "owner": owner.user_id().unwrap() });
    let note = create(&app, "notes", &admin, input.as_object().unwrap().clone())
        .await
        .unwrap()
        .id;
    Fixture {
        _dir: dir,
        app,
        admin,
        owner,
        other,
        note,
    }
}

#[tokio::test]
async fn allowed_follows_the_update_and_delete_rules_for_the_record_as_it_is() {
    let f = fixture().await;
    let ask = |who: &Caller, id: &str| {
        let (app, who, id) = (&f.app, who.clone(), id.to_string());
        async move { allowed(app, "notes", &id, &who).await.unwrap() }
    };
    let both = Allowed {
        update: true,
        delete: true,
    };
    assert_eq!(ask(&f.admin, &f.note).await, both);
    assert_eq!(
        ask(&f.owner, &f.note).await,
        Allowed {
            update: true,
            delete: false
        }
    );
    assert_eq!(ask(&f.other, &f.note).await, Allowed::default());
    assert_eq!(ask(&Caller::anonymous(), &f.note).await, Allowed::default());
    // A record that does not exist allows nothing, even to an admin.
    assert_eq!(ask(&f.admin, "01NOSUCHRECORD").await, Allowed::default());
}

#[tokio::test]
async fn get_for_reaches_a_record_through_the_rule_of_the_operation() {
    let f = fixture().await;
    let get = |who: &Caller, op| {
        let (app, who, id) = (&f.app, who.clone(), f.note.clone());
        async move { get_for(app, "notes", &id, &who, op).await }
    };
    let shown: Value =
        serde_json::from_slice(&get(&f.other, Operation::View).await.unwrap()).unwrap();
    assert_eq!(shown["title"], "mine");
    assert!(shown.get("created").is_some());
    assert!(matches!(
        get(&f.other, Operation::Update).await,
        Err(AppError::NotFound)
    ));
    assert!(get(&f.owner, Operation::Update).await.is_ok());
    assert!(matches!(
        get(&f.owner, Operation::Delete).await,
        Err(AppError::NotFound)
    ));
    assert!(matches!(
        get(&Caller::anonymous(), Operation::Delete).await,
        Err(AppError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn check_rule_refuses_as_the_operation_itself_would() {
    let f = fixture().await;
    let check = |who: &Caller, op| check_rule(&f.app, "notes", who, op);
    assert!(check(&f.admin, Operation::Create).is_ok());
    assert!(matches!(
        check(&f.owner, Operation::Create),
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        check(&Caller::anonymous(), Operation::Create),
        Err(AppError::Unauthorized(_))
    ));
    assert!(matches!(
        check(&f.owner, Operation::Delete),
        Err(AppError::NotFound)
    ));
    // A filter rule is for the record to decide.
    assert!(check(&f.other, Operation::Update).is_ok());
    assert!(check(&Caller::anonymous(), Operation::List).is_ok());
    assert!(matches!(
        check_rule(&f.app, "nope", &f.admin, Operation::List),
        Err(AppError::NotFound)
    ));
}

#[tokio::test]
async fn validation_errors_lists_every_problem_without_writing() {
    let f = fixture().await;
    let input = json!({ "title": "far too long a title", "n": 1.5, "bogus": 1 });
    let errors = validation_errors(&f.app, "notes", input.as_object().unwrap(), true).unwrap();
    assert_eq!(
        errors.keys().collect::<Vec<_>>(),
        ["bogus", "n", "title"],
        "{errors:?}"
    );
    // As changes, a missing required field is no problem.
    let partial = json!({ "n": 2 });
    assert!(
        validation_errors(&f.app, "notes", partial.as_object().unwrap(), false)
            .unwrap()
            .is_empty()
    );
    let missing = validation_errors(&f.app, "notes", &Map::new(), true).unwrap();
    assert_eq!(missing.get("title").map(String::as_str), Some("required"));
    let listed = list::<ValueRows>(&f.app, "notes", &f.admin, ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.items.rows.len(), 1);
}

/// The items of a page read as JSON, parsed back.
fn json_items(page: &ListPage<JsonRows>) -> Vec<Map<String, Value>> {
    let body: Value = serde_json::from_slice(&page.to_json()).unwrap();
    serde_json::from_value(body["items"].clone()).unwrap()
}

/// The items of a page read as values, keyed by their columns.
fn value_items(page: &ListPage<ValueRows>) -> Vec<Map<String, Value>> {
    let rows = page.items.rows.iter();
    rows.map(|values| {
        page.items
            .columns
            .iter()
            .cloned()
            .zip(values.clone())
            .collect()
    })
    .collect()
}

/// One page of `notes`, listed as JSON and as values.
async fn both_ways(f: &Fixture, params: ListParams) -> (ListPage<JsonRows>, ListPage<ValueRows>) {
    let json = list::<JsonRows>(&f.app, "notes", &f.admin, params.clone());
    let values = list::<ValueRows>(&f.app, "notes", &f.admin, params);
    (json.await.unwrap(), values.await.unwrap())
}

#[tokio::test]
async fn a_page_read_as_values_holds_what_its_json_holds_in_the_same_order_both_ways() {
    let f = fixture().await;
    for n in [3, 1, 4, 2] {
        let input = json!({ "title": format!("n{n}"), "n": n });
        create(
            &f.app,
            "notes",
            &f.admin,
            input.as_object().unwrap().clone(),
        )
        .await
        .unwrap();
    }
    let params = |after: Option<&str>, before: Option<&str>| ListParams {
        sort: Some("-n".into()),
        limit: Some(2),
        after: after.map(str::to_owned),
        before: before.map(str::to_owned),
        ..ListParams::default()
    };
    let numbers = |items: &[Map<String, Value>]| -> Vec<Value> {
        items.iter().map(|item| item["n"].clone()).collect()
    };
    let (first, first_values) = both_ways(&f, params(None, None)).await;
    assert_eq!(numbers(&json_items(&first)), [json!(4), json!(3)]);
    assert_eq!(json_items(&first), value_items(&first_values));
    assert_eq!(first.next, first_values.next);

    // The second page, then back to the first by the second's `before` cursor: rows read
    // backwards, nearest first, and turned round.
    let next = first.next.as_deref();
    let second = list::<JsonRows>(&f.app, "notes", &f.admin, params(next, None))
        .await
        .unwrap();
    assert_eq!(numbers(&json_items(&second)), [json!(2), json!(1)]);
    let prev = second.prev.as_deref();
    assert!(prev.is_some());
    let (back, back_values) = both_ways(&f, params(None, prev)).await;
    assert_eq!(json_items(&back), json_items(&first));
    assert_eq!(value_items(&back_values), value_items(&first_values));
    assert_eq!((back.next, back.prev), (back_values.next, back_values.prev));
}

#[tokio::test]
async fn create_and_update_answer_the_row_as_stored_even_with_fields_named_rowid_and_oid() {
    let f = fixture().await;
    // A field may be called `rowid` or `oid`, SQLite's own names for a row's key; a write
    // reads its row back by `_rowid_`, which no field can be called.
    define(
        &f.app,
        json!({
            "name": "keys",
            "fields": [
                { "name": "rowid", "type": "number", "integer": true },
                { "name": "oid", "type": "text" },
                { "name": "x", "type": "number" }
            ],
            "rules": { "view": "", "create": "", "update": "" }
        }),
    )
    .await;
    let body = |v: Value| v.as_object().unwrap().clone();
    let mut ids = Vec::new();
    for (i, rowid) in [7, 1, 900].into_iter().enumerate() {
        let written = create(
            &f.app,
            "keys",
            &f.other,
            body(json!({ "rowid": rowid, "oid": format!("o{i}"), "x": 2 })),
        )
        .await
        .unwrap();
        let answered: Value = serde_json::from_slice(&written.json).unwrap();
        let stored = get(&f.app, "keys", &written.id, &f.other, None)
            .await
            .unwrap();
        assert_eq!(written.json, stored, "the create answers the row as stored");
        assert_eq!(answered["id"], written.id.as_str());
        assert_eq!(answered["rowid"], rowid);
        assert_eq!(answered["oid"], format!("o{i}"));
        ids.push(written.id);
    }
    let updated = update(
        &f.app,
        "keys",
        &ids[0],
        &f.other,
        body(json!({ "oid": "changed", "x": 2.5 })),
        None,
    )
    .await
    .unwrap();
    let answered: Value = serde_json::from_slice(&updated.json).unwrap();
    assert_eq!(answered["oid"], "changed");
    assert_eq!(answered["x"], 2.5);
    assert_eq!(answered["rowid"], 7);
    let stored = get(&f.app, "keys", &ids[0], &f.other, None).await.unwrap();
    assert_eq!(updated.json, stored, "the update answers the row as stored");
    // The other records are untouched.
    for id in &ids[1..] {
        let other: Value =
            serde_json::from_slice(&get(&f.app, "keys", id, &f.other, None).await.unwrap())
                .unwrap();
        assert_eq!(other["x"], 2.0);
        assert_ne!(other["oid"], "changed");
    }
}
