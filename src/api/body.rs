//! `JsonBody<T>`: the one way API handlers accept a body. It enforces the configured size limit
//! (413), the media type (415) and turns JSON errors into 400/422 problems with the position
//! of the error.

use rocket::data::{Data, FromData, Outcome, ToByteUnit};
use rocket::http::ContentType;
use rocket::outcome::Outcome as O;
use rocket::request::Request;
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;

use crate::app::App;
use crate::error::AppError;

use super::problem::stash;

pub struct JsonBody<T>(pub T);

/// Media types accepted as JSON. `application/x-www-form-urlencoded` is curl's default for `-d`,
/// so `curl -d '{…}'` works; form bodies are never parsed as forms here.
fn acceptable(ct: Option<&ContentType>) -> bool {
    match ct {
        None => true,
        Some(ct) => {
            ct.is_json()
                || ct.is_form()
                || ct.sub().as_str().ends_with("+json")
                || (ct.top() == "text" && ct.sub() == "plain")
        }
    }
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send> FromData<'r> for JsonBody<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        if !acceptable(req.content_type()) {
            let err = AppError::UnsupportedMediaType("send the body as application/json".into());
            return O::Error((stash(req, err), ()));
        }
        let limit = req
            .rocket()
            .state::<App>()
            .map_or(1024 * 1024, |app| app.settings.max_body_bytes);
        let bytes = match read_capped(data, limit).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                let err = AppError::PayloadTooLarge(format!(
                    "the request body is larger than {limit} bytes"
                ));
                return O::Error((stash(req, err), ()));
            }
            Err(_) => {
                let err = AppError::BadRequest("the request body could not be read".into());
                return O::Error((stash(req, err), ()));
            }
        };
        match serde_json::from_slice::<T>(&bytes) {
            Ok(v) => O::Success(JsonBody(v)),
            Err(e) => O::Error((stash(req, json_error(&e)), ())),
        }
    }
}

/// The body, or `None` if it is longer than `limit` bytes. Rocket's `into_bytes` goes through
/// `tokio::io::copy`, which allocates and zeroes an 8 KiB buffer for every request; an API
/// body is a few hundred bytes, read here straight into a vector of about its size.
async fn read_capped(data: Data<'_>, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    // One byte past the limit tells a body of exactly `limit` bytes from a longer one.
    let mut stream = data.open(limit.saturating_add(1).bytes());
    let mut bytes = Vec::with_capacity(limit.min(INITIAL_BODY_CAPACITY) as usize);
    stream.read_to_end(&mut bytes).await?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Enough for a typical record; a bigger body grows the vector as it is read.
const INITIAL_BODY_CAPACITY: u64 = 1024;

/// Syntax errors are 400 with line and column; well-formed JSON of the wrong shape is 422.
fn json_error(e: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let mut errors = std::collections::BTreeMap::new();
            errors.insert("body".to_string(), strip_position(&e.to_string()));
            AppError::Validation {
                detail: "the request body does not have the expected shape".into(),
                errors,
            }
        }
        _ => AppError::BadRequest(format!(
            "malformed JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        )),
    }
}

/// serde_json appends " at line L column C"; the problem says that separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
