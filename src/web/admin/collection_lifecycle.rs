//! Renaming a collection (`POST /admin/collections/<name>/rename`) and deleting it with its
//! records (`GET/POST /admin/collections/<name>/delete`, after a confirmation page; refused
//! while other collections relate to it).

use askama::Template;
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};

use crate::app::App;

use super::super::page::{Answer, Layout, Page, WebError, render};
use super::super::visitor::{Checked, NoFields, Staff};
use super::collection_editor::{editor, editor_url, stored_spec};
use super::collection_fields::RenameForm;
use super::form_errors::Failure;
use super::patches;

#[post("/admin/collections/<name>/rename", data = "<form>")]
pub async fn rename_collection_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    form: Checked<RenameForm>,
) -> Result<Answer, WebError> {
    let to = form.0.name.trim().to_string();
    stored_spec(app, name)?;
    let failure = match app
        .collections
        .update(s.0.caller.actor(), name, patches::rename_collection(&to))
        .await
    {
        Ok(c) => {
            return Ok(Flash::success(
                Redirect::to(editor_url(&c.name)),
                format!("Collection {name} renamed to {}.", c.name),
            )
            .into());
        }
        Err(e) => Failure::from_service(e)?,
    };
    let (errors, problems) = failure.split(&["name"]);
    let mut page = editor(app, &s.0, name)?;
    page.rename_to = to;
    page.rename_errors = errors;
    page.problems = problems;
    Ok(render(&page)?.into())
}

#[derive(Template)]
#[template(path = "admin/collection_delete.html")]
struct DeleteCollectionPage {
    layout: Layout,
    name: String,
    problems: Vec<String>,
}

#[get("/admin/collections/<name>/delete")]
pub fn delete_collection_page(app: &State<App>, s: Staff, name: &str) -> Result<Page, WebError> {
    let spec = stored_spec(app, name)?;
    render(&DeleteCollectionPage {
        layout: s.0.layout(format!("Delete collection {}", spec.name)),
        name: spec.name,
        problems: Vec::new(),
    })
}

#[post("/admin/collections/<name>/delete", data = "<_form>")]
pub async fn delete_collection_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    let spec = stored_spec(app, name)?;
    let failure = match app.collections.delete(s.0.caller.actor(), name).await {
        Ok(()) => {
            return Ok(Flash::success(
                Redirect::to("/admin/collections"),
                format!("Collection {} deleted.", spec.name),
            )
            .into());
        }
        Err(e) => Failure::from_service(e)?,
    };
    Ok(render(&DeleteCollectionPage {
        layout: s.0.layout(format!("Delete collection {}", spec.name)),
        name: spec.name,
        problems: failure.split(&[]).1,
    })?
    .into())
}
