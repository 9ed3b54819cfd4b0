//! Restoring a backup over the data dir's database, refusing while a server holds the data
//! dir. The backup is downloaded, its hash checked against the manifest, decrypted,
//! decompressed, hashed again and `integrity_check`ed before anything in the data dir moves.
//! The current database is never deleted: it is kept beside, as
//! `onebox.db.before-restore-<time>` (with its `-wal`, which SQLite finds under that name).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use super::manifest::Manifest;
use super::{Listed, pack, scratch};
use crate::config::Settings;

/// Which backup to restore.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    /// A backup id; `None` means the newest (at or before `at`, when given).
    pub id: Option<String>,
    /// A target name (`local`, `s3`); `None` looks at every target, local first.
    pub from: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// The age identity file, for encrypted backups.
    pub identity: Option<PathBuf>,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub target: &'static str,
    /// Where the database that was replaced now is, if there was one.
    pub kept_aside: Option<PathBuf>,
}

/// Pick the backup `choice` names from those listed (newest first).
pub fn choose<'a>(listed: &'a [Listed], choice: &Choice) -> anyhow::Result<&'a Listed> {
    if let Some(id) = &choice.id {
        return listed
            .iter()
            .find(|l| &l.manifest.id == id)
            .with_context(|| format!("no backup {id} on the selected targets"));
    }
    match choice.at {
        None => listed
            .first()
            .context("there are no backups on the selected targets"),
        Some(at) => listed
            .iter()
            .filter(|l| l.manifest.created_at().is_some_and(|c| c <= at))
            .min_by(|a, b| Manifest::newest_first(&a.manifest, &b.manifest))
            .with_context(|| {
                format!(
                    "no backup was taken at or before {}",
                    crate::time::format(at)
                )
            }),
    }
}

/// Restore the chosen backup into the data dir. The caller must hold the data-dir lock.
pub async fn restore(settings: &Settings, choice: &Choice) -> anyhow::Result<Restored> {
    let identities = match &choice.identity {
        Some(p) => pack::read_identities(p)?,
        None => Vec::new(),
    };
    let listed = super::list(settings, choice.from.as_deref()).await?;
    let picked = choose(&listed, choice)?;
    let manifest = picked.manifest.clone();
    let known = crate::db::schema_version();
    if manifest.schema_version > known {
        bail!(
            "backup {} was made by a newer onebox ({}, schema {}); this one knows schema {known}",
            manifest.id,
            manifest.app_version,
            manifest.schema_version
        );
    }
    let target = super::selected(settings, Some(picked.target))?
        .into_iter()
        .next()
        .context("the backup's target disappeared")?;
    if manifest.encrypted && identities.is_empty() {
        bail!(
            "backup {} is encrypted: give the age identity file with --identity",
            manifest.id
        );
    }
    let work = scratch(settings, "restore-")?;
    let restored_db = work.path().join("restored.db");
    super::unpack_checked(
        &target,
        &manifest,
        &work,
        &restored_db,
        Arc::new(identities),
    )
    .await
    .with_context(|| format!("checking backup {}", manifest.id))?;
    let live = settings.data_dir.database();
    let kept_aside = tokio::task::spawn_blocking(move || swap_in(&restored_db, &live))
        .await
        .context("the restore task failed")??;
    Ok(Restored {
        manifest,
        target: picked.target,
        kept_aside,
    })
}

/// Put `restored` in place of `live`, keeping the old database (and its WAL) aside.
fn swap_in(restored: &Path, live: &Path) -> anyhow::Result<Option<PathBuf>> {
    let sidecar = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let (live_wal, live_shm) = (sidecar(live, "-wal"), sidecar(live, "-shm"));
    let mut kept_aside = None;
    if live.exists() {
        // Fold the WAL into the file when it can, so the copy kept aside is one file.
        if let Ok(conn) = rusqlite::Connection::open(live) {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = sidecar(live, &format!(".before-restore-{stamp}"));
        // A second name for the old file: the rename below then replaces `live` atomically,
        // and at no moment is there no database under either name.
        std::fs::hard_link(live, &aside)
            .with_context(|| format!("keeping the current database as {}", aside.display()))?;
        if std::fs::metadata(&live_wal).is_ok_and(|m| m.len() > 0) {
            std::fs::rename(&live_wal, sidecar(&aside, "-wal"))
                .context("keeping the current write-ahead log aside")?;
        }
        kept_aside = Some(aside);
    }
    for stale in [&live_wal, &live_shm] {
        match std::fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", stale.display())),
        }
    }
    std::fs::rename(restored, live)
        .with_context(|| format!("moving the restored database to {}", live.display()))?;
    if let Some(dir) = live.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(kept_aside)
}
