//! What signed-in users do to their own account: change their password (the current one
//! checked and throttled like a sign-in), end their other browser sessions, revoke their own
//! API tokens. Admin actions on other users live in `identity`; no HTTP here.

use std::collections::BTreeMap;

use serde_json::json;

use crate::app::App;
use crate::auth::{password, tokens, users};
use crate::error::AppError;
use crate::services::identity::{self, Caller};
use crate::services::sessions;

fn signed_in(caller: &Caller) -> Result<&crate::auth::User, AppError> {
    caller
        .user
        .as_ref()
        .ok_or_else(|| AppError::Unauthorized("not signed in".into()))
}

/// Change the caller's password. Errors name the form's fields: `current` (wrong: counted
/// like a failed sign-in), `password` (the policy), `confirm` (differs). Success ends the
/// user's other browser sessions and login tokens, keeping the one in use.
pub async fn change_password(
    app: &App,
    caller: &Caller,
    current: &str,
    new: &str,
    confirm: &str,
) -> Result<(), AppError> {
    let user = signed_in(caller)?.clone();
    let mut errors = BTreeMap::new();
    if current.is_empty() {
        errors.insert("current".to_string(), "Enter your current password.".into());
    }
    if let Err(m) = password::check_password_policy(new) {
        errors.insert("password".to_string(), m);
    } else if new != confirm {
        errors.insert("confirm".to_string(), "The new passwords differ.".into());
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    let ip = identity::ip_or_unspecified(caller.ip);
    match identity::check_credentials(app, &user.email, current, ip).await {
        Ok(_) => {}
        Err(AppError::Unauthorized(_)) => {
            return Err(AppError::field(
                "current",
                "That is not your current password.",
            ));
        }
        Err(e) => return Err(e),
    }
    let phc = identity::hash(new.to_string(), app.settings.password.clone()).await?;
    let update = users::UserUpdate {
        password_hash: Some(phc),
        keep_session_id: caller.session.as_ref().map(|s| s.id.clone()),
        keep_token_id: caller.token.as_ref().map(|t| t.id.clone()),
        ..users::UserUpdate::default()
    };
    let actor = caller.actor();
    let id = user.id.clone();
    app.db
        .write(move |conn| {
            users::update(conn, &id, &update)?;
            actor.record(conn, "user.password_change", json!({ "user": id }))?;
            Ok::<_, AppError>(())
        })
        .await?;
    app.token_cache.clear();
    Ok(())
}

/// End every browser session of the caller except the one in use; returns how many ended.
pub async fn end_other_sessions(app: &App, caller: &Caller) -> Result<usize, AppError> {
    let user = signed_in(caller)?;
    let keep = caller.session.as_ref().map(|s| s.id.as_str());
    sessions::end_all(app, caller, &user.id, keep).await
}

/// Revoke one of the caller's own API tokens; anyone else's (even for an admin) is not found.
pub async fn revoke_own_token(app: &App, caller: &Caller, id: &str) -> Result<(), AppError> {
    let user_id = signed_in(caller)?.id.clone();
    let (id2, actor) = (id.to_string(), caller.actor());
    let deleted = app
        .db
        .write(move |conn| {
            let deleted = tokens::delete(conn, &id2, &user_id)?;
            if deleted {
                actor.record(conn, "token.delete", json!({ "token": id2 }))?;
            }
            Ok::<_, AppError>(deleted)
        })
        .await?;
    app.token_cache.clear();
    if !deleted {
        return Err(AppError::NotFound);
    }
    Ok(())
}
