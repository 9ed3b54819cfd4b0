//! The `_users` repository: accounts, their role and disabled flag, and the stored password
//! hash. Emails are normalised here (trimmed, lowercased) so every caller agrees on them.
//! Guards the invariant that an enabled admin always remains, and ends a user's sign-ins
//! (login tokens and browser sessions) when their password or role changes or they are
//! disabled. Does not hash or check passwords.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{AuthError, Role, sessions, tokens};

/// Longest accepted email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A user account, without its password hash (so it can be serialised anywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub created: String,
    pub updated: String,
}

/// Changes to a user; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new argon2id PHC string (hash it with `password::hash_password` first).
    pub password_hash: Option<String>,
    /// When sign-ins are ended, end the user's API tokens too.
    pub end_api_tokens: bool,
    /// A token spared when sign-ins are ended: the session of a user changing their own
    /// password stays signed in, all their others end.
    pub keep_token_id: Option<String>,
    /// The browser session spared likewise.
    pub keep_session_id: Option<String>,
}

const COLUMNS: &str = "id, email, role, disabled, created, updated";

/// Build a `User` from six columns starting at `offset` in the order of `COLUMNS`.
pub(crate) fn from_row_at(row: &Row<'_>, offset: usize) -> rusqlite::Result<User> {
    let role: String = row.get(offset + 2)?;
    let role = role.parse::<Role>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(offset + 2, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(User {
        id: row.get(offset)?,
        email: row.get(offset + 1)?,
        role,
        disabled: row.get(offset + 3)?,
        created: row.get(offset + 4)?,
        updated: row.get(offset + 5)?,
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    from_row_at(row, 0)
}

/// Trim and lowercase an email address and check its basic shape: one `@`, a non-empty local
/// part, a dotted domain, no spaces or control characters, at most 254 bytes.
pub fn normalize_email(input: &str) -> Result<String, AuthError> {
    let email = input.trim().to_lowercase();
    if email.is_empty() {
        return Err(AuthError::InvalidEmail("empty"));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(AuthError::InvalidEmail("too long"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidEmail(
            "contains spaces or control characters",
        ));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(AuthError::InvalidEmail("missing @"));
    };
    if local.is_empty() || domain.contains('@') {
        return Err(AuthError::InvalidEmail(
            "expected exactly one @ after a name",
        ));
    }
    let labels_ok = domain.split('.').all(|label| !label.is_empty());
    if !domain.contains('.') || !labels_ok {
        return Err(AuthError::InvalidEmail(
            "the domain must look like example.com",
        ));
    }
    Ok(email)
}

/// Create a user. A duplicate email (after normalisation) is [`AuthError::EmailTaken`].
pub fn insert(
    conn: &Connection,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, AuthError> {
    let email = normalize_email(email)?;
    let now = crate::time::now();
    let user = User {
        id: ulid::Ulid::generate().to_string(),
        email,
        role,
        disabled: false,
        created: now.clone(),
        updated: now,
    };
    conn.prepare_cached(
        "INSERT INTO _users (id, email, password_hash, role, disabled, created, updated)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
    )?
    .execute(params![
        user.id,
        user.email,
        password_hash,
        user.role.as_str(),
        user.created,
        user.updated
    ])
    .map_err(email_conflict)?;
    Ok(user)
}

// `id` is a fresh ULID, so the only unique constraint an insert or update can break is email's.
fn email_conflict(e: rusqlite::Error) -> AuthError {
    if super::is_unique_violation(&e) {
        AuthError::EmailTaken
    } else {
        AuthError::Sqlite(e)
    }
}

/// The user with this id; missing is [`AuthError::NotFound`].
pub fn get(conn: &Connection, id: &str) -> Result<User, AuthError> {
    find(conn, id)?.ok_or(AuthError::NotFound)
}

/// The user with this id, if any.
pub fn find(conn: &Connection, id: &str) -> Result<Option<User>, AuthError> {
    let sql = format!("SELECT {COLUMNS} FROM _users WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// The user with this email (normalised first); an unacceptable address finds nobody.
pub fn find_by_email(conn: &Connection, email: &str) -> Result<Option<User>, AuthError> {
    Ok(find_for_login(conn, email)?.map(|(user, _)| user))
}

/// The user with this email and their password hash, for signing in. Disabled users are
/// returned too: the caller verifies the password first and refuses afterwards, so a
/// disabled account answers exactly like a wrong password.
pub fn find_for_login(conn: &Connection, email: &str) -> Result<Option<(User, String)>, AuthError> {
    let Ok(email) = normalize_email(email) else {
        return Ok(None);
    };
    let sql = format!("SELECT {COLUMNS}, password_hash FROM _users WHERE email = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([email], |row| Ok((from_row(row)?, row.get(6)?)))
        .optional()?)
}

/// Whether the user has enrolled a TOTP second factor.
pub fn has_totp(conn: &Connection, id: &str) -> Result<bool, AuthError> {
    Ok(conn
        .prepare_cached("SELECT totp_secret IS NOT NULL FROM _users WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// The stored password hash of a user, to check their current password before a change.
pub fn get_password_hash(conn: &Connection, id: &str) -> Result<String, AuthError> {
    conn.prepare_cached("SELECT password_hash FROM _users WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or(AuthError::NotFound)
}

/// Up to `limit` users ordered by id, starting after `after_id` (keyset pagination: pass the
/// last id of the previous page).
pub fn list(conn: &Connection, after_id: Option<&str>, limit: u32) -> Result<Vec<User>, AuthError> {
    let sql =
        format!("SELECT {COLUMNS} FROM _users WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let users = stmt
        .query_map(params![after_id, limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(users)
}

/// Number of enabled admins.
pub fn count_admins(conn: &Connection) -> Result<u64, AuthError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM _users WHERE role = 'admin' AND disabled = 0")?
        .query_row([], |row| row.get(0))?;
    // count(*) is never negative.
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Refuse a change that takes `user` out of the set of enabled admins if it is the last one.
fn ensure_not_last_admin(conn: &Connection, user: &User) -> Result<(), AuthError> {
    if user.role == Role::Admin && !user.disabled && count_admins(conn)? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    Ok(())
}

/// Apply `changes` and return the updated user. A new password, a new role or disabling ends
/// the user's sign-ins (`login` tokens; API tokens too with `end_api_tokens`), except
/// `keep_token_id`. Demoting or disabling the last enabled admin is [`AuthError::LastAdmin`].
pub fn update(conn: &Connection, id: &str, changes: &UserUpdate) -> Result<User, AuthError> {
    let current = get(conn, id)?;
    let role_changes = changes.role.is_some_and(|role| role != current.role);
    let disabling = changes.disabled == Some(true) && !current.disabled;
    if role_changes || disabling {
        ensure_not_last_admin(conn, &current)?;
    }

    let mut user = current.clone();
    if let Some(email) = &changes.email {
        user.email = normalize_email(email)?;
    }
    if let Some(role) = changes.role {
        user.role = role;
    }
    if let Some(disabled) = changes.disabled {
        user.disabled = disabled;
    }
    user.updated = crate::time::now();
    conn.prepare_cached(
        "UPDATE _users SET email = ?2, role = ?3, disabled = ?4, updated = ?5,
                password_hash = coalesce(?6, password_hash)
         WHERE id = ?1",
    )?
    .execute(params![
        user.id,
        user.email,
        user.role.as_str(),
        user.disabled,
        user.updated,
        changes.password_hash
    ])
    .map_err(email_conflict)?;

    if changes.password_hash.is_some() || role_changes || disabling {
        tokens::delete_for_user(
            conn,
            id,
            changes.end_api_tokens,
            changes.keep_token_id.as_deref(),
        )?;
        sessions::delete_for_user(conn, id, changes.keep_session_id.as_deref())?;
    }
    Ok(user)
}

/// Delete a user and all their tokens. Deleting the last enabled admin is refused.
pub fn delete(conn: &Connection, id: &str) -> Result<(), AuthError> {
    let user = get(conn, id)?;
    ensure_not_last_admin(conn, &user)?;
    // `ON DELETE CASCADE` would do this, but only on connections with foreign_keys=ON;
    // deleting explicitly keeps a user's credentials from outliving them either way.
    conn.prepare_cached("DELETE FROM _tokens WHERE user_id = ?1")?
        .execute([id])?;
    sessions::delete_for_user(conn, id, None)?;
    conn.prepare_cached("DELETE FROM _users WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenKind;
    use crate::auth::test_support::{add_user, open_db};

    #[test]
    fn normalize_email_trims_lowercases_and_checks_shape() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "ann@@example.com",
            "ann@exa mple.com",
            "ann@example..com",
            "ann@.example.com",
            "ann@example.com.",
            "a\nb@example.com",
        ] {
            assert!(
                matches!(normalize_email(bad), Err(AuthError::InvalidEmail(_))),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn insert_normalizes_email_and_refuses_duplicates() {
        let (_dir, conn) = open_db();
        let ann = insert(&conn, " Ann@Example.com", "$hash", Role::User).unwrap();
        assert_eq!(ann.email, "ann@example.com");
        assert_eq!(ann.role, Role::User);
        assert!(!ann.disabled);
        assert_eq!(ann.id.len(), 26);
        let dup = insert(&conn, "ANN@example.com", "$hash", Role::User);
        assert!(matches!(dup, Err(AuthError::EmailTaken)), "{dup:?}");
    }

    #[test]
    fn get_find_and_find_by_email() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::Admin);
        assert_eq!(get(&conn, &ann.id).unwrap(), ann);
        assert!(matches!(get(&conn, "nope"), Err(AuthError::NotFound)));
        assert_eq!(find(&conn, "nope").unwrap(), None);
        assert_eq!(
            find_by_email(&conn, "ANN@example.com ").unwrap(),
            Some(ann.clone())
        );
        assert_eq!(find_by_email(&conn, "not an email").unwrap(), None);
        let (user, hash) = find_for_login(&conn, "ann@example.com").unwrap().unwrap();
        assert_eq!(user, ann);
        assert_eq!(hash, get_password_hash(&conn, &ann.id).unwrap());
        assert!(hash.starts_with("$argon2id$"));
    }

    #[test]
    fn serialized_user_has_no_password_hash() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let json = serde_json::to_value(&ann).unwrap();
        assert_eq!(json["role"], "user");
        assert!(json.get("password_hash").is_none());
        assert!(!json.to_string().contains("argon2"));
    }

    #[test]
    fn list_pages_by_id() {
        let (_dir, conn) = open_db();
        let mut ids: Vec<String> = (0..5)
            .map(|i| add_user(&conn, &format!("u{i}@example.com"), Role::User).id)
            .collect();
        ids.sort();
        let first = list(&conn, None, 2).unwrap();
        assert_eq!(
            first.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
            &ids[..2]
        );
        let next = list(&conn, Some(&first[1].id), 10).unwrap();
        assert_eq!(
            next.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
            &ids[2..]
        );
    }

    fn token_kinds(conn: &Connection, user_id: &str) -> Vec<(String, TokenKind)> {
        let mut stmt = conn
            .prepare("SELECT id, kind FROM _tokens WHERE user_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([user_id], |row| {
            let kind: String = row.get(1)?;
            Ok((row.get(0)?, kind.parse().unwrap()))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn give_tokens(conn: &Connection, user_id: &str) -> (String, String, String) {
        let (a, _) = tokens::create(conn, user_id, TokenKind::Login, "laptop", None).unwrap();
        let (b, _) = tokens::create(conn, user_id, TokenKind::Login, "phone", None).unwrap();
        let (c, _) = tokens::create(conn, user_id, TokenKind::Api, "script", None).unwrap();
        (a.id, b.id, c.id)
    }

    #[test]
    fn password_change_ends_other_login_tokens_and_keeps_api_tokens() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let (laptop, _phone, script) = give_tokens(&conn, &ann.id);
        let changes = UserUpdate {
            password_hash: Some("$argon2id$new".into()),
            keep_token_id: Some(laptop.clone()),
            ..UserUpdate::default()
        };
        update(&conn, &ann.id, &changes).unwrap();
        let mut left: Vec<String> = token_kinds(&conn, &ann.id)
            .into_iter()
            .map(|t| t.0)
            .collect();
        left.sort();
        let mut expected = vec![laptop, script];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(get_password_hash(&conn, &ann.id).unwrap(), "$argon2id$new");
    }

    #[test]
    fn password_change_can_end_api_tokens_too() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        give_tokens(&conn, &ann.id);
        let changes = UserUpdate {
            password_hash: Some("$argon2id$new".into()),
            end_api_tokens: true,
            ..UserUpdate::default()
        };
        update(&conn, &ann.id, &changes).unwrap();
        assert!(token_kinds(&conn, &ann.id).is_empty());
    }

    #[test]
    fn role_change_and_disabling_end_login_tokens() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        give_tokens(&conn, &ann.id);
        let promoted = update(
            &conn,
            &ann.id,
            &UserUpdate {
                role: Some(Role::Admin),
                ..UserUpdate::default()
            },
        )
        .unwrap();
        assert_eq!(promoted.role, Role::Admin);
        let kinds: Vec<TokenKind> = token_kinds(&conn, &ann.id)
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(kinds, vec![TokenKind::Api]);

        let bob = add_user(&conn, "bob@example.com", Role::User);
        give_tokens(&conn, &bob.id);
        let disabled = update(
            &conn,
            &bob.id,
            &UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            },
        )
        .unwrap();
        assert!(disabled.disabled);
        let kinds: Vec<TokenKind> = token_kinds(&conn, &bob.id)
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(kinds, vec![TokenKind::Api]);
    }

    #[test]
    fn unchanged_role_and_email_change_keep_tokens() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        give_tokens(&conn, &ann.id);
        let changes = UserUpdate {
            role: Some(Role::User),
            email: Some("Ann2@Example.com".into()),
            disabled: Some(false),
            ..UserUpdate::default()
        };
        let ann2 = update(&conn, &ann.id, &changes).unwrap();
        assert_eq!(ann2.email, "ann2@example.com");
        assert_eq!(token_kinds(&conn, &ann.id).len(), 3);
    }

    #[test]
    fn update_to_a_taken_email_is_email_taken() {
        let (_dir, conn) = open_db();
        add_user(&conn, "ann@example.com", Role::User);
        let bob = add_user(&conn, "bob@example.com", Role::User);
        let changes = UserUpdate {
            email: Some("ANN@example.com".into()),
            ..UserUpdate::default()
        };
        let result = update(&conn, &bob.id, &changes);
        assert!(matches!(result, Err(AuthError::EmailTaken)), "{result:?}");
        assert!(matches!(
            update(&conn, "nope", &UserUpdate::default()),
            Err(AuthError::NotFound)
        ));
    }

    #[test]
    fn the_last_enabled_admin_cannot_be_demoted_disabled_or_deleted() {
        let (_dir, conn) = open_db();
        let root = add_user(&conn, "root@example.com", Role::Admin);
        let demote = UserUpdate {
            role: Some(Role::User),
            ..UserUpdate::default()
        };
        let disable = UserUpdate {
            disabled: Some(true),
            ..UserUpdate::default()
        };
        assert!(matches!(
            update(&conn, &root.id, &demote),
            Err(AuthError::LastAdmin)
        ));
        assert!(matches!(
            update(&conn, &root.id, &disable),
            Err(AuthError::LastAdmin)
        ));
        assert!(matches!(delete(&conn, &root.id), Err(AuthError::LastAdmin)));
        assert_eq!(get(&conn, &root.id).unwrap(), root);

        // A disabled admin does not count as a second admin.
        let other = add_user(&conn, "other@example.com", Role::Admin);
        update(&conn, &other.id, &disable).unwrap();
        assert_eq!(count_admins(&conn).unwrap(), 1);
        assert!(matches!(
            update(&conn, &root.id, &demote),
            Err(AuthError::LastAdmin)
        ));

        // With a second enabled admin, the first may go.
        let enable = UserUpdate {
            disabled: Some(false),
            ..UserUpdate::default()
        };
        update(&conn, &other.id, &enable).unwrap();
        update(&conn, &root.id, &demote).unwrap();
        assert_eq!(count_admins(&conn).unwrap(), 1);
        assert!(matches!(
            delete(&conn, &other.id),
            Err(AuthError::LastAdmin)
        ));
        delete(&conn, &root.id).unwrap();
    }

    #[test]
    fn delete_removes_the_user_and_their_tokens() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        give_tokens(&conn, &ann.id);
        delete(&conn, &ann.id).unwrap();
        assert_eq!(find(&conn, &ann.id).unwrap(), None);
        assert!(token_kinds(&conn, &ann.id).is_empty());
        assert!(matches!(delete(&conn, &ann.id), Err(AuthError::NotFound)));
    }
}
