//! The `_tokens` repository: bearer secrets for API tokens (`api`, made by users for scripts)
//! and sign-ins (`login`). A secret is `obx_` + 43 base64url characters (32 CSPRNG bytes);
//! only its SHA-256 is stored, and the plaintext exists once, in the value `create` returns.
//! Rows never carry the hash out of this module.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::{AuthError, User, secret, users};

/// Every secret starts with this, so leaked tokens are recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "obx_";
/// Length of a whole secret: the prefix and 43 base64url characters.
pub const SECRET_LEN: usize = SECRET_PREFIX.len() + secret::TOKEN_LEN;
/// `last_used` is rewritten at most this often, so reads do not each cost a write.
pub const LAST_USED_RESOLUTION: TimeDelta = TimeDelta::seconds(60);
/// The longest `--expires` duration `parse_duration` accepts.
pub const MAX_DURATION: TimeDelta = TimeDelta::days(3650);

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Made by a user for scripts; listed, named, revocable.
    Api,
    /// Issued at sign-in; ended by logout, password or role change, or disabling.
    Login,
}

impl TokenKind {
    /// The value stored in `_tokens.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Login => "login",
        }
    }
}

impl FromStr for TokenKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api" => Ok(TokenKind::Api),
            "login" => Ok(TokenKind::Login),
            other => Err(format!("unknown token kind {other:?}")),
        }
    }
}

/// A token as stored, minus its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub kind: TokenKind,
    pub name: String,
    pub created: String,
    pub expires: Option<String>,
    pub last_used: Option<String>,
}

/// A plaintext secret. Shown to its owner once; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// The secret itself, to hand to the user exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

const COLUMNS: &str = "t.id, t.user_id, t.kind, t.name, t.created, t.expires, t.last_used";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    let kind: String = row.get(2)?;
    let kind = kind.parse::<TokenKind>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(TokenRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        kind,
        name: row.get(3)?,
        created: row.get(4)?,
        expires: row.get(5)?,
        last_used: row.get(6)?,
    })
}

fn generate_secret() -> TokenSecret {
    TokenSecret(format!("{SECRET_PREFIX}{}", secret::random_token()))
}

fn looks_like_secret(s: &str) -> bool {
    s.strip_prefix(SECRET_PREFIX)
        .is_some_and(secret::looks_like_token)
}

fn hash_secret(s: &str) -> Vec<u8> {
    secret::hash(s)
}

/// Create a token for `user_id`; returns the row and the plaintext secret (its only copy).
pub fn create(
    conn: &Connection,
    user_id: &str,
    kind: TokenKind,
    name: &str,
    expires: Option<DateTime<Utc>>,
) -> Result<(TokenRow, TokenSecret), AuthError> {
    let secret = generate_secret();
    let row = TokenRow {
        id: ulid::Ulid::generate().to_string(),
        user_id: user_id.to_string(),
        kind,
        name: name.trim().to_string(),
        created: crate::time::now(),
        expires: expires.map(crate::time::format),
        last_used: None,
    };
    conn.prepare_cached(
        "INSERT INTO _tokens (id, user_id, kind, name, hash, created, expires, last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
    )?
    .execute(params![
        row.id,
        row.user_id,
        row.kind.as_str(),
        row.name,
        hash_secret(secret.expose()),
        row.created,
        row.expires
    ])?;
    Ok((row, secret))
}

