//! `/api/users[/{id}]`: user administration, for admins.

use rocket::State;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::auth::Role;
use crate::error::AppError;
use crate::services::identity::{self, UserChanges};

use super::body::JsonBody;
use super::guards::Admin;
use super::reply::Reply;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    email: String,
    password: String,
    #[serde(default = "default_role")]
    role: Role,
}

fn default_role() -> Role {
    Role::User
}

#[rocket::get("/users?<after>&<limit>")]
pub async fn list_users(
    app: &State<App>,
    _admin: Admin,
    after: Option<String>,
    limit: Option<u32>,
) -> Result<Reply, AppError> {
    let limit = limit
        .unwrap_or(app.settings.default_page_size)
        .clamp(1, app.settings.max_page_size);
    let mut users = identity::list_users(app, after, limit + 1).await?;
    let next = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users.last().map(|u| u.id.clone())
    } else {
        None
    };
    Reply::ok(&json!({ "items": users, "next": next }))
}

#[rocket::post("/users", data = "<body>")]
pub async fn create_user(
    app: &State<App>,
    admin: Admin,
    body: JsonBody<CreateUserRequest>,
) -> Result<Reply, AppError> {
    let r = body.0;
    let user = identity::create_user(app, Some(&admin.0), &r.email, &r.password, r.role).await?;
    let location = format!("/api/users/{}", user.id);
    Reply::created(&user, location)
}

#[rocket::get("/users/<id>")]
pub async fn get_user(app: &State<App>, _admin: Admin, id: &str) -> Result<Reply, AppError> {
    Reply::ok(&identity::get_user(app, id).await?)
}

#[rocket::patch("/users/<id>", data = "<body>")]
pub async fn update_user(
    app: &State<App>,
    admin: Admin,
    id: &str,
    body: JsonBody<UserChanges>,
) -> Result<Reply, AppError> {
    Reply::ok(&identity::update_user(app, &admin.0, id, body.0).await?)
}

#[rocket::delete("/users/<id>")]
pub async fn delete_user(app: &State<App>, admin: Admin, id: &str) -> Result<Reply, AppError> {
    identity::delete_user(app, &admin.0, id).await?;
    Ok(Reply::NoContent)
}
