//! The `_sessions` repository: browser sign-ins. The cookie carries 32 CSPRNG bytes
//! (base64url); only their SHA-256 is stored, so a copy of the database signs nobody in. Each
//! session has its own CSRF token. Expiry is decided here from the `now` and `idle` the caller
//! passes: a session is valid until its absolute `expires` and while its `last_seen` is newer
//! than `now - idle`.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, Row, params};

use super::{AuthError, User, users};

/// Length of a session secret: 43 base64url characters (32 bytes).
pub const SECRET_LEN: usize = super::secret::TOKEN_LEN;
/// `last_seen` is rewritten at most this often, so page views do not each cost a write.
pub const LAST_SEEN_RESOLUTION: TimeDelta = TimeDelta::seconds(60);

/// A session as stored, minus its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    /// The CSRF token forms and cookie-authenticated API calls must echo.
    pub csrf: String,
    /// Signed in with the password, second factor still to come.
    pub mfa_pending: bool,
    pub created: String,
    pub last_seen: String,
    pub expires: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A plaintext session secret: it goes into the cookie once and is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(String);

impl SessionSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// Where and how a session is started, for the audit trail and the account page.
#[derive(Debug, Clone, Default)]
pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub mfa_pending: bool,
    pub expires: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

const COLUMNS: &str =
    "s.id, s.user_id, s.csrf, s.mfa_pending, s.created, s.last_seen, s.expires, s.ip, s.user_agent";

fn from_row(row: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        csrf: row.get(2)?,
        mfa_pending: row.get(3)?,
        created: row.get(4)?,
        last_seen: row.get(5)?,
        expires: row.get(6)?,
        ip: row.get(7)?,
        user_agent: row.get(8)?,
    })
}

pub use super::secret::random_token;
use super::secret::{hash as hash_secret, looks_like_token as looks_like_secret};

/// Start a session; returns the row and the secret for the cookie (its only copy).
pub fn create(
    conn: &Connection,
    new: &NewSession<'_>,
) -> Result<(SessionRow, SessionSecret), AuthError> {
    let secret = SessionSecret(random_token());
    let now = crate::time::now();
    // Bound what a client can make us store.
    let user_agent = new
        .user_agent
        .map(|ua| ua.chars().take(200).collect::<String>());
    let row = SessionRow {
        id: ulid::Ulid::generate().to_string(),
        user_id: new.user_id.to_string(),
        csrf: random_token(),
        mfa_pending: new.mfa_pending,
        created: now.clone(),
        last_seen: now,
        expires: crate::time::format(new.expires),
        ip: new.ip.map(str::to_string),
        user_agent,
    };
    conn.prepare_cached(
        "INSERT INTO _sessions
             (id, user_id, hash, csrf, mfa_pending, created, last_seen, expires, ip, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        row.id,
        row.user_id,
        hash_secret(secret.expose()),
        row.csrf,
        row.mfa_pending,
        row.created,
        row.last_seen,
        row.expires,
        row.ip,
        row.user_agent
    ])?;
    Ok((row, secret))
}

/// The live session with this secret and its (enabled) user: not past `expires`, and seen
/// within `idle` of `now`.
pub fn find_by_secret(
    conn: &Connection,
    secret: &str,
    now: DateTime<Utc>,
    idle: TimeDelta,
) -> Result<Option<(SessionRow, User)>, AuthError> {
    if !looks_like_secret(secret) {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {COLUMNS}, u.id, u.email, u.role, u.disabled, u.created, u.updated
         FROM _sessions s JOIN _users u ON u.id = s.user_id
         WHERE s.hash = ?1 AND u.disabled = 0 AND s.expires > ?2 AND s.last_seen > ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        hash_secret(secret),
        crate::time::format(now),
        crate::time::format(now - idle)
    ])?;
    match rows.next()? {
        Some(row) => Ok(Some((from_row(row)?, users::from_row_at(row, 9)?))),
        None => Ok(None),
    }
}

/// Record activity at `now` if the recorded one is older than a minute; returns whether it
/// wrote.
pub fn touch(conn: &Connection, id: &str, now: DateTime<Utc>) -> Result<bool, AuthError> {
    let n = conn
        .prepare_cached("UPDATE _sessions SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?3")?
        .execute(params![
            id,
            crate::time::format(now),
            crate::time::format(now - LAST_SEEN_RESOLUTION)
        ])?;
    Ok(n > 0)
}

