//! Test helpers for the schema module: collections from JSON, a real SQLite file with the
//! system tables, and running an alteration the way the writer does.

use rusqlite::Connection;
use serde_json::{Map, Value};
use tempfile::TempDir;

use super::{AlterError, Collection, CollectionSpec, alter, create_table, validate_create};

const SYSTEM_TABLES: &str = include_str!("../db/migrations/0001_system_tables.sql");

pub(crate) fn spec(v: Value) -> CollectionSpec {
    serde_json::from_value(v).unwrap()
}

/// A valid collection; every collection name is a known relation target.
pub(crate) fn collection(v: Value) -> Collection {
    super::parse_collection(spec(v), &|_| true).unwrap()
}

/// A fresh database file with the system tables and foreign keys on.
pub(crate) fn open_db() -> (TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("test.db")).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    conn.execute_batch(SYSTEM_TABLES).unwrap();
    (dir, conn)
}

pub(crate) fn exec_all(conn: &Connection, statements: &[String]) {
    for sql in statements {
        conn.execute(sql, []).unwrap();
    }
}

/// A database holding the tables of `collections`.
pub(crate) fn db_with(collections: &[&Collection]) -> (TempDir, Connection) {
    let (dir, conn) = open_db();
    for c in collections {
        exec_all(&conn, &create_table(c));
    }
    (dir, conn)
}

/// Insert a record through `validate_create`, as the records service will.
pub(crate) fn insert(conn: &Connection, c: &Collection, id: &str, v: Value) {
    let input: Map<String, Value> = v.as_object().cloned().unwrap();
    let values = validate_create(c, &input).unwrap();
    let mut cols = vec!["id".to_owned(), "created".to_owned(), "updated".to_owned()];
    let now = crate::time::now();
    let mut params: Vec<rusqlite::types::Value> =
        vec![id.to_owned().into(), now.clone().into(), now.into()];
    for (col, v) in values {
        cols.push(super::quote_ident(&col));
        params.push(v);
    }
    let marks = vec!["?"; cols.len()].join(", ");
    conn.execute(
        &format!(
            "INSERT INTO {} ({}) VALUES ({marks})",
            super::quote_ident(&c.name),
            cols.join(", ")
        ),
        rusqlite::params_from_iter(params),
    )
    .unwrap();
}

/// All records of `c` as JSON objects ordered by id (read through `RowReader`).
pub(crate) fn records(conn: &Connection, c: &Collection) -> Vec<Value> {
    let mut cols = vec!["id".to_owned()];
    cols.extend(c.fields.iter().map(|f| f.name.clone()));
    let list: Vec<String> = cols.iter().map(|n| super::quote_ident(n)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY id",
        list.join(", "),
        super::quote_ident(&c.name)
    );
    let reader = super::RowReader::new(c, &cols);
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| reader.read(r).map(Value::Object))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Run `alter` like the writer does: foreign keys off before BEGIN, commit on success and roll
/// back on failure, foreign keys back on afterwards.
pub(crate) fn run_alter(
    conn: &Connection,
    old: &Collection,
    new: &Collection,
    renames: &[(&str, &str)],
) -> Result<(), AlterError> {
    let renames: Vec<(String, String)> = renames
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    conn.execute_batch("PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE;")
        .unwrap();
    let result = alter(conn, old, new, &renames);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(&format!("{end}; PRAGMA foreign_keys = ON;"))
        .unwrap();
    result
}

/// Names of the indexes on `table`, sorted.
pub(crate) fn index_names(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
             AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    stmt.query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
