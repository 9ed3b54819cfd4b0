//! The home page: the collections this visitor may list.

use askama::Template;
use rocket::{State, get};

use crate::app::App;
use crate::schema::Rule;

use super::page::{Layout, Page, WebError, render};
use super::visitor::Visitor;

/// One collection on the home page.
pub struct CollectionLink {
    pub name: String,
    pub fields: usize,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    collections: Vec<CollectionLink>,
    signed_in: bool,
}

#[get("/")]
pub fn home(app: &State<App>, v: Visitor) -> Result<Page, WebError> {
    let admin = v.caller.is_admin();
    let collections = app
        .collections
        .list()
        .into_iter()
        // Admin-only lists are shown to admins only; a rule expression may still hide rows.
        .filter(|c| admin || !matches!(c.rules.list, Rule::AdminOnly))
        .map(|c| CollectionLink {
            name: c.name.clone(),
            fields: c.fields.len(),
        })
        .collect();
    render(&HomePage {
        layout: v.layout("Home"),
        collections,
        signed_in: v.caller.user.is_some(),
    })
}
