//! `GET /admin/collections`: every collection with its field count, linking to its editor.

use askama::Template;
use rocket::{State, get};

use crate::app::App;

use super::super::page::{Layout, Page, WebError, render};
use super::super::visitor::Staff;

/// One collection in the list.
pub struct CollectionRow {
    pub name: String,
    pub fields: usize,
    pub indexes: usize,
}

#[derive(Template)]
#[template(path = "admin/collections.html")]
struct CollectionsPage {
    layout: Layout,
    collections: Vec<CollectionRow>,
}

#[get("/admin/collections")]
pub fn collections_page(app: &State<App>, s: Staff) -> Result<Page, WebError> {
    let collections = app
        .collections
        .list()
        .iter()
        .map(|c| CollectionRow {
            name: c.name.clone(),
            fields: c.fields.len(),
            indexes: c.indexes.len(),
        })
        .collect();
    render(&CollectionsPage {
        layout: s.0.layout("Collections"),
        collections,
    })
}
