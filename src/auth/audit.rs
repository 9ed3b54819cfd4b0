//! The audit trail (`_audit`): sign-ins, token and user changes and other admin actions, with
//! UTC time, actor and client IP. Each entry is also emitted as a `tracing` event with target
//! `audit`, with CR/LF and other control characters escaped. Detail is JSON chosen by the
//! caller; it must never hold secrets, and the well-known secret field names are redacted here
//! as a second line of defence.

use std::borrow::Cow;
use std::fmt::Write as _;

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

use super::AuthError;

/// Object keys whose values never reach the audit trail.
const SECRET_KEYS: &[&str] = &[
    "password",
    "new_password",
    "current_password",
    "password_hash",
    "secret",
    "token",
    "hash",
    "totp",
    "code",
    "recovery_code",
];

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub time: String,
    pub actor: Option<String>,
    /// The actor's current email (`None` for the CLI, anonymous clients and deleted users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    pub ip: Option<String>,
    pub action: String,
    pub detail: Value,
}

/// Escape control characters (CR, LF, tab, ESC…) and the Unicode line and paragraph
/// separators, so a value cannot forge extra lines or terminal codes in a log. Borrows when
/// there is nothing to escape.
pub fn log_safe(value: &str) -> Cow<'_, str> {
    let needs_escape = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !value.chars().any(needs_escape) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Replace the values of secret-looking keys, at any depth.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                    *v = Value::String("[redacted]".to_string());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Append an entry stamped with the current time; returns its id. `actor` is a user id (`None`
/// for the CLI or an anonymous client), `action` a dotted name such as `auth.login_failed`.
pub fn record(
    conn: &Connection,
    actor: Option<&str>,
    ip: Option<&str>,
    action: &str,
    mut detail: Value,
) -> Result<i64, AuthError> {
    redact(&mut detail);
    let time = crate::time::now();
    let detail_text = (!detail.is_null()).then(|| detail.to_string());
    conn.prepare_cached(
        "INSERT INTO _audit (time, actor, ip, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![time, actor, ip, action, detail_text])?;
    let id = conn.last_insert_rowid();
    // JSON text escapes its own control characters; the free-form fields need log_safe.
    tracing::info!(
        target: "audit",
        id,
        action = %log_safe(action),
        actor = %log_safe(actor.unwrap_or("-")),
        ip = %log_safe(ip.unwrap_or("-")),
        detail = detail_text.as_deref().unwrap_or("null"),
    );
    Ok(id)
}

/// Which entries `list` returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    /// Only entries older than this id (keyset pagination: the last id of the previous page).
    pub before_id: Option<i64>,
    /// Only actions starting with this text (`auth.` for sign-ins and their failures).
    pub action_prefix: Option<&'a str>,
}

/// Up to `limit` entries matching `filter`, newest first, with the actor's email.
pub fn list(
    conn: &Connection,
    limit: u32,
    filter: &AuditFilter<'_>,
) -> Result<Vec<AuditEntry>, AuthError> {
    // A prefix compared with substr, not LIKE: `_` and `%` in the prefix stay literal.
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.time, a.actor, u.email, a.ip, a.action, a.detail
         FROM _audit a LEFT JOIN _users u ON u.id = a.actor
         WHERE (?1 IS NULL OR a.id < ?1)
           AND (?2 IS NULL OR substr(a.action, 1, length(?2)) = ?2)
         ORDER BY a.id DESC LIMIT ?3",
    )?;
    let entries = stmt
        .query_map(
            params![filter.before_id, filter.action_prefix, limit],
            |row| {
                let detail: Option<String> = row.get(6)?;
                Ok(AuditEntry {
                    id: row.get(0)?,
                    time: row.get(1)?,
                    actor: row.get(2)?,
                    actor_email: row.get(3)?,
                    ip: row.get(4)?,
                    action: row.get(5)?,
                    // An unreadable detail is shown as text rather than hiding the whole trail.
                    detail: detail.map_or(Value::Null, |text| {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    }),
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::open_db;
    use serde_json::json;

    #[test]
    fn log_safe_escapes_cr_lf_and_control_characters() {
        assert!(matches!(log_safe("plain text é"), Cow::Borrowed(_)));
        assert_eq!(
            log_safe("ann\r\nINFO admin signed in"),
            "ann\\r\\nINFO admin signed in"
        );
        assert_eq!(log_safe("a\tb\u{1b}[31m"), "a\\tb\\u{1b}[31m");
        assert_eq!(log_safe("x\u{2028}y\u{85}"), "x\\u{2028}y\\u{85}");
        assert!(!log_safe("\n\r\u{2029}").contains(['\n', '\r', '\u{2029}']));
    }

    #[test]
    fn record_and_list_newest_first_with_keyset_paging() {
        let (_dir, conn) = open_db();
        let first = record(
            &conn,
            None,
            Some("192.0.2.1"),
            "auth.login_failed",
            json!({"email": "a@x.io"}),
        )
        .unwrap();
        let second = record(
            &conn,
            Some("01USER"),
            Some("192.0.2.1"),
            "auth.login",
            Value::Null,
        )
        .unwrap();
        let third = record(
            &conn,
            Some("01USER"),
            None,
            "token.create",
            json!({"name": "ci"}),
        )
        .unwrap();

        let page = list(&conn, 2, &AuditFilter::default()).unwrap();
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![third, second]
        );
        assert_eq!(page[0].detail, json!({"name": "ci"}));
        assert_eq!(page[1].detail, Value::Null);
        assert_eq!(page[1].actor.as_deref(), Some("01USER"));
        assert!(page[0].time.ends_with('Z'));

        let older = AuditFilter {
            before_id: Some(second),
            ..AuditFilter::default()
        };
        let rest = list(&conn, 2, &older).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, first);
        assert_eq!(rest[0].ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(rest[0].detail["email"], "a@x.io");
    }

    #[test]
    fn secret_fields_are_redacted_at_any_depth() {
        let (_dir, conn) = open_db();
        let detail = json!({
            "email": "a@x.io",
            "Password": "hunter2hunter2",
            "token_id": "01TOKEN",
            "nested": [{"secret": "obx_abc", "name": "ok"}],
        });
        record(&conn, None, None, "user.update", detail).unwrap();
        let stored: String = conn
            .query_row("SELECT detail FROM _audit", [], |r| r.get(0))
            .unwrap();
        assert!(!stored.contains("hunter2"));
        assert!(!stored.contains("obx_abc"));
        let entry = &list(&conn, 1, &AuditFilter::default()).unwrap()[0];
        assert_eq!(entry.detail["Password"], "[redacted]");
        assert_eq!(entry.detail["nested"][0]["secret"], "[redacted]");
        assert_eq!(entry.detail["nested"][0]["name"], "ok");
        assert_eq!(entry.detail["token_id"], "01TOKEN");
    }

    #[test]
    fn stored_values_keep_their_text_and_detail_json_has_no_raw_newlines() {
        let (_dir, conn) = open_db();
        record(
            &conn,
            None,
            Some("::1"),
            "auth.login_failed",
            json!({"email": "a\r\nb@x.io"}),
        )
        .unwrap();
        let stored: String = conn
            .query_row("SELECT detail FROM _audit", [], |r| r.get(0))
            .unwrap();
        assert!(!stored.contains(['\r', '\n']));
        assert_eq!(
            list(&conn, 1, &AuditFilter::default()).unwrap()[0].detail["email"],
            "a\r\nb@x.io"
        );
    }

    #[test]
    fn list_filters_by_action_prefix_literally_and_names_the_actor() {
        let (_dir, conn) = open_db();
        let ann =
            crate::auth::test_support::add_user(&conn, "ann@example.com", crate::auth::Role::Admin);
        record(
            &conn,
            None,
            Some("192.0.2.1"),
            "auth.login_failed",
            Value::Null,
        )
        .unwrap();
        let login = record(&conn, Some(&ann.id), None, "auth.login", Value::Null).unwrap();
        record(&conn, Some(&ann.id), None, "authx", Value::Null).unwrap();
        record(
            &conn,
            Some("01GONE"),
            None,
            "collection.create",
            Value::Null,
        )
        .unwrap();
        let only = |prefix| AuditFilter {
            action_prefix: Some(prefix),
            ..AuditFilter::default()
        };
        let auth = list(&conn, 10, &only("auth.")).unwrap();
        let actions: Vec<&str> = auth.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["auth.login", "auth.login_failed"]);
        assert_eq!(auth[0].id, login);
        assert_eq!(auth[0].actor_email.as_deref(), Some("ann@example.com"));
        assert_eq!(auth[1].actor_email, None);
        // `_` is not a wildcard.
        assert!(list(&conn, 10, &only("auth_")).unwrap().is_empty());
        let gone = &list(&conn, 10, &only("collection.")).unwrap()[0];
        assert_eq!(
            (gone.actor.as_deref(), gone.actor_email.as_deref()),
            (Some("01GONE"), None)
        );
        let filter = AuditFilter {
            before_id: Some(login),
            action_prefix: Some("auth."),
        };
        assert_eq!(list(&conn, 10, &filter).unwrap().len(), 1);
    }
}
