//! Identity: users, password hashing and policy, bearer tokens, login throttling and the audit
//! trail. Plain synchronous functions over a `&rusqlite::Connection`, so the caller composes
//! them inside its own transaction (it owns `BEGIN IMMEDIATE`/`COMMIT`). Nothing here knows
//! about HTTP, Rocket or async; hashing is CPU-heavy, so call it off the async threads.
//!
//! Times that decide something (expiry, throttling) are passed in as `now` so tests can move
//! the clock; times that only stamp a row (`created`, `updated`) come from [`crate::time::now`].

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
pub mod password;
pub mod secret;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod users;

#[cfg(test)]
mod test_support;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use password::PasswordParams;
pub use tokens::{TokenKind, TokenRow, TokenSecret};
pub use users::User;

/// What a user may do: admins manage the server, users work with records their rules allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    /// The value stored in `_users.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(format!("unknown role {other:?} (expected admin or user)")),
        }
    }
}

/// Who is making a request: the user and the bearer token that proved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub user: User,
    pub token_id: String,
    pub token_kind: TokenKind,
}

impl Identity {
    /// Whether this identity may use admin-only surfaces.
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin && !self.user.disabled
    }

    /// The user's id, as recorded in the audit trail's `actor`.
    pub fn user_id(&self) -> &str {
        &self.user.id
    }
}

/// Errors of the identity repositories.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No row with that id (or email).
    #[error("not found")]
    NotFound,
    /// Another user already has this email address.
    #[error("email address already in use")]
    EmailTaken,
    /// The email address is not syntactically acceptable.
    #[error("invalid email address: {0}")]
    InvalidEmail(&'static str),
    /// The change would leave the server without an enabled admin.
    #[error("refusing to remove the last enabled admin")]
    LastAdmin,
    /// Argon2 failed (bad parameters or an RNG failure), not a wrong password.
    #[error("password hashing failed")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
}

// Hand-written rather than `#[from]`: constraint errors are recognised where their meaning is
// known (see `users::insert`), everything else is an internal database error.
impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        AuthError::Sqlite(e)
    }
}

/// Read a canonical time column; a malformed value is a conversion error, never a silent default.
pub(crate) fn time_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(idx)?;
    crate::time::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("not an RFC 3339 time: {text:?}").into(),
        )
    })
}

/// Same as [`time_column`] for a nullable column.
pub(crate) fn opt_time_column(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(idx)?;
    match text {
        None => Ok(None),
        Some(_) => time_column(row, idx).map(Some),
    }
}

/// Whether `e` is SQLite's "UNIQUE constraint failed" (extended code 2067).
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}
