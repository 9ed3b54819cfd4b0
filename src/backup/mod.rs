//! Backups: a consistent snapshot of the live database taken while writes continue, checked
//! with `integrity_check`, compressed with zstd, optionally encrypted with age, described by a
//! manifest and stored on every configured target; then each target's retention. And the way
//! back: listing, verifying and restoring (see `restore`).
//!
//! A backup counts only when every target holds both its artifact (size checked, and hash on
//! the local disk) and its manifest; a failed run removes what it had stored.

pub mod manifest;
pub mod pack;
pub mod restore;
pub mod retention;
pub mod snapshot;
pub mod targets;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use crate::config::Settings;
use manifest::Manifest;
use targets::Target;

/// What a finished backup run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub manifest: Manifest,
    pub targets: Vec<&'static str>,
    /// Seconds spent copying, checking, packing and storing; and in all.
    pub phases: Phases,
    pub seconds: f64,
    /// Backups removed by retention, per target.
    pub pruned: usize,
    /// Retention problems (the backup itself is complete).
    pub warnings: Vec<String>,
}

impl Report {
    /// One line for the job's record and the log.
    pub fn summary(&self) -> String {
        let (m, p) = (&self.manifest, &self.phases);
        let mut s = format!(
            "{}: {} → {}{} in {:.1} s (snapshot {:.2} s, check {:.2} s, pack {:.2} s, store {:.2} s) \
             on {}; change seq {}",
            m.id,
            human_bytes(m.db_bytes),
            human_bytes(m.file_bytes),
            if m.encrypted { " (encrypted)" } else { "" },
            self.seconds,
            p.snapshot,
            p.check,
            p.pack,
            p.store,
            self.targets.join(", "),
            m.change_seq
        );
        if self.pruned > 0 {
            s.push_str(&format!("; retention removed {}", self.pruned));
        }
        for w in &self.warnings {
            s.push_str("; ");
            s.push_str(w);
        }
        s
    }
}

/// Where a backup run's time went, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// The online copy of the live database (the only part that reads it).
    pub snapshot: f64,
    /// `integrity_check` of the copy.
    pub check: f64,
    /// zstd (and age) into the artifact.
    pub pack: f64,
    /// Upload, verification and manifests on every target.
    pub store: f64,
}

/// A backup as listed on one target.
#[derive(Debug, Clone)]
pub struct Listed {
    pub target: &'static str,
    pub manifest: Manifest,
}

/// Bytes as people read them (`1.5 MB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A scratch directory inside the data dir's `tmp/`, removed when dropped.
pub(crate) fn scratch(settings: &Settings, what: &str) -> anyhow::Result<tempfile::TempDir> {
    let root = settings.data_dir.work_dir();
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    tempfile::Builder::new()
        .prefix(what)
        .tempdir_in(&root)
        .with_context(|| format!("creating a scratch directory in {}", root.display()))
}

