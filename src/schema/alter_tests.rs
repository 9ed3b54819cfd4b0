//! Tests of `alter` on real database files: every kind of change, with the data checked after.

use serde_json::{Value, json};

use super::*;
use crate::schema::plan::Plan;
use crate::schema::testutil::{
    collection, db_with, index_names, insert, open_db, records, run_alter,
};

fn posts(fields: Value) -> Collection {
    collection(json!({"name": "posts", "fields": fields}))
}

fn posts_with(fields: Value, indexes: Value) -> Collection {
    collection(json!({"name": "posts", "fields": fields, "indexes": indexes}))
}

fn rebuilds(old: &Collection, new: &Collection, renames: &[(&str, &str)]) -> bool {
    let renames: Vec<(String, String)> = renames
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    Plan::new(old, new, &renames).unwrap().rebuild
}

#[test]
fn adding_optional_fields_works_in_place_and_keeps_rows() {
    let old = posts(json!([{"name": "title", "type": "text"}]));
    let new = posts(json!([
        {"name": "title", "type": "text"},
        {"name": "slug", "type": "text", "unique": true},
        {"name": "owner", "type": "relation", "collection": "users"},
        {"name": "score", "type": "number", "default": 5},
    ]));
    assert!(!rebuilds(&old, &new, &[]));
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"title": "Hello"}));
    run_alter(&conn, &old, &new, &[]).unwrap();
    // Existing rows get NULL; the default is for new records.
    assert_eq!(
        records(&conn, &new),
        [json!({"id": "p1", "title": "Hello", "slug": null, "owner": null, "score": null})]
    );
    assert_eq!(
        index_names(&conn, "posts"),
        ["idx.posts.created", "idx.posts.owner", "uniq.posts.slug"]
    );
    insert(&conn, &new, "p2", json!({"title": "Two"}));
    assert_eq!(records(&conn, &new)[1]["score"], json!(5.0));
    // The new foreign key is live.
    let err = conn
        .execute("UPDATE posts SET owner = 'ghost' WHERE id = 'p1'", [])
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"));
}

#[test]
fn new_required_field_takes_its_default_or_needs_an_empty_table() {
    let old = posts(json!([{"name": "title", "type": "text"}]));
    let with_default = posts(json!([
        {"name": "title", "type": "text"},
        {"name": "state", "type": "select", "values": ["draft", "live"], "required": true,
         "default": "draft"},
    ]));
    let without = posts(json!([
        {"name": "title", "type": "text"},
        {"name": "state", "type": "text", "required": true},
    ]));
    let (_dir, conn) = db_with(&[&old]);
    run_alter(&conn, &old, &without, &[]).unwrap(); // empty table: fine

    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"title": "a"}));
    let err = run_alter(&conn, &old, &without, &[]).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("state"));
    assert_eq!(
        err.message,
        "new field \"state\" is required but has no default, and the collection already has \
         1 record"
    );
    assert_eq!(records(&conn, &old), [json!({"id": "p1", "title": "a"})]);
    run_alter(&conn, &old, &with_default, &[]).unwrap();
    assert_eq!(
        records(&conn, &with_default),
        [json!({"id": "p1", "title": "a", "state": "draft"})]
    );
}

#[test]
fn renaming_a_field_keeps_values_and_renames_its_index() {
    let old = posts(json!([{"name": "title", "type": "text", "indexed": true},
                           {"name": "body", "type": "text"}]));
    let new = posts(json!([{"name": "heading", "type": "text", "indexed": true},
                           {"name": "body", "type": "text"}]));
    assert!(!rebuilds(&old, &new, &[("title", "heading")]));
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"title": "Hi", "body": "b"}));
    run_alter(&conn, &old, &new, &[("title", "heading")]).unwrap();
    assert_eq!(
        records(&conn, &new),
        [json!({"id": "p1", "heading": "Hi", "body": "b"})]
    );
    assert_eq!(
        index_names(&conn, "posts"),
        ["idx.posts.created", "idx.posts.heading"]
    );
}

#[test]
fn dropping_fields_removes_their_columns_and_indexes() {
    let old = posts_with(
        json!([
            {"name": "title", "type": "text", "unique": true},
            {"name": "tag", "type": "text", "indexed": true},
            {"name": "keep", "type": "text"},
        ]),
        json!([{"name": "by_tag", "fields": ["tag", "keep"]}]),
    );
    let new = posts(json!([{"name": "keep", "type": "text"}]));
    assert!(!rebuilds(&old, &new, &[]));
    let (_dir, conn) = db_with(&[&old]);
    insert(
        &conn,
        &old,
        "p1",
        json!({"title": "a", "tag": "t", "keep": "k"}),
    );
    run_alter(&conn, &old, &new, &[]).unwrap();
    assert_eq!(records(&conn, &new), [json!({"id": "p1", "keep": "k"})]);
    assert_eq!(index_names(&conn, "posts"), ["idx.posts.created"]);
    let cols: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_table_info('posts')", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(cols, 4);
}

