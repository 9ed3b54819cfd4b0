//! Changing a live collection table from one definition to another without losing data.
//!
//! The caller sets `PRAGMA foreign_keys=OFF` before `BEGIN`, owns the transaction, and rolls it
//! back on error; `alter` checks both preconditions. The steps:
//!
//! 1. plan (`plan.rs`): map new fields to old columns (same name or rename), decide conversions,
//!    fills and whether a rebuild is needed;
//! 2. check, reading only: every converted value converts, every field made required has a value
//!    or a default, a new required field without default meets an empty table;
//! 3. rename the table if the collection was renamed (SQLite rewrites referring foreign keys);
//! 4. drop indexes the new definition does not have (or has with other SQL);
//! 5. in place (`DROP COLUMN`, `RENAME COLUMN`, `ADD COLUMN`) or by rebuild (`rebuild.rs`);
//! 6. create missing indexes, refusing unique ones over duplicate values;
//! 7. `PRAGMA foreign_key_check`.
//!
//! Existing rows keep NULL in a new optional field (its default is for new records). Tightening
//! options other than `required` and `unique` (min/max, pattern, select values) applies to later
//! writes only; values are re-validated when their type changes.

use rusqlite::Connection;

use super::ddl::{self, IndexDef};
use super::plan::{ColumnPlan, Plan};
use super::rebuild::rebuild;
use super::types::{Collection, quote_ident};
use super::{convert, rows};

/// Why a schema change was refused. `message` is for the admin: it names the field and the
/// data that stands in the way, never SQL.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AlterError {
    /// The field the problem is about, when there is one.
    pub field: Option<String>,
    pub message: String,
    /// The SQLite error behind it, for the log.
    #[source]
    pub source: Option<rusqlite::Error>,
}

impl AlterError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        AlterError {
            field: None,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        AlterError {
            field: Some(field.to_owned()),
            ..Self::new(message)
        }
    }
}

impl From<rusqlite::Error> for AlterError {
    fn from(e: rusqlite::Error) -> Self {
        let message = if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            "the schema change could not be applied: the disk is full"
        } else {
            "the schema change could not be applied"
        };
        AlterError {
            source: Some(e),
            ..Self::new(message)
        }
    }
}

/// Change the table of `old` into the table of `new`, keeping its data. `renames` lists
/// `(old field, new field)` pairs (see `define::field_renames`).
pub fn alter(
    conn: &Connection,
    old: &Collection,
    new: &Collection,
    renames: &[(String, String)],
) -> Result<(), AlterError> {
    check_preconditions(conn)?;
    let plan = Plan::new(old, new, renames)?;
    check_data(conn, old, &plan)?;

    if old.name != new.name {
        rename_table(conn, &old.name, &new.name)?;
    }
    let desired = ddl::index_defs(new);
    drop_stale_indexes(conn, &new.name, &desired)?;
    if plan.rebuild {
        rebuild(conn, &plan, new)?;
    } else {
        alter_in_place(conn, &plan, &new.name)?;
    }
    create_missing_indexes(conn, &new.name, &desired)?;
    check_foreign_keys(conn)
}

fn check_preconditions(conn: &Connection) -> Result<(), AlterError> {
    if conn.is_autocommit() {
        return Err(AlterError::new(
            "internal error: schema changes must run inside a transaction",
        ));
    }
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    if fk != 0 {
        // With enforcement on, dropping the old table during a rebuild would delete or block
        // the records that refer to it.
        return Err(AlterError::new(
            "internal error: foreign key enforcement must be off during schema changes",
        ));
    }
    Ok(())
}

fn count(conn: &Connection, sql: &str) -> Result<i64, AlterError> {
    Ok(conn.query_row(sql, [], |r| r.get(0))?)
}

fn records(n: i64) -> String {
    if n == 1 {
        "1 record".to_owned()
    } else {
        format!("{n} records")
    }
}

