//! Where backups are stored: a local directory and an S3-compatible bucket, both through
//! `object_store`, so uploading, listing, downloading and deleting are one code path. Uploads
//! are atomic on both: a local file appears under its name only when complete (written under
//! a staging name, then renamed), an S3 multipart upload only when completed.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use tokio::io::AsyncWriteExt;

use super::manifest::Manifest;
use crate::config::Settings;

/// A stored object's bytes, chunk by chunk.
pub type ByteStream =
    futures_util::stream::BoxStream<'static, Result<bytes::Bytes, object_store::Error>>;

/// One place backups are kept.
#[derive(Debug, Clone)]
pub struct Target {
    /// `local` or `s3`: what `--from` and the API call it.
    pub name: &'static str,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// For the local target: its directory, to sync written files to disk.
    local_dir: Option<PathBuf>,
}

/// An object on a target.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    pub bytes: u64,
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// The names of the configured targets, local first (without setting them up).
pub fn configured_names(settings: &Settings) -> Vec<&'static str> {
    let backup = &settings.backup;
    let local = !backup.local_dir.as_os_str().is_empty();
    [(local, "local"), (backup.s3.is_some(), "s3")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
}

/// The configured targets, local first.
pub fn configured(settings: &Settings) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    let backup = &settings.backup;
    if !backup.local_dir.as_os_str().is_empty() {
        targets.push(Target::local(
            &settings.data_dir.resolve(&backup.local_dir),
        )?);
    }
    if let Some(s3) = &backup.s3 {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&s3.bucket)
            .with_region(&s3.region)
            .with_virtual_hosted_style_request(!s3.path_style)
            // A failing upload is retried a few times here, then the job's own retries
            // (minutes apart) take over; the default would keep one run busy for 3 minutes.
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
            });
        if let Some(endpoint) = &s3.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(key) = &s3.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &s3.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().context("configuring the S3 target")?;
        targets.push(Target {
            name: "s3",
            store: Arc::new(store),
            prefix: ObjectPath::from(s3.prefix.trim_matches('/')),
            local_dir: None,
        });
    }
    Ok(targets)
}

impl Target {
    /// A directory on this machine (created if missing).
    pub fn local(dir: &Path) -> anyhow::Result<Target> {
        // Backups hold every record and credential hash: only the owner may read them.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening {}", dir.display()))?
            .with_automatic_cleanup(true);
        Ok(Target {
            name: "local",
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            local_dir: Some(dir.to_path_buf()),
        })
    }

    /// Whether this is the local directory target.
    pub fn is_local(&self) -> bool {
        self.local_dir.is_some()
    }

    /// For the local target: the file that holds `name`.
    pub fn local_path(&self, name: &str) -> Option<PathBuf> {
        self.local_dir.as_ref().map(|d| d.join(name))
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    /// Store the file at `from` as `name`, streamed; returns the stored size.
    pub async fn upload(&self, name: &str, from: &Path) -> anyhow::Result<u64> {
        let what = || format!("uploading {name} to the {} target", self.name);
        let mut file = tokio::fs::File::open(from).await.with_context(what)?;
        // Parts of 8 MiB: S3's minimum is 5 MiB; two parts in flight bound the memory used.
        let mut writer = BufWriter::with_capacity(self.store.clone(), self.path(name), 8 << 20)
            .with_max_concurrency(2);
        let sent = match tokio::io::copy(&mut file, &mut writer).await {
            Ok(n) => n,
            Err(e) => {
                // Before `shutdown`, abort drops the parts already sent.
                let _ = writer.abort().await;
                return Err(readable(&e)).with_context(what);
            }
        };
        // No abort here: a failed shutdown has already aborted its multipart upload
        // (`WriteMultipart::finish` does), and `BufWriter::abort` panics once shut down.
        writer
            .shutdown()
            .await
            .map_err(|e| readable(&e))
            .with_context(what)?;
        self.sync_local(name).await.with_context(what)?;
        Ok(sent)
    }

    /// Store a small object (a manifest) in one request.
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let what = || format!("writing {name} to the {} target", self.name);
        self.store
            .put(&self.path(name), PutPayload::from(bytes))
            .await
            .map_err(|e| readable(&e))
            .with_context(what)?;
        self.sync_local(name).await.with_context(what)
    }

