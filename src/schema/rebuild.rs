//! SQLite's documented 12-step table rebuild (<https://sqlite.org/lang_altertable.html#otheralter>)
//! for changes `ALTER TABLE` cannot make in place: create the new table under a temporary name,
//! copy every row (converting and filling values per the plan), drop the old table, rename the
//! new one. The caller has switched foreign keys off before its transaction (so dropping the old
//! table neither cascades into nor is refused by referring tables) and owns that transaction;
//! `alter` recreates the indexes and runs `PRAGMA foreign_key_check` afterwards.
//!
//! Order matters: the new table is renamed *to* the old name, never the old table away from it,
//! because renaming a table rewrites the foreign keys of the tables that refer to it (with
//! SQLite's default `legacy_alter_table=OFF`).
//!
//! Only what the definition describes is recreated: the table and its indexes. Anything else
//! attached to a collection table (a trigger, say for full-text search) is dropped with the old
//! table and must be recreated by its owner after `alter`.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use super::alter::AlterError;
use super::ddl;
use super::plan::Plan;
use super::types::{Collection, quote_ident};

/// Rebuild the table of `new` (currently named `new.name`, with the old columns) per `plan`.
pub(crate) fn rebuild(
    conn: &Connection,
    plan: &Plan<'_>,
    new: &Collection,
) -> Result<(), AlterError> {
    // `_` starts system names, which collections cannot use, so this cannot collide.
    let tmp = format!("_rebuild_{}", new.name);
    conn.execute(&ddl::create_table_sql(new, &tmp), [])?;
    copy_rows(conn, plan, &new.name, &tmp)?;
    conn.execute(&format!("DROP TABLE {}", quote_ident(&new.name)), [])?;
    conn.execute(
        &format!(
            "ALTER TABLE {} RENAME TO {}",
            quote_ident(&tmp),
            quote_ident(&new.name)
        ),
        [],
    )?;
    Ok(())
}

