//! The SQL text of a collection's table and indexes. Every identifier comes from a validated
//! `Collection` and is quoted; nothing here executes anything.
//!
//! Tables are `STRICT`, so a value of the wrong storage class is refused by SQLite itself.
//! Required fields are `NOT NULL`; relation fields carry a foreign key (target `users` is the
//! system table `_users`). Column types: text, email, url, datetime, select, json, relation →
//! TEXT; number → INTEGER when `integer`, else REAL; bool → INTEGER (0/1).
//!
//! Index names are global in SQLite, so each embeds the collection name, and `.` (which no
//! collection, field or index name can contain) separates the parts, so no two collections,
//! and no generated and user-defined index, can ever produce the same name:
//!
//! | index                                         | name                     |
//! |-----------------------------------------------|--------------------------|
//! | on `created` (default sort)                   | `idx.<coll>.created`     |
//! | `indexed` field, or relation (FK child index) | `idx.<coll>.<field>`     |
//! | `unique` field (also serves the two above)    | `uniq.<coll>.<field>`    |
//! | an `indexes` spec                             | `ix.<coll>.<index name>` |

use super::types::{Collection, Field, FieldKind, OnDelete, quote_ident};

/// The statements that create `c`'s table and all its indexes, in order.
pub fn create_table(c: &Collection) -> Vec<String> {
    let mut out = vec![create_table_sql(c, &c.name)];
    out.extend(index_defs(c).into_iter().map(|ix| ix.sql));
    out
}

/// `CREATE TABLE` for `c` under the name `table` (a temporary name during a rebuild; foreign
/// keys to the collection itself still name `c.name`, which the table ends up with).
pub(crate) fn create_table_sql(c: &Collection, table: &str) -> String {
    let mut sql = format!(
        "CREATE TABLE {} (id TEXT PRIMARY KEY NOT NULL, created TEXT NOT NULL, \
         updated TEXT NOT NULL",
        quote_ident(table)
    );
    for f in &c.fields {
        sql.push_str(", ");
        sql.push_str(&column_def(f));
    }
    sql.push_str(") STRICT");
    sql
}

/// A field's column definition, e.g. `"author" TEXT NOT NULL REFERENCES "_users"(id) ON DELETE
/// CASCADE`.
pub(crate) fn column_def(f: &Field) -> String {
    format!("{} {}", quote_ident(&f.name), column_constraints(f))
}

/// The column definition without its name; two fields with equal constraints can share a
/// column without rebuilding the table.
pub(crate) fn column_constraints(f: &Field) -> String {
    let mut sql = column_type(&f.kind).to_owned();
    if f.required {
        sql.push_str(" NOT NULL");
    }
    if let FieldKind::Relation {
        collection,
        on_delete,
    } = &f.kind
    {
        sql.push_str(" REFERENCES ");
        sql.push_str(&quote_ident(relation_table(collection)));
        sql.push_str("(id) ON DELETE ");
        sql.push_str(match on_delete {
            OnDelete::Restrict => "RESTRICT",
            OnDelete::Cascade => "CASCADE",
            OnDelete::SetNull => "SET NULL",
        });
    }
    sql
}

/// The SQLite column type (STRICT tables accept only INTEGER, REAL, TEXT, BLOB, ANY).
pub(crate) fn column_type(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Number { integer: false, .. } => "REAL",
        FieldKind::Number { integer: true, .. } | FieldKind::Bool => "INTEGER",
        _ => "TEXT",
    }
}

/// The table a relation to `collection` points at.
pub fn relation_table(collection: &str) -> &str {
    if collection == "users" {
        "_users"
    } else {
        collection
    }
}

/// One index a collection's table should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
    /// The field a per-field index belongs to (for error messages); `None` for the `created`
    /// index and `indexes` specs.
    pub field: Option<String>,
    /// The user-facing name of an `indexes` spec.
    pub spec_name: Option<String>,
    pub sql: String,
}

