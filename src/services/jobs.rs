//! Jobs on an admin's behalf: the overview (schedules, latest runs, backup health), one run,
//! and starting a job now — refused while it runs, audited as `job.run` when it starts.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::error::AppError;
use crate::jobs::{BackupHealth, JobName, JobStatus, Run, StartError, Trigger};
use crate::services::identity::{self, Caller};

/// Runs shown by the overview.
pub const RECENT_RUNS: u32 = 50;

/// Every job's status, the newest runs and whether backups are recent enough.
#[derive(Debug, Serialize)]
pub struct JobsOverview {
    pub jobs: Vec<JobStatus>,
    pub runs: Vec<Run>,
    pub backup: BackupHealth,
}

/// A run that was just started.
#[derive(Debug, Serialize)]
pub struct Started {
    pub run_id: i64,
    pub job: JobName,
}

impl Started {
    /// Where the run can be followed in the API.
    pub fn location(&self) -> String {
        format!("/api/admin/jobs/runs/{}", self.run_id)
    }
}

fn internal(e: anyhow::Error) -> AppError {
    AppError::Internal(format!("{e:#}"))
}

/// A job by its name; an unknown name is a 404, like any missing resource.
pub fn job_named(name: &str) -> Result<JobName, AppError> {
    JobName::parse(name).ok_or(AppError::NotFound)
}

pub async fn overview(app: &App) -> Result<JobsOverview, AppError> {
    Ok(JobsOverview {
        jobs: app.jobs.statuses().await.map_err(internal)?,
        runs: app.jobs.recent(None, RECENT_RUNS).await.map_err(internal)?,
        backup: backup_health(app).await?,
    })
}

pub async fn backup_health(app: &App) -> Result<BackupHealth, AppError> {
    app.jobs.backup_health(Utc::now()).await.map_err(internal)
}

/// One run by id; anything that is not a stored run's id is a 404.
pub async fn get_run(app: &App, id: &str) -> Result<Run, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    app.jobs
        .run(id)
        .await
        .map_err(internal)?
        .ok_or(AppError::NotFound)
}

/// Start `job` in the background. A job that is running already (here or in another
/// process) is a 409. The run goes on after the request has been answered.
pub async fn start(app: &App, caller: &Caller, job: JobName) -> Result<Started, AppError> {
    let (run_id, _handle) = match app.jobs.start(job, Trigger::Manual).await {
        Ok(started) => started,
        Err(e @ StartError::Busy(_)) => return Err(AppError::conflict(e.to_string())),
        Err(StartError::Failed(e)) => return Err(internal(e)),
    };
    identity::audit(
        app,
        caller,
        "job.run",
        json!({ "job": job.as_str(), "run_id": run_id }),
    )
    .await;
    Ok(Started { run_id, job })
}
