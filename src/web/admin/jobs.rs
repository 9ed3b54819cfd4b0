//! `GET /admin/jobs` (each job's schedule and latest runs, then the newest runs) and
//! `POST /admin/jobs/<name>/run` (start a job now, then back to the page with a flash).

use askama::Template;
use rocket::response::{Flash, Redirect};
use rocket::{State, get, post};

use crate::app::App;
use crate::error::AppError;
use crate::jobs::{BackupHealth, JobName, JobStatus, Run};
use crate::services::jobs;

use super::super::page::{Answer, Layout, Page, WebError, render};
use super::super::visitor::{Checked, NoFields, Staff};
use super::readable_time;

#[derive(Template)]
#[template(path = "admin/jobs.html")]
struct JobsPage {
    layout: Layout,
    jobs: Vec<JobStatus>,
    runs: Vec<Run>,
    backup: BackupHealth,
}

impl JobsPage {
    /// A stored time as `2026-05-01 12:00:00 UTC`.
    fn when(&self, stored: &str) -> String {
        readable_time(stored)
    }
}

#[get("/admin/jobs")]
pub async fn jobs_page(app: &State<App>, s: Staff) -> Result<Page, WebError> {
    let overview = jobs::overview(app).await?;
    render(&JobsPage {
        layout: s.0.layout("Jobs"),
        jobs: overview.jobs,
        runs: overview.runs,
        backup: overview.backup,
    })
}

/// Start `job` and go back to `page` saying which run it is, or that it is running already.
pub(super) async fn start_job(
    app: &App,
    s: &Staff,
    job: JobName,
    page: &'static str,
) -> Result<Answer, WebError> {
    match jobs::start(app, &s.0.caller, job).await {
        Ok(started) => Ok(Flash::success(
            Redirect::to(page),
            format!("{} started (run {})", job.as_str(), started.run_id),
        )
        .into()),
        Err(e @ AppError::Conflict { .. }) => {
            Ok(Flash::error(Redirect::to(page), e.to_string()).into())
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/admin/jobs/<name>/run", data = "<_form>")]
pub async fn run_job_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    let job = jobs::job_named(name)?;
    start_job(app, &s, job, "/admin/jobs").await
}
