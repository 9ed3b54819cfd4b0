//! Scheduled jobs: `backup`, `prune` and `optimize`, run by tokio-cron-scheduler inside the
//! server on the cron schedules from config, or on demand (API, admin page, CLI).
//!
//! - A job never overlaps itself, not even across processes: a run holds the job's lock file
//!   (`data/tmp/job-<name>.lock`) from start to end; a second start is refused as busy.
//! - Every run is a row in `_job_runs` (start, end, status, detail).
//! - A failing run is logged and retried with doubling backoff; when it has failed for good,
//!   an alert is POSTed to the configured webhook. A panic inside a job fails that run only.
//! - A watchdog alerts when no backup has succeeded for `backup.alert_after_hours`.

pub mod alert;
pub mod maintenance;
pub mod runs;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::db::{Db, DbError};
pub use runs::Run;

/// The jobs onebox knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobName {
    Backup,
    Prune,
    Optimize,
}

impl JobName {
    pub const ALL: [JobName; 3] = [JobName::Backup, JobName::Prune, JobName::Optimize];

    pub fn as_str(self) -> &'static str {
        match self {
            JobName::Backup => "backup",
            JobName::Prune => "prune",
            JobName::Optimize => "optimize",
        }
    }

    pub fn parse(s: &str) -> Option<JobName> {
        Self::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// The job's cron schedule from config (`off` = not scheduled).
    pub fn schedule(self, settings: &Settings) -> &str {
        let jobs = &settings.jobs;
        match self {
            JobName::Backup => &jobs.backup,
            JobName::Prune => &jobs.prune,
            JobName::Optimize => &jobs.optimize,
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// An admin, from the API or the admin page.
    Manual,
    Cli,
    Retry,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Cli => "cli",
            Trigger::Retry => "retry",
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0} is already running")]
    Busy(&'static str),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: i64,
    pub ok: bool,
    pub detail: String,
}

/// A job's schedule and latest runs, for the admin page and API.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub name: JobName,
    pub schedule: String,
    pub running: bool,
    pub last_run: Option<Run>,
    pub last_success: Option<Run>,
}

/// Whether backups are recent enough.
#[derive(Debug, Clone, Serialize)]
pub struct BackupHealth {
    pub last_success: Option<String>,
    /// Hours since the last success (since the server started, when there was none).
    pub hours_since: Option<f64>,
    /// Set when the last success is older than `backup.alert_after_hours`.
    pub warning: Option<String>,
}

/// Runs jobs and records them. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    settings: Settings,
    started: DateTime<Utc>,
    /// The last success time a stale-backup alert was sent for (one alert per stale spell).
    stale_alerted: Mutex<Option<Option<String>>>,
    /// Tests: make the next run's body panic.
    #[cfg(test)]
    panic_next: std::sync::atomic::AtomicBool,
}

