//! The TOTP second factor as users meet it: enrolling (a seed kept server side, its QR code,
//! the first code, recovery codes shown once), turning it off, and the second step of signing
//! in (site and API). Every code check is throttled like a password check — its own `totp:`
//! account key per client address, plus the address's counter — and a failure is committed
//! before the answer. Storage is `auth::totp`; no HTTP here.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use qrcode::QrCode;
use qrcode::render::svg;
use rusqlite::Connection;
use serde_json::json;

use crate::app::App;
use crate::auth::sessions::{self, NewSession, SessionRow};
use crate::auth::totp::{self, Seed};
use crate::auth::{User, audit, throttle, users};
use crate::error::AppError;
use crate::services::identity::{self, Actor, Caller};
use crate::services::sessions::Started;

/// What the account page shows about the second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub enabled: bool,
    /// An enrolment was started and is waiting for its first code.
    pub pending: bool,
    pub recovery_left: u32,
}

/// An enrolment in progress: the seed for manual entry and the URL in the QR code.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub seed: Seed,
    pub url: String,
}

fn signed_in(caller: &Caller) -> Result<User, AppError> {
    caller
        .user
        .clone()
        .ok_or_else(|| AppError::Unauthorized("not signed in".into()))
}

pub async fn status(app: &App, user_id: &str) -> Result<Status, AppError> {
    let id = user_id.to_string();
    app.db
        .read(move |conn| {
            Ok::<_, AppError>(Status {
                enabled: users::has_totp(conn, &id)?,
                pending: totp::find_pending(conn, &id)?.is_some(),
                recovery_left: totp::unused_recovery_codes(conn, &id)?,
            })
        })
        .await
}

/// Begin enrolling: a new seed from the CSPRNG waits, server side, for its first code.
pub async fn start(app: &App, caller: &Caller) -> Result<(), AppError> {
    let user = signed_in(caller)?;
    app.db
        .write(move |conn| {
            if users::has_totp(conn, &user.id)? {
                return Err(AppError::conflict(
                    "two-factor sign-in is already on; turn it off first to set it up again",
                ));
            }
            totp::set_pending(conn, &user.id, &totp::generate_seed())?;
            Ok(())
        })
        .await
}

/// The enrolment in progress, if any.
pub async fn pending(app: &App, user: &User) -> Result<Option<Enrolment>, AppError> {
    let (id, email) = (user.id.clone(), user.email.clone());
    let seed = app
        .db
        .read(move |conn| Ok::<_, AppError>(totp::find_pending(conn, &id)?))
        .await?;
    match seed {
        None => Ok(None),
        Some(seed) => {
            let url = totp::otpauth_url(&seed, &email)
                .ok_or_else(|| AppError::Internal("the pending TOTP seed is unusable".into()))?;
            Ok(Some(Enrolment { seed, url }))
        }
    }
}

/// The QR code of the enrolment in progress, as an SVG document.
pub async fn pending_qr_svg(app: &App, user: &User) -> Result<Option<String>, AppError> {
    let Some(enrolment) = pending(app, user).await? else {
        return Ok(None);
    };
    let code = QrCode::new(enrolment.url.as_bytes())
        .map_err(|e| AppError::Internal(format!("QR code: {e}")))?;
    Ok(Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
    ))
}

/// What a throttled code check came to.
enum Checked<T> {
    Done(T),
    Wrong,
}

/// Run `spend` (which checks a code and, when it is right, writes what it grants) under the
/// throttle of `user` from `ip`. A wrong code is counted and audited in the same committed
/// transaction; a blocked pair or address is refused before any check.
async fn throttled<T, F>(
    app: &App,
    user: &User,
    ip: Option<IpAddr>,
    via: &'static str,
    spend: F,
) -> Result<Checked<T>, AppError>
where
    T: Send + 'static,
    F: FnOnce(&Connection, DateTime<Utc>) -> Result<Option<T>, AppError> + Send + 'static,
{
    let ip = identity::ip_or_unspecified(ip);
    let key = format!("totp:{}", user.email);
    let settings = app.settings.throttle;
    let k2 = key.clone();
    let blocked = app
        .db
        .read(move |conn| Ok::<_, AppError>(throttle::check(conn, &settings, &k2, ip, Utc::now())?))
        .await?;
    if let Some(retry) = blocked {
        return Err(AppError::TooManyRequests {
            retry_after: retry.0,
        });
    }
    let user_id = user.id.clone();
    app.db
        .write(move |conn| {
            let now = Utc::now();
            match spend(conn, now)? {
                Some(done) => {
                    throttle::record_success(conn, &key, ip)?;
                    Ok(Checked::Done(done))
                }
                None => {
                    throttle::record_failure(conn, &settings, &key, ip, now)?;
                    audit::record(
                        conn,
                        Some(&user_id),
                        Some(&ip.to_string()),
                        "auth.totp_failed",
                        json!({ "via": via }),
                    )?;
                    Ok(Checked::Wrong)
                }
            }
        })
        .await
}

