//! `AppError`: the error every service returns, with one `status()` match that decides the
//! HTTP status. Internal causes are kept for the log and never shown to clients.

use std::collections::BTreeMap;

use crate::db::DbError;
use crate::query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed input that is not about one field (bad JSON, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// A filter, sort, fields or cursor parameter that does not parse.
    #[error("{param}: {error}")]
    Query {
        param: &'static str,
        error: QueryError,
    },
    #[error("authentication required")]
    Unauthorized(String),
    #[error("forbidden")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// A conflict with stored data; `field` names the unique field involved, when known.
    #[error("{detail}")]
    Conflict {
        detail: String,
        field: Option<String>,
    },
    #[error("the resource changed since it was read")]
    PreconditionFailed,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Field-level validation: every failing field with its message.
    #[error("validation failed")]
    Validation {
        detail: String,
        errors: BTreeMap<String, String>,
    },
    #[error("too many attempts")]
    TooManyRequests { retry_after: u64 },
    #[error("the disk is full")]
    InsufficientStorage,
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged with its cause, shown as an opaque 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) | AppError::Query { .. } => 400,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound => 404,
            AppError::Conflict { .. } => 409,
            AppError::PreconditionFailed => 412,
            AppError::PayloadTooLarge(_) => 413,
            AppError::UnsupportedMediaType(_) => 415,
            AppError::Validation { .. } => 422,
            AppError::TooManyRequests { .. } => 429,
            AppError::Internal(_) => 500,
            AppError::Unavailable(_) => 503,
            AppError::InsufficientStorage => 507,
        }
    }

    /// A validation error about a single field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(field.to_string(), message.into());
        AppError::Validation {
            detail: "one or more fields are invalid".into(),
            errors,
        }
    }

    /// Validation errors keyed by field.
    pub fn fields(errors: BTreeMap<String, String>) -> Self {
        AppError::Validation {
            detail: "one or more fields are invalid".into(),
            errors,
        }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        AppError::Conflict {
            detail: detail.into(),
            field: None,
        }
    }

    pub fn query(param: &'static str, error: QueryError) -> Self {
        AppError::Query { param, error }
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => AppError::NotFound,
            DbError::Unique { column } => AppError::Conflict {
                detail: match &column {
                    Some(c) => format!("another record already has this {c}"),
                    None => "another record already has these values".into(),
                },
                field: column,
            },
            DbError::ForeignKey => {
                AppError::conflict("the change would break a relation between records")
            }
            DbError::DiskFull => AppError::InsufficientStorage,
            DbError::Busy => AppError::Unavailable("the database is busy; try again".into()),
            DbError::Unavailable => AppError::Internal("a database job failed".into()),
            other => AppError::Internal(other.to_string()),
        }
    }
}