fn copy_rows(conn: &Connection, plan: &Plan<'_>, from: &str, to: &str) -> Result<(), AlterError> {
    let mut select_cols = vec!["id", "created", "updated"];
    let mut insert_cols = vec!["id".to_owned(), "created".to_owned(), "updated".to_owned()];
    // Position of each plan column's source in the SELECT list.
    let mut sources = Vec::with_capacity(plan.columns.len());
    for col in &plan.columns {
        insert_cols.push(quote_ident(&col.new.name));
        sources.push(col.old.map(|o| {
            select_cols.push(o.name.as_str());
            select_cols.len() - 1
        }));
    }
    let select: Vec<String> = select_cols.iter().map(|c| quote_ident(c)).collect();
    let mut read = conn.prepare(&format!(
        "SELECT {} FROM {}",
        select.join(", "),
        quote_ident(from)
    ))?;
    let marks = vec!["?"; insert_cols.len()].join(", ");
    let mut write = conn.prepare(&format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        quote_ident(to),
        insert_cols.join(", ")
    ))?;

    let mut row_values: Vec<SqlValue> = Vec::with_capacity(insert_cols.len());
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        row_values.clear();
        for i in 0..3 {
            row_values.push(row.get(i)?);
        }
        for (col, source) in plan.columns.iter().zip(&sources) {
            let value = match source {
                Some(i) => col.transform(row.get_ref(*i)?),
                None => Ok(None),
            }
            .map_err(|m| {
                AlterError::field(&col.new.name, format!("field \"{}\": {m}", col.new.name))
            })?;
            let value = match value {
                Some(v) => v,
                // The checks before the rebuild found no missing value without a default.
                None => col.empty_value().ok_or_else(|| {
                    AlterError::field(
                        &col.new.name,
                        format!("field \"{}\" is required but has no default", col.new.name),
                    )
                })?,
            };
            row_values.push(value);
        }
        write.execute(rusqlite::params_from_iter(row_values.iter()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::schema::testutil::{collection, db_with, index_names, insert, records, run_alter};
    use serde_json::json;

    #[test]
    fn rebuilding_a_referenced_table_keeps_the_children() {
        let parent = collection(json!({"name": "authors", "fields": [
            {"name": "name", "type": "text"},
            {"name": "age", "type": "text"},
        ]}));
        let child = collection(json!({"name": "books", "fields": [
            {"name": "title", "type": "text"},
            {"name": "author", "type": "relation", "collection": "authors",
             "on_delete": "cascade"},
        ]}));
        let (_dir, conn) = db_with(&[&parent, &child]);
        insert(&conn, &parent, "a1", json!({"name": "Ann", "age": "40"}));
        insert(&conn, &child, "b1", json!({"title": "One", "author": "a1"}));
        insert(&conn, &child, "b2", json!({"title": "Two", "author": "a1"}));
        let new_parent = collection(json!({"name": "authors", "fields": [
            {"name": "name", "type": "text", "required": true, "default": "?"},
            {"name": "age", "type": "number", "integer": true},
        ]}));
        run_alter(&conn, &parent, &new_parent, &[]).unwrap();
        assert_eq!(
            records(&conn, &new_parent),
            [json!({"id": "a1", "name": "Ann", "age": 40})]
        );
        assert_eq!(records(&conn, &child).len(), 2);
        // The child's foreign key still points at the rebuilt table and still cascades.
        conn.execute("DELETE FROM authors WHERE id = 'a1'", [])
            .unwrap();
        assert!(records(&conn, &child).is_empty());
        assert_eq!(index_names(&conn, "authors"), ["idx.authors.created"]);
    }

    #[test]
    fn rebuilding_a_self_referencing_table_keeps_its_links() {
        let old = collection(json!({"name": "nodes", "fields": [
            {"name": "label", "type": "text"},
            {"name": "parent", "type": "relation", "collection": "nodes"},
        ]}));
        let new = collection(json!({"name": "nodes", "fields": [
            {"name": "label", "type": "text", "required": true, "default": "x"},
            {"name": "parent", "type": "relation", "collection": "nodes", "on_delete": "cascade"},
        ]}));
        let (_dir, conn) = db_with(&[&old]);
        insert(&conn, &old, "n1", json!({}));
        insert(&conn, &old, "n2", json!({"label": "kid", "parent": "n1"}));
        run_alter(&conn, &old, &new, &[]).unwrap();
        assert_eq!(
            records(&conn, &new),
            [
                json!({"id": "n1", "label": "x", "parent": null}),
                json!({"id": "n2", "label": "kid", "parent": "n1"})
            ]
        );
        conn.execute("DELETE FROM nodes WHERE id = 'n1'", [])
            .unwrap();
        assert!(records(&conn, &new).is_empty());
    }

    #[test]
    fn swapped_names_are_rebuilt_correctly() {
        let old = collection(json!({"name": "t", "fields": [
            {"name": "a", "type": "text"}, {"name": "b", "type": "text"},
        ]}));
        let new = collection(json!({"name": "t", "fields": [
            {"name": "b", "type": "text"}, {"name": "a", "type": "text"},
        ]}));
        let (_dir, conn) = db_with(&[&old]);
        insert(&conn, &old, "r", json!({"a": "one", "b": "two"}));
        run_alter(&conn, &old, &new, &[("a", "b"), ("b", "a")]).unwrap();
        assert_eq!(
            records(&conn, &new),
            [json!({"id": "r", "b": "one", "a": "two"})]
        );
    }

    #[test]
    fn one_rebuild_renames_converts_drops_and_adds_together() {
        let old = collection(json!({"name": "t", "fields": [
            {"name": "a", "type": "text"},
            {"name": "gone", "type": "relation", "collection": "users"},
            {"name": "c", "type": "number"},
        ]}));
        let new = collection(json!({"name": "t", "fields": [
            {"name": "c", "type": "number", "integer": true},
            {"name": "score", "type": "number", "integer": true, "indexed": true},
            {"name": "d", "type": "bool", "required": true, "default": false},
        ]}));
        let (_dir, conn) = db_with(&[&old]);
        insert(&conn, &old, "r1", json!({"a": "7", "c": 2}));
        insert(&conn, &old, "r2", json!({"a": null, "c": null}));
        run_alter(&conn, &old, &new, &[("a", "score")]).unwrap();
        assert_eq!(
            records(&conn, &new),
            [
                json!({"id": "r1", "c": 2, "score": 7, "d": false}),
                json!({"id": "r2", "c": null, "score": null, "d": false})
            ]
        );
        assert_eq!(index_names(&conn, "t"), ["idx.t.created", "idx.t.score"]);
    }
}
