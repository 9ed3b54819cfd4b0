//! Configuration: compiled defaults ← `onebox.toml` ← `ONEBOX_*` environment variables, read by
//! figment into a `RawConfig` (unknown keys are errors), then checked into `Settings`, which is
//! what the rest of onebox receives. Nothing reads configuration from anywhere else.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::auth::PasswordParams;
use crate::auth::throttle::ThrottleSettings;

mod jobs;
pub use jobs::{BackupConfig, JobsConfig, S3Config, check_cron};
use jobs::{check_backup, check_jobs};

/// The config file looked for in the data dir when `--config` is not given.
pub const CONFIG_FILE_NAME: &str = "onebox.toml";

/// Every path inside the data directory, named in one place.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("onebox.db")
    }
    pub fn secret_key(&self) -> PathBuf {
        self.root.join("secret.key")
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE_NAME)
    }
    /// Held (flock) by a running server, so `onebox restore` can refuse to swap under it.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("onebox.lock")
    }
    /// Scratch space for snapshots and restores, on the same file system as the database.
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// A path from the config: relative paths are inside the data dir.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        }
    }
    /// The first-run setup token (its hash and expiry), present only while no admin exists.
    pub fn setup_token(&self) -> PathBuf {
        self.root.join("setup.token")
    }
}

/// How hard commits are pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a crashed process loses nothing acknowledged; a power
    /// cut can lose the last commits (never corrupts).
    Normal,
    /// `synchronous=FULL`: every acknowledged commit survives power loss too.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The file-level configuration, exactly as written by an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub address: IpAddr,
    pub port: u16,
    pub durability: Durability,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `onebox=debug,info`.
    pub log_level: String,
    /// Proxies whose `X-Forwarded-For` is believed; nobody else's is.
    pub trusted_proxies: Vec<IpAddr>,
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Largest `limit` a list request may ask for.
    pub max_page_size: u32,
    pub default_page_size: u32,
    /// Lifetime of tokens issued by `POST /api/auth/login`, in hours.
    pub login_token_hours: u32,
    /// A browser session ends after this many hours without a request.
    pub session_idle_hours: u32,
    /// A browser session ends this many hours after sign-in, however active.
    pub session_max_hours: u32,
    /// Mark cookies `Secure`. Unset: only when onebox serves TLS itself; set `true` behind a
    /// TLS-terminating proxy.
    pub secure_cookies: Option<bool>,
    /// Reader connections (and threads serving them). Each costs ~15–25 MB of RSS under load
    /// (SQLite page cache plus allocator arenas); 2 suits the 2-core boxes onebox targets.
    pub readers: u32,
    /// Threads that run HTTP requests (the async runtime's workers); one per core by default.
    /// SQLite work runs on the reader threads and the writer, so fewer can suit a read-heavy
    /// box: on 2 cores one worker took 8–15% less CPU per point read or list than two, but
    /// `/healthz`, which is all async work, ran at about 0.83 × the rate (bench/FINDINGS.md).
    pub workers: u32,
    pub tls: Option<TlsConfig>,
    pub jobs: JobsConfig,
    pub backup: BackupConfig,
}

/// One worker per core this process may use, as tokio's own default (within the 256 allowed).
fn default_workers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores.min(256)).unwrap_or(256)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub certs: PathBuf,
    pub key: PathBuf,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::from([127, 0, 0, 1]),
            port: 8000,
            durability: Durability::Normal,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_page_size: 500,
            default_page_size: 20,
            login_token_hours: 24 * 7,
            session_idle_hours: 12,
            session_max_hours: 24 * 7,
            secure_cookies: None,
            readers: 2,
            workers: default_workers(),
            tls: None,
            jobs: JobsConfig::default(),
            backup: BackupConfig::default(),
        }
    }
}

