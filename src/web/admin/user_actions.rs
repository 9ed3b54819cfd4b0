//! What an admin does to an account: change its role, disable or enable it, set a new
//! password, end its sessions, delete it (after a confirmation page). A new role, a new
//! password and disabling end the user's sessions (the service does that); the last enabled
//! admin cannot be demoted, disabled or deleted, and the page says so.

use askama::Template;
use rocket::form::FromForm;
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};

use crate::app::App;
use crate::auth::Role;
use crate::error::AppError;
use crate::services::identity::{self, UserChanges};
use crate::services::sessions;

use super::super::page::{Answer, Layout, Page, WebError, render};
use super::super::visitor::{Checked, NoFields, Staff};
use super::form_errors::{Errors, Failure};
use super::user_page::user_page;

fn user_url(id: &str) -> String {
    format!("/admin/users/{id}")
}

/// Apply `changes`; on a refusal show the user's page with the message.
async fn change(
    app: &App,
    s: &Staff,
    id: &str,
    changes: UserChanges,
    done: &str,
) -> Result<Answer, WebError> {
    let user = identity::get_user(app, id).await?;
    let failure = match identity::update_user(app, &s.0.caller, &user.id, changes).await {
        Ok(_) => {
            return Ok(Flash::success(Redirect::to(user_url(&user.id)), done).into());
        }
        Err(e) => Failure::from_service(e)?,
    };
    let (password_errors, problems) = failure.pick(&["password"]);
    let mut page = user_page(app, &s.0, &user.id).await?;
    page.password_errors = password_errors;
    page.problems = problems;
    Ok(render(&page)?.into())
}

/// The role form.
#[derive(Debug, FromForm)]
pub struct RoleForm {
    #[field(default = String::new())]
    pub role: String,
}

#[post("/admin/users/<id>/role", data = "<form>")]
pub async fn change_role_submit(
    app: &State<App>,
    s: Staff,
    id: &str,
    form: Checked<RoleForm>,
) -> Result<Answer, WebError> {
    let role: Role = form
        .0
        .role
        .parse()
        .map_err(|m: String| WebError(AppError::BadRequest(m)))?;
    let user = identity::get_user(app, id).await?;
    if user.role == role {
        return Ok(Flash::success(
            Redirect::to(user_url(&user.id)),
            format!("The role was already {role}; nothing changed."),
        )
        .into());
    }
    let changes = UserChanges {
        role: Some(role),
        ..UserChanges::default()
    };
    change(
        app,
        &s,
        id,
        changes,
        "Role changed; the user's sessions ended.",
    )
    .await
}

/// The disable/enable buttons.
#[derive(Debug, FromForm)]
pub struct DisabledForm {
    pub disabled: bool,
}

#[post("/admin/users/<id>/disabled", data = "<form>")]
pub async fn set_disabled_submit(
    app: &State<App>,
    s: Staff,
    id: &str,
    form: Checked<DisabledForm>,
) -> Result<Answer, WebError> {
    let disabled = form.0.disabled;
    let changes = UserChanges {
        disabled: Some(disabled),
        ..UserChanges::default()
    };
    let done = if disabled {
        "User disabled; their sessions ended."
    } else {
        "User enabled."
    };
    change(app, &s, id, changes, done).await
}

/// The new-password form.
#[derive(Debug, FromForm)]
pub struct PasswordForm {
    #[field(default = String::new())]
    pub password: String,
    #[field(default = String::new())]
    pub confirm: String,
}

#[post("/admin/users/<id>/password", data = "<form>")]
pub async fn reset_password_submit(
    app: &State<App>,
    s: Staff,
    id: &str,
    form: Checked<PasswordForm>,
) -> Result<Answer, WebError> {
    let form = form.0;
    if form.password != form.confirm {
        let mut page = user_page(app, &s.0, id).await?;
        page.password_errors = Errors::default();
        page.password_errors
            .insert("confirm", "The passwords differ.");
        return Ok(render(&page)?.into());
    }
    let changes = UserChanges {
        password: Some(form.password),
        ..UserChanges::default()
    };
    change(
        app,
        &s,
        id,
        changes,
        "Password set; the user's sessions ended.",
    )
    .await
}

#[post("/admin/users/<id>/sessions/end", data = "<_form>")]
pub async fn end_sessions_submit(
    app: &State<App>,
    s: Staff,
    id: &str,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    let user = identity::get_user(app, id).await?;
    // An admin ending their own sessions stays signed in here.
    let keep =
        s.0.caller
            .session
            .as_ref()
            .filter(|session| session.user_id == user.id)
            .map(|session| session.id.clone());
    let n = sessions::end_all(app, &s.0.caller, &user.id, keep.as_deref()).await?;
    Ok(Flash::success(
        Redirect::to(user_url(&user.id)),
        format!("{n} session(s) ended."),
    )
    .into())
}

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct DeleteUserPage {
    layout: Layout,
    id: String,
    email: String,
    problems: Vec<String>,
}

#[get("/admin/users/<id>/delete")]
pub async fn delete_user_page(app: &State<App>, s: Staff, id: &str) -> Result<Page, WebError> {
    let user = identity::get_user(app, id).await?;
    render(&DeleteUserPage {
        layout: s.0.layout(format!("Delete user {}", user.email)),
        id: user.id,
        email: user.email,
        problems: Vec::new(),
    })
}

#[post("/admin/users/<id>/delete", data = "<_form>")]
pub async fn delete_user_submit(
    app: &State<App>,
    s: Staff,
    id: &str,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    let user = identity::get_user(app, id).await?;
    let failure = match identity::delete_user(app, &s.0.caller, &user.id).await {
        Ok(()) => {
            return Ok(Flash::success(
                Redirect::to("/admin/users"),
                format!("User {} deleted.", user.email),
            )
            .into());
        }
        Err(e) => Failure::from_service(e)?,
    };
    Ok(render(&DeleteUserPage {
        layout: s.0.layout(format!("Delete user {}", user.email)),
        id: user.id,
        email: user.email,
        problems: failure.split(&[]).1,
    })?
    .into())
}
