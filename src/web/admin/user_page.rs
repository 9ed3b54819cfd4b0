//! `GET /admin/users/<id>`: one account — its role, whether it is disabled, its sessions —
//! with the forms that change them (handled in `user_actions`) and a link to delete it.

use askama::Template;
use rocket::{State, get};

use crate::app::App;
use crate::auth::User;
use crate::auth::sessions::SessionRow;
use crate::services::{identity, sessions};

use super::super::page::{Layout, Page, WebError, render};
use super::super::visitor::{Staff, Visitor};
use super::form_errors::Errors;

#[derive(Template)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    pub layout: Layout,
    pub user: User,
    pub sessions: Vec<SessionRow>,
    /// The admin looking at their own account.
    pub is_self: bool,
    pub password_errors: Errors,
    pub problems: Vec<String>,
}

impl UserPage {
    /// A stored time as `2026-05-01 12:00:00 UTC`.
    pub fn when(&self, stored: &str) -> String {
        super::readable_time(stored)
    }

    pub fn is_admin_role(&self) -> bool {
        self.user.role == crate::auth::Role::Admin
    }
}

/// The page of user `id` (404 when there is none).
pub async fn user_page(app: &App, v: &Visitor, id: &str) -> Result<UserPage, WebError> {
    let user = identity::get_user(app, id).await?;
    let sessions = sessions::list(app, &user.id).await?;
    Ok(UserPage {
        layout: v.layout(format!("User {}", user.email)),
        is_self: v.caller.user_id() == Some(user.id.as_str()),
        user,
        sessions,
        password_errors: Errors::default(),
        problems: Vec::new(),
    })
}

#[get("/admin/users/<id>")]
pub async fn user_detail_page(app: &State<App>, s: Staff, id: &str) -> Result<Page, WebError> {
    render(&user_page(app, &s.0, id).await?)
}