/// The message beside a code field after a wrong code.
pub const WRONG_CODE: &str = "That code is not right, or it was already used.";

/// Finish enrolling with the first code from the authenticator. Returns the recovery codes:
/// their only plaintext copy, to show once.
pub async fn confirm(app: &App, caller: &Caller, code: &str) -> Result<Vec<String>, AppError> {
    let user = signed_in(caller)?;
    let (id, code, actor) = (user.id.clone(), code.to_string(), caller.actor());
    let result = throttled(app, &user, caller.ip, "enrol", move |conn, now| {
        let codes = totp::confirm(conn, &id, &code, now)?;
        if codes.is_some() {
            actor.record(conn, "totp.enable", json!({ "user": id }))?;
        }
        Ok(codes)
    })
    .await?;
    match result {
        Checked::Done(codes) => Ok(codes),
        Checked::Wrong => Err(AppError::field("code", WRONG_CODE)),
    }
}

/// Turn the second factor off; needs a current code or an unused recovery code.
pub async fn disable(app: &App, caller: &Caller, code: &str) -> Result<(), AppError> {
    let user = signed_in(caller)?;
    let (id, code, actor) = (user.id.clone(), code.to_string(), caller.actor());
    let result = throttled(app, &user, caller.ip, "disable", move |conn, now| {
        let Some(factor) = totp::spend_code(conn, &id, &code, now)? else {
            return Ok(None);
        };
        totp::disable(conn, &id)?;
        actor.record(
            conn,
            "totp.disable",
            json!({ "user": id, "with": factor.as_str() }),
        )?;
        Ok(Some(()))
    })
    .await?;
    match result {
        Checked::Done(()) => Ok(()),
        Checked::Wrong => Err(AppError::field("code", WRONG_CODE)),
    }
}

/// The API login's second step: a user with TOTP must send a code (TOTP or recovery) with
/// the password. Users without TOTP pass through.
pub async fn require_for_login(
    app: &App,
    user: &User,
    code: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<(), AppError> {
    let id = user.id.clone();
    let enrolled = app
        .db
        .read(move |conn| Ok::<_, AppError>(users::has_totp(conn, &id)?))
        .await?;
    if !enrolled {
        return Ok(());
    }
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
        return Err(AppError::Unauthorized(
            "this account has two-factor sign-in: send `code` (a current authenticator code \
             or an unused recovery code) with the password"
                .into(),
        ));
    };
    let (id, code) = (user.id.clone(), code.to_string());
    match throttled(app, user, ip, "api", move |conn, now| {
        Ok(totp::spend_code(conn, &id, &code, now)?)
    })
    .await?
    {
        Checked::Done(_) => Ok(()),
        Checked::Wrong => Err(AppError::Unauthorized(
            "the two-factor code is wrong or was already used".into(),
        )),
    }
}

/// The site's second step: a right code ends the pending session and starts a new, full one
/// (a new secret, so the cookie from the password step is worth nothing), all in one
/// transaction with the audit of the sign-in. `None` for a wrong code.
pub async fn finish_sign_in(
    app: &App,
    pending: SessionRow,
    user: User,
    code: &str,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> Result<Option<Started>, AppError> {
    if !pending.mfa_pending || pending.user_id != user.id {
        return Err(AppError::Unauthorized(
            "sign in with your password first".into(),
        ));
    }
    let ttl = TimeDelta::from_std(app.settings.session_max)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let address = identity::ip_or_unspecified(ip);
    let (u2, code, ua) = (
        user.clone(),
        code.to_string(),
        user_agent.map(str::to_string),
    );
    let result = throttled(app, &user, ip, "browser", move |conn, now| {
        let Some(factor) = totp::spend_code(conn, &u2.id, &code, now)? else {
            return Ok(None);
        };
        // The pending session must still exist: signing out elsewhere or an admin ending it
        // wins over a code typed afterwards.
        if !sessions::delete(conn, &pending.id)? {
            return Err(AppError::Unauthorized(
                "sign in with your password first".into(),
            ));
        }
        let ip_text = address.to_string();
        let (session, secret) = sessions::create(
            conn,
            &NewSession {
                user_id: &u2.id,
                mfa_pending: false,
                expires: now + ttl,
                ip: Some(&ip_text),
                user_agent: ua.as_deref(),
            },
        )?;
        identity::record_sign_in(conn, &u2, address, "browser")?;
        Actor {
            user_id: Some(u2.id.clone()),
            ip: Some(ip_text),
        }
        .record(
            conn,
            "auth.second_factor",
            json!({ "with": factor.as_str() }),
        )?;
        Ok(Some(Started {
            user: u2,
            session,
            secret,
        }))
    })
    .await?;
    Ok(match result {
        Checked::Done(started) => Some(started),
        Checked::Wrong => None,
    })
}
