//! `/healthz` (the process answers) and `/readyz` (the database can be read and written).

use rocket::State;
use rocket::http::Status;
use rocket::serde::json::Json;
use serde_json::{Value, json};

use crate::app::App;
use crate::db::DbError;

#[rocket::get("/healthz")]
pub fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[rocket::get("/readyz")]
pub async fn readyz(app: &State<App>) -> (Status, Json<Value>) {
    let read = app
        .db
        .read(|conn| {
            conn.query_row("SELECT count(*) FROM _collections", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(DbError::from)
        })
        .await;
    // A write job takes the write lock (BEGIN IMMEDIATE) and commits without changing data.
    let write = app
        .db
        .write(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        })
        .await;
    let check = |r: &Result<i64, DbError>| if r.is_ok() { "ok" } else { "failing" };
    let ready = read.is_ok() && write.is_ok();
    let status = if ready {
        Status::Ok
    } else {
        Status::ServiceUnavailable
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "checks": { "database_read": check(&read), "database_write": check(&write) },
        })),
    )
}