/// A user's sessions, newest first.
pub fn list_for_user(conn: &Connection, user_id: &str) -> Result<Vec<SessionRow>, AuthError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM _sessions s WHERE s.user_id = ?1 ORDER BY s.created DESC, s.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map([user_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// End one session; `false` if there was none.
pub fn delete(conn: &Connection, id: &str) -> Result<bool, AuthError> {
    let n = conn
        .prepare_cached("DELETE FROM _sessions WHERE id = ?1")?
        .execute([id])?;
    Ok(n > 0)
}

/// End all of a user's sessions except `keep`; returns how many ended.
pub fn delete_for_user(
    conn: &Connection,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, AuthError> {
    let n = conn
        .prepare_cached("DELETE FROM _sessions WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2)")?
        .execute(params![user_id, keep])?;
    Ok(n)
}

/// Delete sessions past their absolute or idle expiry; returns how many.
pub fn delete_expired(
    conn: &Connection,
    now: DateTime<Utc>,
    idle: TimeDelta,
) -> Result<usize, AuthError> {
    let n = conn
        .prepare_cached("DELETE FROM _sessions WHERE expires <= ?1 OR last_seen <= ?2")?
        .execute(params![
            crate::time::format(now),
            crate::time::format(now - idle)
        ])?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::auth::test_support::{add_user, open_db};

    fn start(conn: &Connection, user_id: &str, hours: i64) -> (SessionRow, SessionSecret) {
        create(
            conn,
            &NewSession {
                user_id,
                expires: Utc::now() + TimeDelta::hours(hours),
                ip: Some("127.0.0.1"),
                user_agent: Some("test"),
                ..NewSession::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn a_session_is_found_by_its_secret_only_and_its_hash_is_what_is_stored() {
        let (_dir, conn) = open_db();
        let user = add_user(&conn, "ann@example.com", Role::User);
        let (row, secret) = start(&conn, &user.id, 1);
        let idle = TimeDelta::hours(1);
        let (found, who) = find_by_secret(&conn, secret.expose(), Utc::now(), idle)
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.id.as_str(), who.id.as_str()),
            (row.id.as_str(), user.id.as_str())
        );
        assert_ne!(found.csrf, secret.expose());
        let stored: Vec<u8> = conn
            .query_row("SELECT hash FROM _sessions WHERE id = ?1", [&row.id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_ne!(stored, secret.expose().as_bytes());
        for wrong in [
            "",
            "x",
            &"A".repeat(SECRET_LEN),
            &format!("{}'", &secret.expose()[1..]),
        ] {
            assert!(
                find_by_secret(&conn, wrong, Utc::now(), idle)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn sessions_end_at_absolute_and_idle_expiry_and_for_disabled_users() {
        let (_dir, conn) = open_db();
        let user = add_user(&conn, "bob@example.com", Role::User);
        let (row, secret) = start(&conn, &user.id, 2);
        let idle = TimeDelta::minutes(30);
        let find = |now| find_by_secret(&conn, secret.expose(), now, idle).unwrap();
        assert!(find(Utc::now()).is_some());
        // Idle: nothing seen for longer than `idle`.
        assert!(find(Utc::now() + TimeDelta::minutes(31)).is_none());
        // Activity moves the idle window, but not past the absolute end.
        assert!(touch(&conn, &row.id, Utc::now() + TimeDelta::minutes(90)).unwrap());
        assert!(find(Utc::now() + TimeDelta::minutes(110)).is_some());
        assert!(find(Utc::now() + TimeDelta::minutes(121)).is_none());
        conn.execute("UPDATE _users SET disabled = 1 WHERE id = ?1", [&user.id])
            .unwrap();
        assert!(find(Utc::now()).is_none());
    }

    #[test]
    fn touch_writes_at_most_once_a_minute() {
        let (_dir, conn) = open_db();
        let user = add_user(&conn, "cy@example.com", Role::User);
        let (row, _) = start(&conn, &user.id, 1);
        assert!(!touch(&conn, &row.id, Utc::now()).unwrap());
        assert!(touch(&conn, &row.id, Utc::now() + TimeDelta::seconds(61)).unwrap());
    }

    #[test]
    fn ending_a_users_sessions_can_spare_one_and_pruning_removes_expired_ones() {
        let (_dir, conn) = open_db();
        let user = add_user(&conn, "di@example.com", Role::User);
        let other = add_user(&conn, "ed@example.com", Role::User);
        let (keep, _) = start(&conn, &user.id, 1);
        start(&conn, &user.id, 1);
        start(&conn, &other.id, 1);
        assert_eq!(delete_for_user(&conn, &user.id, Some(&keep.id)).unwrap(), 1);
        let left = list_for_user(&conn, &user.id).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, keep.id);
        assert_eq!(list_for_user(&conn, &other.id).unwrap().len(), 1);
        let later = Utc::now() + TimeDelta::hours(2);
        assert_eq!(
            delete_expired(&conn, later, TimeDelta::hours(12)).unwrap(),
            2
        );
    }
}