impl Jobs {
    pub fn new(db: Db, settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                settings,
                started: Utc::now(),
                stale_alerted: Mutex::new(None),
                #[cfg(test)]
                panic_next: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Start a run in the background; returns its id and a handle that yields its outcome.
    /// Refused with `Busy` while the job runs (in this process or another).
    pub async fn start(
        &self,
        job: JobName,
        trigger: Trigger,
    ) -> Result<(i64, tokio::task::JoinHandle<Outcome>), StartError> {
        self.start_attempt(job, trigger, 1).await
    }

    /// Run `job` now and wait for it to end (the CLI).
    pub async fn run_now(&self, job: JobName, trigger: Trigger) -> Result<Outcome, StartError> {
        let (_, handle) = self.start(job, trigger).await?;
        handle
            .await
            .context("the job task failed")
            .map_err(StartError::Failed)
    }

    /// Boxed: a failed run starts its retry from inside the task this spawns.
    fn start_attempt(
        &self,
        job: JobName,
        trigger: Trigger,
        attempt: u32,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<(i64, tokio::task::JoinHandle<Outcome>), StartError>,
    > {
        Box::pin(self.start_attempt_inner(job, trigger, attempt))
    }

    async fn start_attempt_inner(
        &self,
        job: JobName,
        trigger: Trigger,
        attempt: u32,
    ) -> Result<(i64, tokio::task::JoinHandle<Outcome>), StartError> {
        let lock = self
            .lock(job)
            .await?
            .ok_or(StartError::Busy(job.as_str()))?;
        let now = crate::time::now();
        let run_id = self
            .inner
            .db
            .write(move |conn| -> Result<i64, DbError> {
                Ok(runs::insert(
                    conn,
                    job.as_str(),
                    trigger.as_str(),
                    attempt,
                    &now,
                )?)
            })
            .await
            .map_err(|e| StartError::Failed(e.into()))?;
        tracing::info!(
            job = job.as_str(),
            run_id,
            attempt,
            trigger = trigger.as_str(),
            "job started"
        );
        let jobs = self.clone();
        let handle = tokio::spawn(async move {
            let outcome = jobs.execute(job, run_id).await;
            drop(lock);
            jobs.after(job, trigger, attempt, &outcome).await;
            outcome
        });
        Ok((run_id, handle))
    }

    /// Run the job's body (a panic fails the run, nothing more) and record the end.
    async fn execute(&self, job: JobName, run_id: i64) -> Outcome {
        let started = std::time::Instant::now();
        let jobs = self.clone();
        let result = match tokio::spawn(async move { jobs.body(job).await }).await {
            Ok(Ok(detail)) => Ok(detail),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(e) if e.is_panic() => Err(format!("the job panicked: {}", panic_message(e))),
            Err(e) => Err(format!("the job was cancelled: {e}")),
        };
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        let ms = started.elapsed().as_millis() as u64;
        if ok {
            tracing::info!(job = job.as_str(), run_id, ms, detail = %detail, "job finished");
        } else {
            tracing::error!(job = job.as_str(), run_id, ms, error = %detail, "job failed");
        }
        let (now, text) = (crate::time::now(), detail.clone());
        let recorded = self
            .inner
            .db
            .write(move |conn| -> Result<(), DbError> {
                Ok(runs::finish(conn, run_id, ok, &text, &now)?)
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(job = job.as_str(), run_id, error = %e, "cannot record the end of a job run");
        }
        Outcome { run_id, ok, detail }
    }

    async fn body(&self, job: JobName) -> anyhow::Result<String> {
        let (db, settings) = (&self.inner.db, &self.inner.settings);
        #[cfg(test)]
        if self
            .inner
            .panic_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("a test asked this run to panic");
        }
        match job {
            JobName::Backup => crate::backup::run(settings, Utc::now())
                .await
                .map(|r| r.summary()),
            JobName::Prune => maintenance::prune(db, settings).await,
            JobName::Optimize => maintenance::optimize(db).await,
        }
    }

    /// After a run: retry a failure with backoff, or alert when it has failed for good.
    async fn after(&self, job: JobName, trigger: Trigger, attempt: u32, outcome: &Outcome) {
        if outcome.ok {
            return;
        }
        let settings = &self.inner.settings;
        // The CLI waits for its run and reports the failure itself; it does not linger.
        if trigger != Trigger::Cli && attempt <= settings.jobs.retries {
            let wait = Duration::from_secs(
                settings
                    .jobs
                    .retry_backoff_secs
                    .saturating_mul(1 << (attempt - 1).min(16)),
            );
            tracing::warn!(
                job = job.as_str(),
                attempt,
                wait_secs = wait.as_secs(),
                "job will be retried"
            );
            let jobs = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                match jobs.start_attempt(job, Trigger::Retry, attempt + 1).await {
                    Ok(_) => {}
                    Err(StartError::Busy(_)) => {
                        tracing::info!(
                            job = job.as_str(),
                            "retry skipped: the job is running already"
                        )
                    }
                    Err(e) => {
                        tracing::error!(job = job.as_str(), error = %e, "cannot retry the job")
                    }
                }
            });
            return;
        }
        if let Some(url) = &settings.jobs.alert_webhook {
            let mut a = alert::Alert::new(
                "job_failed",
                job.as_str(),
                format!(
                    "{} failed after {attempt} attempt(s): {}",
                    job.as_str(),
                    outcome.detail
                ),
            );
            a.run_id = Some(outcome.run_id);
            alert::send(url, &a).await;
        }
    }

