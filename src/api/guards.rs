//! Request guards: who is calling (`Caller`, by bearer token or session cookie; `SignedIn`,
//! `Admin`), from where (`ClientIp`), and the conditional-request headers (`Conditions`).
//! Failures leave an error in the stash for the catchers (problem+json under `/api`, a page
//! elsewhere).

use std::net::IpAddr;

use rocket::http::Method;
use rocket::outcome::Outcome as O;
use rocket::request::{FromRequest, Outcome, Request};

use crate::app::App;
use crate::error::AppError;
use crate::services::identity::{self, Caller};
use crate::services::sessions;

use super::problem::stash;

fn app<'r>(req: &'r Request<'_>) -> &'r App {
    // `App` is managed by `build_rocket` before launch; a missing state is a programming error
    // that Rocket's sentinels catch at ignition.
    #[allow(clippy::expect_used)]
    req.rocket().state::<App>().expect("App state is managed")
}

/// The client's address: the TCP peer, or — only when the peer is a configured trusted proxy
/// — the nearest untrusted address in `X-Forwarded-For`. Rocket's own `X-Real-IP` handling is
/// switched off in `build_rocket`.
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    pub fn resolve(req: &Request<'_>, trusted: &[IpAddr]) -> Option<IpAddr> {
        let peer = req.remote().map(|a| a.ip())?;
        if !trusted.contains(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get("X-Forwarded-For")
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .or(Some(peer))
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let trusted = &app(req).settings.trusted_proxies;
        O::Success(ClientIp(ClientIp::resolve(req, trusted)))
    }
}

/// The cookie that carries a browser session's secret.
pub const SESSION_COOKIE: &str = "onebox_session";
/// The header a cookie-authenticated API call must echo the session's CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The caller behind a session cookie; an unknown, expired or half-finished (second factor
/// pending) session is nobody. Cookie-authenticated unsafe API calls must carry the session's
/// CSRF token in `X-CSRF-Token` (forms are checked by the site's `Checked` instead).
async fn session_caller(req: &Request<'_>) -> Result<Caller, AppError> {
    let Some(secret) = req
        .cookies()
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_string())
    else {
        return Ok(Caller::anonymous());
    };
    let Some((session, user)) = sessions::resolve(app(req), &secret).await? else {
        return Ok(Caller::anonymous());
    };
    let Some(caller) = sessions::caller_of(session, user) else {
        return Ok(Caller::anonymous());
    };
    let unsafe_method = !matches!(req.method(), Method::Get | Method::Head | Method::Options);
    if unsafe_method && req.uri().path().starts_with("/api/") {
        let expected = caller
            .session
            .as_ref()
            .map(|s| s.csrf.as_str())
            .unwrap_or("");
        let sent = req.headers().get_one(CSRF_HEADER).unwrap_or("");
        if !crate::web::same_token(expected, sent) {
            return Err(AppError::Forbidden(format!(
                "a request signed in with the session cookie must send {CSRF_HEADER}"
            )));
        }
    }
    Ok(caller)
}

/// The authenticated user, if any: from `Authorization: Bearer`, else from the session
/// cookie. A malformed, unknown or expired bearer token is a 401, never a silent downgrade to
/// anonymous.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for Caller {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let cached = req
            .local_cache_async(async {
                let Some(header) = req.headers().get_one("Authorization") else {
                    return session_caller(req).await;
                };
                let Some(secret) = header
                    .strip_prefix("Bearer ")
                    .or_else(|| header.strip_prefix("bearer "))
                else {
                    return Err(AppError::Unauthorized(
                        "the Authorization header must be `Bearer <token>`".into(),
                    ));
                };
                identity::authenticate(app(req), secret.trim()).await
            })
            .await;
        match cached {
            Ok(caller) => {
                if let Some(user) = &caller.user {
                    crate::observe::RequestMeta::of(req)
                        .span
                        .record("user", user.id.as_str());
                }
                let mut caller = caller.clone();
                caller.ip = ClientIp::resolve(req, &app(req).settings.trusted_proxies);
                O::Success(caller)
            }
            Err(e) => O::Error((stash(req, clone_auth_error(e)), ())),
        }
    }
}

fn clone_auth_error(e: &AppError) -> AppError {
    match e {
        AppError::Unauthorized(m) => AppError::Unauthorized(m.clone()),
        AppError::Forbidden(m) => AppError::Forbidden(m.clone()),
        AppError::Unavailable(m) => AppError::Unavailable(m.clone()),
        _ => AppError::Internal("authentication failed".into()),
    }
}

/// A signed-in user (any role).
pub struct SignedIn(pub Caller);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SignedIn {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.guard::<Caller>().await {
            O::Success(c) if c.user.is_some() => O::Success(SignedIn(c)),
            O::Success(_) => {
                let err = AppError::Unauthorized("sign in or send an API token".into());
                O::Error((stash(req, err), ()))
            }
            O::Error(e) => O::Error(e),
            O::Forward(f) => O::Forward(f),
        }
    }
}

/// A signed-in admin.
pub struct Admin(pub Caller);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.guard::<SignedIn>().await {
            O::Success(SignedIn(c)) if c.is_admin() => O::Success(Admin(c)),
            O::Success(_) => {
                let err = AppError::Forbidden("this needs an admin".into());
                O::Error((stash(req, err), ()))
            }
            O::Error(e) => O::Error(e),
            O::Forward(f) => O::Forward(f),
        }
    }
}

/// `If-Match` / `If-None-Match` as sent (ETag lists are compared by the handlers).
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

impl Conditions {
    /// Whether `etag` satisfies `If-None-Match` (so the answer is 304).
    pub fn not_modified(&self, etag: &str) -> bool {
        self.if_none_match
            .as_deref()
            .is_some_and(|h| crate::etag::list_contains(h, etag, true))
    }

    /// The `If-Match` check: `None` when absent, else whether `etag` matches.
    pub fn matches(&self, etag: &str) -> Option<bool> {
        self.if_match
            .as_deref()
            .map(|h| crate::etag::list_contains(h, etag, false))
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Conditions {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let h = req.headers();
        O::Success(Conditions {
            if_match: h.get_one("If-Match").map(str::to_string),
            if_none_match: h.get_one("If-None-Match").map(str::to_string),
        })
    }
}
