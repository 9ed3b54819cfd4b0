//! `GET/POST /admin/collections/new`: a name and a few blank rows of simple fields. Fields
//! with more options (choices, relations) are added afterwards on the collection's page.

use askama::Template;
use rocket::form::FromForm;
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};

use crate::app::App;
use crate::schema::{CollectionSpec, FieldSpec};

use super::super::page::{Answer, Layout, Page, WebError, render};
use super::super::visitor::{Checked, Staff};
use super::form_errors::{Errors, Failure};

/// How many blank field rows the form offers.
pub const ROWS: usize = 6;

/// The types a new-collection row may have: those without options that must be set.
pub const SIMPLE_TYPES: [(&str, &str); 7] = [
    ("text", "Text"),
    ("number", "Number"),
    ("bool", "Yes / no"),
    ("datetime", "Date and time"),
    ("email", "Email"),
    ("url", "URL"),
    ("json", "JSON"),
];

/// One field row as typed.
#[derive(Debug, Clone, Default, FromForm)]
pub struct FieldRow {
    #[field(default = String::new())]
    pub name: String,
    #[field(name = "type", default = String::from("text"))]
    pub ty: String,
    pub required: bool,
    pub unique: bool,
    pub indexed: bool,
}

/// The new-collection form.
#[derive(Debug, Default, FromForm)]
pub struct NewCollectionForm {
    #[field(default = String::new())]
    pub name: String,
    pub fields: Vec<FieldRow>,
}

impl NewCollectionForm {
    /// The definition asked for; rows without a name are left out.
    pub fn to_spec(&self) -> CollectionSpec {
        CollectionSpec {
            name: self.name.trim().to_string(),
            fields: self
                .filled()
                .map(|row| FieldSpec {
                    name: row.name.trim().to_string(),
                    ty: row.ty.trim().to_string(),
                    required: row.required,
                    unique: row.unique,
                    indexed: row.indexed,
                    ..FieldSpec::default()
                })
                .collect(),
            rules: Default::default(),
            indexes: Vec::new(),
        }
    }

    fn filled(&self) -> impl Iterator<Item = &FieldRow> {
        self.fields.iter().filter(|r| !r.name.trim().is_empty())
    }
}

/// A row on the page with its messages.
pub struct RowView {
    pub index: usize,
    pub row: FieldRow,
    pub errors: Errors,
}

#[derive(Template)]
#[template(path = "admin/collection_new.html")]
struct NewCollectionPage {
    layout: Layout,
    name: String,
    name_errors: Errors,
    rows: Vec<RowView>,
    problems: Vec<String>,
    types: &'static [(&'static str, &'static str)],
}

fn page(layout: Layout, form: NewCollectionForm, failure: Option<Failure>) -> NewCollectionPage {
    let mut errors = failure.map(|f| (f.errors, f.problems)).unwrap_or_default();
    let name_errors = Errors::take(&mut errors.0, &["name"]);
    // The service numbers fields by their place among the filled rows, which is `rows.len()`.
    let mut rows: Vec<RowView> = Vec::new();
    for row in form
        .fields
        .into_iter()
        .filter(|r| !r.name.trim().is_empty())
    {
        let keys = [
            format!("fields.{}", row.name.trim()),
            format!("fields.{}", rows.len()),
        ];
        let errors = Errors::take(&mut errors.0, &[&keys[0], &keys[1]]);
        rows.push(RowView {
            index: rows.len(),
            row,
            errors,
        });
    }
    while rows.len() < ROWS {
        rows.push(RowView {
            index: rows.len(),
            row: FieldRow {
                ty: "text".into(),
                ..<FieldRow as Default>::default()
            },
            errors: Errors::default(),
        });
    }
    let mut problems = errors.1;
    problems.extend(errors.0.into_iter().map(|(k, v)| format!("{k}: {v}")));
    NewCollectionPage {
        layout,
        name: form.name,
        name_errors,
        rows,
        problems,
        types: &SIMPLE_TYPES,
    }
}

#[get("/admin/collections/new")]
pub fn new_collection_page(s: Staff) -> Result<Page, WebError> {
    render(&page(
        s.0.layout("New collection"),
        <NewCollectionForm as Default>::default(),
        None,
    ))
}

#[post("/admin/collections/new", data = "<form>")]
pub async fn create_collection_submit(
    app: &State<App>,
    s: Staff,
    form: Checked<NewCollectionForm>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let failure = match app
        .collections
        .create(s.0.caller.actor(), form.to_spec())
        .await
    {
        Ok(c) => {
            return Ok(Flash::success(
                Redirect::to(format!("/admin/collections/{}", c.name)),
                format!("Collection {} created.", c.name),
            )
            .into());
        }
        Err(e) => Failure::from_service(e)?,
    };
    Ok(render(&page(s.0.layout("New collection"), form, Some(failure)))?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, ty: &str) -> FieldRow {
        FieldRow {
            name: name.into(),
            ty: ty.into(),
            ..<FieldRow as Default>::default()
        }
    }

    #[test]
    fn blank_rows_are_left_out_of_the_definition() {
        let form = NewCollectionForm {
            name: " notes ".into(),
            fields: vec![
                row("title", "text"),
                row("  ", "number"),
                FieldRow {
                    unique: true,
                    ..row("n", "number")
                },
            ],
        };
        let spec = form.to_spec();
        assert_eq!(spec.name, "notes");
        let fields: Vec<(&str, &str, bool)> = spec
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.ty.as_str(), f.unique))
            .collect();
        assert_eq!(fields, [("title", "text", false), ("n", "number", true)]);
    }

    #[test]
    fn errors_go_to_their_row_and_the_page_keeps_enough_blank_rows() {
        let form = NewCollectionForm {
            name: "Bad".into(),
            fields: vec![row("", "text"), row("ok", "text"), row("Bad Name", "text")],
        };
        let failure = Failure {
            errors: [
                ("name".to_string(), "bad name".to_string()),
                ("fields.1.name".to_string(), "bad field name".to_string()),
                ("rules.list".to_string(), "elsewhere".to_string()),
            ]
            .into(),
            ..Failure::default()
        };
        let layout = Layout {
            title: String::new(),
            user: None,
            csrf: String::new(),
            notice: None,
        };
        let p = page(layout, form, Some(failure));
        assert_eq!(p.name_errors.get(""), Some("bad name"));
        assert_eq!(p.rows.len(), ROWS);
        assert_eq!(p.rows[1].row.name, "Bad Name");
        assert_eq!(p.rows[1].errors.get("name"), Some("bad field name"));
        assert!(p.rows[0].errors.is_empty());
        assert_eq!(p.problems, ["rules.list: elsewhere"]);
    }
}
