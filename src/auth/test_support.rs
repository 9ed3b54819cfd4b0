//! Fixtures for the identity tests: a real SQLite file with the system tables, and users.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::password::{PasswordParams, hash_password};
use super::{Role, User, users};

/// A fresh database file (`test.db` in the returned directory) with the migrations applied.
pub(crate) fn open_db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("test.db")).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    conn.execute_batch(include_str!("../db/migrations/0001_system_tables.sql"))
        .unwrap();
    conn.execute_batch(include_str!("../db/migrations/0002_sessions_and_totp.sql"))
        .unwrap();
    conn.execute_batch(include_str!("../db/migrations/0003_totp_pending.sql"))
        .unwrap();
    (dir, conn)
}

/// Insert a user whose password is `password-of-<email>`, hashed with cheap parameters.
pub(crate) fn add_user(conn: &Connection, email: &str, role: Role) -> User {
    let hash = hash_password(
        &format!("password-of-{email}"),
        &PasswordParams::insecure_fast(),
    )
    .unwrap();
    users::insert(conn, email, &hash, role).unwrap()
}

/// A fixed instant from RFC 3339 text.
pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    crate::time::parse(rfc3339).unwrap()
}
