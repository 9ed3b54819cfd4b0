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

/// Pick the backup `choice` names from those listed.
pub fn choose<'a>(listed: &'a [Listed], choice: &Choice) -> anyhow::Result<&'a Listed> {
    if let Some(id) = &choice.id {
        return listed
            .iter()
            .find(|l| &l.manifest.id == id)
            .with_context(|| format!("no backup {id} on the selected targets"));
    }
    // The newest of the candidates: `min` in newest-first order.
    let newest = |a: &&Listed, b: &&Listed| Manifest::newest_first(&a.manifest, &b.manifest);
    match choice.at {
        None => listed
            .iter()
            .min_by(newest)
            .context("there are no backups on the selected targets"),
        Some(at) => listed
            .iter()
            .filter(|l| l.manifest.created_at().is_some_and(|c| c <= at))
            .min_by(newest)
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
    let listing = super::list(settings, choice.from.as_deref()).await?;
    if let Some(problem) = listing.unreachable.first() {
        // The newest backup may be on the target that cannot be read: choosing among the
        // others could silently restore an older one.
        bail!("{problem}; to choose among the other targets' backups, name one with --from");
    }
    let listed = listing.items;
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

/// Give `live` a second name, `<live>.before-restore-<time>` (with `-2`, `-3`… when a restore
/// in the same second already took that name). The rename that follows then replaces `live`
/// atomically, and at no moment is there no database under either name.
fn link_aside(live: &Path) -> anyhow::Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut aside = PathBuf::new();
    for n in 1..=100 {
        let mut name = live.as_os_str().to_owned();
        name.push(format!(".before-restore-{stamp}"));
        if n > 1 {
            name.push(format!("-{n}"));
        }
        aside = PathBuf::from(name);
        match std::fs::hard_link(live, &aside) {
            Ok(()) => return Ok(aside),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("keeping the current database as {}", aside.display())
                });
            }
        }
    }
    bail!(
        "keeping the current database: 100 names like {} are taken",
        aside.display()
    )
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
        let aside = link_aside(live)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(ids: &[&str]) -> Vec<Listed> {
        ids.iter()
            .map(|id| {
                let t = chrono::NaiveDateTime::parse_from_str(&id[..15], "%Y%m%dT%H%M%S")
                    .unwrap()
                    .and_utc();
                Listed {
                    target: "local",
                    manifest: crate::backup::manifest::tests::taken(id, &crate::time::format(t)),
                }
            })
            .collect()
    }

    #[test]
    fn choose_picks_by_id_latest_or_the_newest_at_or_before_a_time() {
        let all = listed(&[
            "20261103T030000Z-0003",
            "20261102T030000Z-0002",
            "20261101T030000Z-0001",
        ]);
        let pick = |choice: Choice| choose(&all, &choice).map(|l| l.manifest.id.clone());
        assert_eq!(pick(Choice::default()).unwrap(), "20261103T030000Z-0003");
        let by_id = Choice {
            id: Some("20261101T030000Z-0001".into()),
            ..Default::default()
        };
        assert_eq!(pick(by_id).unwrap(), "20261101T030000Z-0001");
        let at = |s: &str| Choice {
            at: crate::time::parse(s),
            ..Default::default()
        };
        assert_eq!(
            pick(at("2026-11-02T12:00:00Z")).unwrap(),
            "20261102T030000Z-0002"
        );
        assert_eq!(
            pick(at("2026-11-02T03:00:00Z")).unwrap(),
            "20261102T030000Z-0002"
        );
        let none = pick(at("2026-10-31T00:00:00Z")).unwrap_err().to_string();
        assert!(none.contains("at or before"), "{none}");
        let missing = Choice {
            id: Some("20261105T030000Z-0005".into()),
            ..Default::default()
        };
        assert!(pick(missing).is_err());
    }

    #[test]
    fn latest_and_at_pick_by_time_even_within_one_second() {
        use crate::backup::manifest::tests::taken;
        let listed: Vec<Listed> = [
            taken("20260102T030405Z-ffff", "2026-01-02T03:04:05.100Z"),
            taken("20260102T030405Z-0000", "2026-01-02T03:04:05.900Z"),
        ]
        .into_iter()
        .map(|manifest| Listed {
            target: "local",
            manifest,
        })
        .collect();
        let latest = choose(&listed, &Choice::default()).unwrap();
        assert_eq!(latest.manifest.id, "20260102T030405Z-0000");
        let at = Choice {
            at: crate::time::parse("2026-01-02T03:04:05.500Z"),
            ..Choice::default()
        };
        assert_eq!(
            choose(&listed, &at).unwrap().manifest.id,
            "20260102T030405Z-ffff"
        );
    }

    #[test]
    fn restores_in_the_same_second_keep_every_replaced_database() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("onebox.db");
        std::fs::write(&live, "original").unwrap();
        let mut kept = Vec::new();
        for content in ["first restore", "second restore", "third restore"] {
            let restored = dir.path().join("restored.db");
            std::fs::write(&restored, content).unwrap();
            kept.push(swap_in(&restored, &live).unwrap().unwrap());
            assert_eq!(std::fs::read_to_string(&live).unwrap(), content);
        }
        let contents: Vec<String> = kept
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert_eq!(contents, ["original", "first restore", "second restore"]);
        let name = kept[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("onebox.db.before-restore-"), "{name}");
    }
}