impl IndexDef {
    fn new(
        c: &Collection,
        name: String,
        unique: bool,
        columns: Vec<String>,
        field: Option<String>,
        spec_name: Option<String>,
    ) -> Self {
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if unique { "UNIQUE " } else { "" },
            quote_ident(&name),
            quote_ident(&c.name),
            cols.join(", ")
        );
        IndexDef {
            name,
            unique,
            columns,
            field,
            spec_name,
            sql,
        }
    }
}

/// Every index `c`'s table should have, named as in the module docs.
pub fn index_defs(c: &Collection) -> Vec<IndexDef> {
    let coll = &c.name;
    // Non-unique indexes end with `id`, the tiebreaker of every sort, so `ORDER BY f, id`
    // (either direction) and keyset cursors walk the index without sorting.
    let mut out = vec![IndexDef::new(
        c,
        format!("idx.{coll}.created"),
        false,
        vec!["created".to_owned(), "id".to_owned()],
        None,
        None,
    )];
    for f in &c.fields {
        let one = || vec![f.name.clone()];
        let with_id = || vec![f.name.clone(), "id".to_owned()];
        if f.unique {
            let name = format!("uniq.{coll}.{}", f.name);
            out.push(IndexDef::new(
                c,
                name,
                true,
                one(),
                Some(f.name.clone()),
                None,
            ));
        } else if f.indexed || matches!(f.kind, FieldKind::Relation { .. }) {
            let name = format!("idx.{coll}.{}", f.name);
            out.push(IndexDef::new(
                c,
                name,
                false,
                with_id(),
                Some(f.name.clone()),
                None,
            ));
        }
    }
    for ix in &c.indexes {
        let mut columns = ix.fields.clone();
        if !ix.unique && !columns.iter().any(|f| f == "id") {
            columns.push("id".to_owned());
        }
        out.push(IndexDef::new(
            c,
            format!("ix.{coll}.{}", ix.name),
            ix.unique,
            columns,
            None,
            Some(ix.name.clone()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testutil::{collection, exec_all, open_db};
    use serde_json::json;

    fn library() -> (Collection, Collection) {
        let authors = collection(json!({"name": "authors", "fields": [
            {"name": "name", "type": "text", "required": true, "unique": true},
        ]}));
        let books = collection(json!({"name": "books", "fields": [
            {"name": "title", "type": "text", "required": true, "indexed": true},
            {"name": "pages", "type": "number", "integer": true},
            {"name": "price", "type": "number"},
            {"name": "ok", "type": "bool"},
            {"name": "author", "type": "relation", "collection": "authors",
             "on_delete": "cascade"},
            {"name": "editor", "type": "relation", "collection": "authors",
             "on_delete": "set_null"},
            {"name": "keeper", "type": "relation", "collection": "authors"},
            {"name": "owner", "type": "relation", "collection": "users", "unique": true},
        ], "indexes": [{"name": "by_title", "fields": ["title", "created"], "unique": true}]}));
        (authors, books)
    }

    #[test]
    fn create_table_text_is_exact() {
        let (_, books) = library();
        let sql = create_table(&books);
        assert_eq!(
            sql[0],
            "CREATE TABLE \"books\" (id TEXT PRIMARY KEY NOT NULL, created TEXT NOT NULL, \
             updated TEXT NOT NULL, \"title\" TEXT NOT NULL, \"pages\" INTEGER, \"price\" REAL, \
             \"ok\" INTEGER, \"author\" TEXT REFERENCES \"authors\"(id) ON DELETE CASCADE, \
             \"editor\" TEXT REFERENCES \"authors\"(id) ON DELETE SET NULL, \
             \"keeper\" TEXT REFERENCES \"authors\"(id) ON DELETE RESTRICT, \
             \"owner\" TEXT REFERENCES \"_users\"(id) ON DELETE RESTRICT) STRICT"
        );
        assert_eq!(
            sql[1],
            "CREATE INDEX \"idx.books.created\" ON \"books\" (\"created\", \"id\")"
        );
        assert_eq!(
            sql.last().unwrap(),
            "CREATE UNIQUE INDEX \"ix.books.by_title\" ON \"books\" (\"title\", \"created\")"
        );
    }

    #[test]
    fn tables_are_strict_and_carry_all_indexes() {
        let (_dir, conn) = open_db();
        let (authors, books) = library();
        exec_all(&conn, &create_table(&authors));
        exec_all(&conn, &create_table(&books));
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'books' \
                      AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap();
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            names,
            [
                "idx.books.author",
                "idx.books.created",
                "idx.books.editor",
                "idx.books.keeper",
                "idx.books.title",
                "ix.books.by_title",
                "uniq.books.owner",
            ]
        );
        // STRICT: a string in an INTEGER column is refused by SQLite itself.
        let err = conn
            .execute(
                "INSERT INTO books (id, created, updated, title, pages) VALUES ('b', 't', 't', 'x', 'many')",
                [],
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot store TEXT value in INTEGER column")
        );
        // NOT NULL on required fields.
        assert!(
            conn.execute(
                "INSERT INTO books (id, created, updated) VALUES ('b', 't', 't')",
                []
            )
            .is_err()
        );
        // Stored SQL equals what we generate (alterations compare it to decide what to rebuild).
        let stored: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'uniq.books.owner'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(index_defs(&books).iter().any(|ix| ix.sql == stored));
    }

    #[test]
    fn foreign_key_actions_work() {
        let (_dir, conn) = open_db();
        let (authors, books) = library();
        exec_all(&conn, &create_table(&authors));
        exec_all(&conn, &create_table(&books));
        conn.execute_batch(
            "INSERT INTO _users (id, email, password_hash, role, created, updated)
                 VALUES ('u1', 'u@example.com', 'x', 'user', 't', 't');
             INSERT INTO authors (id, created, updated, name) VALUES
                 ('a1', 't', 't', 'Ann'), ('a2', 't', 't', 'Bob'), ('a3', 't', 't', 'Cy');
             INSERT INTO books (id, created, updated, title, author, editor, keeper, owner) VALUES
                 ('b1', 't', 't', 'One', 'a1', 'a2', 'a3', 'u1');",
        )
        .unwrap();
        // restrict: the author kept by `keeper` and the user behind `owner` cannot go.
        assert!(
            conn.execute("DELETE FROM authors WHERE id = 'a3'", [])
                .is_err()
        );
        assert!(
            conn.execute("DELETE FROM _users WHERE id = 'u1'", [])
                .is_err()
        );
        // set null: deleting the editor clears the field.
        conn.execute("DELETE FROM authors WHERE id = 'a2'", [])
            .unwrap();
        let editor: Option<String> = conn
            .query_row("SELECT editor FROM books WHERE id = 'b1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(editor, None);
        // cascade: deleting the author deletes the book.
        conn.execute("DELETE FROM authors WHERE id = 'a1'", [])
            .unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM books", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        // A dangling reference is refused on insert.
        assert!(conn
            .execute(
                "INSERT INTO books (id, created, updated, title, author) VALUES ('b2', 't', 't', 'x', 'nope')",
                [],
            )
            .is_err());
    }

    #[test]
    fn index_names_never_collide_across_collections() {
        let a = collection(
            json!({"name": "a_b", "fields": [{"name": "c", "type": "text", "indexed": true}]}),
        );
        let b = collection(
            json!({"name": "a", "fields": [{"name": "b_c", "type": "text", "indexed": true}]}),
        );
        let names = |c: &Collection| {
            index_defs(c)
                .into_iter()
                .map(|i| i.name)
                .collect::<Vec<_>>()
        };
        assert!(names(&a).iter().all(|n| !names(&b).contains(n)));
    }
}
