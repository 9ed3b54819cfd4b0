//! Admin pages: the index of admin sections (collections, users, audit trail).

use askama::Template;
use rocket::get;

use super::page::{Layout, Page, WebError, render};
use super::visitor::Staff;

#[derive(Template)]
#[template(path = "admin/index.html")]
struct AdminIndexPage {
    layout: Layout,
}

#[get("/admin")]
pub fn admin_index(s: Staff) -> Result<Page, WebError> {
    render(&AdminIndexPage {
        layout: s.0.layout("Admin"),
    })
}
