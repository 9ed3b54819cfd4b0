//! Start-up: the data dir, the secret key, the database, the schema cache — gathered into
//! `App`, the state every request sees — and `build_rocket`, which mounts the routes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use rocket::config::{Ident, LogLevel};
use rocket::data::{Limits, ToByteUnit};
use rocket::{Build, Rocket};

use crate::config::Settings;
use crate::db::Db;
use crate::error::AppError;
use crate::services::collections::Collections;

/// Everything a request handler may use.
pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub collections: Collections,
    /// Recently seen bearer tokens (see `services::token_cache`).
    pub token_cache: crate::services::token_cache::TokenCache,
    /// Scheduled and on-demand jobs (backup, prune, optimize).
    pub jobs: crate::jobs::Jobs,
    /// Distinguishes this process's ETags from an earlier one's (counters restart at start).
    pub boot: String,
}

/// Why onebox cannot start; one readable message for the admin.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("another onebox server is using the data directory {path} (it holds onebox.lock)")]
    Locked { path: String },
    #[error(transparent)]
    Open(#[from] crate::db::OpenError),
    #[error("loading collections: {0}")]
    Collections(AppError),
}

impl App {
    /// Prepare the data dir and open everything. Blocking work runs off the async threads.
    pub async fn start(settings: Settings) -> Result<App, StartError> {
        let s = settings.clone();
        let db = tokio::task::spawn_blocking(move || -> Result<Db, StartError> {
            prepare_data_dir(&s)?;
            Ok(Db::open(&s.data_dir.database(), s.durability, s.readers)?)
        })
        .await
        .map_err(|e| StartError::DataDir {
            path: settings.data_dir.root().display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })??;
        let collections = Collections::load(db.clone())
            .await
            .map_err(StartError::Collections)?;
        Ok(App {
            jobs: crate::jobs::Jobs::new(db.clone(), settings.clone()),
            token_cache: crate::services::token_cache::TokenCache::new(settings.token_cache_ttl),
            settings,
            db,
            collections,
            boot: format!("{:x}", rand::random::<u32>()),
        })
    }
}

/// Hold the data dir for this process: an exclusive lock on `onebox.lock`, kept until the
/// returned file is dropped. A second server, or `onebox restore`, is refused meanwhile.
pub fn lock_data_dir(settings: &Settings) -> Result<fs::File, StartError> {
    prepare_data_dir(settings)?;
    let path = settings.data_dir.lock_file();
    let err = |source| StartError::DataDir {
        path: path.display().to_string(),
        source,
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StartError::Locked {
            path: settings.data_dir.root().display().to_string(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(err(e)),
    }
}

/// Create the data dir (0700) and the secret key file (0600) if missing.
pub fn prepare_data_dir(settings: &Settings) -> Result<(), StartError> {
    let root = settings.data_dir.root();
    let err = |source| StartError::DataDir {
        path: root.display().to_string(),
        source,
    };
    if !root.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(err)?;
    }
    let key_path = settings.data_dir.secret_key();
    if !key_path.exists() {
        let key: [u8; 32] = rand::random();
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(err)?;
        file.write_all(hex::encode(key).as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    Ok(())
}

/// The Rocket instance for `app`: configuration, state, routes, catchers and fairings.
pub fn build_rocket(app: App) -> Rocket<Build> {
    let s = &app.settings;
    let limit = s.max_body_bytes.bytes();
    let mut config = rocket::Config {
        address: s.address,
        port: s.port,
        // Client addresses come from `ClientIp`, which trusts only configured proxies.
        ip_header: None,
        ident: Ident::none(),
        limits: Limits::default()
            .limit("json", limit)
            .limit("form", limit)
            .limit("data-form", limit)
            .limit("bytes", limit)
            .limit("string", limit),
        // onebox logs requests itself, through tracing.
        log_level: LogLevel::Off,
        cli_colors: false,
        keep_alive: 5,
        ..rocket::Config::default()
    };
    if let Some(tls) = &s.tls {
        config.tls = Some(rocket::config::TlsConfig::from_paths(&tls.certs, &tls.key));
    }
    let rocket = rocket::custom(config)
        // `SecurityHeaders` sets every security header; Rocket's default shield would check
        // for and set three more on every response (two of them the same as ours).
        .attach(rocket::shield::Shield::new())
        .attach(crate::observe::RequestLog)
        .attach(crate::api::SecurityHeaders);
    crate::web::mount(crate::api::mount(rocket)).manage(app)
}
