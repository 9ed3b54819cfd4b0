//! The data pages: a collection's records as a table (filter, sort, paging both ways, count),
//! one record, the new and edit forms generated from the field types, and delete with a
//! confirmation. Every read and write goes through `services::records`, so rules apply exactly
//! as in the API: a record the visitor may not reach is a 404 page.

mod cells;
mod delete_page;
mod form_fields;
mod form_pages;
mod list_page;
mod record_form;
mod record_page;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::app::App;
use crate::error::AppError;
use crate::schema::Collection;

use super::page::{WebError, urlencoding};

pub use delete_page::{delete_record_page, delete_record_submit};
pub use form_pages::{edit_record_page, edit_record_submit, new_record_page, new_record_submit};
pub use list_page::records_page;
pub use record_page::view_record_page;

/// The collection called `name`, or the 404 page.
fn collection(app: &App, name: &str) -> Result<Arc<Collection>, WebError> {
    Ok(app.collections.get(name)?.collection.clone())
}

/// A record as the service answers it (a JSON object).
fn parse_record(bytes: &[u8]) -> Result<Map<String, Value>, WebError> {
    serde_json::from_slice(bytes)
        .map_err(|e| WebError(AppError::Internal(format!("record JSON: {e}"))))
}

/// The path of a record's page.
fn record_href(name: &str, id: &str) -> String {
    format!("/c/{name}/{}", urlencoding(id))
}

/// A short name for a record in headings: its first non-empty text value, else its id.
fn record_label(c: &Collection, record: &Map<String, Value>, id: &str) -> String {
    c.fields
        .iter()
        .filter(|f| matches!(f.kind, crate::schema::FieldKind::Text { .. }))
        .find_map(|f| record.get(&f.name)?.as_str().filter(|s| !s.is_empty()))
        .map_or_else(|| id.to_owned(), |s| cells::shorten(s, 60))
}
