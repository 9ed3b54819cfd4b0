//! `GET|POST /c/<name>/new` and `GET|POST /c/<name>/<id>/edit`: the record form generated from
//! the field types. A submission that fails comes back (status 200) with the typed values and
//! each message beside its field; success redirects to the record page with a notice.

use askama::Template;
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::AppError;
use crate::schema::{Collection, Operation};
use crate::services::records::{self, etag_of_json};

use super::super::page::{Answer, Layout, WebError, render};
use super::super::visitor::{Checked, Visitor};
use super::form_fields::{FormField, form_fields};
use super::record_form::{self, FormErrors, RawForm};
use super::{collection, parse_record, record_href, record_label};

/// The hidden input carrying the version (ETag) of the record an edit form was made from. No
/// field can be called this: field names start with a letter.
const VERSION: &str = "_version";

#[derive(Template)]
#[template(path = "records/form.html")]
struct RecordFormPage {
    layout: Layout,
    name: String,
    heading: String,
    action: String,
    submit: &'static str,
    cancel_href: String,
    version: Option<String>,
    fields: Vec<FormField>,
    form_error: Option<String>,
}

/// Which form: a new record, or an existing one (with its label and current version).
enum Mode<'a> {
    New,
    Edit {
        id: &'a str,
        label: String,
        version: String,
    },
}

/// What a failed submission shows: messages per field, and one for the whole form.
#[derive(Default)]
struct Failure {
    errors: FormErrors,
    form_error: Option<String>,
}

impl Failure {
    /// The service's refusal as messages, or the error page when it is not about the values.
    fn from_error(err: AppError) -> Result<Failure, WebError> {
        let mut f = Failure::default();
        match err {
            AppError::Validation { errors, .. } => f.errors = errors,
            AppError::Conflict {
                detail,
                field: Some(field),
            } => {
                f.errors.insert(field, detail);
            }
            AppError::Conflict { detail, .. } => f.form_error = Some(detail),
            // The rule was checked before; what it refuses now is these values.
            AppError::Forbidden(_) => {
                f.form_error =
                    Some("The collection's rules do not let you save these values.".into())
            }
            AppError::PreconditionFailed => {
                f.form_error = Some(
                    "Someone changed this record after you opened the form. Saving again replaces their changes with the values below."
                        .into(),
                )
            }
            other => return Err(other.into()),
        }
        Ok(f)
    }

    /// Inputs that did not convert, plus what the service says about the rest.
    fn unconverted(
        app: &App,
        name: &str,
        input: &Map<String, Value>,
        mut errors: FormErrors,
        create: bool,
    ) -> Result<Failure, WebError> {
        for (field, message) in records::validation_errors(app, name, input, create)? {
            errors.entry(field).or_insert(message);
        }
        Ok(Failure {
            errors,
            form_error: None,
        })
    }
}

async fn form_page(
    app: &App,
    v: &Visitor,
    c: &Collection,
    mode: Mode<'_>,
    inputs: &RawForm,
    failure: Failure,
) -> Result<Answer, WebError> {
    let name = &c.name;
    let (heading, action, submit, cancel_href, version) = match mode {
        Mode::New => (
            format!("New record in {name}"),
            format!("/c/{name}/new"),
            "Create",
            format!("/c/{name}"),
            None,
        ),
        Mode::Edit { id, label, version } => (
            format!("Edit {label}"),
            format!("{}/edit", record_href(name, id)),
            "Save",
            record_href(name, id),
            Some(version),
        ),
    };
    let fields = form_fields(app, &v.caller, c, inputs, &failure.errors).await;
    Ok(render(&RecordFormPage {
        layout: v.layout(heading.clone()),
        name: name.clone(),
        heading,
        action,
        submit,
        cancel_href,
        version,
        fields,
        form_error: failure.form_error,
    })?
    .into())
}

#[get("/c/<name>/new", rank = 1)]
pub async fn new_record_page(app: &State<App>, v: Visitor, name: &str) -> Result<Answer, WebError> {
    let c = collection(app, name)?;
    if let Err(e) = records::check_rule(app, name, &v.caller, Operation::Create) {
        return Err(e.into());
    }
    let inputs = record_form::from_defaults(&c);
    form_page(app, &v, &c, Mode::New, &inputs, Failure::default()).await
}

#[post("/c/<name>/new", data = "<form>")]
pub async fn new_record_submit(
    app: &State<App>,
    v: Visitor,
    name: &str,
    form: Checked<RawForm>,
) -> Result<Answer, WebError> {
    let c = collection(app, name)?;
    records::check_rule(app, name, &v.caller, Operation::Create)?;
    let inputs = record_form::inputs_of(form.0);
    let (input, errors) = record_form::to_record(&c, &inputs);
    let failure = if errors.is_empty() {
        match records::create(app, name, &v.caller, input).await {
            Ok(written) => {
                return Ok(
                    Flash::success(Redirect::to(record_href(name, &written.id)), "Created").into(),
                );
            }
            Err(e) => Failure::from_error(e)?,
        }
    } else {
        Failure::unconverted(app, name, &input, errors, true)?
    };
    form_page(app, &v, &c, Mode::New, &inputs, failure).await
}

#[get("/c/<name>/<id>/edit")]
pub async fn edit_record_page(
    app: &State<App>,
    v: Visitor,
    name: &str,
    id: &str,
) -> Result<Answer, WebError> {
    let c = collection(app, name)?;
    let json = match records::get_for(app, name, id, &v.caller, Operation::Update).await {
        Ok(json) => json,
        Err(e) => return Err(e.into()),
    };
    let record = parse_record(&json)?;
    let mode = Mode::Edit {
        id,
        label: record_label(&c, &record, id),
        version: etag_of_json(&json),
    };
    let inputs = record_form::from_record(&c, &record);
    form_page(app, &v, &c, mode, &inputs, Failure::default()).await
}

#[post("/c/<name>/<id>/edit", data = "<form>")]
pub async fn edit_record_submit(
    app: &State<App>,
    v: Visitor,
    name: &str,
    id: &str,
    form: Checked<RawForm>,
) -> Result<Answer, WebError> {
    let c = collection(app, name)?;
    // A record the visitor may not change is a 404 before any of the form is looked at.
    let json = records::get_for(app, name, id, &v.caller, Operation::Update).await?;
    let inputs = record_form::inputs_of(form.0);
    let sent_version = inputs
        .get(VERSION)
        .and_then(|v| v.first())
        .filter(|v| !v.is_empty())
        .cloned();
    let (input, errors) = record_form::to_record(&c, &inputs);
    let failure = if errors.is_empty() {
        match records::update(app, name, id, &v.caller, input, sent_version).await {
            Ok(_) => {
                return Ok(Flash::success(Redirect::to(record_href(name, id)), "Saved").into());
            }
            Err(e) => Failure::from_error(e)?,
        }
    } else {
        Failure::unconverted(app, name, &input, errors, false)?
    };
    let record = parse_record(&json)?;
    // The form comes back with the current version: saving again is a deliberate overwrite.
    let mode = Mode::Edit {
        id,
        label: record_label(&c, &record, id),
        version: etag_of_json(&json),
    };
    form_page(app, &v, &c, mode, &inputs, failure).await
}
