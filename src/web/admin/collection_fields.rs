//! Changing fields: `POST /admin/collections/<name>/fields` adds one;
//! `GET/POST /admin/collections/<name>/fields/<field>` shows and saves one field's type and
//! options; `POST …/fields/<field>/rename` renames it (its data moves along).

use askama::Template;
use rocket::form::FromForm;
use rocket::{State, get, post};

use crate::app::App;
use crate::schema::CollectionSpec;

use super::super::page::{Answer, Layout, Page, WebError, render};
use super::super::visitor::{Checked, Staff, Visitor};
use super::collection_editor::{change_then_back, editor, relation_targets, stored_spec};
use super::field_form::{FieldForm, ON_DELETE, TYPES};
use super::form_errors::{Errors, Failure};
use super::patches;

/// The keys the service files a field's messages under: by name, or by place in the list.
fn field_keys(name: &str, position: usize) -> [String; 2] {
    [
        format!("fields.{}", name.trim()),
        format!("fields.{position}"),
    ]
}

#[post("/admin/collections/<name>/fields", data = "<form>")]
pub async fn add_field_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    form: Checked<FieldForm>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let spec = stored_spec(app, name)?;
    let failure = match form.to_spec() {
        Err(errors) => Failure::of_form(errors),
        Ok(field) => {
            let field_name = field.name.clone();
            match change_then_back(
                app,
                &s,
                name,
                |current| patches::add_field(current, field),
                format!("Field {field_name} added."),
            )
            .await?
            {
                Ok(done) => return Ok(done),
                Err(failure) => failure,
            }
        }
    };
    let keys = field_keys(&form.name, spec.fields.len());
    let (errors, problems) = failure.split(&[&keys[0], &keys[1]]);
    let mut page = editor(app, &s.0, name)?;
    page.add = form;
    page.add_errors = errors;
    page.problems = problems;
    Ok(render(&page)?.into())
}

#[derive(Template)]
#[template(path = "admin/field.html")]
struct FieldPage {
    layout: Layout,
    collection: String,
    field: String,
    form: FieldForm,
    errors: Errors,
    rename_to: String,
    rename_errors: Errors,
    problems: Vec<String>,
    targets: Vec<String>,
    types: &'static [(&'static str, &'static str)],
    on_delete: &'static [(&'static str, &'static str)],
    lock_name: bool,
}

/// The page of field `field` as stored.
fn field_page(
    app: &App,
    v: &Visitor,
    spec: &CollectionSpec,
    field: &str,
) -> Result<FieldPage, WebError> {
    let stored = spec
        .fields
        .iter()
        .find(|f| f.name == field)
        .ok_or(crate::error::AppError::NotFound)?;
    Ok(FieldPage {
        layout: v.layout(format!("Field {field} of {}", spec.name)),
        collection: spec.name.clone(),
        field: field.to_string(),
        form: FieldForm::from_spec(stored),
        errors: Errors::default(),
        rename_to: field.to_string(),
        rename_errors: Errors::default(),
        problems: Vec::new(),
        targets: relation_targets(app),
        types: &TYPES,
        on_delete: &ON_DELETE,
        lock_name: true,
    })
}

#[get("/admin/collections/<name>/fields/<field>")]
pub fn field_edit_page(
    app: &State<App>,
    s: Staff,
    name: &str,
    field: &str,
) -> Result<Page, WebError> {
    let spec = stored_spec(app, name)?;
    render(&field_page(app, &s.0, &spec, field)?)
}

#[post("/admin/collections/<name>/fields/<field>", data = "<form>")]
pub async fn edit_field_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    field: &str,
    form: Checked<FieldForm>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let spec = stored_spec(app, name)?;
    let mut page = field_page(app, &s.0, &spec, field)?;
    let position = spec.fields.iter().position(|f| f.name == field);
    let failure = match form.to_spec() {
        Err(errors) => Failure::of_form(errors),
        Ok(new) => {
            match change_then_back(
                app,
                &s,
                name,
                |current| patches::edit_field(current, field, new),
                format!("Field {field} saved."),
            )
            .await?
            {
                Ok(done) => return Ok(done),
                Err(failure) => failure,
            }
        }
    };
    let keys = field_keys(field, position.unwrap_or_default());
    let (errors, problems) = failure.split(&[&keys[0], &keys[1]]);
    page.form = FieldForm {
        name: field.to_string(),
        ..form
    };
    page.errors = errors;
    page.problems = problems;
    Ok(render(&page)?.into())
}

/// The rename form.
#[derive(Debug, FromForm)]
pub struct RenameForm {
    #[field(default = String::new())]
    pub name: String,
}

#[post("/admin/collections/<name>/fields/<field>/rename", data = "<form>")]
pub async fn rename_field_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    field: &str,
    form: Checked<RenameForm>,
) -> Result<Answer, WebError> {
    let to = form.0.name.trim().to_string();
    let spec = stored_spec(app, name)?;
    let mut page = field_page(app, &s.0, &spec, field)?;
    let position = spec.fields.iter().position(|f| f.name == field);
    let failure = match change_then_back(
        app,
        &s,
        name,
        |current| patches::rename_field(current, field, &to),
        format!("Field {field} renamed to {to}."),
    )
    .await?
    {
        Ok(done) => return Ok(done),
        Err(failure) => failure,
    };
    let keys = field_keys(&to, position.unwrap_or_default());
    let (mut errors, problems) = failure.split(&[&keys[0], &keys[1]]);
    // The rename form has one input: every message about the renamed field goes beside it.
    let merged: Vec<String> = errors.0.values().cloned().collect();
    errors = Errors::default();
    if !merged.is_empty() {
        errors.insert("name", merged.join("; "));
    }
    page.rename_to = to;
    page.rename_errors = errors;
    page.problems = problems;
    Ok(render(&page)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_messages_are_found_by_name_or_by_place() {
        assert_eq!(field_keys(" title ", 3), ["fields.title", "fields.3"]);
    }
}
