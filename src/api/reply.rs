//! `Reply`: a JSON answer with an optional ETag and Location, or a bodiless 204/304.

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use serde::Serialize;

use crate::error::AppError;

pub enum Reply {
    Json {
        status: Status,
        body: Vec<u8>,
        etag: Option<String>,
        location: Option<String>,
    },
    NotModified {
        etag: String,
    },
    NoContent,
}

impl Reply {
    /// 200 with `value` as JSON.
    pub fn ok<T: Serialize>(value: &T) -> Result<Reply, AppError> {
        Self::with_status(Status::Ok, value)
    }

    /// 201 with `value` as JSON and a `Location`.
    pub fn created<T: Serialize>(value: &T, location: String) -> Result<Reply, AppError> {
        Ok(Self::with_status(Status::Created, value)?.located(location))
    }

    pub fn with_status<T: Serialize>(status: Status, value: &T) -> Result<Reply, AppError> {
        Ok(Self::bytes(status, to_json(value)?))
    }

    /// A JSON reply from bytes already serialised.
    pub fn bytes(status: Status, body: Vec<u8>) -> Reply {
        Reply::Json {
            status,
            body,
            etag: None,
            location: None,
        }
    }

    /// Set the `Location` of a reply.
    pub fn located(mut self, to: String) -> Reply {
        if let Reply::Json { location, .. } = &mut self {
            *location = Some(to);
        }
        self
    }

    /// Attach an ETag to a JSON reply.
    pub fn tagged(mut self, tag: String) -> Reply {
        if let Reply::Json { etag, .. } = &mut self {
            *etag = Some(tag);
        }
        self
    }
}

/// Serialise an answer.
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(value).map_err(|e| AppError::Internal(e.to_string()))
}

impl<'r> Responder<'r, 'static> for Reply {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        match self {
            Reply::Json {
                status,
                body,
                etag,
                location,
            } => {
                res.status(status)
                    .header(ContentType::JSON)
                    .sized_body(body.len(), Cursor::new(body));
                if let Some(tag) = etag {
                    res.header(Header::new("ETag", tag));
                }
                if let Some(loc) = location {
                    res.header(Header::new("Location", loc));
                }
            }
            Reply::NotModified { etag } => {
                res.status(Status::NotModified)
                    .header(Header::new("ETag", etag));
            }
            Reply::NoContent => {
                res.status(Status::NoContent);
            }
        }
        // Answers depend on who asks; shared caches must not keep them.
        res.header(Header::new("Cache-Control", "private, no-cache"));
        res.ok()
    }
}