/// Step 2: everything data could refuse, found before anything is changed.
fn check_data(conn: &Connection, old: &Collection, plan: &Plan<'_>) -> Result<(), AlterError> {
    // The only text spliced into SQL here and in `check_column`: the table and column names of
    // the stored (already validated) schema, quoted. No value from a request reaches these
    // statements; they take no parameters at all.
    let quoted_table = quote_ident(&old.name);
    let mut total = None;
    for col in &plan.columns {
        let name = &col.new.name;
        if col.old.is_none() && col.new.required && col.fill.is_none() {
            let n = match total {
                Some(n) => n,
                None => *total.insert(count(
                    conn,
                    &format!("SELECT COUNT(*) FROM {quoted_table}"),
                )?),
            };
            if n > 0 {
                return Err(AlterError::field(
                    name,
                    format!(
                        "new field \"{name}\" is required but has no default, and the collection \
                         already has {}",
                        records(n)
                    ),
                ));
            }
        }
        if col.inspects_values() {
            check_column(conn, &quoted_table, col)?;
        }
    }
    Ok(())
}

fn check_column(
    conn: &Connection,
    quoted_table: &str,
    col: &ColumnPlan<'_>,
) -> Result<(), AlterError> {
    let Some(old) = col.old else { return Ok(()) };
    let name = &col.new.name;
    let quoted_column = quote_ident(&old.name);
    if col.convert && !convert::supported(&old.kind, &col.new.kind) {
        let n = count(
            conn,
            &format!("SELECT COUNT(*) FROM {quoted_table} WHERE {quoted_column} IS NOT NULL"),
        )?;
        if n > 0 {
            let has = if n == 1 { "has one" } else { "have one" };
            return Err(AlterError::field(
                name,
                format!(
                    "cannot change field \"{name}\" from {} to {} while it holds values ({} {has})",
                    old.kind.type_name(),
                    col.new.kind.type_name(),
                    records(n)
                ),
            ));
        }
        return Ok(());
    }
    let mut stmt = conn.prepare(&format!("SELECT {quoted_column} FROM {quoted_table}"))?;
    let mut rows = stmt.query([])?;
    let (mut failed, mut missing) = (0_i64, 0_i64);
    let mut example = None;
    while let Some(row) = rows.next()? {
        let raw = row.get_ref(0)?;
        match col.transform(raw) {
            Ok(Some(_)) => {}
            Ok(None) => missing += 1,
            Err(reason) => {
                failed += 1;
                if example.is_none() {
                    example = Some((show(raw), reason));
                }
            }
        }
    }
    if let Some((value, reason)) = example {
        let what = if failed == 1 {
            "value cannot"
        } else {
            "values cannot"
        };
        return Err(AlterError::field(
            name,
            format!(
                "cannot change field \"{name}\" from {} to {}: {failed} {what} be converted \
                 (e.g. {value}: {reason})",
                old.kind.type_name(),
                col.new.kind.type_name(),
            ),
        ));
    }
    if col.new.required && missing > 0 && col.fill.is_none() {
        return Err(AlterError::field(
            name,
            format!(
                "field \"{name}\" cannot be made required: {} no value and the field has no \
                 default",
                if missing == 1 {
                    "1 record has".to_owned()
                } else {
                    format!("{missing} records have")
                }
            ),
        ));
    }
    Ok(())
}

/// A stored value for an error message, shortened.
fn show(raw: rusqlite::types::ValueRef<'_>) -> String {
    let text = rows::decode(None, raw).map_or_else(|_| "?".to_owned(), |v| v.to_string());
    if text.chars().count() > 40 {
        let head: String = text.chars().take(40).collect();
        format!("{head}…")
    } else {
        text
    }
}

fn rename_table(conn: &Connection, from: &str, to: &str) -> Result<(), AlterError> {
    let taken: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = ?1",
        [to],
        |r| r.get(0),
    )?;
    if taken > 0 {
        return Err(AlterError::new(format!(
            "cannot rename the collection to \"{to}\": the name is taken"
        )));
    }
    conn.execute(
        &format!(
            "ALTER TABLE {} RENAME TO {}",
            quote_ident(from),
            quote_ident(to)
        ),
        [],
    )?;
    Ok(())
}

/// `(name, sql)` of the explicit indexes on `table` (SQLite's automatic ones have no SQL).
fn existing_indexes(conn: &Connection, table: &str) -> Result<Vec<(String, String)>, AlterError> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
         AND sql IS NOT NULL",
    )?;
    let found = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(found)
}

fn drop_stale_indexes(
    conn: &Connection,
    table: &str,
    desired: &[IndexDef],
) -> Result<(), AlterError> {
    for (name, sql) in existing_indexes(conn, table)? {
        if !desired.iter().any(|d| d.name == name && d.sql == sql) {
            conn.execute(&format!("DROP INDEX {}", quote_ident(&name)), [])?;
        }
    }
    Ok(())
}

