//! Sign-in, sign-out and first-run setup pages.

use askama::Template;
use rocket::form::FromForm;
use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::outcome::Outcome as O;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};

use crate::api::guards::{ClientIp, SESSION_COOKIE};
use crate::app::App;
use crate::error::AppError;
use crate::services::{sessions, setup};

use super::page::{Answer, Layout, WebError, render};
use super::visitor::{Checked, Member, NoFields, Visitor};

/// The `User-Agent` header, kept with a session so its owner can recognise it.
pub struct UserAgent(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserAgent {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        O::Success(UserAgent(
            req.headers().get_one("User-Agent").map(str::to_string),
        ))
    }
}

/// A `next` target that stays on this site: a path, never `//host` or a scheme.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.contains(['\r', '\n']) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Put a new session's secret in its cookie.
pub fn set_session_cookie(app: &App, jar: &CookieJar<'_>, secret: &str) {
    let max_age = rocket::time::Duration::seconds(
        i64::try_from(app.settings.session_max.as_secs()).unwrap_or(i64::MAX),
    );
    jar.add(
        Cookie::build((SESSION_COOKIE, secret.to_string()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(app.settings.secure_cookies)
            .max_age(max_age),
    );
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    email: String,
    next: String,
    error: Option<String>,
}

#[get("/sign-in?<next>")]
pub fn sign_in_page(v: Visitor, next: Option<&str>) -> Result<Answer, WebError> {
    let next = safe_next(next);
    if v.caller.user.is_some() {
        return Ok(Redirect::to(next).into());
    }
    Ok(render(&SignInPage {
        layout: v.layout("Sign in"),
        email: String::new(),
        next,
        error: None,
    })?
    .into())
}

#[derive(FromForm)]
pub struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

#[post("/sign-in", data = "<form>")]
pub async fn sign_in_submit(
    app: &State<App>,
    v: Visitor,
    form: Checked<SignInForm>,
    ip: ClientIp,
    ua: UserAgent,
    jar: &CookieJar<'_>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let next = safe_next(form.next.as_deref());
    let error =
        match sessions::sign_in(app, &form.email, &form.password, ip.0, ua.0.as_deref()).await {
            Ok(started) => {
                set_session_cookie(app, jar, started.secret.expose());
                if started.session.mfa_pending {
                    return Ok(Redirect::to(format!(
                        "/sign-in/totp?next={}",
                        super::page::urlencoding(&next)
                    ))
                    .into());
                }
                return Ok(Redirect::to(next).into());
            }
            Err(AppError::Unauthorized(_)) => "Wrong email or password.".to_string(),
            Err(AppError::TooManyRequests { retry_after }) => {
                format!("Too many attempts. Try again in {retry_after} seconds.")
            }
            Err(e) => return Err(e.into()),
        };
    Ok(render(&SignInPage {
        layout: v.layout("Sign in"),
        email: form.email,
        next,
        error: Some(error),
    })?
    .into())
}

#[post("/sign-out", data = "<_form>")]
pub async fn sign_out(
    app: &State<App>,
    m: Member,
    _form: Checked<NoFields>,
    jar: &CookieJar<'_>,
) -> Result<Flash<Redirect>, WebError> {
    sessions::sign_out(app, &m.0.caller).await?;
    jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok(Flash::success(
        Redirect::to("/sign-in"),
        "You are signed out.",
    ))
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    token: String,
    email: String,
    errors: std::collections::BTreeMap<String, String>,
}

impl SetupPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

#[get("/setup/<token>")]
pub async fn setup_page(app: &State<App>, v: Visitor, token: &str) -> Result<Answer, WebError> {
    if !setup::is_valid(app, token).await? {
        return Err(AppError::NotFound.into());
    }
    Ok(render(&SetupPage {
        layout: v.layout("Set up onebox"),
        token: token.to_string(),
        email: String::new(),
        errors: Default::default(),
    })?
    .into())
}

#[derive(FromForm)]
pub struct SetupForm {
    token: String,
    email: String,
    password: String,
    confirm: String,
}

#[post("/setup", data = "<form>")]
pub async fn setup_submit(
    app: &State<App>,
    v: Visitor,
    form: Checked<SetupForm>,
    ip: ClientIp,
    ua: UserAgent,
    jar: &CookieJar<'_>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let mut errors = std::collections::BTreeMap::new();
    if form.password != form.confirm {
        errors.insert("confirm".to_string(), "The passwords differ.".to_string());
    } else {
        match setup::complete(app, &form.token, &form.email, &form.password, ip.0).await {
            Ok(_) => {
                let started =
                    sessions::sign_in(app, &form.email, &form.password, ip.0, ua.0.as_deref())
                        .await?;
                set_session_cookie(app, jar, started.secret.expose());
                return Ok(Flash::success(
                    Redirect::to("/"),
                    "Welcome! You are the first admin. Create a collection to begin.",
                )
                .into());
            }
            Err(AppError::Validation { errors: e, .. }) => errors = e,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(render(&SetupPage {
        layout: v.layout("Set up onebox"),
        token: form.token,
        email: form.email,
        errors,
    })?
    .into())
}