/// The token with this secret and its user, if the token exists, has not expired at `now`
/// and the user is not disabled.
pub fn find_by_secret(
    conn: &Connection,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<(TokenRow, User)>, AuthError> {
    if !looks_like_secret(secret) {
        return Ok(None);
    }
    // Lookup by hash: timing reveals nothing about the secret, only about its SHA-256.
    let sql = format!(
        "SELECT {COLUMNS}, u.id, u.email, u.role, u.disabled, u.created, u.updated
         FROM _tokens t JOIN _users u ON u.id = t.user_id
         WHERE t.hash = ?1 AND u.disabled = 0 AND (t.expires IS NULL OR t.expires > ?2)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![hash_secret(secret), crate::time::format(now)])?;
    match rows.next()? {
        Some(row) => Ok(Some((from_row(row)?, users::from_row_at(row, 7)?))),
        None => Ok(None),
    }
}

/// A user's API tokens, oldest first (never their hashes).
pub fn list_api_tokens(conn: &Connection, user_id: &str) -> Result<Vec<TokenRow>, AuthError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM _tokens t WHERE t.user_id = ?1 AND t.kind = 'api'
         ORDER BY t.created, t.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map([user_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Delete one of `user_id`'s own tokens; `false` if they have no such token (including when
/// it belongs to someone else, which the caller reports as not found).
pub fn delete(conn: &Connection, id: &str, user_id: &str) -> Result<bool, AuthError> {
    let n = conn
        .prepare_cached("DELETE FROM _tokens WHERE id = ?1 AND user_id = ?2")?
        .execute([id, user_id])?;
    Ok(n > 0)
}

/// Delete any user's token. Admin surfaces only.
pub fn delete_any(conn: &Connection, id: &str) -> Result<bool, AuthError> {
    let n = conn
        .prepare_cached("DELETE FROM _tokens WHERE id = ?1")?
        .execute([id])?;
    Ok(n > 0)
}

/// End a user's sign-ins: delete their `login` tokens (and `api` tokens if `include_api`),
/// except `keep`. Returns how many were deleted.
pub fn delete_for_user(
    conn: &Connection,
    user_id: &str,
    include_api: bool,
    keep: Option<&str>,
) -> Result<usize, AuthError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM _tokens
             WHERE user_id = ?1 AND (kind = 'login' OR ?2) AND (?3 IS NULL OR id <> ?3)",
        )?
        .execute(params![user_id, include_api, keep])?;
    Ok(n)
}

/// Record a use at `now`, but only if the recorded one is more than a minute older, so that
/// busy tokens do not turn every read into a write. Returns whether it wrote.
pub fn touch_last_used(conn: &Connection, id: &str, now: DateTime<Utc>) -> Result<bool, AuthError> {
    let cutoff = crate::time::format(now - LAST_USED_RESOLUTION);
    let n = conn
        .prepare_cached(
            "UPDATE _tokens SET last_used = ?2
             WHERE id = ?1 AND (last_used IS NULL OR last_used < ?3)",
        )?
        .execute(params![id, crate::time::format(now), cutoff])?;
    Ok(n > 0)
}

/// Delete every token that expired at or before `now`; returns how many.
pub fn delete_expired(conn: &Connection, now: DateTime<Utc>) -> Result<usize, AuthError> {
    let n = conn
        .prepare_cached("DELETE FROM _tokens WHERE expires IS NOT NULL AND expires <= ?1")?
        .execute([crate::time::format(now)])?;
    Ok(n)
}

/// Parse a lifetime such as `90m`, `12h`, `30d` or `1w` (a positive whole number and one
/// unit), up to ten years.
pub fn parse_duration(input: &str) -> Result<TimeDelta, String> {
    let text = input.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: expected a number and a unit, e.g. 90m, 12h, 30d, 1w"
        ));
    }
    let n: i64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
    if n == 0 {
        return Err(format!("invalid duration {text:?}: must be positive"));
    }
    let delta = match unit {
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        "w" => TimeDelta::try_weeks(n),
        _ => {
            return Err(format!(
                "invalid duration {text:?}: unit must be m, h, d or w"
            ));
        }
    };
    match delta {
        Some(delta) if delta <= MAX_DURATION => Ok(delta),
        _ => Err(format!("invalid duration {text:?}: at most 3650d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::auth::test_support::{add_user, at, open_db};
    use crate::auth::users::{self, UserUpdate};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::{Digest as _, Sha256};

    #[test]
    fn secrets_are_prefixed_base64url_of_32_bytes_and_unique() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), SECRET_LEN);
        assert!(looks_like_secret(a.expose()));
        let raw = URL_SAFE_NO_PAD.decode(&a.expose()[4..]).unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(format!("{a:?}"), "TokenSecret(<redacted>)");
    }

    #[test]
    fn only_the_sha256_of_the_secret_is_stored() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let (row, secret) = create(&conn, &ann.id, TokenKind::Api, "ci", None).unwrap();
        let stored: Vec<u8> = conn
            .query_row("SELECT hash FROM _tokens WHERE id = ?1", [&row.id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(stored.len(), 32);
        assert_eq!(stored, Sha256::digest(secret.expose().as_bytes()).to_vec());
        let dump: String = conn
            .query_row(
                "SELECT group_concat(quote(id) || quote(name) || quote(hash)) FROM _tokens",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!dump.contains(&secret.expose()[4..]));
    }

    #[test]
    fn find_by_secret_returns_token_and_user() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let (row, secret) = create(&conn, &ann.id, TokenKind::Login, " laptop ", None).unwrap();
        assert_eq!(row.name, "laptop");
        let (found, user) = find_by_secret(&conn, secret.expose(), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(found, row);
        assert_eq!(user, ann);
    }

    #[test]
    fn find_by_secret_ignores_unknown_and_malformed_secrets() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let (_, secret) = create(&conn, &ann.id, TokenKind::Api, "ci", None).unwrap();
        let now = Utc::now();
        let other = generate_secret();
        assert_eq!(find_by_secret(&conn, other.expose(), now).unwrap(), None);
        let mut flipped = secret.expose().to_string();
        flipped.replace_range(10..11, if &flipped[10..11] == "A" { "B" } else { "A" });
        assert_eq!(find_by_secret(&conn, &flipped, now).unwrap(), None);
        for junk in [
            "",
            "obx_",
            "Bearer x",
            &secret.expose()[4..],
            &format!("{} ", secret.expose()),
        ] {
            assert_eq!(find_by_secret(&conn, junk, now).unwrap(), None, "{junk:?}");
        }
    }

    #[test]
    fn expired_tokens_are_not_found_and_are_pruned() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let expires = at("2030-01-01T00:00:00Z");
        let (row, secret) = create(&conn, &ann.id, TokenKind::Api, "ci", Some(expires)).unwrap();
        assert_eq!(row.expires.as_deref(), Some("2030-01-01T00:00:00.000Z"));
        let before = at("2029-12-31T23:59:59.999Z");
        assert!(
            find_by_secret(&conn, secret.expose(), before)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            find_by_secret(&conn, secret.expose(), expires).unwrap(),
            None
        );

        let (_, forever) = create(&conn, &ann.id, TokenKind::Api, "forever", None).unwrap();
        assert_eq!(delete_expired(&conn, before).unwrap(), 0);
        assert_eq!(delete_expired(&conn, expires).unwrap(), 1);
        let far = at("2100-01-01T00:00:00Z");
        assert!(
            find_by_secret(&conn, forever.expose(), far)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn tokens_of_a_disabled_user_are_not_found() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let (_, secret) = create(&conn, &ann.id, TokenKind::Api, "ci", None).unwrap();
        let disable = UserUpdate {
            disabled: Some(true),
            ..UserUpdate::default()
        };
        users::update(&conn, &ann.id, &disable).unwrap();
        // The API token survives disabling (no end_api_tokens) but does not authenticate.
        assert_eq!(list_api_tokens(&conn, &ann.id).unwrap().len(), 1);
        assert_eq!(
            find_by_secret(&conn, secret.expose(), Utc::now()).unwrap(),
            None
        );
    }

    #[test]
    fn revoked_tokens_are_not_found_and_users_revoke_only_their_own() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let bob = add_user(&conn, "bob@example.com", Role::User);
        let (row, secret) = create(&conn, &ann.id, TokenKind::Api, "ci", None).unwrap();
        assert!(!delete(&conn, &row.id, &bob.id).unwrap());
        assert!(
            find_by_secret(&conn, secret.expose(), Utc::now())
                .unwrap()
                .is_some()
        );
        assert!(delete(&conn, &row.id, &ann.id).unwrap());
        assert!(!delete(&conn, &row.id, &ann.id).unwrap());
        assert_eq!(
            find_by_secret(&conn, secret.expose(), Utc::now()).unwrap(),
            None
        );

        let (row, secret) = create(&conn, &bob.id, TokenKind::Api, "ci", None).unwrap();
        assert!(delete_any(&conn, &row.id).unwrap());
        assert_eq!(
            find_by_secret(&conn, secret.expose(), Utc::now()).unwrap(),
            None
        );
    }

    #[test]
    fn list_api_tokens_shows_only_the_users_api_tokens() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let bob = add_user(&conn, "bob@example.com", Role::User);
        let (ci, _) = create(&conn, &ann.id, TokenKind::Api, "ci", None).unwrap();
        create(&conn, &ann.id, TokenKind::Login, "laptop", None).unwrap();
        create(&conn, &bob.id, TokenKind::Api, "bob's", None).unwrap();
        assert_eq!(list_api_tokens(&conn, &ann.id).unwrap(), vec![ci.clone()]);
        let json = serde_json::to_value(&ci).unwrap();
        assert_eq!(json["kind"], "api");
        assert!(json.get("hash").is_none());
    }

    #[test]
    fn touch_last_used_writes_at_most_once_a_minute() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let (row, _) = create(&conn, &ann.id, TokenKind::Api, "ci", None).unwrap();
        let t0 = at("2030-01-01T00:00:00Z");
        assert!(touch_last_used(&conn, &row.id, t0).unwrap());
        assert!(!touch_last_used(&conn, &row.id, t0 + TimeDelta::seconds(30)).unwrap());
        assert!(!touch_last_used(&conn, &row.id, t0 + TimeDelta::seconds(60)).unwrap());
        assert!(touch_last_used(&conn, &row.id, t0 + TimeDelta::seconds(61)).unwrap());
        // A clock that steps back never rewinds last_used.
        assert!(!touch_last_used(&conn, &row.id, t0).unwrap());
        let listed = list_api_tokens(&conn, &ann.id).unwrap();
        assert_eq!(
            listed[0].last_used.as_deref(),
            Some("2030-01-01T00:01:01.000Z")
        );
        assert!(!touch_last_used(&conn, "missing", t0).unwrap());
    }

    #[test]
    fn parse_duration_accepts_units_and_rejects_junk() {
        assert_eq!(parse_duration("90m"), Ok(TimeDelta::minutes(90)));
        assert_eq!(parse_duration("12h"), Ok(TimeDelta::hours(12)));
        assert_eq!(parse_duration(" 30d "), Ok(TimeDelta::days(30)));
        assert_eq!(parse_duration("1w"), Ok(TimeDelta::weeks(1)));
        assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
        for bad in [
            "",
            "d",
            "30",
            "0d",
            "-1d",
            "1.5d",
            "30 d",
            "30D",
            "30s",
            "1y",
            "3651d",
            "99999999999999999999d",
            "9223372036854775807w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