fn alter_in_place(conn: &Connection, plan: &Plan<'_>, table: &str) -> Result<(), AlterError> {
    let t = quote_ident(table);
    for f in &plan.dropped {
        conn.execute(
            &format!("ALTER TABLE {t} DROP COLUMN {}", quote_ident(&f.name)),
            [],
        )?;
    }
    for (from, to) in &plan.renamed {
        conn.execute(
            &format!(
                "ALTER TABLE {t} RENAME COLUMN {} TO {}",
                quote_ident(from),
                quote_ident(to)
            ),
            [],
        )?;
    }
    for col in plan.columns.iter().filter(|c| c.old.is_none()) {
        conn.execute(
            &format!("ALTER TABLE {t} ADD COLUMN {}", ddl::column_def(col.new)),
            [],
        )?;
    }
    Ok(())
}

fn create_missing_indexes(
    conn: &Connection,
    table: &str,
    desired: &[IndexDef],
) -> Result<(), AlterError> {
    let existing = existing_indexes(conn, table)?;
    for ix in desired {
        if existing.iter().any(|(name, _)| *name == ix.name) {
            continue;
        }
        if ix.unique {
            check_no_duplicates(conn, table, ix)?;
        }
        conn.execute(&ix.sql, [])?;
    }
    Ok(())
}

fn check_no_duplicates(conn: &Connection, table: &str, ix: &IndexDef) -> Result<(), AlterError> {
    let cols: Vec<String> = ix.columns.iter().map(|c| quote_ident(c)).collect();
    let not_null: Vec<String> = cols.iter().map(|c| format!("{c} IS NOT NULL")).collect();
    // NULLs never collide in a unique index, so rows with one are left out.
    let sql = format!(
        "SELECT json_array({cols}) FROM {t} WHERE {cond} GROUP BY {cols} HAVING COUNT(*) > 1",
        cols = cols.join(", "),
        t = quote_ident(table),
        cond = not_null.join(" AND "),
    );
    let mut stmt = conn.prepare(&sql)?;
    let dups: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let Some(first) = dups.first() else {
        return Ok(());
    };
    let (example, one, many) = match ix.columns.len() {
        1 => (
            first
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(first)
                .to_owned(),
            "value",
            "values",
        ),
        _ => (
            first.clone(),
            "combination of values",
            "combinations of values",
        ),
    };
    let values = match dups.len() {
        1 => format!("1 {one} appears"),
        n => format!("{n} {many} appear"),
    };
    Err(match (&ix.field, &ix.spec_name) {
        (Some(field), _) => AlterError::field(
            field,
            format!(
                "field \"{field}\" cannot be made unique: {values} more than once (e.g. {example})"
            ),
        ),
        (None, Some(spec)) => AlterError::new(format!(
            "index \"{spec}\" cannot be unique: {values} more than once (e.g. {example})"
        )),
        (None, None) => AlterError::new(format!(
            "a unique index cannot be created: {values} more than once (e.g. {example})"
        )),
    })
}

/// Step 7: the change must not leave a relation pointing at a missing record.
fn check_foreign_keys(conn: &Connection) -> Result<(), AlterError> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let problems: Vec<(String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let Some((table, parent, fk_id)) = problems.first() else {
        return Ok(());
    };
    let mut list = conn.prepare(&format!("PRAGMA foreign_key_list({})", quote_ident(table)))?;
    let column: Option<String> = list
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(3)?)))?
        .filter_map(Result::ok)
        .find(|(id, _)| id == fk_id)
        .map(|(_, from)| from);
    let parent = if parent == "_users" {
        "users"
    } else {
        parent.as_str()
    };
    let n = problems.len();
    let what = if n == 1 {
        "1 record would point"
    } else {
        "records would point"
    };
    let what = if n == 1 {
        what.to_owned()
    } else {
        format!("{n} {what}")
    };
    let message = match &column {
        Some(c) => {
            format!("field \"{c}\" of \"{table}\": {what} to a missing record in \"{parent}\"")
        }
        None => format!("{what} to a missing record in \"{parent}\""),
    };
    Err(AlterError {
        field: column,
        ..AlterError::new(message)
    })
}

#[cfg(test)]
#[path = "alter_tests.rs"]
mod tests;
