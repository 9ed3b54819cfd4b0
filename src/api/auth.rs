//! `/api/auth/*`: sign in for scripts (a login token), sign out, and who am I.

use rocket::State;
use serde::Deserialize;

use crate::app::App;
use crate::error::AppError;
use crate::services::identity::{self, Caller};

use super::body::JsonBody;
use super::guards::{ClientIp, SignedIn};
use super::reply::Reply;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// The second factor, for users with TOTP: an authenticator code or a recovery code.
    #[serde(default)]
    code: Option<String>,
}

#[rocket::post("/auth/login", data = "<body>")]
pub async fn login(
    app: &State<App>,
    ip: ClientIp,
    body: JsonBody<LoginRequest>,
) -> Result<Reply, AppError> {
    let r = body.0;
    let result = identity::login(app, &r.email, &r.password, r.code.as_deref(), ip.0).await?;
    Reply::ok(&result)
}

#[rocket::post("/auth/logout")]
pub async fn logout(app: &State<App>, caller: SignedIn) -> Result<Reply, AppError> {
    identity::logout(app, &caller.0).await?;
    Ok(Reply::NoContent)
}

#[rocket::get("/auth/me")]
pub fn me(caller: SignedIn) -> Result<Reply, AppError> {
    let SignedIn(Caller { user, .. }) = caller;
    Reply::ok(&user)
}
