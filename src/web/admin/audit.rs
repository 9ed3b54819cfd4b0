//! `GET /admin/audit`: the audit trail, newest first, a page at a time (`before` = the last
//! id of the previous page), optionally only actions starting with a prefix (`auth.`).

use askama::Template;
use rocket::{State, get};

use crate::app::App;
use crate::auth::audit::AuditEntry;
use crate::services::audit_trail;

use super::super::page::{Layout, Page, WebError, render, urlencoding};
use super::super::visitor::Staff;
use super::readable_time;

/// Entries on one page.
const PAGE_SIZE: u32 = 50;

/// One entry as shown.
pub struct EntryView {
    pub id: i64,
    /// The stored RFC 3339 time (for `<time datetime>`).
    pub time: String,
    /// The same time for reading: `2026-05-01 12:00:00 UTC`.
    pub when: String,
    pub action: String,
    /// The actor's email, or who acted when it was no user.
    pub actor: String,
    pub ip: String,
    pub detail: String,
}

impl EntryView {
    pub fn of(e: AuditEntry) -> Self {
        let actor = match (&e.actor, &e.actor_email) {
            (_, Some(email)) => email.clone(),
            (Some(id), None) => format!("deleted user {id}"),
            // Requests always have a client address; the command line has none.
            (None, None) if e.ip.is_some() => "anonymous".to_string(),
            (None, None) => "CLI".to_string(),
        };
        EntryView {
            id: e.id,
            when: readable_time(&e.time),
            time: e.time,
            action: e.action,
            actor,
            ip: e.ip.unwrap_or_default(),
            detail: if e.detail.is_null() {
                String::new()
            } else {
                e.detail.to_string()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<EntryView>,
    action: String,
    next: Option<String>,
}

#[get("/admin/audit?<before>&<action>")]
pub async fn audit_page(
    app: &State<App>,
    s: Staff,
    before: Option<i64>,
    action: Option<String>,
) -> Result<Page, WebError> {
    let action = action.map(|a| a.trim().to_string()).unwrap_or_default();
    let prefix = (!action.is_empty()).then(|| action.clone());
    let page = audit_trail::page(app, before, prefix, PAGE_SIZE).await?;
    let next = page.next_before.map(|id| {
        let mut href = format!("/admin/audit?before={id}");
        if !action.is_empty() {
            href.push_str("&action=");
            href.push_str(&urlencoding(&action));
        }
        href
    });
    render(&AuditPage {
        layout: s.0.layout("Audit trail"),
        entries: page.entries.into_iter().map(EntryView::of).collect(),
        action,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn entry(actor: Option<&str>, email: Option<&str>, ip: Option<&str>) -> AuditEntry {
        AuditEntry {
            id: 7,
            time: "2026-05-01T12:00:00.000Z".into(),
            actor: actor.map(str::to_string),
            actor_email: email.map(str::to_string),
            ip: ip.map(str::to_string),
            action: "auth.login".into(),
            detail: Value::Null,
        }
    }

    #[test]
    fn the_actor_is_an_email_anonymous_the_cli_or_a_deleted_user() {
        let who = |a, e, i| EntryView::of(entry(a, e, i)).actor;
        assert_eq!(who(Some("01U"), Some("a@x.io"), None), "a@x.io");
        assert_eq!(who(None, None, Some("192.0.2.1")), "anonymous");
        assert_eq!(who(None, None, None), "CLI");
        assert_eq!(who(Some("01U"), None, None), "deleted user 01U");
    }

    #[test]
    fn time_reads_in_utc_and_detail_is_json_text() {
        let mut e = entry(None, None, None);
        e.detail = json!({"email": "a@x.io"});
        let v = EntryView::of(e);
        assert_eq!(v.when, "2026-05-01 12:00:00 UTC");
        assert_eq!(v.detail, r#"{"email":"a@x.io"}"#);
        assert_eq!(EntryView::of(entry(None, None, None)).detail, "");
    }
}
