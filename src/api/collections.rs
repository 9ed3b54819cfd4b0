//! `/api/collections[/{name}]`: collection definitions, for admins.

use rocket::State;
use serde_json::Value;

use crate::app::App;
use crate::error::AppError;
use crate::schema::CollectionSpec;

use super::body::JsonBody;
use super::guards::Admin;
use super::reply::Reply;

#[rocket::get("/collections")]
pub async fn list_collections(app: &State<App>, _admin: Admin) -> Result<Reply, AppError> {
    let all = app.collections.list();
    let items: Vec<&CollectionSpec> = all.iter().map(|c| &c.spec).collect();
    Reply::ok(&serde_json::json!({ "items": items }))
}

#[rocket::post("/collections", data = "<body>")]
pub async fn create_collection(
    app: &State<App>,
    admin: Admin,
    body: JsonBody<CollectionSpec>,
) -> Result<Reply, AppError> {
    let c = app.collections.create(admin.0.actor(), body.0).await?;
    Reply::created(&c.spec, format!("/api/collections/{}", c.name))
}

#[rocket::get("/collections/<name>")]
pub async fn get_collection(
    app: &State<App>,
    _admin: Admin,
    name: &str,
) -> Result<Reply, AppError> {
    let entry = app.collections.get(name)?;
    Reply::ok(&entry.collection.spec)
}

#[rocket::patch("/collections/<name>", data = "<body>")]
pub async fn update_collection(
    app: &State<App>,
    admin: Admin,
    name: &str,
    body: JsonBody<Value>,
) -> Result<Reply, AppError> {
    if !body.0.is_object() {
        return Err(AppError::BadRequest(
            "the body must be a JSON object (a merge patch of the definition)".into(),
        ));
    }
    let c = app
        .collections
        .update(admin.0.actor(), name, body.0)
        .await?;
    Reply::ok(&c.spec)
}

#[rocket::delete("/collections/<name>")]
pub async fn delete_collection(
    app: &State<App>,
    admin: Admin,
    name: &str,
) -> Result<Reply, AppError> {
    app.collections.delete(admin.0.actor(), name).await?;
    Ok(Reply::NoContent)
}
