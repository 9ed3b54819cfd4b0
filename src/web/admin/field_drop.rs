//! `GET/POST /admin/collections/<name>/fields/<field>/drop`: dropping a field, after a
//! confirmation page that says which data and indexes go with it.

use askama::Template;
use rocket::{State, get, post};

use crate::app::App;
use crate::schema::CollectionSpec;

use super::super::page::{Answer, Layout, Page, WebError, render};
use super::super::visitor::{Checked, NoFields, Staff, Visitor};
use super::collection_editor::{change_then_back, stored_spec};
use super::patches;

#[derive(Template)]
#[template(path = "admin/field_drop.html")]
struct DropFieldPage {
    layout: Layout,
    collection: String,
    field: String,
    /// Indexes dropped with the field.
    indexes: Vec<String>,
    problems: Vec<String>,
}

fn drop_page(v: &Visitor, spec: &CollectionSpec, field: &str) -> Result<DropFieldPage, WebError> {
    if !spec.fields.iter().any(|f| f.name == field) {
        return Err(crate::error::AppError::NotFound.into());
    }
    Ok(DropFieldPage {
        layout: v.layout(format!("Drop field {field}")),
        collection: spec.name.clone(),
        field: field.to_string(),
        indexes: patches::indexes_using(spec, field)
            .iter()
            .map(|ix| ix.name.clone())
            .collect(),
        problems: Vec::new(),
    })
}

#[get("/admin/collections/<name>/fields/<field>/drop")]
pub fn drop_field_page(
    app: &State<App>,
    s: Staff,
    name: &str,
    field: &str,
) -> Result<Page, WebError> {
    let spec = stored_spec(app, name)?;
    render(&drop_page(&s.0, &spec, field)?)
}

#[post("/admin/collections/<name>/fields/<field>/drop", data = "<_form>")]
pub async fn drop_field_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    field: &str,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    let spec = stored_spec(app, name)?;
    let mut page = drop_page(&s.0, &spec, field)?;
    let failure = match change_then_back(
        app,
        &s,
        name,
        |current| patches::drop_field(current, field),
        format!("Field {field} dropped."),
    )
    .await?
    {
        Ok(done) => return Ok(done),
        Err(failure) => failure,
    };
    page.problems = failure.split(&[]).1;
    Ok(render(&page)?.into())
}