/// Validated settings handed to the server.
#[derive(Clone)]
pub struct Settings {
    pub data_dir: DataDir,
    pub address: IpAddr,
    pub port: u16,
    pub durability: Durability,
    pub log_format: LogFormat,
    pub log_level: String,
    pub trusted_proxies: Vec<IpAddr>,
    pub max_body_bytes: u64,
    pub max_page_size: u32,
    pub default_page_size: u32,
    pub login_token_ttl: Duration,
    pub session_idle: Duration,
    pub session_max: Duration,
    /// Whether cookies carry `Secure` (resolved from `secure_cookies` and TLS).
    pub secure_cookies: bool,
    pub readers: u32,
    pub workers: u32,
    pub tls: Option<TlsConfig>,
    pub jobs: JobsConfig,
    pub backup: BackupConfig,
    pub password: PasswordParams,
    pub throttle: ThrottleSettings,
    /// How long a bearer token lookup is reused (0 = never cached).
    pub token_cache_ttl: Duration,
    /// The config file that was read, if any (for `config check`).
    pub source: Option<PathBuf>,
    /// The configuration these settings were built from (for `config check`).
    raw: RawConfig,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("address", &self.address)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot be used; the message is meant for an admin.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Load from `config_file` (or `<data_dir>/onebox.toml` when present) and the environment.
    pub fn load(data_dir: &Path, config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let data = DataDir::new(data_dir);
        let file = match config_file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => Some(path.to_path_buf()),
            None => Some(data.config_file()).filter(|p| p.is_file()),
        };
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path));
        }
        // ONEBOX_DATA_DIR and ONEBOX_CONFIG are read by the CLI, not part of the file keys.
        figment = figment.merge(
            Env::prefixed("ONEBOX_")
                .ignore(&["data_dir", "config"])
                .split("__"),
        );
        let raw: RawConfig = figment.extract().map_err(|e| {
            let mut msg = String::from("invalid configuration: ");
            msg.push_str(&e.to_string());
            ConfigError(msg)
        })?;
        let mut settings = Self::from_raw(data, raw)?;
        settings.source = file;
        Ok(settings)
    }

    /// Check a raw config and build settings from it.
    pub fn from_raw(data_dir: DataDir, raw: RawConfig) -> Result<Self, ConfigError> {
        let fail = |m: &str| Err(ConfigError(format!("invalid configuration: {m}")));
        if raw.max_body_bytes < 1024 {
            return fail("max_body_bytes must be at least 1024");
        }
        if raw.default_page_size == 0 || raw.max_page_size < raw.default_page_size {
            return fail("default_page_size must be between 1 and max_page_size");
        }
        if raw.max_page_size > 10_000 {
            return fail("max_page_size must be at most 10000");
        }
        if raw.login_token_hours == 0 {
            return fail("login_token_hours must be at least 1");
        }
        if raw.session_idle_hours == 0 || raw.session_max_hours < raw.session_idle_hours {
            return fail("session_idle_hours must be between 1 and session_max_hours");
        }
        if raw.readers == 0 || raw.readers > 64 {
            return fail("readers must be between 1 and 64");
        }
        if raw.workers == 0 || raw.workers > 256 {
            return fail("workers must be between 1 and 256");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.log_level) {
            return fail(&format!("log_level: {e}"));
        }
        if let Some(tls) = &raw.tls {
            for p in [&tls.certs, &tls.key] {
                if !p.is_file() {
                    return fail(&format!("tls file {} does not exist", p.display()));
                }
            }
        }
        check_jobs(&raw.jobs).map_err(|m| ConfigError(format!("invalid configuration: {m}")))?;
        check_backup(&raw.backup)
            .map_err(|m| ConfigError(format!("invalid configuration: {m}")))?;
        Ok(Self {
            raw: raw.clone(),
            data_dir,
            address: raw.address,
            port: raw.port,
            durability: raw.durability,
            log_format: raw.log_format,
            log_level: raw.log_level,
            trusted_proxies: raw.trusted_proxies,
            max_body_bytes: raw.max_body_bytes,
            max_page_size: raw.max_page_size,
            default_page_size: raw.default_page_size,
            login_token_ttl: Duration::from_secs(u64::from(raw.login_token_hours) * 3600),
            session_idle: Duration::from_secs(u64::from(raw.session_idle_hours) * 3600),
            session_max: Duration::from_secs(u64::from(raw.session_max_hours) * 3600),
            secure_cookies: raw.secure_cookies.unwrap_or(raw.tls.is_some()),
            readers: raw.readers,
            workers: raw.workers,
            tls: raw.tls,
            jobs: raw.jobs,
            backup: raw.backup,
            password: PasswordParams::default(),
            throttle: ThrottleSettings::default(),
            token_cache_ttl: Duration::from_secs(2),
            source: None,
        })
    }

    /// Defaults for a data dir, as `onebox serve` with no config would use.
    pub fn defaults(data_dir: impl Into<PathBuf>) -> Self {
        // The compiled defaults are checked by the tests, so this cannot fail.
        #[allow(clippy::expect_used)]
        Self::from_raw(DataDir::new(data_dir), RawConfig::default())
            .expect("compiled defaults are valid")
    }

    /// The effective configuration as TOML, with secrets redacted, for `onebox config check`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("# data dir: {}\n", self.data_dir.root().display()));
        out.push_str(&format!(
            "# config file: {}\n",
            self.source
                .as_ref()
                .map_or("(none)".to_string(), |p| p.display().to_string())
        ));
        out.push_str(&format!(
            "# secret key: {} (redacted)\n",
            self.data_dir.secret_key().display()
        ));
        match toml_string(&self.raw) {
            Ok(s) => out.push_str(&s),
            Err(e) => out.push_str(&format!("# could not render: {e}\n")),
        }
        out
    }
}

