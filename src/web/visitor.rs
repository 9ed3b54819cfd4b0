//! Who is looking at a page: `Visitor` (anyone: the caller, the CSRF token for forms, the
//! flash notice), `Member` (signed in) and `Staff` (an admin). Forms are read through
//! `Checked<T>`, which refuses the whole request with 403 unless the form's `csrf` field
//! matches the session's token (or, before sign-in, the `onebox_csrf` cookie's).

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, SameSite};
use rocket::outcome::Outcome as O;
use rocket::request::{FlashMessage, FromRequest, Outcome, Request};

use crate::api::problem::stash;
use crate::app::App;
use crate::error::AppError;
use crate::services::identity::Caller;

use super::page::{Layout, Notice};

/// The cookie holding the CSRF token of visitors who are not signed in (double submit).
pub const CSRF_COOKIE: &str = "onebox_csrf";

fn app<'r>(req: &'r Request<'_>) -> &'r App {
    // Managed by `build_rocket`; Rocket's sentinels refuse to launch without it.
    #[allow(clippy::expect_used)]
    req.rocket().state::<App>().expect("App state is managed")
}

/// Anyone: signed in or not.
pub struct Visitor {
    pub caller: Caller,
    pub csrf: String,
    pub notice: Option<Notice>,
}

impl Visitor {
    /// The layout for a page titled `title`.
    pub fn layout(&self, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            user: self.caller.user.clone(),
            csrf: self.csrf.clone(),
            notice: self.notice.clone(),
        }
    }
}

/// The token a form must carry: the session's, or the pre-sign-in cookie's (made here when
/// missing).
fn expected_csrf(req: &Request<'_>, caller: &Caller) -> String {
    if let Some(session) = &caller.session {
        return session.csrf.clone();
    }
    if let Some(c) = req.cookies().get(CSRF_COOKIE) {
        return c.value().to_string();
    }
    let token = crate::auth::sessions::random_token();
    req.cookies().add(
        Cookie::build((CSRF_COOKIE, token.clone()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(app(req).settings.secure_cookies),
    );
    token
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Visitor {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let caller = match req.guard::<Caller>().await {
            O::Success(c) => c,
            O::Error(e) => return O::Error(e),
            O::Forward(f) => return O::Forward(f),
        };
        let csrf = expected_csrf(req, &caller);
        let notice = match req.guard::<Option<FlashMessage<'_>>>().await {
            O::Success(Some(f)) => Some(Notice {
                kind: f.kind().to_string(),
                message: f.message().to_string(),
            }),
            _ => None,
        };
        O::Success(Visitor {
            caller,
            csrf,
            notice,
        })
    }
}

/// A signed-in visitor; anyone else is sent to the sign-in page.
pub struct Member(pub Visitor);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Member {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.guard::<Visitor>().await {
            O::Success(v) if v.caller.user.is_some() => O::Success(Member(v)),
            O::Success(_) => O::Error((
                stash(req, AppError::Unauthorized("sign in first".into())),
                (),
            )),
            O::Error(e) => O::Error(e),
            O::Forward(f) => O::Forward(f),
        }
    }
}

/// A signed-in admin; other signed-in users get 403.
pub struct Staff(pub Visitor);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Staff {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.guard::<Member>().await {
            O::Success(Member(v)) if v.caller.is_admin() => O::Success(Staff(v)),
            O::Success(_) => O::Error((
                stash(req, AppError::Forbidden("this page is for admins".into())),
                (),
            )),
            O::Error(e) => O::Error(e),
            O::Forward(f) => O::Forward(f),
        }
    }
}

/// A form whose CSRF token (the `csrf` field) was checked before the form itself was parsed:
/// a missing or wrong token is a 403, so no handler can forget the check and a forged request
/// learns nothing about the form's shape. `T` is any Rocket form (extra fields are ignored).
pub struct Checked<T>(pub T);

/// A form with nothing but its CSRF token (sign out, revoke, delete buttons).
#[derive(rocket::FromForm)]
pub struct NoFields {
    /// Already checked by `Checked` when this exists.
    #[field(name = "csrf")]
    _csrf: String,
}

/// Compare without an early exit, so timing says nothing about how much of a token matched.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn refuse<'r, T>(req: &'r Request<'_>, err: AppError) -> data::Outcome<'r, T, ()> {
    O::Error((stash(req, err), ()))
}

#[rocket::async_trait]
impl<'r, T: for<'a> FromForm<'a> + Send + 'static> FromData<'r> for Checked<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self, ()> {
        if !req.content_type().is_some_and(|c| c.is_form()) {
            return refuse(
                req,
                AppError::UnsupportedMediaType("send the form as a normal HTML form".into()),
            );
        }
        let limit = req.limits().get("form").unwrap_or_else(|| 64.kibibytes());
        let body = match data.open(limit).into_string().await {
            Ok(s) if s.is_complete() => s.into_inner(),
            Ok(_) => {
                return refuse(
                    req,
                    AppError::PayloadTooLarge("the form is too large".into()),
                );
            }
            Err(_) => return refuse(req, AppError::BadRequest("unreadable form".into())),
        };
        let sent = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let caller = match req.guard::<Caller>().await {
            O::Success(c) => c,
            _ => Caller::anonymous(),
        };
        let expected = match &caller.session {
            Some(s) => Some(s.csrf.clone()),
            None => req
                .cookies()
                .get(CSRF_COOKIE)
                .map(|c| c.value().to_string()),
        };
        if !expected.is_some_and(|token| !token.is_empty() && same_token(&token, &sent)) {
            let err = AppError::Forbidden(
                "the form is out of date or did not come from this site; reload the page and try again"
                    .into(),
            );
            return refuse(req, err);
        }
        match Form::<T>::parse_encoded(rocket::http::RawStr::new(&body)) {
            Ok(form) => O::Success(Checked(form)),
            Err(errors) => {
                let fields: Vec<String> = errors
                    .iter()
                    .filter_map(|e| e.name.as_ref().map(|n| n.to_string()))
                    .collect();
                refuse(
                    req,
                    AppError::BadRequest(format!(
                        "the form is incomplete or malformed ({})",
                        fields.join(", ")
                    )),
                )
            }
        }
    }
}
