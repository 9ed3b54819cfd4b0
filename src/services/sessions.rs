//! Browser sessions: signing in with a password (a session waits for the second factor when
//! the user has TOTP), resolving the secret in a cookie to a `Caller`, signing out, and a
//! user's list of sessions. Storage is `auth::sessions`; the cookie itself belongs to the HTTP
//! layer.

use std::net::IpAddr;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::app::App;
use crate::auth::sessions::{self, NewSession, SessionRow, SessionSecret};
use crate::auth::{User, audit, users};
use crate::error::AppError;
use crate::services::identity::{self, Caller};

/// How long a password-only session may wait for its second factor.
pub const MFA_PENDING_TTL: TimeDelta = TimeDelta::minutes(10);

/// A session just started: the secret goes into the cookie, once.
#[derive(Debug)]
pub struct Started {
    pub user: User,
    pub session: SessionRow,
    pub secret: SessionSecret,
}

fn delta(d: std::time::Duration) -> Result<TimeDelta, AppError> {
    TimeDelta::from_std(d).map_err(|e| AppError::Internal(e.to_string()))
}

/// Sign in with email and password (throttled like the API's login). A user with TOTP gets a
/// session that is `mfa_pending` (10 minutes; it authorises nothing else) until
/// `services::totp` replaces it with a full one.
pub async fn sign_in(
    app: &App,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> Result<Started, AppError> {
    let ip = identity::ip_or_unspecified(ip);
    let user = identity::check_credentials(app, email, password, ip).await?;
    let full_expiry = Utc::now() + delta(app.settings.session_max)?;
    let (u2, ua) = (user.clone(), user_agent.map(str::to_string));
    let (session, secret) = app
        .db
        .write(move |conn| {
            let mfa_pending = users::has_totp(conn, &u2.id)?;
            // A session waiting for its second factor is good for that step only, briefly.
            let expires = if mfa_pending {
                Utc::now() + MFA_PENDING_TTL
            } else {
                full_expiry
            };
            let started = sessions::create(
                conn,
                &NewSession {
                    user_id: &u2.id,
                    mfa_pending,
                    expires,
                    ip: Some(&ip.to_string()),
                    user_agent: ua.as_deref(),
                },
            )?;
            if !mfa_pending {
                identity::record_sign_in(conn, &u2, ip, "browser")?;
            }
            Ok::<_, AppError>(started)
        })
        .await?;
    Ok(Started {
        user,
        session,
        secret,
    })
}

/// The live session behind a cookie secret and its user, pending second factor or not.
/// Activity is recorded at most once a minute, without delaying the request.
pub async fn resolve(app: &App, secret: &str) -> Result<Option<(SessionRow, User)>, AppError> {
    let idle = delta(app.settings.session_idle)?;
    let s = secret.to_string();
    let found = app
        .db
        .read(move |conn| Ok::<_, AppError>(sessions::find_by_secret(conn, &s, Utc::now(), idle)?))
        .await?;
    if let Some((session, _)) = &found {
        let stale = crate::time::parse(&session.last_seen)
            .is_none_or(|t| Utc::now() - t > sessions::LAST_SEEN_RESOLUTION);
        if stale {
            let (db, id) = (app.db.clone(), session.id.clone());
            tokio::spawn(async move {
                let _ = db
                    .write(move |conn| {
                        sessions::touch(conn, &id, Utc::now()).map_err(AppError::from)
                    })
                    .await;
            });
        }
    }
    Ok(found)
}

/// The caller a full (not pending) session stands for.
pub fn caller_of(session: SessionRow, user: User) -> Option<Caller> {
    if session.mfa_pending {
        return None;
    }
    Some(Caller {
        user: Some(user),
        token: None,
        session: Some(session),
        ip: None,
    })
}

/// End the caller's own session.
pub async fn sign_out(app: &App, caller: &Caller) -> Result<(), AppError> {
    let Some(session) = caller.session.clone() else {
        return Ok(());
    };
    app.db
        .write(move |conn| Ok::<_, AppError>(sessions::delete(conn, &session.id)?))
        .await?;
    identity::audit(app, caller, "auth.logout", json!({ "via": "browser" })).await;
    Ok(())
}

/// The signed-in user's sessions, newest first.
pub async fn list(app: &App, user_id: &str) -> Result<Vec<SessionRow>, AppError> {
    let id = user_id.to_string();
    app.db
        .read(move |conn| Ok::<_, AppError>(sessions::list_for_user(conn, &id)?))
        .await
}

/// End every session of `user_id` except `keep` (an admin's "end sessions", or a user's
/// "sign out everywhere else").
pub async fn end_all(
    app: &App,
    caller: &Caller,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, AppError> {
    let (id, keep) = (user_id.to_string(), keep.map(str::to_string));
    let actor = caller.actor();
    app.db
        .write(move |conn| {
            let n = sessions::delete_for_user(conn, &id, keep.as_deref())?;
            audit::record(
                conn,
                actor.user_id.as_deref(),
                actor.ip.as_deref(),
                "session.end_all",
                json!({ "user": id, "ended": n }),
            )?;
            Ok::<_, AppError>(n)
        })
        .await
}