    /// The stored size of `name`, or `None` when it is not there.
    pub async fn size(&self, name: &str) -> anyhow::Result<Option<u64>> {
        match self.store.head(&self.path(name)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(readable(&e))
                .with_context(|| format!("looking for {name} on the {} target", self.name)),
        }
    }

    /// Read a small object (a manifest) whole; `None` when it is not there.
    pub async fn find(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let what = || format!("reading {name} from the {} target", self.name);
        let got = match self.store.get(&self.path(name)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(readable(&e)).with_context(what),
        };
        let bytes = got.bytes().await.map_err(|e| readable(&e));
        Ok(Some(bytes.with_context(what)?.to_vec()))
    }

    /// Stream `name` into the new file `to`.
    pub async fn download(&self, name: &str, to: &Path) -> anyhow::Result<()> {
        let what = || format!("downloading {name} from the {} target", self.name);
        let (_, mut stream) = self.open(name).await?;
        let mut file = tokio::fs::File::create(to).await.with_context(what)?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(|e| readable(&e)).with_context(what)?)
                .await
                .with_context(what)?;
        }
        file.sync_all().await.with_context(what)?;
        Ok(())
    }

    /// `name`'s stored size and its bytes as a stream of chunks (for downloads over HTTP).
    pub async fn open(&self, name: &str) -> anyhow::Result<(u64, ByteStream)> {
        let got = self
            .store
            .get(&self.path(name))
            .await
            .map_err(|e| readable(&e))
            .with_context(|| format!("reading {name} from the {} target", self.name))?;
        Ok((got.meta.size, got.into_stream()))
    }

    /// Every object under the target's prefix (not below it).
    pub async fn list(&self) -> anyhow::Result<Vec<Stored>> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| readable(&e))
            .with_context(|| format!("listing the {} target", self.name))?;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                Some(Stored {
                    name: meta.location.filename()?.to_string(),
                    bytes: meta.size,
                    modified: meta.last_modified,
                })
            })
            .collect())
    }

    /// Every readable manifest, newest first. Unreadable ones are logged and skipped.
    pub async fn manifests(&self) -> anyhow::Result<Vec<Manifest>> {
        let names: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .map(|s| s.name)
            .filter(|n| n.ends_with(".json") && Manifest::id_of(n).is_some())
            .collect();
        let mut found: Vec<Manifest> = futures_util::stream::iter(names)
            .map(|name| async move {
                let read = self.find(&name).await.and_then(|bytes| {
                    bytes
                        .map(|b| serde_json::from_slice::<Manifest>(&b))
                        .transpose()
                        .with_context(|| format!("{name} is not a backup manifest"))
                });
                match read {
                    Ok(Some(m)) if Manifest::name_for(&m.id) == name => Some(m),
                    // Deleted since the listing (retention), or another backup's manifest.
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(target_name = self.name, error = %format!("{e:#}"), "skipping a manifest");
                        None
                    }
                }
            })
            .buffer_unordered(8)
            .filter_map(|m| async move { m })
            .collect()
            .await;
        found.sort_by(Manifest::newest_first);
        Ok(found)
    }

    /// Remove `name` (missing is fine).
    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(readable(&e))
                .with_context(|| format!("deleting {name} from the {} target", self.name)),
        }
    }

    /// Make a file written to the local target private, and flush it and its directory
    /// entry to disk.
    async fn sync_local(&self, name: &str) -> std::io::Result<()> {
        let Some(dir) = self.local_dir.clone() else {
            return Ok(());
        };
        let file = dir.join(name);
        tokio::task::spawn_blocking(move || {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            std::fs::File::open(file)?.sync_all()?;
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// An object store error as one message. object_store's errors repeat their source in their
/// own text, so `{:#}` printed the same cause several times over; here each distinct cause
/// appears once, down to the root (`Connection refused`).
fn readable(e: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    anyhow::Error::msg(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_upload_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        let target = Target::local(&backups).unwrap();
        let artifact = dir.path().join("artifact");
        std::fs::write(&artifact, vec![7u8; 100_000]).unwrap();
        // A directory where the artifact goes: the upload's final rename fails.
        std::fs::create_dir_all(backups.join("taken/inside")).unwrap();
        let err = target.upload("taken", &artifact).await.unwrap_err();
        assert!(format!("{err:#}").contains("uploading taken"), "{err:#}");
        let mut left: Vec<String> = std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["taken"]);
    }
}
