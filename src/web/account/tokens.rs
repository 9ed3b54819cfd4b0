//! `POST /account/tokens` (create: the secret is shown once, on the answer page, and never
//! again) and `POST /account/tokens/<id>/revoke`.

use askama::Template;
use rocket::form::FromForm;
use rocket::response::{Flash, Redirect};
use rocket::{State, post};

use crate::app::App;
use crate::error::AppError;
use crate::services::{account, identity};
use crate::web::page::{Answer, Layout, WebError, render};
use crate::web::visitor::{Checked, Member, NoFields};

use super::{Forms, account_page, when};

#[derive(FromForm)]
pub struct TokenForm {
    name: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "account/token_created.html")]
struct TokenCreatedPage {
    layout: Layout,
    name: String,
    token: String,
    expires: String,
}

#[post("/account/tokens", data = "<form>")]
pub async fn create_token_submit(
    app: &State<App>,
    m: Member,
    form: Checked<TokenForm>,
) -> Result<Answer, WebError> {
    let f = form.0;
    let v = &m.0;
    let expires = Some(f.expires.trim()).filter(|e| !e.is_empty());
    match identity::create_token(app, &v.caller, &f.name, expires).await {
        Ok(created) => Ok(render(&TokenCreatedPage {
            layout: v.layout("New API token"),
            name: created.info.name,
            token: created.token,
            expires: created
                .info
                .expires
                .as_deref()
                .map_or_else(|| "never".into(), when),
        })?
        .into()),
        Err(AppError::Validation { errors, .. }) => {
            let forms = Forms {
                errors: errors
                    .into_iter()
                    .map(|(k, m)| (format!("token_{k}"), m))
                    .collect(),
                token_name: f.name,
                token_expires: f.expires,
            };
            Ok(account_page(app, v, forms).await?.into())
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/account/tokens/<id>/revoke", data = "<_form>")]
pub async fn revoke_token_submit(
    app: &State<App>,
    m: Member,
    id: &str,
    _form: Checked<NoFields>,
) -> Result<Flash<Redirect>, WebError> {
    account::revoke_own_token(app, &m.0.caller, id).await?;
    Ok(Flash::success(
        Redirect::to("/account"),
        "The token is revoked.",
    ))
}
