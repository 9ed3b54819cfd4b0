//! Backups on an admin's behalf: listing what the targets hold (each target on its own, so one
//! that cannot be reached does not hide the others) and opening a stored artifact for download
//! (audited as `backup.download`). Taking a backup is the `backup` job (`services::jobs`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::backup::manifest::Manifest;
use crate::backup::targets::Target;
use crate::error::AppError;
use crate::services::identity::{self, Caller};

/// One stored backup, as the API and the admin page show it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupItem {
    pub id: String,
    pub target: &'static str,
    pub created: String,
    /// Hours since the snapshot was taken (two decimals).
    pub age_hours: f64,
    /// The snapshot database's size, before compression.
    pub db_bytes: u64,
    /// The stored artifact's size.
    pub file_bytes: u64,
    pub encrypted: bool,
    pub change_seq: i64,
    pub schema_version: i64,
    pub app_version: String,
}

impl BackupItem {
    fn of(target: &'static str, m: Manifest, now: DateTime<Utc>) -> Self {
        let age_hours = m
            .created_at()
            .map(|t| ((now - t).num_seconds() as f64 / 36.0).round() / 100.0)
            .unwrap_or(0.0);
        BackupItem {
            id: m.id,
            target,
            created: m.created,
            age_hours,
            db_bytes: m.db_bytes,
            file_bytes: m.file_bytes,
            encrypted: m.encrypted,
            change_seq: m.change_seq,
            schema_version: m.schema_version,
            app_version: m.app_version,
        }
    }
}

/// A target that could not be listed, and why, in words an admin can act on.
#[derive(Debug, Clone)]
pub struct Unlisted {
    pub target: &'static str,
    pub detail: String,
}

/// What the selected targets hold, newest first, and the targets that could not be read.
#[derive(Debug)]
pub struct Listing {
    pub items: Vec<BackupItem>,
    pub failures: Vec<Unlisted>,
}

impl Listing {
    /// Every target listed, or a 503 naming the ones that were not (for the API, which
    /// answers with the whole list or nothing).
    pub fn complete(self) -> Result<Vec<BackupItem>, AppError> {
        if self.failures.is_empty() {
            return Ok(self.items);
        }
        let details: Vec<String> = self.failures.into_iter().map(|f| f.detail).collect();
        Err(AppError::Unavailable(details.join("; ")))
    }
}

/// The outermost context and the root cause: says what failed and why (`listing the s3
/// target: Connection refused`) without the middle of the chain, where URLs and paths live.
/// The whole chain goes to the log.
fn readable(e: &anyhow::Error) -> String {
    tracing::warn!(error = %format!("{e:#}"), "a backup target failed");
    let (top, root) = (e.to_string(), e.root_cause().to_string());
    if top == root {
        top
    } else {
        format!("{top}: {root}")
    }
}

/// The configured targets, or only the one named `from` (`local`, `s3`). A name that is not a
/// configured target is a 400; a target that cannot even be set up is a 503.
pub fn targets(app: &App, from: Option<&str>) -> Result<Vec<Target>, AppError> {
    check_from(app, from)?;
    crate::backup::selected(&app.settings, from)
        .map_err(|e| AppError::Unavailable(format!("the backup targets: {}", readable(&e))))
}

/// A `from` that names no configured target is a 400.
fn check_from(app: &App, from: Option<&str>) -> Result<(), AppError> {
    match from {
        Some(name) => crate::backup::check_target_name(&app.settings, name)
            .map_err(|e| AppError::BadRequest(format!("from: {e}"))),
        None => Ok(()),
    }
}

/// The backups on the selected targets, newest first.
pub async fn list(app: &App, from: Option<&str>, now: DateTime<Utc>) -> Result<Listing, AppError> {
    let mut listing = Listing {
        items: Vec::new(),
        failures: Vec::new(),
    };
    for target in targets(app, from)? {
        match target.manifests().await {
            Ok(manifests) => listing.items.extend(
                manifests
                    .into_iter()
                    .map(|m| BackupItem::of(target.name, m, now)),
            ),
            Err(e) => listing.failures.push(Unlisted {
                target: target.name,
                detail: readable(&e),
            }),
        }
    }
    listing.items.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(listing)
}

/// A stored artifact being read: its name, its stored size, and its bytes.
pub struct Download {
    pub file: String,
    pub bytes: u64,
    pub stream: crate::backup::targets::ByteStream,
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        )
    })
}

fn unavailable(e: anyhow::Error) -> AppError {
    if is_not_found(&e) {
        // Removed (by retention, say) between finding the manifest and reading the file.
        AppError::NotFound
    } else {
        AppError::Unavailable(readable(&e))
    }
}

/// Open backup `id` for download from the first selected target that holds it. Anything that
/// is not a backup id is a 404 before any target is asked.
pub async fn open(
    app: &App,
    caller: &Caller,
    id: &str,
    from: Option<&str>,
) -> Result<Download, AppError> {
    // An unknown target name is a 400, not a target failure.
    check_from(app, from)?;
    let (target, manifest) = crate::backup::find(&app.settings, from, id)
        .await
        .map_err(unavailable)?
        .ok_or(AppError::NotFound)?;
    // The file name goes into a path and a header: it must be the one this id's backup has.
    if manifest.id != id || manifest.file != Manifest::file_for(id, manifest.encrypted) {
        return Err(AppError::Unavailable(format!(
            "the manifest of {id} on the {} target names another backup's file",
            target.name
        )));
    }
    let (bytes, stream) = target.open(&manifest.file).await.map_err(unavailable)?;
    identity::audit(
        app,
        caller,
        "backup.download",
        json!({ "id": id, "target": target.name }),
    )
    .await;
    Ok(Download {
        file: manifest.file,
        bytes,
        stream,
    })
}
