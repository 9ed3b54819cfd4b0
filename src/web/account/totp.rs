//! Two-factor sign-in on the account page: `POST /account/totp/start` (a new seed, kept on the
//! server) → `GET /account/totp` (the QR code and the seed in text) → `POST
//! /account/totp/confirm` (the first code; the answer page shows the recovery codes, once), and
//! `POST /account/totp/disable` (needs a code). `GET /account/totp/qr.svg` draws the QR code of
//! the signed-in user's own pending seed, never cached.

use std::io::Cursor;

use askama::Template;
use rocket::form::FromForm;
use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Flash, Redirect, Responder, Response};
use rocket::{State, get, post};

use crate::app::App;
use crate::error::AppError;
use crate::services::totp;
use crate::web::page::{Answer, Layout, WebError, render};
use crate::web::visitor::{Checked, Member, NoFields, Visitor};

use super::{Forms, account_page, too_many};

#[derive(Template)]
#[template(path = "account/totp_setup.html")]
struct TotpSetupPage {
    layout: Layout,
    seed: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
}

#[derive(FromForm)]
pub struct CodeForm {
    code: String,
}

#[post("/account/totp/start", data = "<_form>")]
pub async fn start_totp_submit(
    app: &State<App>,
    m: Member,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    match totp::start(app, &m.0.caller).await {
        Ok(()) => Ok(Redirect::to("/account/totp").into()),
        Err(AppError::Conflict { detail, .. }) => {
            Ok(Flash::error(Redirect::to("/account"), detail).into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn setup_page(app: &App, v: &Visitor, error: Option<String>) -> Result<Answer, WebError> {
    let user = v
        .caller
        .user
        .as_ref()
        .ok_or_else(|| AppError::Unauthorized("sign in first".into()))?;
    let Some(enrolment) = totp::pending(app, user).await? else {
        return Ok(Redirect::to("/account").into());
    };
    Ok(render(&TotpSetupPage {
        layout: v.layout("Set up two-factor sign-in"),
        seed: enrolment.seed.expose().to_string(),
        error,
    })?
    .into())
}

#[get("/account/totp")]
pub async fn totp_setup(app: &State<App>, m: Member) -> Result<Answer, WebError> {
    setup_page(app, &m.0, None).await
}

/// An SVG image that no cache may keep (it encodes a secret).
pub struct Svg(String);

impl<'r> Responder<'r, 'static> for Svg {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .status(Status::Ok)
            .header(ContentType::SVG)
            .header(Header::new("Cache-Control", "no-store"))
            .sized_body(self.0.len(), Cursor::new(self.0))
            .ok()
    }
}

#[get("/account/totp/qr.svg")]
pub async fn totp_qr(app: &State<App>, m: Member) -> Result<Svg, WebError> {
    let user =
        m.0.caller
            .user
            .as_ref()
            .ok_or_else(|| AppError::Unauthorized("sign in first".into()))?;
    match totp::pending_qr_svg(app, user).await? {
        Some(svg) => Ok(Svg(svg)),
        None => Err(AppError::NotFound.into()),
    }
}

#[post("/account/totp/confirm", data = "<form>")]
pub async fn confirm_totp_submit(
    app: &State<App>,
    m: Member,
    form: Checked<CodeForm>,
) -> Result<Answer, WebError> {
    let v = &m.0;
    let error = match totp::confirm(app, &v.caller, &form.0.code).await {
        Ok(codes) => {
            return Ok(render(&RecoveryCodesPage {
                layout: v.layout("Two-factor sign-in is on"),
                codes,
            })?
            .into());
        }
        Err(AppError::Validation { errors, .. }) => errors
            .get("code")
            .cloned()
            .unwrap_or_else(|| totp::WRONG_CODE.to_string()),
        Err(AppError::TooManyRequests { retry_after }) => too_many(retry_after),
        Err(e) => return Err(e.into()),
    };
    setup_page(app, v, Some(error)).await
}

#[post("/account/totp/disable", data = "<form>")]
pub async fn disable_totp_submit(
    app: &State<App>,
    m: Member,
    form: Checked<CodeForm>,
) -> Result<Answer, WebError> {
    let v = &m.0;
    let error = match totp::disable(app, &v.caller, &form.0.code).await {
        Ok(()) => {
            return Ok(
                Flash::success(Redirect::to("/account"), "Two-factor sign-in is off.").into(),
            );
        }
        Err(AppError::Validation { errors, .. }) => errors
            .get("code")
            .cloned()
            .unwrap_or_else(|| totp::WRONG_CODE.to_string()),
        Err(AppError::TooManyRequests { retry_after }) => too_many(retry_after),
        Err(e) => return Err(e.into()),
    };
    let mut forms = Forms::default();
    forms.errors.insert("totp_code".into(), error);
    Ok(account_page(app, v, forms).await?.into())
}
