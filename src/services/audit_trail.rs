//! Reading the audit trail for admins: newest first, a page at a time, optionally only the
//! actions under one prefix. Writing entries belongs to the services that act (`Actor::record`).

use crate::app::App;
use crate::auth::audit::{self, AuditEntry, AuditFilter};
use crate::error::AppError;

/// Most entries on one page.
pub const MAX_PAGE: u32 = 200;

/// One page of the trail and the id to continue from (`before`), when there is more.
#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before: Option<i64>,
}

/// Up to `limit` entries older than `before`, whose action starts with `action_prefix`.
pub async fn page(
    app: &App,
    before: Option<i64>,
    action_prefix: Option<String>,
    limit: u32,
) -> Result<AuditPage, AppError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut entries = app
        .db
        .read(move |conn| {
            let filter = AuditFilter {
                before_id: before,
                action_prefix: action_prefix.as_deref().filter(|p| !p.is_empty()),
            };
            // One more than asked tells whether another page follows.
            Ok::<_, AppError>(audit::list(conn, limit + 1, &filter)?)
        })
        .await?;
    let next_before = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage {
        entries,
        next_before,
    })
}