#[test]
fn dropping_a_relation_rebuilds_and_keeps_rows() {
    let old = posts(json!([
        {"name": "title", "type": "text"},
        {"name": "owner", "type": "relation", "collection": "users"},
    ]));
    let new = posts(json!([{"name": "title", "type": "text"}]));
    assert!(rebuilds(&old, &new, &[]));
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"title": "a"}));
    run_alter(&conn, &old, &new, &[]).unwrap();
    assert_eq!(records(&conn, &new), [json!({"id": "p1", "title": "a"})]);
    assert_eq!(index_names(&conn, "posts"), ["idx.posts.created"]);
}

#[test]
fn making_a_field_required_fills_blanks_with_the_default() {
    let old = posts(json!([{"name": "title", "type": "text"}, {"name": "n", "type": "number"}]));
    let new = posts(json!([
        {"name": "title", "type": "text", "required": true, "default": "untitled"},
        {"name": "n", "type": "number", "required": true, "default": 0},
    ]));
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"title": "kept", "n": 2}));
    insert(&conn, &old, "p2", json!({"title": ""}));
    insert(&conn, &old, "p3", json!({}));
    run_alter(&conn, &old, &new, &[]).unwrap();
    assert_eq!(
        records(&conn, &new),
        [
            json!({"id": "p1", "title": "kept", "n": 2.0}),
            json!({"id": "p2", "title": "untitled", "n": 0.0}),
            json!({"id": "p3", "title": "untitled", "n": 0.0}),
        ]
    );
    let notnull: i64 = conn
        .query_row(
            "SELECT \"notnull\" FROM pragma_table_info('posts') WHERE name = 'title'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(notnull, 1);
}

#[test]
fn making_a_field_required_without_default_fails_when_values_are_missing() {
    let old = posts(json!([{"name": "title", "type": "text"}]));
    let new = posts(json!([{"name": "title", "type": "text", "required": true}]));
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"title": "a"}));
    insert(&conn, &old, "p2", json!({}));
    insert(&conn, &old, "p3", json!({"title": ""}));
    let before = records(&conn, &old);
    let err = run_alter(&conn, &old, &new, &[]).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("title"));
    assert_eq!(
        err.message,
        "field \"title\" cannot be made required: 2 records have no value and the field has no \
         default"
    );
    assert_eq!(records(&conn, &old), before);
    // Once every record has a value it works.
    conn.execute("UPDATE posts SET title = 'x' WHERE id IN ('p2', 'p3')", [])
        .unwrap();
    run_alter(&conn, &old, &new, &[]).unwrap();
}

#[test]
fn making_a_field_unique_checks_for_duplicates() {
    let old = posts(json!([{"name": "slug", "type": "text"}]));
    let new = posts(json!([{"name": "slug", "type": "text", "unique": true}]));
    assert!(!rebuilds(&old, &new, &[]));
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"slug": "a"}));
    insert(&conn, &old, "p2", json!({"slug": "a"}));
    insert(&conn, &old, "p3", json!({}));
    insert(&conn, &old, "p4", json!({}));
    let err = run_alter(&conn, &old, &new, &[]).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("slug"));
    assert_eq!(
        err.message,
        "field \"slug\" cannot be made unique: 1 value appears more than once (e.g. \"a\")"
    );
    assert_eq!(records(&conn, &old).len(), 4);
    assert_eq!(index_names(&conn, "posts"), ["idx.posts.created"]);
    // NULLs do not count as duplicates.
    conn.execute("UPDATE posts SET slug = 'b' WHERE id = 'p2'", [])
        .unwrap();
    run_alter(&conn, &old, &new, &[]).unwrap();
    assert_eq!(
        index_names(&conn, "posts"),
        ["idx.posts.created", "uniq.posts.slug"]
    );
    assert!(
        conn.execute("UPDATE posts SET slug = 'a' WHERE id = 'p2'", [])
            .is_err()
    );
}

#[test]
fn index_specs_and_flags_are_added_and_dropped() {
    let old = posts(json!([{"name": "a", "type": "text"}, {"name": "b", "type": "number"}]));
    let new = posts_with(
        json!([{"name": "a", "type": "text", "indexed": true}, {"name": "b", "type": "number"}]),
        json!([{"name": "pair", "fields": ["a", "b"], "unique": true}]),
    );
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"a": "x", "b": 1}));
    insert(&conn, &old, "p2", json!({"a": "x", "b": 1}));
    let err = run_alter(&conn, &old, &new, &[]).unwrap_err();
    assert_eq!(err.field, None);
    assert_eq!(
        err.message,
        "index \"pair\" cannot be unique: 1 combination of values appears more than once \
         (e.g. [\"x\",1.0])"
    );
    conn.execute("UPDATE posts SET b = 2 WHERE id = 'p2'", [])
        .unwrap();
    run_alter(&conn, &old, &new, &[]).unwrap();
    assert_eq!(
        index_names(&conn, "posts"),
        ["idx.posts.a", "idx.posts.created", "ix.posts.pair"]
    );
    run_alter(&conn, &new, &old, &[]).unwrap();
    assert_eq!(index_names(&conn, "posts"), ["idx.posts.created"]);
    assert_eq!(records(&conn, &old).len(), 2);
}

