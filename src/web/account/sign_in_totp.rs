//! `GET/POST /sign-in/totp`: the second step of signing in for users with TOTP. Only a session
//! that passed the password step and waits for its second factor may use it; anything else
//! goes back to `/sign-in`. A right code (or unused recovery code) replaces that session with a
//! new one — a new cookie secret — and goes on to `next`.

use askama::Template;
use rocket::form::FromForm;
use rocket::http::CookieJar;
use rocket::response::Redirect;
use rocket::{State, get, post};

use crate::api::guards::{ClientIp, SESSION_COOKIE};
use crate::app::App;
use crate::auth::User;
use crate::auth::sessions::SessionRow;
use crate::error::AppError;
use crate::services::{sessions, totp};
use crate::web::auth_pages::{UserAgent, safe_next, set_session_cookie};
use crate::web::page::{Answer, Layout, WebError, render, urlencoding};
use crate::web::visitor::{Checked, Visitor};

use super::too_many;

#[derive(Template)]
#[template(path = "sign_in_totp.html")]
struct SignInTotpPage {
    layout: Layout,
    next: String,
    error: Option<String>,
}

/// The session behind the cookie if it is waiting for its second factor.
async fn pending_session(
    app: &App,
    jar: &CookieJar<'_>,
) -> Result<Option<(SessionRow, User)>, AppError> {
    let Some(secret) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    Ok(sessions::resolve(app, &secret)
        .await?
        .filter(|(session, _)| session.mfa_pending))
}

fn back_to_sign_in(next: &str) -> Answer {
    Redirect::to(format!("/sign-in?next={}", urlencoding(next))).into()
}

#[get("/sign-in/totp?<next>")]
pub async fn sign_in_totp_page(
    app: &State<App>,
    v: Visitor,
    jar: &CookieJar<'_>,
    next: Option<&str>,
) -> Result<Answer, WebError> {
    let next = safe_next(next);
    if v.caller.user.is_some() {
        return Ok(Redirect::to(next).into());
    }
    if pending_session(app, jar).await?.is_none() {
        return Ok(back_to_sign_in(&next));
    }
    Ok(render(&SignInTotpPage {
        layout: v.layout("Two-factor sign-in"),
        next,
        error: None,
    })?
    .into())
}

#[derive(FromForm)]
pub struct SignInTotpForm {
    code: String,
    next: Option<String>,
}

#[post("/sign-in/totp", data = "<form>")]
pub async fn sign_in_totp_submit(
    app: &State<App>,
    v: Visitor,
    form: Checked<SignInTotpForm>,
    ip: ClientIp,
    ua: UserAgent,
    jar: &CookieJar<'_>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let next = safe_next(form.next.as_deref());
    let Some((session, user)) = pending_session(app, jar).await? else {
        return Ok(back_to_sign_in(&next));
    };
    let error =
        match totp::finish_sign_in(app, session, user, &form.code, ip.0, ua.0.as_deref()).await {
            Ok(Some(started)) => {
                set_session_cookie(app, jar, started.secret.expose());
                return Ok(Redirect::to(next).into());
            }
            Ok(None) => totp::WRONG_CODE.to_string(),
            Err(AppError::TooManyRequests { retry_after }) => too_many(retry_after),
            Err(AppError::Unauthorized(_)) => return Ok(back_to_sign_in(&next)),
            Err(e) => return Err(e.into()),
        };
    Ok(render(&SignInTotpPage {
        layout: v.layout("Two-factor sign-in"),
        next,
        error: Some(error),
    })?
    .into())
}
