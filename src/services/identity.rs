//! Identity: who a bearer token belongs to, sign-in with throttling, users and API tokens,
//! and the audit trail of those actions. Repositories live in `auth`; this file decides.

use std::net::{IpAddr, Ipv4Addr};

use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::auth::sessions::SessionRow;
use crate::auth::{
    AuthError, PasswordParams, Role, TokenKind, TokenRow, User, audit, password, throttle, tokens,
    users,
};
use crate::db::DbError;
use crate::error::AppError;

/// The caller of a request: a user and the credential they used (a bearer token or a
/// browser session), or nobody.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Option<User>,
    pub token: Option<TokenRow>,
    pub session: Option<SessionRow>,
    pub ip: Option<IpAddr>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Caller {
            user: None,
            token: None,
            session: None,
            ip: None,
        }
    }

    /// A caller acting as `user` (the CLI acts as no one: `anonymous`).
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.id.as_str())
    }

    /// Who to name in the audit trail.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id().map(str::to_string),
            ip: self.ip.map(|i| i.to_string()),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role == Role::Admin && !u.disabled)
    }
}

/// The audit trail's view of a caller: owned, so it can move into a write job.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub ip: Option<String>,
}

impl Actor {
    /// Append an audit entry inside the caller's transaction.
    pub fn record(
        &self,
        conn: &rusqlite::Connection,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        audit::record(
            conn,
            self.user_id.as_deref(),
            self.ip.as_deref(),
            action,
            detail,
        )?;
        Ok(())
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::NotFound => AppError::NotFound,
            AuthError::EmailTaken => AppError::Conflict {
                detail: "another user has this email address".into(),
                field: Some("email".into()),
            },
            AuthError::InvalidEmail(why) => AppError::field("email", format!("invalid: {why}")),
            AuthError::LastAdmin => AppError::conflict(
                "this would leave no enabled admin; make another user admin first",
            ),
            AuthError::Hash(e) => AppError::Internal(format!("password hashing: {e}")),
            AuthError::Sqlite(e) => DbError::from(e).into(),
        }
    }
}

/// A readable one-line description of an error, for the CLI.
pub fn describe(e: &AppError) -> String {
    match e {
        AppError::Validation { errors, .. } => errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; "),
        AppError::NotFound => "no such user".into(),
        other => other.to_string(),
    }
}

/// Resolve a bearer secret. Unknown, revoked or expired tokens and disabled users are 401.
pub async fn authenticate(app: &App, secret: &str) -> Result<Caller, AppError> {
    let now = crate::time::now();
    let found = match app.token_cache.get(secret, &now) {
        Some(hit) => Some(hit),
        None => {
            let s = secret.to_string();
            let found = app
                .db
                .read(move |conn| Ok::<_, AppError>(tokens::find_by_secret(conn, &s, Utc::now())?))
                .await?;
            if let Some((token, user)) = &found {
                app.token_cache.put(secret, token.clone(), user.clone());
            }
            found
        }
    };
    let Some((token, user)) = found else {
        return Err(AppError::Unauthorized(
            "the token is invalid, expired or revoked".into(),
        ));
    };
    // Record last use at most once a minute per token, without delaying the request.
    let stale = token
        .last_used
        .as_deref()
        .and_then(crate::time::parse)
        .is_none_or(|t| Utc::now() - t > chrono::TimeDelta::seconds(60));
    if stale {
        app.token_cache.touched(&token.id, &now);
        let db = app.db.clone();
        let id = token.id.clone();
        tokio::spawn(async move {
            let _ = db
                .write(move |conn| {
                    tokens::touch_last_used(conn, &id, Utc::now()).map_err(AppError::from)
                })
                .await;
        });
    }
    Ok(Caller {
        user: Some(user),
        token: Some(token),
        session: None,
        ip: None,
    })
}

/// Hash a password on a blocking thread (argon2 takes tens of milliseconds by design).
pub(crate) async fn hash(password: String, params: PasswordParams) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || password::hash_password(&password, &params))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(AppError::from)
}

pub(crate) fn check_policy(password: &str) -> Result<(), AppError> {
    password::check_password_policy(password).map_err(|m| AppError::field("password", m))
}

/// Write an audit entry in its own transaction.
pub async fn audit(app: &App, caller: &Caller, action: &'static str, detail: serde_json::Value) {
    let actor = caller.actor();
    let result = app
        .db
        .write(move |conn| actor.record(conn, action, detail))
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, action, "could not write the audit trail");
    }
}

#[derive(Debug, Serialize)]
pub struct LoginResult {
    pub token: String,
    pub expires: String,
    pub user: User,
}