fn toml_string(raw: &RawConfig) -> Result<String, String> {
    let mut shown = raw.clone();
    if let Some(s3) = &mut shown.backup.s3
        && s3.secret_access_key.is_some()
    {
        s3.secret_access_key = Some("(redacted)".into());
    }
    if shown.jobs.alert_webhook.is_some() {
        // Webhook URLs often carry a token in their path.
        shown.jobs.alert_webhook = Some("(redacted)".into());
    }
    toml::to_string(&shown).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_defaults_are_valid() {
        let s = Settings::defaults("/tmp/x");
        assert_eq!(s.port, 8000);
        assert_eq!(s.data_dir.database(), PathBuf::from("/tmp/x/onebox.db"));
        let cores = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(s.workers, cores.min(256));
    }

    #[test]
    fn workers_must_be_between_1_and_256() {
        let with = |workers| {
            let raw = RawConfig {
                workers,
                ..RawConfig::default()
            };
            Settings::from_raw(DataDir::new("/tmp/x"), raw).map_err(|e| e.to_string())
        };
        assert_eq!(with(3).unwrap().workers, 3);
        for bad in [0, 257] {
            let err = with(bad).unwrap_err();
            assert!(err.contains("workers must be between 1 and 256"), "{err}");
        }
    }

    #[test]
    fn describe_redacts_the_s3_secret_and_the_webhook() {
        let mut raw = RawConfig::default();
        raw.backup.s3 = Some(S3Config {
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("very-secret-key".into()),
            path_style: true,
        });
        raw.jobs.alert_webhook = Some("https://hooks.example/T0KEN".into());
        let text = Settings::from_raw(DataDir::new("/tmp/x"), raw)
            .unwrap()
            .describe();
        assert!(
            !text.contains("very-secret-key") && !text.contains("T0KEN"),
            "{text}"
        );
        assert!(text.contains("bucket = \"b\""), "{text}");
    }

    #[test]
    fn describe_lists_keys() {
        let s = Settings::defaults("/tmp/x");
        let text = s.describe();
        assert!(text.contains("port = 8000"), "{text}");
        assert!(text.contains("durability = \"normal\""), "{text}");
    }
}