    /// Take the job's lock file, or `None` when someone holds it.
    async fn lock(&self, job: JobName) -> anyhow::Result<Option<File>> {
        let dir = self.inner.settings.data_dir.work_dir();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Option<File>> {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("job-{}.lock", job.as_str()));
            let file =
                File::create(&path).with_context(|| format!("opening {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => {
                    Err(e).with_context(|| format!("locking {}", path.display()))
                }
            }
        })
        .await
        .context("the lock task failed")?
    }

    /// Mark runs left `running` by a stopped process as failed (for jobs nobody runs now).
    pub async fn recover(&self) -> anyhow::Result<()> {
        for job in JobName::ALL {
            if let Some(lock) = self.lock(job).await? {
                let now = crate::time::now();
                let n = self
                    .inner
                    .db
                    .write(move |conn| -> Result<usize, DbError> {
                        Ok(runs::mark_interrupted(conn, job.as_str(), &now)?)
                    })
                    .await?;
                drop(lock);
                if n > 0 {
                    tracing::warn!(
                        job = job.as_str(),
                        runs = n,
                        "marked interrupted job runs as failed"
                    );
                }
            }
        }
        Ok(())
    }

    /// Each job's schedule, whether it runs, and its latest runs.
    pub async fn statuses(&self) -> anyhow::Result<Vec<JobStatus>> {
        let schedules: Vec<(JobName, String)> = JobName::ALL
            .iter()
            .map(|j| (*j, j.schedule(&self.inner.settings).to_string()))
            .collect();
        self.inner
            .db
            .read(move |conn| -> anyhow::Result<Vec<JobStatus>> {
                schedules
                    .into_iter()
                    .map(|(name, schedule)| {
                        let last_run = runs::recent(conn, Some(name.as_str()), 1)?.pop();
                        Ok(JobStatus {
                            name,
                            schedule,
                            running: last_run.as_ref().is_some_and(|r| r.status == "running"),
                            last_success: runs::last_success(conn, name.as_str())?,
                            last_run,
                        })
                    })
                    .collect()
            })
            .await
    }

    /// The newest runs (of one job, if given), newest first.
    pub async fn recent(&self, job: Option<JobName>, limit: u32) -> anyhow::Result<Vec<Run>> {
        self.inner
            .db
            .read(move |conn| Ok(runs::recent(conn, job.map(JobName::as_str), limit)?))
            .await
    }

    /// One run by id.
    pub async fn run(&self, id: i64) -> anyhow::Result<Option<Run>> {
        self.inner
            .db
            .read(move |conn| Ok(runs::find(conn, id)?))
            .await
    }

    /// Whether the last successful backup is recent enough.
    pub async fn backup_health(&self, now: DateTime<Utc>) -> anyhow::Result<BackupHealth> {
        let last = self
            .inner
            .db
            .read(|conn| Ok::<_, anyhow::Error>(runs::last_success(conn, "backup")?))
            .await?;
        let last_success = last.and_then(|r| r.finished);
        let since = last_success
            .as_deref()
            .and_then(crate::time::parse)
            .unwrap_or(self.inner.started);
        let hours = (now - since).num_seconds() as f64 / 3600.0;
        let limit = self.inner.settings.backup.alert_after_hours;
        let warning = (limit > 0 && hours > f64::from(limit)).then(|| match &last_success {
            Some(t) => format!("the last successful backup finished {hours:.0} hours ago ({t})"),
            None => format!("no backup has succeeded in the {hours:.0} hours since onebox started"),
        });
        Ok(BackupHealth {
            hours_since: Some(hours),
            last_success,
            warning,
        })
    }

    /// Alert (once per stale spell) when backups are stale.
    pub async fn check_backup_age(&self) {
        self.check_backup_age_at(Utc::now()).await
    }

    async fn check_backup_age_at(&self, now: DateTime<Utc>) {
        let health = match self.backup_health(now).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot check the backup age");
                return;
            }
        };
        let Some(warning) = health.warning else {
            return;
        };
        {
            let Ok(mut alerted) = self.inner.stale_alerted.lock() else {
                return;
            };
            if alerted.as_ref() == Some(&health.last_success) {
                return;
            }
            *alerted = Some(health.last_success.clone());
        }
        tracing::warn!(warning = %warning, "backups are stale");
        if let Some(url) = &self.inner.settings.jobs.alert_webhook {
            let mut a = alert::Alert::new("backup_stale", "backup", warning);
            a.last_success = health.last_success;
            alert::send(url, &a).await;
        }
    }

    /// Start the scheduler with every job that has a schedule, plus the stale-backup watchdog
    /// (every 10 minutes). Keep the returned scheduler alive while serving.
    pub async fn schedule(&self) -> anyhow::Result<tokio_cron_scheduler::JobScheduler> {
        use tokio_cron_scheduler::{Job, JobScheduler};
        let scheduler = JobScheduler::new()
            .await
            .context("creating the job scheduler")?;
        for job in JobName::ALL {
            let cron = job.schedule(&self.inner.settings).to_string();
            if cron == "off" {
                continue;
            }
            let jobs = self.clone();
            let entry = Job::new_async(cron.as_str(), move |_, _| {
                let jobs = jobs.clone();
                Box::pin(async move {
                    match jobs.start(job, Trigger::Schedule).await {
                        Ok(_) => {}
                        Err(StartError::Busy(_)) => {
                            tracing::warn!(
                                job = job.as_str(),
                                "skipped: the previous run has not ended"
                            )
                        }
                        Err(e) => {
                            tracing::error!(job = job.as_str(), error = %e, "cannot start the job")
                        }
                    }
                })
            })
            .with_context(|| format!("jobs.{}: {cron:?}", job.as_str()))?;
            scheduler
                .add(entry)
                .await
                .context("adding a job to the scheduler")?;
        }
        if self.inner.settings.backup.alert_after_hours > 0 {
            let jobs = self.clone();
            let watchdog = Job::new_async("0 */10 * * * *", move |_, _| {
                let jobs = jobs.clone();
                Box::pin(async move { jobs.check_backup_age().await })
            })
            .context("the backup watchdog")?;
            scheduler
                .add(watchdog)
                .await
                .context("adding the backup watchdog")?;
        }
        scheduler
            .start()
            .await
            .context("starting the job scheduler")?;
        Ok(scheduler)
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
