//! `/api/admin/jobs…`: the jobs' status and runs, and starting a job now. Admins only.

use rocket::State;
use rocket::http::Status;

use crate::app::App;
use crate::error::AppError;
use crate::services::jobs::{self, Started};

use super::guards::Admin;
use super::reply::Reply;

/// 202 with the run's id, and where to follow it.
pub(super) fn accepted(started: &Started) -> Result<Reply, AppError> {
    Ok(Reply::with_status(Status::Accepted, started)?.located(started.location()))
}

#[rocket::get("/admin/jobs")]
pub async fn list_jobs(app: &State<App>, _admin: Admin) -> Result<Reply, AppError> {
    Reply::ok(&jobs::overview(app).await?)
}

#[rocket::post("/admin/jobs/<name>/run")]
pub async fn run_job(app: &State<App>, admin: Admin, name: &str) -> Result<Reply, AppError> {
    let job = jobs::job_named(name)?;
    accepted(&jobs::start(app, &admin.0, job).await?)
}

#[rocket::get("/admin/jobs/runs/<id>")]
pub async fn get_job_run(app: &State<App>, _admin: Admin, id: &str) -> Result<Reply, AppError> {
    Reply::ok(&jobs::get_run(app, id).await?)
}
