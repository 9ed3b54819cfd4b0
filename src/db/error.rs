//! The storage layer's error type, with a hand-written mapping of SQLite's extended result
//! codes to the cases callers must tell apart (unique conflict, foreign key, disk full, busy).

use rusqlite::ErrorCode;
use rusqlite::ffi;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A UNIQUE or PRIMARY KEY constraint failed; `column` is the column SQLite named, if any.
    #[error("unique constraint failed")]
    Unique { column: Option<String> },
    /// A FOREIGN KEY constraint failed (a referenced record is missing, or a restrict blocked a
    /// delete).
    #[error("foreign key constraint failed")]
    ForeignKey,
    #[error("the disk is full")]
    DiskFull,
    #[error("the database is busy")]
    Busy,
    /// The reader or writer thread could not run the job (it stopped, or the job panicked).
    #[error("the database is unavailable")]
    Unavailable,
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// The transaction this write was part of could not commit.
    #[error("commit failed: {0}")]
    Commit(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => DbError::NotFound,
            rusqlite::Error::SqliteFailure(err, msg) => match err.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    DbError::Unique {
                        column: msg.as_deref().and_then(unique_column),
                    }
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => DbError::ForeignKey,
                // ON DELETE RESTRICT is run as a trigger action that raises this message.
                ffi::SQLITE_CONSTRAINT_TRIGGER
                    if msg.as_deref() == Some("FOREIGN KEY constraint failed") =>
                {
                    DbError::ForeignKey
                }
                _ => match err.code {
                    ErrorCode::DiskFull => DbError::DiskFull,
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => DbError::Busy,
                    _ => DbError::Sqlite(e),
                },
            },
            _ => DbError::Sqlite(e),
        }
    }
}

/// The first column named in "UNIQUE constraint failed: table.column[, table.column]".
fn unique_column(msg: &str) -> Option<String> {
    let list = msg.strip_prefix("UNIQUE constraint failed: ")?;
    let first = list.split(',').next()?.trim();
    first.split_once('.').map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_errors_name_their_column() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT UNIQUE); INSERT INTO t VALUES ('x');")
            .unwrap();
        let err: DbError = conn
            .execute("INSERT INTO t VALUES ('x')", [])
            .unwrap_err()
            .into();
        match err {
            DbError::Unique { column } => assert_eq!(column.as_deref(), Some("a")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn restrict_and_missing_parent_are_foreign_key_errors() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys=ON; CREATE TABLE p (id TEXT PRIMARY KEY);
             CREATE TABLE k (p TEXT REFERENCES p(id) ON DELETE RESTRICT);
             INSERT INTO p VALUES ('a'); INSERT INTO k VALUES ('a');",
        )
        .unwrap();
        let restrict: DbError = conn.execute("DELETE FROM p", []).unwrap_err().into();
        assert!(matches!(restrict, DbError::ForeignKey), "{restrict:?}");
        let missing: DbError = conn
            .execute("INSERT INTO k VALUES ('zz')", [])
            .unwrap_err()
            .into();
        assert!(matches!(missing, DbError::ForeignKey), "{missing:?}");
    }

    #[test]
    fn missing_rows_are_not_found() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let err: DbError = conn
            .query_row("SELECT 1 WHERE 0", [], |r| r.get::<_, i64>(0))
            .unwrap_err()
            .into();
        assert!(matches!(err, DbError::NotFound));
    }
}
