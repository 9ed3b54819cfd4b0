//! `POST /admin/collections/<name>/indexes` (add a named, possibly composite index) and
//! `POST /admin/collections/<name>/indexes/<index>/drop`.

use rocket::form::FromForm;
use rocket::{State, post};

use crate::app::App;
use crate::schema::IndexSpec;

use super::super::page::{Answer, WebError, render};
use super::super::visitor::{Checked, NoFields, Staff};
use super::collection_editor::{change_then_back, editor, stored_spec};
use super::patches;

/// The add-index form as typed.
#[derive(Debug, Clone, Default, FromForm)]
pub struct IndexForm {
    #[field(default = String::new())]
    pub name: String,
    /// Field names in index order, separated by commas or spaces.
    #[field(default = String::new())]
    pub fields: String,
    pub unique: bool,
}

impl IndexForm {
    pub fn to_spec(&self) -> IndexSpec {
        IndexSpec {
            name: self.name.trim().to_string(),
            fields: self
                .fields
                .split([',', ' ', '\t', '\n', '\r'])
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            unique: self.unique,
        }
    }
}

#[post("/admin/collections/<name>/indexes", data = "<form>")]
pub async fn add_index_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    form: Checked<IndexForm>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let spec = stored_spec(app, name)?;
    let index = form.to_spec();
    let index_name = index.name.clone();
    let failure = match change_then_back(
        app,
        &s,
        name,
        |current| patches::add_index(current, index),
        format!("Index {index_name} added."),
    )
    .await?
    {
        Ok(done) => return Ok(done),
        Err(failure) => failure,
    };
    let keys = [
        format!("indexes.{index_name}"),
        format!("indexes.{}", spec.indexes.len()),
    ];
    let (errors, problems) = failure.split(&[&keys[0], &keys[1], "indexes"]);
    let mut page = editor(app, &s.0, name)?;
    page.index_form = form;
    page.index_errors = errors;
    page.problems = problems;
    Ok(render(&page)?.into())
}

#[post("/admin/collections/<name>/indexes/<index>/drop", data = "<_form>")]
pub async fn drop_index_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    index: &str,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    stored_spec(app, name)?;
    let failure = match change_then_back(
        app,
        &s,
        name,
        |current| patches::drop_index(current, index),
        format!("Index {index} dropped."),
    )
    .await?
    {
        Ok(done) => return Ok(done),
        Err(failure) => failure,
    };
    let (_, problems) = failure.split(&[]);
    let mut page = editor(app, &s.0, name)?;
    page.problems = problems;
    Ok(render(&page)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_fields_keep_their_order_whatever_the_separator() {
        let form = IndexForm {
            name: " by_year_title ".into(),
            fields: "year, title\tcreated,,".into(),
            unique: true,
        };
        let spec = form.to_spec();
        assert_eq!(spec.name, "by_year_title");
        assert_eq!(spec.fields, ["year", "title", "created"]);
        assert!(spec.unique);
    }
}
