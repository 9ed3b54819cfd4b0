//! `/api/collections/{name}/records[/{id}]`: record CRUD. Rules, validation and paging live in
//! `services::records`; this file turns HTTP into calls and answers with ETags.

use std::sync::atomic::Ordering;

use rocket::State;
use rocket::http::Status;
use rocket::http::uri::Origin;
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::AppError;
use crate::services::identity::Caller;
use crate::services::records::{self, JsonRows, ListParams, etag_of_json};

use super::body::JsonBody;
use super::guards::Conditions;
use super::reply::Reply;

fn parse_u32(name: &str, v: Option<&str>) -> Result<Option<u32>, AppError> {
    v.map(|s| {
        s.parse::<u32>()
            .map_err(|_| AppError::BadRequest(format!("{name} must be a non-negative integer")))
    })
    .transpose()
}

fn parse_bool(name: &str, v: Option<&str>) -> Result<bool, AppError> {
    match v {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(AppError::BadRequest(format!(
            "{name} must be true or false"
        ))),
    }
}

/// A weak ETag for a list: the collection's change counter, the query and who asks. Answered
/// (and compared) before any SQLite work.
fn list_etag(app: &App, version: u64, uri: &Origin<'_>, caller: &Caller) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(uri.query().map(|q| q.as_str()).unwrap_or("").as_bytes());
    h.update([0]);
    if let Some(u) = &caller.user {
        h.update(u.id.as_bytes());
        h.update([u8::from(caller.is_admin())]);
    }
    let digest = h.finalize();
    format!("W/\"{}-{version}-{}\"", app.boot, hex::encode(&digest[..8]))
}

#[allow(clippy::too_many_arguments)]
#[rocket::get(
    "/collections/<name>/records?<filter>&<sort>&<limit>&<after>&<before>&<page>&<count>&<fields>"
)]
pub async fn list_records(
    app: &State<App>,
    caller: Caller,
    cond: Conditions,
    uri: &Origin<'_>,
    name: &str,
    filter: Option<&str>,
    sort: Option<&str>,
    limit: Option<&str>,
    after: Option<&str>,
    before: Option<&str>,
    page: Option<&str>,
    count: Option<&str>,
    fields: Option<&str>,
) -> Result<Reply, AppError> {
    let entry = app.collections.get(name)?;
    // `@now` makes an answer depend on the clock, which the counter cannot see.
    let timeless = !uri
        .query()
        .is_some_and(|q| q.as_str().contains("%40now") || q.as_str().contains("@now"))
        && !entry.collection.uses_now();
    let etag = timeless.then(|| list_etag(app, entry.version.load(Ordering::SeqCst), uri, &caller));
    if let Some(tag) = &etag
        && cond.not_modified(tag)
    {
        return Ok(Reply::NotModified { etag: tag.clone() });
    }
    let params = ListParams {
        filter: filter.map(str::to_string),
        sort: sort.map(str::to_string),
        limit: parse_u32("limit", limit)?,
        after: after.map(str::to_string),
        before: before.map(str::to_string),
        page: parse_u32("page", page)?,
        count: parse_bool("count", count)?,
        fields: fields.map(str::to_string),
    };
    let page = records::list::<JsonRows>(app, name, &caller, params).await?;
    let reply = Reply::bytes(Status::Ok, page.to_json());
    Ok(match etag {
        Some(tag) => reply.tagged(tag),
        None => reply,
    })
}

#[rocket::get("/collections/<name>/records/<id>?<fields>")]
pub async fn get_record(
    app: &State<App>,
    caller: Caller,
    cond: Conditions,
    name: &str,
    id: &str,
    fields: Option<&str>,
) -> Result<Reply, AppError> {
    let body = records::get(app, name, id, &caller, fields).await?;
    let etag = etag_of_json(&body);
    if cond.not_modified(&etag) {
        return Ok(Reply::NotModified { etag });
    }
    Ok(Reply::bytes(Status::Ok, body).tagged(etag))
}

#[rocket::post("/collections/<name>/records", data = "<body>")]
pub async fn create_record(
    app: &State<App>,
    caller: Caller,
    name: &str,
    body: JsonBody<Map<String, Value>>,
) -> Result<Reply, AppError> {
    let record = records::create(app, name, &caller, body.0).await?;
    let location = format!("/api/collections/{name}/records/{}", record.id);
    let etag = etag_of_json(&record.json);
    Ok(Reply::bytes(Status::Created, record.json)
        .located(location)
        .tagged(etag))
}

#[rocket::patch("/collections/<name>/records/<id>", data = "<body>")]
pub async fn update_record(
    app: &State<App>,
    caller: Caller,
    cond: Conditions,
    name: &str,
    id: &str,
    body: JsonBody<Map<String, Value>>,
) -> Result<Reply, AppError> {
    let record = records::update(app, name, id, &caller, body.0, cond.if_match).await?;
    let etag = etag_of_json(&record.json);
    Ok(Reply::bytes(Status::Ok, record.json).tagged(etag))
}

#[rocket::delete("/collections/<name>/records/<id>")]
pub async fn delete_record(
    app: &State<App>,
    caller: Caller,
    cond: Conditions,
    name: &str,
    id: &str,
) -> Result<Reply, AppError> {
    records::delete(app, name, id, &caller, cond.if_match).await?;
    Ok(Reply::NoContent)
}
