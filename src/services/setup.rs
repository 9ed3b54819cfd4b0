//! First-run setup. While no enabled admin exists, `serve` makes a random single-use token,
//! keeps only its SHA-256 and expiry in `setup.token` (mode 0600, in the data dir) and prints
//! a link carrying it. Whoever opens the link in time creates the first admin; the file is
//! removed then, and whenever an admin exists at start. A restart makes a new token.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::app::App;
use crate::auth::{Role, User, audit, sessions, users};
use crate::error::AppError;
use crate::services::identity;

/// How long a setup link works.
pub const SETUP_TTL: TimeDelta = TimeDelta::hours(1);

fn hash_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("setup token file: {e}")))
}

fn write_token_file(path: PathBuf, content: String) -> std::io::Result<()> {
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()
}

fn remove_token_file(path: PathBuf) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

async fn admin_exists(app: &App) -> Result<bool, AppError> {
    app.db
        .read(|conn| Ok::<_, AppError>(users::count_admins(conn)? > 0))
        .await
}

/// At start: a fresh setup token when no admin exists (the caller prints the link), else
/// `None` and no token file.
pub async fn prepare(app: &App) -> Result<Option<String>, AppError> {
    let path = app.settings.data_dir.setup_token();
    if admin_exists(app).await? {
        blocking(move || remove_token_file(path)).await?;
        return Ok(None);
    }
    let token = sessions::random_token();
    let expires = crate::time::format(Utc::now() + SETUP_TTL);
    let content = format!("{} {}\n", hash_hex(&token), expires);
    blocking(move || write_token_file(path, content)).await?;
    Ok(Some(token))
}

/// Whether `token` is the current, unexpired setup token and no admin exists yet.
pub async fn is_valid(app: &App, token: &str) -> Result<bool, AppError> {
    let path = app.settings.data_dir.setup_token();
    let content = blocking(move || match std::fs::read_to_string(path) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    let Some(content) = content else {
        return Ok(false);
    };
    let mut parts = content.split_whitespace();
    let (Some(hash), Some(expires)) = (parts.next(), parts.next()) else {
        return Ok(false);
    };
    let live = crate::time::parse(expires).is_some_and(|t: DateTime<Utc>| t > Utc::now());
    Ok(live && hash == hash_hex(token) && !admin_exists(app).await?)
}

/// Create the first admin with the setup token; the token is used up.
pub async fn complete(
    app: &App,
    token: &str,
    email: &str,
    password: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<User, AppError> {
    if !is_valid(app, token).await? {
        return Err(AppError::NotFound);
    }
    let email = users::normalize_email(email)?;
    identity::check_policy(password)?;
    let phc = identity::hash(password.to_string(), app.settings.password.clone()).await?;
    let ip = ip.map(|i| i.to_string());
    let user = app
        .db
        .write(move |conn| {
            // Checked again inside the transaction: two people racing with the same link
            // cannot both become admin.
            if users::count_admins(conn)? > 0 {
                return Err(AppError::NotFound);
            }
            let user = users::insert(conn, &email, &phc, Role::Admin)?;
            audit::record(
                conn,
                Some(&user.id),
                ip.as_deref(),
                "setup.admin",
                json!({ "user": user.id, "email": user.email }),
            )?;
            Ok::<_, AppError>(user)
        })
        .await?;
    let path = app.settings.data_dir.setup_token();
    blocking(move || remove_token_file(path)).await?;
    Ok(user)
}
