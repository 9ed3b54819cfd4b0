//! `GET /admin/users` (every account, a page at a time) and `POST /admin/users` (create one
//! with an email, a password and a role).

use askama::Template;
use rocket::form::FromForm;
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};

use crate::app::App;
use crate::auth::{Role, User};
use crate::services::identity;

use super::super::page::{Answer, Layout, Page, WebError, render, urlencoding};
use super::super::visitor::{Checked, Staff, Visitor};
use super::form_errors::{Errors, Failure};

/// Users on one page.
const PAGE_SIZE: u32 = 50;

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<User>,
    /// The next page's address, when there is one.
    next: Option<String>,
    email: String,
    role: String,
    errors: Errors,
    problems: Vec<String>,
}

impl UsersPage {
    /// A stored time as `2026-05-01 12:00:00 UTC`.
    fn when(&self, stored: &str) -> String {
        super::readable_time(stored)
    }
}

async fn users_page(app: &App, v: &Visitor, after: Option<String>) -> Result<UsersPage, WebError> {
    let mut users = identity::list_users(app, after, PAGE_SIZE + 1).await?;
    let next = if users.len() > PAGE_SIZE as usize {
        users.truncate(PAGE_SIZE as usize);
        users
            .last()
            .map(|u| format!("/admin/users?after={}", urlencoding(&u.id)))
    } else {
        None
    };
    Ok(UsersPage {
        layout: v.layout("Users"),
        users,
        next,
        email: String::new(),
        role: "user".into(),
        errors: Errors::default(),
        problems: Vec::new(),
    })
}

#[get("/admin/users?<after>")]
pub async fn users_list_page(
    app: &State<App>,
    s: Staff,
    after: Option<String>,
) -> Result<Page, WebError> {
    render(&users_page(app, &s.0, after).await?)
}

/// The new-user form.
#[derive(Debug, FromForm)]
pub struct NewUserForm {
    #[field(default = String::new())]
    pub email: String,
    #[field(default = String::new())]
    pub password: String,
    #[field(default = String::from("user"))]
    pub role: String,
}

#[post("/admin/users", data = "<form>")]
pub async fn create_user_submit(
    app: &State<App>,
    s: Staff,
    form: Checked<NewUserForm>,
) -> Result<Answer, WebError> {
    let form = form.0;
    let failure = match form.role.parse::<Role>() {
        Err(_) => {
            let mut e = Errors::default();
            e.insert("role", "choose admin or user");
            Failure::of_form(e)
        }
        Ok(role) => {
            match identity::create_user(app, Some(&s.0.caller), &form.email, &form.password, role)
                .await
            {
                Ok(user) => {
                    return Ok(Flash::success(
                        Redirect::to(format!("/admin/users/{}", user.id)),
                        format!("User {} created.", user.email),
                    )
                    .into());
                }
                Err(e) => Failure::from_service(e)?,
            }
        }
    };
    let (errors, problems) = failure.pick(&["email", "password", "role"]);
    let mut page = users_page(app, &s.0, None).await?;
    page.email = form.email;
    page.role = form.role;
    page.errors = errors;
    page.problems = problems;
    Ok(render(&page)?.into())
}