#[test]
fn renaming_the_collection_keeps_rows_indexes_and_incoming_links() {
    let old = posts(json!([{"name": "title", "type": "text", "indexed": true}]));
    let new = collection(json!({"name": "articles", "fields": [
        {"name": "title", "type": "text", "indexed": true},
    ]}));
    let comments = collection(json!({"name": "comments", "fields": [
        {"name": "post", "type": "relation", "collection": "posts", "on_delete": "cascade"},
    ]}));
    let (_dir, conn) = db_with(&[&old, &comments]);
    insert(&conn, &old, "p1", json!({"title": "Hi"}));
    insert(&conn, &comments, "c1", json!({"post": "p1"}));
    run_alter(&conn, &old, &new, &[]).unwrap();
    assert_eq!(records(&conn, &new), [json!({"id": "p1", "title": "Hi"})]);
    assert!(index_names(&conn, "posts").is_empty());
    assert_eq!(
        index_names(&conn, "articles"),
        ["idx.articles.created", "idx.articles.title"]
    );
    // SQLite rewrote the child's foreign key to the new name: it still cascades.
    conn.execute("DELETE FROM articles WHERE id = 'p1'", [])
        .unwrap();
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM comments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn renaming_the_collection_onto_a_taken_name_fails() {
    let old = posts(json!([]));
    let other = collection(json!({"name": "articles"}));
    let (_dir, conn) = db_with(&[&old, &other]);
    let err = run_alter(&conn, &old, &other, &[]).unwrap_err();
    assert_eq!(
        err.message,
        "cannot rename the collection to \"articles\": the name is taken"
    );
}

#[test]
fn a_relation_to_missing_records_is_refused() {
    let old = posts(json!([{"name": "owner", "type": "text"}]));
    let new = posts(json!([{"name": "owner", "type": "relation", "collection": "users"}]));
    let (_dir, conn) = db_with(&[&old]);
    insert(&conn, &old, "p1", json!({"owner": "nobody"}));
    let err = run_alter(&conn, &old, &new, &[]).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("owner"));
    assert_eq!(
        err.message,
        "field \"owner\" of \"posts\": 1 record would point to a missing record in \"users\""
    );
    assert_eq!(
        records(&conn, &old),
        [json!({"id": "p1", "owner": "nobody"})]
    );
}

#[test]
fn preconditions_and_bad_renames_are_reported() {
    let old = posts(json!([{"name": "a", "type": "text"}]));
    let new = posts(json!([{"name": "b", "type": "text"}]));
    let (_dir, conn) = open_db();
    let none: [(String, String); 0] = [];
    let err = alter(&conn, &old, &new, &none).unwrap_err();
    assert!(err.message.contains("inside a transaction"));
    conn.execute_batch("BEGIN").unwrap();
    let err = alter(&conn, &old, &new, &none).unwrap_err();
    assert!(err.message.contains("foreign key enforcement must be off"));
    conn.execute_batch("ROLLBACK").unwrap();

    let (_dir, conn) = db_with(&[&old]);
    let err = run_alter(&conn, &old, &new, &[("x", "b")]).unwrap_err();
    assert_eq!(
        err.message,
        "cannot rename field \"x\": there is no such field"
    );
    let err = run_alter(&conn, &old, &new, &[("a", "c")]).unwrap_err();
    assert_eq!(
        err.message,
        "cannot rename field \"a\" to \"c\": it is not in the new definition"
    );
}

#[test]
fn sqlite_errors_are_wrapped_without_sql_text() {
    let old = posts(json!([]));
    let new = posts(json!([{"name": "a", "type": "text"}]));
    let (_dir, conn) = open_db(); // the table does not exist
    conn.execute_batch("PRAGMA foreign_keys = OFF; BEGIN")
        .unwrap();
    let err = alter(&conn, &old, &new, &[]).unwrap_err();
    assert_eq!(err.message, "the schema change could not be applied");
    assert!(std::error::Error::source(&err).is_some());
    assert!(!err.to_string().contains("posts"));
}

#[test]
fn unchanged_definition_is_a_no_op() {
    let c = posts_with(
        json!([{"name": "a", "type": "text", "unique": true},
               {"name": "r", "type": "relation", "collection": "users"}]),
        json!([{"name": "by_a", "fields": ["a", "created"]}]),
    );
    assert!(!rebuilds(&c, &c, &[]));
    let (_dir, conn) = db_with(&[&c]);
    insert(&conn, &c, "p1", json!({"a": "x"}));
    let before = index_names(&conn, "posts");
    run_alter(&conn, &c, &c, &[]).unwrap();
    assert_eq!(index_names(&conn, "posts"), before);
    assert_eq!(
        records(&conn, &c),
        [json!({"id": "p1", "a": "x", "r": null})]
    );
}
