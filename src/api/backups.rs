//! `/api/admin/backups…`: the stored backups, taking one now (the backup job), and downloading
//! one, streamed from its target. Admins only; a session cookie is enough for the download
//! (a GET), so the admin page can link to it.

use chrono::Utc;
use futures_util::TryStreamExt;
use rocket::State;
use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use serde_json::json;

use crate::app::App;
use crate::error::AppError;
use crate::jobs::JobName;
use crate::services::backups::{self, Download};
use crate::services::jobs;

use super::guards::Admin;
use super::jobs::accepted;
use super::reply::Reply;

#[rocket::get("/admin/backups?<from>")]
pub async fn list_backups(
    app: &State<App>,
    _admin: Admin,
    from: Option<&str>,
) -> Result<Reply, AppError> {
    let items = backups::list(app, from, Utc::now()).await?.complete()?;
    let backup = jobs::backup_health(app).await?;
    Reply::ok(&json!({ "items": items, "backup": backup }))
}

#[rocket::post("/admin/backups")]
pub async fn create_backup(app: &State<App>, admin: Admin) -> Result<Reply, AppError> {
    accepted(&jobs::start(app, &admin.0, JobName::Backup).await?)
}

#[rocket::get("/admin/backups/<id>/download?<from>")]
pub async fn download_backup(
    app: &State<App>,
    admin: Admin,
    id: &str,
    from: Option<&str>,
) -> Result<Artifact, AppError> {
    Ok(Artifact(backups::open(app, &admin.0, id, from).await?))
}

/// A stored backup as an attachment, streamed as the target delivers it. Its length is sent,
/// so a transfer that breaks off cannot pass for a complete file.
pub struct Artifact(Download);

impl<'r> Responder<'r, 'static> for Artifact {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let Download {
            file,
            bytes,
            stream,
        } = self.0;
        let reader = tokio_util::io::StreamReader::new(stream.map_err(std::io::Error::other));
        Response::build()
            .status(Status::Ok)
            .header(ContentType::Binary)
            // The name is the backup's own (checked against its id), so it needs no quoting.
            .header(Header::new(
                "Content-Disposition",
                format!("attachment; filename=\"{file}\""),
            ))
            .header(Header::new("Content-Length", bytes.to_string()))
            .header(Header::new("Cache-Control", "no-store"))
            .streamed_body(reader)
            .ok()
    }
}
