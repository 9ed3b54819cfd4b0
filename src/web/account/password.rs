//! `POST /account/password`: change your own password (the current one is checked and
//! throttled like a sign-in; other sessions and login tokens end, this session stays).

use rocket::form::FromForm;
use rocket::response::{Flash, Redirect};
use rocket::{State, post};

use crate::app::App;
use crate::error::AppError;
use crate::services::account;
use crate::web::page::{Answer, WebError};
use crate::web::visitor::{Checked, Member};

use super::{Forms, account_page, too_many};

#[derive(FromForm)]
pub struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

#[post("/account/password", data = "<form>")]
pub async fn change_password_submit(
    app: &State<App>,
    m: Member,
    form: Checked<PasswordForm>,
) -> Result<Answer, WebError> {
    let f = form.0;
    let v = &m.0;
    let mut forms = Forms::default();
    match account::change_password(app, &v.caller, &f.current, &f.password, &f.confirm).await {
        Ok(()) => {
            return Ok(Flash::success(Redirect::to("/account"), "Password changed").into());
        }
        Err(AppError::Validation { errors, .. }) => forms.errors = errors,
        Err(AppError::TooManyRequests { retry_after }) => {
            forms.errors.insert("current".into(), too_many(retry_after));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(account_page(app, v, forms).await?.into())
}
