//! `/api/tokens[/{id}]`: the caller's own API tokens (shown once at creation).

use rocket::State;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::error::AppError;
use crate::services::identity;

use super::body::JsonBody;
use super::guards::SignedIn;
use super::reply::Reply;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    name: String,
    /// A lifetime such as `30d`, `12h`, `1w`; absent or null = never expires.
    #[serde(default)]
    expires: Option<String>,
}

#[rocket::get("/tokens")]
pub async fn list_tokens(app: &State<App>, caller: SignedIn) -> Result<Reply, AppError> {
    let items = identity::list_tokens(app, &caller.0).await?;
    Reply::ok(&json!({ "items": items }))
}

#[rocket::post("/tokens", data = "<body>")]
pub async fn create_token(
    app: &State<App>,
    caller: SignedIn,
    body: JsonBody<CreateTokenRequest>,
) -> Result<Reply, AppError> {
    let r = body.0;
    let created = identity::create_token(app, &caller.0, &r.name, r.expires.as_deref()).await?;
    let location = format!("/api/tokens/{}", created.info.id);
    Reply::created(&created, location)
}

#[rocket::delete("/tokens/<id>")]
pub async fn delete_token(app: &State<App>, caller: SignedIn, id: &str) -> Result<Reply, AppError> {
    identity::delete_token(app, &caller.0, id).await?;
    Ok(Reply::NoContent)
}
