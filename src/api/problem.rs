//! RFC 9457 `application/problem+json` answers: how an `AppError` looks on the wire, the
//! stash that lets request guards hand a detailed error to the catchers, and the `/api`
//! catchers themselves.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Mutex;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use serde::Serialize;

use crate::error::AppError;
use crate::observe::RequestMeta;

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
    /// For filter/sort errors: the 0-based character offset of the error in the parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<&'static str>,
    pub request_id: String,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    fn new(status: u16, detail: String, request_id: String) -> Self {
        Problem {
            kind: "about:blank",
            title: Status::from_code(status)
                .map(|s| s.reason_lossy().to_string())
                .unwrap_or_else(|| "Error".into()),
            status,
            detail,
            errors: None,
            position: None,
            parameter: None,
            request_id,
            retry_after: None,
        }
    }

    /// The client-facing form of an error. Internal causes are logged here, once.
    pub fn from_error(err: AppError, request_id: String) -> Self {
        let status = err.status();
        match err {
            AppError::Internal(cause) => {
                tracing::error!(cause = %crate::observe::escape_log(&cause), "internal error");
                Problem::new(
                    status,
                    "something went wrong on the server; the request id identifies it in the log"
                        .into(),
                    request_id,
                )
            }
            AppError::Validation { detail, errors } => {
                let mut p = Problem::new(status, detail, request_id);
                p.errors = Some(errors);
                p
            }
            AppError::Conflict { detail, field } => {
                let mut p = Problem::new(status, detail, request_id);
                p.errors = field.map(|f| {
                    let mut m = BTreeMap::new();
                    m.insert(f, "must be unique; another record has this value".into());
                    m
                });
                p
            }
            AppError::Query { param, error } => {
                let mut p = Problem::new(
                    status,
                    format!(
                        "invalid {param}: {} at position {}",
                        error.message, error.position
                    ),
                    request_id,
                );
                p.position = Some(error.position);
                p.parameter = Some(param);
                p
            }
            AppError::TooManyRequests { retry_after } => {
                let mut p = Problem::new(
                    status,
                    format!("too many attempts; try again in {retry_after} seconds"),
                    request_id,
                );
                p.retry_after = Some(retry_after);
                p
            }
            other => {
                let detail = match &other {
                    AppError::Unauthorized(m) | AppError::Forbidden(m) => m.clone(),
                    AppError::NotFound => "the requested resource does not exist".into(),
                    _ => other.to_string(),
                };
                Problem::new(status, detail, request_id)
            }
        }
    }

    /// A problem for a bare status (catchers without a stashed error).
    pub fn for_status(status: Status, request_id: String) -> Self {
        let detail = match status.code {
            404 => "no such resource".to_string(),
            405 => "method not allowed".to_string(),
            413 => "the request body is too large".to_string(),
            422 => "the request body does not have the expected shape".to_string(),
            400 => "the request is malformed".to_string(),
            401 => "authentication required".to_string(),
            403 => "forbidden".to_string(),
            _ => status.reason_lossy().to_string(),
        };
        Problem::new(status.code, detail, request_id)
    }
}

impl<'r> Responder<'r, 'static> for Problem {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = serde_json::to_vec(&self).map_err(|_| Status::InternalServerError)?;
        let mut res = Response::build();
        res.status(Status::new(self.status))
            .header(ContentType::new("application", "problem+json"))
            .header(Header::new("Cache-Control", "no-store"))
            .sized_body(body.len(), Cursor::new(body));
        if let Some(secs) = self.retry_after {
            res.header(Header::new("Retry-After", secs.to_string()));
        }
        if self.status == 401 {
            res.header(Header::new("WWW-Authenticate", "Bearer"));
        }
        res.ok()
    }
}

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let id = RequestMeta::of(req).id.clone();
        Problem::from_error(self, id).respond_to(req)
    }
}

/// Where a failing request guard leaves its error for the catcher to render.
#[derive(Default)]
struct Stash(Mutex<Option<AppError>>);

/// Record `err` for this request's catcher and return its status for the guard outcome.
pub fn stash(req: &Request<'_>, err: AppError) -> Status {
    let status = Status::new(err.status());
    if let Ok(mut slot) = req.local_cache(Stash::default).0.lock() {
        *slot = Some(err);
    }
    status
}

pub(crate) fn take_stashed(req: &Request<'_>) -> Option<AppError> {
    req.local_cache(Stash::default).0.lock().ok()?.take()
}

/// The catcher for everything under `/api`: the stashed error if a guard left one, else a
/// problem for the bare status.
#[rocket::catch(default)]
pub fn api_catcher(status: Status, req: &Request<'_>) -> Problem {
    let id = RequestMeta::of(req).id.clone();
    match take_stashed(req) {
        Some(err) => Problem::from_error(err, id),
        None => Problem::for_status(status, id),
    }
}
