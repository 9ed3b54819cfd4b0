//! `GET|POST /c/<name>/<id>/delete`: "Delete record X from C?" with a button, then the delete
//! itself. A record other records still point at (a restrict relation) stays, and the
//! confirmation page says why.

use askama::Template;
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};

use crate::app::App;
use crate::error::AppError;
use crate::schema::Operation;
use crate::services::records;

use super::super::page::{Answer, Layout, WebError, render};
use super::super::visitor::{Checked, NoFields, Visitor};
use super::{collection, parse_record, record_href, record_label};

#[derive(Template)]
#[template(path = "records/delete.html")]
struct DeletePage {
    layout: Layout,
    name: String,
    id: String,
    label: String,
    href: String,
    error: Option<String>,
}

/// The confirmation page for a record the delete rule lets the visitor reach.
async fn confirmation(
    app: &App,
    v: &Visitor,
    name: &str,
    id: &str,
    error: Option<String>,
) -> Result<Answer, AppError> {
    let c = app.collections.get(name)?.collection.clone();
    let json = records::get_for(app, name, id, &v.caller, Operation::Delete).await?;
    let record = parse_record(&json).map_err(|e| e.0)?;
    let label = record_label(&c, &record, id);
    Ok(render(&DeletePage {
        layout: v.layout(format!("Delete {label}?")),
        name: name.to_owned(),
        id: id.to_owned(),
        label,
        href: record_href(name, id),
        error,
    })
    .map_err(|e| e.0)?
    .into())
}

#[get("/c/<name>/<id>/delete")]
pub async fn delete_record_page(
    app: &State<App>,
    v: Visitor,
    name: &str,
    id: &str,
) -> Result<Answer, WebError> {
    collection(app, name)?;
    match confirmation(app, &v, name, id, None).await {
        Ok(page) => Ok(page),
        Err(e) => Err(e.into()),
    }
}

#[post("/c/<name>/<id>/delete", data = "<_form>")]
pub async fn delete_record_submit(
    app: &State<App>,
    v: Visitor,
    name: &str,
    id: &str,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    collection(app, name)?;
    match records::delete(app, name, id, &v.caller, None).await {
        Ok(()) => Ok(Flash::success(Redirect::to(format!("/c/{name}")), "Deleted").into()),
        Err(AppError::Conflict { detail, .. }) => {
            Ok(confirmation(app, &v, name, id, Some(detail)).await?)
        }
        Err(e) => Err(e.into()),
    }
}