/// Take a backup now and store it on every target.
pub async fn run(settings: &Settings, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let targets = targets::configured(settings)?;
    if targets.is_empty() {
        bail!("no backup target is configured");
    }
    let work = scratch(settings, "backup-")?;
    let id = unused_id(&targets, now).await?;
    let encrypted = !settings.backup.encrypt_to.is_empty();
    let file = Manifest::file_for(&id, encrypted);
    let artifact = work.path().join(&file);
    let (manifest, mut timings) = {
        let live = settings.data_dir.database();
        let copy = work.path().join("snapshot.db");
        let artifact = artifact.clone();
        let level = settings.backup.zstd_level;
        let recipients = settings
            .backup
            .encrypt_to
            .iter()
            .map(|r| {
                r.parse::<age::x25519::Recipient>()
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .context("backup.encrypt_to")?;
        let (snap, packed, phases) = tokio::task::spawn_blocking(move || {
            let mut phases = Phases::default();
            let (snap, check) = snapshot::take(&live, &copy).context("taking the snapshot")?;
            (phases.snapshot, phases.check) = (check.copied, check.checked);
            let packing = Instant::now();
            let packed =
                pack::pack(&copy, &artifact, level, &recipients).context("packing the snapshot")?;
            phases.pack = packing.elapsed().as_secs_f64();
            // The uncompressed copy is no longer needed; free its space before uploading.
            let _ = std::fs::remove_file(&copy);
            anyhow::Ok((snap, packed, phases))
        })
        .await
        .context("the snapshot task failed")??;
        let manifest = Manifest {
            format: manifest::FORMAT,
            id: id.clone(),
            created: crate::time::format(now),
            app_version: env!("CARGO_PKG_VERSION").to_string(),
            schema_version: snap.schema_version,
            change_seq: snap.change_seq,
            db_bytes: packed.db_bytes,
            db_sha256: packed.db_sha256,
            file: file.clone(),
            file_bytes: packed.file_bytes,
            file_sha256: packed.file_sha256,
            compression: "zstd".into(),
            encrypted,
        };
        (manifest, phases)
    };
    let storing = Instant::now();
    store(&targets, &manifest, &artifact).await?;
    timings.store = storing.elapsed().as_secs_f64();
    drop(work);
    let (mut pruned, mut warnings) = (0, Vec::new());
    for target in &targets {
        match apply_retention(target, settings, &manifest.id).await {
            Ok(n) => pruned += n,
            Err(e) => {
                tracing::warn!(target_name = target.name, error = %format!("{e:#}"), "retention failed");
                warnings.push(format!("retention on {} failed: {e:#}", target.name));
            }
        }
    }
    Ok(Report {
        manifest,
        targets: targets.iter().map(|t| t.name).collect(),
        phases: timings,
        seconds: started.elapsed().as_secs_f64(),
        pruned,
        warnings,
    })
}

/// A new backup id that the local target does not hold yet. Ids are per second with a
/// random suffix; two backups in one second are rare (runs of a job never overlap), and a
/// remote target is not asked, so that a run reaches the upload, where a failing remote is
/// cleaned up after.
async fn unused_id(targets: &[Target], now: DateTime<Utc>) -> anyhow::Result<String> {
    'fresh: for _ in 0..8 {
        let id = manifest::new_id(now);
        for target in targets.iter().filter(|t| t.is_local()) {
            if target.size(&Manifest::name_for(&id)).await?.is_some() {
                continue 'fresh;
            }
        }
        return Ok(id);
    }
    bail!("cannot find an unused backup id")
}

/// Upload the artifact to every target and check it there, then write the manifests. On any
/// failure, remove what this backup had stored, so no half backup is ever listed.
async fn store(targets: &[Target], manifest: &Manifest, artifact: &Path) -> anyhow::Result<()> {
    let mut stored: Vec<&Target> = Vec::new();
    let result = async {
        for target in targets {
            // An upload is atomic: when it fails, this target holds nothing of this backup,
            // and cleaning it up would only wait on a server that just failed (30 s more per
            // request when it does not answer). An object that landed although its request
            // failed has no manifest; retention removes it after an hour.
            let sent = target.upload(&manifest.file, artifact).await?;
            stored.push(target);
            check_stored(target, manifest, sent).await?;
        }
        let body = serde_json::to_vec_pretty(manifest).context("writing the manifest")?;
        for target in targets {
            target
                .put(&Manifest::name_for(&manifest.id), body.clone())
                .await?;
        }
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        for target in stored {
            let _ = target.delete(&Manifest::name_for(&manifest.id)).await;
            let _ = target.delete(&manifest.file).await;
        }
    }
    result
}

/// The stored artifact has the manifest's size (and, on the local disk, its hash).
async fn check_stored(target: &Target, manifest: &Manifest, sent: u64) -> anyhow::Result<()> {
    let size = target.size(&manifest.file).await?;
    if size != Some(manifest.file_bytes) || sent != manifest.file_bytes {
        bail!(
            "the {} target holds {:?} bytes of {} after the upload, expected {}",
            target.name,
            size,
            manifest.file,
            manifest.file_bytes
        );
    }
    if let Some(path) = target.local_path(&manifest.file) {
        let (_, sha) = tokio::task::spawn_blocking(move || pack::hash_file(&path))
            .await
            .context("hashing the stored backup")??;
        if sha != manifest.file_sha256 {
            bail!(
                "the {} target's copy of {} has the wrong sha256",
                target.name,
                manifest.file
            );
        }
    }
    Ok(())
}

/// Delete what the retention policy no longer keeps, and leftovers of failed runs. Returns how
/// many backups were removed.
async fn apply_retention(
    target: &Target,
    settings: &Settings,
    current: &str,
) -> anyhow::Result<usize> {
    let manifests = target.manifests().await?;
    let candidates: Vec<retention::Candidate> = manifests
        .iter()
        .filter_map(|m| {
            Some(retention::Candidate {
                id: &m.id,
                created: m.created_at()?,
            })
        })
        .collect();
    let doomed = retention::plan(&candidates, &settings.backup.retention);
    for id in &doomed {
        if *id == current {
            continue;
        }
        if let Some(m) = manifests.iter().find(|m| m.id == *id) {
            // Manifest first: from then on the backup is no longer listed.
            target.delete(&Manifest::name_for(&m.id)).await?;
            target.delete(&m.file).await?;
        }
    }
    // Artifacts with no manifest are left from runs that failed or were killed mid-upload;
    // an hour's grace covers a run still uploading from another process.
    let listed: std::collections::HashSet<&str> = manifests.iter().map(|m| m.id.as_str()).collect();
    let grace = Utc::now() - chrono::Duration::hours(1);
    for object in target.list().await? {
        if let Some(id) = Manifest::id_of(&object.name)
            && id != current
            && !listed.contains(id)
            && object.modified < grace
        {
            target.delete(&object.name).await?;
        }
    }
    Ok(doomed.iter().filter(|id| **id != current).count())
}

/// What the targets hold, newest first, and the targets that could not be listed.
#[derive(Debug, Default)]
pub struct Listing {
    pub items: Vec<Listed>,
    /// One readable message per target that could not be listed.
    pub unreachable: Vec<String>,
}

/// Every backup on every configured target (or only `from`), newest first. A target that
/// cannot be listed is an error when it was asked for by name, or when it is the only one;
/// otherwise it is reported in `unreachable` and the others are listed.
pub async fn list(settings: &Settings, from: Option<&str>) -> anyhow::Result<Listing> {
    let targets = selected(settings, from)?;
    let only_one = targets.len() == 1;
    let mut listing = Listing::default();
    for target in targets {
        match target.manifests().await {
            Ok(manifests) => listing
                .items
                .extend(manifests.into_iter().map(|manifest| Listed {
                    target: target.name,
                    manifest,
                })),
            Err(e) if from.is_some() || only_one => return Err(e),
            Err(e) => listing.unreachable.push(format!("{e:#}")),
        }
    }
    listing
        .items
        .sort_by(|a, b| Manifest::newest_first(&a.manifest, &b.manifest));
    Ok(listing)
}

/// The configured targets, or only the one named `from`.
pub fn selected(settings: &Settings, from: Option<&str>) -> anyhow::Result<Vec<Target>> {
    if let Some(name) = from {
        check_target_name(settings, name)?;
    }
    let targets = targets::configured(settings)?;
    Ok(targets
        .into_iter()
        .filter(|t| from.is_none_or(|name| t.name == name))
        .collect())
}

/// Whether `name` is a configured target; the error lists those that are.
pub fn check_target_name(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let names = targets::configured_names(settings);
    if !names.contains(&name) {
        bail!(
            "no backup target named {name:?} (configured: {})",
            names.join(", ")
        );
    }
    Ok(())
}

/// A backup's manifest and the target holding it, looked up by id.
pub async fn find(
    settings: &Settings,
    from: Option<&str>,
    id: &str,
) -> anyhow::Result<Option<(Target, Manifest)>> {
    if !manifest::is_id(id) {
        return Ok(None);
    }
    for target in selected(settings, from)? {
        let name = Manifest::name_for(id);
        let Some(bytes) = target.find(&name).await? else {
            continue;
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{name} on the {} target is not a manifest", target.name))?;
        return Ok(Some((target, manifest)));
    }
    Ok(None)
}

/// The outcome of verifying one stored backup.
#[derive(Debug, Clone)]
pub struct Verified {
    pub target: &'static str,
    pub id: String,
    /// What was checked, or why it failed.
    pub result: Result<String, String>,
}

/// Download `id` (or every backup) and check it against its manifest: size and sha256 of the
/// artifact; with the identity (or unencrypted), also the database's hash and integrity.
pub async fn verify(
    settings: &Settings,
    from: Option<&str>,
    id: Option<&str>,
    identity: Option<&Path>,
) -> anyhow::Result<Vec<Verified>> {
    let identities = match identity {
        Some(p) => pack::read_identities(p)?,
        None => Vec::new(),
    };
    let identities = std::sync::Arc::new(identities);
    let mut out = Vec::new();
    for target in selected(settings, from)? {
        for manifest in target.manifests().await? {
            if id.is_some_and(|id| id != manifest.id) {
                continue;
            }
            let result = fetch_and_check(settings, &target, &manifest, identities.clone())
                .await
                .map_err(|e| format!("{e:#}"));
            out.push(Verified {
                target: target.name,
                id: manifest.id.clone(),
                result,
            });
        }
    }
    if let Some(id) = id
        && out.is_empty()
    {
        bail!("no backup {id} on the selected targets");
    }
    Ok(out)
}

/// Download one backup into scratch space and check it; with `keep`, leave the checked
/// database at that path (restore uses this).
pub(crate) async fn fetch_and_check(
    settings: &Settings,
    target: &Target,
    manifest: &Manifest,
    identities: std::sync::Arc<Vec<Box<dyn age::Identity + Send + Sync>>>,
) -> anyhow::Result<String> {
    let work = scratch(settings, "verify-")?;
    let db = work.path().join("check.db");
    unpack_checked(target, manifest, &work, &db, identities).await
}

/// Download `manifest`'s artifact into `work`, check it, and unpack it into `db`.
pub(crate) async fn unpack_checked(
    target: &Target,
    manifest: &Manifest,
    work: &tempfile::TempDir,
    db: &Path,
    identities: std::sync::Arc<Vec<Box<dyn age::Identity + Send + Sync>>>,
) -> anyhow::Result<String> {
    let artifact = work.path().join(&manifest.file);
    target.download(&manifest.file, &artifact).await?;
    let manifest = manifest.clone();
    let db = db.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (bytes, sha) = pack::hash_file(&artifact)?;
        if bytes != manifest.file_bytes || sha != manifest.file_sha256 {
            bail!(
                "{} does not match its manifest (size {bytes}, sha256 {sha}; the manifest says {} \
                 and {}): it is damaged or was altered",
                manifest.file,
                manifest.file_bytes,
                manifest.file_sha256
            );
        }
        if manifest.encrypted && identities.is_empty() {
            return Ok(
                "artifact size and sha256 ok; contents not checked (encrypted: pass --identity)"
                    .to_string(),
            );
        }
        let unpacked = pack::unpack(&artifact, &db, manifest.encrypted, &identities)?;
        let _ = std::fs::remove_file(&artifact);
        if unpacked.db_sha256 != manifest.db_sha256 || unpacked.db_bytes != manifest.db_bytes {
            bail!("the unpacked database does not match the manifest's sha256");
        }
        snapshot::check_file(&db)?;
        Ok(format!(
            "ok: sha256 and integrity_check pass ({} database)",
            human_bytes(manifest.db_bytes)
        ))
    })
    .await
    .context("the verify task failed")?
}