/// Check an email and password, with throttling. Failures are counted (and committed) before
/// answering; the answer never says whether the account exists. On success nothing is
/// written yet: the caller records it with the credential it issues (`record_sign_in`).
pub(crate) async fn check_credentials(
    app: &App,
    email: &str,
    password: &str,
    ip: IpAddr,
) -> Result<User, AppError> {
    let email = users::normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
    let settings = app.settings.throttle;
    let (e2, s2) = (email.clone(), settings);
    let (blocked, account) = app
        .db
        .read(move |conn| {
            let blocked = throttle::check(conn, &s2, &e2, ip, Utc::now())?;
            let account = users::find_for_login(conn, &e2)?;
            Ok::<_, AppError>((blocked, account))
        })
        .await?;
    if let Some(retry) = blocked {
        return Err(AppError::TooManyRequests {
            retry_after: retry.0,
        });
    }
    let params = app.settings.password.clone();
    let attempt = password.to_string();
    let verified = tokio::task::spawn_blocking(move || match &account {
        Some((user, phc)) if !user.disabled => {
            password::verify_password(&attempt, phc).then(|| user.clone())
        }
        _ => {
            password::dummy_verify(&attempt, &params);
            None
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?;
    match verified {
        Some(user) => Ok(user),
        None => {
            let ip_text = ip.to_string();
            app.db
                .write(move |conn| {
                    throttle::record_failure(conn, &settings, &email, ip, Utc::now())?;
                    audit::record(
                        conn,
                        None,
                        Some(&ip_text),
                        "auth.login_failed",
                        json!({ "email": email }),
                    )?;
                    Ok::<_, AppError>(())
                })
                .await?;
            Err(AppError::Unauthorized("invalid email or password".into()))
        }
    }
}

/// Inside the transaction that issues a credential: clear the throttle and audit the sign-in.
pub(crate) fn record_sign_in(
    conn: &rusqlite::Connection,
    user: &User,
    ip: IpAddr,
    via: &str,
) -> Result<(), AppError> {
    throttle::record_success(conn, &user.email, ip)?;
    audit::record(
        conn,
        Some(&user.id),
        Some(&ip.to_string()),
        "auth.login",
        json!({ "via": via }),
    )?;
    Ok(())
}

/// The address to count attempts against when the client's is unknown.
pub(crate) fn ip_or_unspecified(ip: Option<IpAddr>) -> IpAddr {
    ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Sign in with email and password for a bearer login token. A user with TOTP must also send
/// `code`: a current authenticator code or an unused recovery code.
pub async fn login(
    app: &App,
    email: &str,
    password: &str,
    code: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<LoginResult, AppError> {
    let ip = ip_or_unspecified(ip);
    let user = check_credentials(app, email, password, ip).await?;
    crate::services::totp::require_for_login(app, &user, code, Some(ip)).await?;
    let ttl = chrono::TimeDelta::from_std(app.settings.login_token_ttl)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let expires = Utc::now() + ttl;
    let u2 = user.clone();
    let (row, secret) = app
        .db
        .write(move |conn| {
            let created = tokens::create(conn, &u2.id, TokenKind::Login, "login", Some(expires))?;
            record_sign_in(conn, &u2, ip, "api")?;
            Ok::<_, AppError>(created)
        })
        .await?;
    Ok(LoginResult {
        token: secret.expose().to_string(),
        expires: row.expires.unwrap_or_default(),
        user,
    })
}

/// Revoke the token the caller used.
pub async fn logout(app: &App, caller: &Caller) -> Result<(), AppError> {
    let Some(token) = caller.token.clone() else {
        return Err(AppError::Unauthorized("not signed in".into()));
    };
    app.db
        .write(move |conn| Ok::<_, AppError>(tokens::delete_any(conn, &token.id)?))
        .await?;
    app.token_cache.clear();
    audit(app, caller, "auth.logout", json!({})).await;
    Ok(())
}

/// Create a user (by an admin, or by the CLI when `actor` is `None`).
pub async fn create_user(
    app: &App,
    actor: Option<&Caller>,
    email: &str,
    password: &str,
    role: Role,
) -> Result<User, AppError> {
    let email = users::normalize_email(email)?;
    check_policy(password)?;
    let phc = hash(password.to_string(), app.settings.password.clone()).await?;
    let user = app
        .db
        .write(move |conn| Ok::<_, AppError>(users::insert(conn, &email, &phc, role)?))
        .await?;
    let caller = actor.cloned().unwrap_or_else(Caller::anonymous);
    audit(
        app,
        &caller,
        "user.create",
        json!({ "user": user.id, "email": user.email, "role": role.as_str() }),
    )
    .await;
    Ok(user)
}

pub async fn list_users(
    app: &App,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<User>, AppError> {
    app.db
        .read(move |conn| Ok::<_, AppError>(users::list(conn, after.as_deref(), limit)?))
        .await
}

pub async fn get_user(app: &App, id: &str) -> Result<User, AppError> {
    let id = id.to_string();
    app.db
        .read(move |conn| Ok::<_, AppError>(users::get(conn, &id)?))
        .await
}

/// Changes an admin may make to a user.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub email: Option<String>,
    pub password: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

pub async fn update_user(
    app: &App,
    caller: &Caller,
    id: &str,
    changes: UserChanges,
) -> Result<User, AppError> {
    let password_hash = match &changes.password {
        Some(p) => {
            check_policy(p)?;
            Some(hash(p.clone(), app.settings.password.clone()).await?)
        }
        None => None,
    };
    let update = users::UserUpdate {
        email: changes.email.clone(),
        role: changes.role,
        disabled: changes.disabled,
        password_hash,
        ..users::UserUpdate::default()
    };
    let id2 = id.to_string();
    let user = app
        .db
        .write(move |conn| Ok::<_, AppError>(users::update(conn, &id2, &update)?))
        .await?;
    app.token_cache.clear();
    audit(
        app,
        caller,
        "user.update",
        json!({
            "user": user.id,
            "email": changes.email.is_some(),
            "password": changes.password.is_some(),
            "role": changes.role.map(Role::as_str),
            "disabled": changes.disabled,
        }),
    )
    .await;
    Ok(user)
}

pub async fn delete_user(app: &App, caller: &Caller, id: &str) -> Result<(), AppError> {
    let versions = app.collections.affected_by_delete("users");
    let id2 = id.to_string();
    app.db
        .write(move |conn| {
            users::delete(conn, &id2).map_err(|e| match e {
                AuthError::Sqlite(s) => match DbError::from(s) {
                    DbError::ForeignKey => AppError::conflict(
                        "records refer to this user; delete or change them first",
                    ),
                    other => other.into(),
                },
                other => other.into(),
            })
        })
        .await?;
    app.token_cache.clear();
    for v in versions {
        v.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    audit(app, caller, "user.delete", json!({ "user": id })).await;
    Ok(())
}

/// A freshly created token: its plaintext (shown once) and its listing.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenRow,
}

pub async fn list_tokens(app: &App, caller: &Caller) -> Result<Vec<TokenRow>, AppError> {
    let user_id = caller
        .user_id()
        .ok_or_else(|| AppError::Unauthorized("not signed in".into()))?
        .to_string();
    app.db
        .read(move |conn| Ok::<_, AppError>(tokens::list_api_tokens(conn, &user_id)?))
        .await
}

/// Create an API token for `user_id`; `expires` like `30d` (none = never).
async fn create_api_token(
    app: &App,
    user_id: String,
    name: &str,
    expires: Option<&str>,
) -> Result<CreatedToken, AppError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::field("name", "must be 1 to 100 characters"));
    }
    let expires = match expires {
        Some(e) => Some(
            Utc::now() + tokens::parse_duration(e).map_err(|m| AppError::field("expires", m))?,
        ),
        None => None,
    };
    let (info, secret) = app
        .db
        .write(move |conn| {
            let created = tokens::create(conn, &user_id, TokenKind::Api, &name, expires)?;
            audit::record(
                conn,
                Some(&user_id),
                None,
                "token.create",
                json!({ "token": created.0.id, "name": created.0.name }),
            )?;
            Ok::<_, AppError>(created)
        })
        .await?;
    Ok(CreatedToken {
        token: secret.expose().to_string(),
        info,
    })
}

pub async fn create_token(
    app: &App,
    caller: &Caller,
    name: &str,
    expires: Option<&str>,
) -> Result<CreatedToken, AppError> {
    let user_id = caller
        .user_id()
        .ok_or_else(|| AppError::Unauthorized("not signed in".into()))?
        .to_string();
    create_api_token(app, user_id, name, expires).await
}

/// The CLI's `token create --email`.
pub async fn create_token_for_email(
    app: &App,
    email: &str,
    name: &str,
    expires: Option<&str>,
) -> Result<CreatedToken, AppError> {
    let email = users::normalize_email(email)?;
    let user = app
        .db
        .read(move |conn| Ok::<_, AppError>(users::find_by_email(conn, &email)?))
        .await?
        .ok_or(AppError::NotFound)?;
    create_api_token(app, user.id, name, expires).await
}

/// Revoke one of the caller's tokens (admins may revoke anyone's).
pub async fn delete_token(app: &App, caller: &Caller, id: &str) -> Result<(), AppError> {
    let user_id = caller
        .user_id()
        .ok_or_else(|| AppError::Unauthorized("not signed in".into()))?
        .to_string();
    let admin = caller.is_admin();
    let id2 = id.to_string();
    let deleted = app
        .db
        .write(move |conn| {
            let deleted = if admin {
                tokens::delete_any(conn, &id2)?
            } else {
                tokens::delete(conn, &id2, &user_id)?
            };
            Ok::<_, AppError>(deleted)
        })
        .await?;
    app.token_cache.clear();
    if !deleted {
        return Err(AppError::NotFound);
    }
    audit(app, caller, "token.delete", json!({ "token": id })).await;
    Ok(())
}
