//! The account page (`/account`): who you are, your browser sessions, your password, two-factor
//! sign-in and your API tokens. Each form posts to its own handler (`sessions`, `password`,
//! `totp`, `tokens`); a form with errors re-renders this page through [`account_page`], with
//! the errors beside that form's fields. The second step of signing in is `sign_in_totp`.

pub mod password;
pub mod sessions;
pub mod sign_in_totp;
pub mod tokens;
pub mod totp;

use std::collections::BTreeMap;

use askama::Template;
use rocket::{State, get};

use crate::app::App;
use crate::auth::User;
use crate::error::AppError;
use crate::services::totp::Status;
use crate::services::{identity, sessions as session_service, totp as totp_service};

use super::page::{Layout, Page, WebError, render};
use super::visitor::{Member, Visitor};

/// What a re-rendered form keeps: the errors by field (`current`, `password`, `confirm`,
/// `totp_code`, `token_name`, `token_expires`) and the typed token name and expiry.
#[derive(Debug, Default)]
pub struct Forms {
    pub errors: BTreeMap<String, String>,
    pub token_name: String,
    pub token_expires: String,
}

/// One row of the sessions table.
pub struct SessionView {
    pub created: String,
    pub last_seen: String,
    pub ip: String,
    pub user_agent: String,
    pub current: bool,
    /// Signed in with the password, the second factor not (yet) given.
    pub pending: bool,
}

/// One row of the tokens table.
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "account/index.html")]
struct AccountPage {
    layout: Layout,
    user: User,
    sessions: Vec<SessionView>,
    totp: Status,
    tokens: Vec<TokenView>,
    forms: Forms,
}

impl AccountPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.forms.errors.get(field).map(String::as_str)
    }
}

/// A stored time as people read it: `2026-11-26 08:00 UTC`.
pub fn when(stored: &str) -> String {
    match crate::time::parse(stored) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => stored.to_string(),
    }
}

/// Render the account page for the signed-in visitor, with `forms` as typed.
pub async fn account_page(app: &App, v: &Visitor, forms: Forms) -> Result<Page, WebError> {
    let user = v
        .caller
        .user
        .clone()
        .ok_or_else(|| AppError::Unauthorized("sign in first".into()))?;
    let current = v.caller.session.as_ref().map(|s| s.id.as_str());
    let sessions = session_service::list(app, &user.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            created: when(&s.created),
            last_seen: when(&s.last_seen),
            ip: s.ip.clone().unwrap_or_default(),
            user_agent: s.user_agent.clone().unwrap_or_default(),
            current: Some(s.id.as_str()) == current,
            pending: s.mfa_pending,
        })
        .collect();
    let tokens = identity::list_tokens(app, &v.caller)
        .await?
        .into_iter()
        .map(|t| TokenView {
            created: when(&t.created),
            expires: t.expires.as_deref().map_or_else(|| "never".into(), when),
            last_used: t.last_used.as_deref().map_or_else(|| "never".into(), when),
            id: t.id,
            name: t.name,
        })
        .collect();
    let totp = totp_service::status(app, &user.id).await?;
    render(&AccountPage {
        layout: v.layout("Your account"),
        user,
        sessions,
        totp,
        tokens,
        forms,
    })
}

#[get("/account")]
pub async fn account(app: &State<App>, m: Member) -> Result<Page, WebError> {
    account_page(app, &m.0, Forms::default()).await
}

/// The message for a throttled code or password check.
pub fn too_many(retry_after: u64) -> String {
    format!("Too many attempts. Try again in {retry_after} seconds.")
}
