#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::Durability;

struct Fixture {
    _dir: tempfile::TempDir,
    jobs: Jobs,
    db: Db,
    settings: Settings,
}

fn fixture(change: impl FnOnce(&mut Settings)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults(dir.path());
    change(&mut settings);
    crate::app::prepare_data_dir(&settings).unwrap();
    let db = Db::open(&settings.data_dir.database(), Durability::Normal, 1).unwrap();
    Fixture {
        jobs: Jobs::new(db.clone(), settings.clone()),
        _dir: dir,
        db,
        settings,
    }
}

impl Fixture {
    /// Run `job` to its end.
    async fn run(&self, job: JobName, trigger: Trigger) -> Outcome {
        self.jobs.run_now(job, trigger).await.unwrap()
    }
}

/// A webhook receiver on 127.0.0.1: answers 200 to each POST and hands its body over.
fn receiver() -> (String, mpsc::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

async fn runs_of(jobs: &Jobs, job: JobName) -> Vec<Run> {
    jobs.recent(Some(job), 50).await.unwrap()
}

#[tokio::test]
async fn a_backup_run_is_recorded_from_start_to_end() {
    let f = fixture(|_| {});
    let (run_id, handle) = f
        .jobs
        .start(JobName::Backup, Trigger::Manual)
        .await
        .unwrap();
    let outcome = handle.await.unwrap();
    assert!(outcome.ok, "{}", outcome.detail);
    let run = f.jobs.run(run_id).await.unwrap().unwrap();
    assert_eq!(
        (run.status.as_str(), run.trigger.as_str()),
        ("ok", "manual")
    );
    assert!(run.finished.is_some());
    let listed = crate::backup::list(&f.settings, None).await.unwrap().items;
    assert_eq!(listed.len(), 1);
    // Backups hold every record and credential hash: private to the owner.
    use std::os::unix::fs::PermissionsExt;
    let dir = f.settings.data_dir.root().join("backups");
    for name in [
        listed[0].manifest.file.clone(),
        format!("{}.json", listed[0].manifest.id),
    ] {
        let mode = std::fs::metadata(dir.join(&name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(run.detail.unwrap().starts_with(&listed[0].manifest.id));
    let health = f.jobs.backup_health(Utc::now()).await.unwrap();
    assert!(health.warning.is_none() && health.last_success.is_some());
}

#[tokio::test]
async fn a_job_never_overlaps_itself_even_across_processes() {
    let f = fixture(|_| {});
    // Another process holding the lock file looks exactly like this.
    let dir = f.settings.data_dir.work_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let held = File::create(dir.join("job-backup.lock")).unwrap();
    held.try_lock().unwrap();
    let err = f
        .jobs
        .start(JobName::Backup, Trigger::Manual)
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Busy("backup")), "{err}");
    assert!(runs_of(&f.jobs, JobName::Backup).await.is_empty());
    // Other jobs are not blocked by it.
    assert!(f.run(JobName::Optimize, Trigger::Cli).await.ok);
    drop(held);
    assert!(f.run(JobName::Backup, Trigger::Cli).await.ok);
}

#[tokio::test]
async fn a_panicking_job_fails_its_run_and_the_next_run_works() {
    let f = fixture(|s| s.jobs.retries = 0);
    f.jobs
        .inner
        .panic_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = f.run(JobName::Prune, Trigger::Manual).await;
    assert!(!outcome.ok);
    assert!(outcome.detail.contains("panicked"), "{}", outcome.detail);
    let run = f.jobs.run(outcome.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, "failed");
    // The lock was released and the database still works.
    assert!(f.run(JobName::Prune, Trigger::Manual).await.ok);
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_and_alerts_when_it_fails_for_good() {
    let (url, alerts) = receiver();
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let f = fixture(|s| {
        // A file where the backup directory should be: every attempt fails.
        s.backup.local_dir = blocker.path().join("backups");
        s.jobs.retries = 2;
        s.jobs.retry_backoff_secs = 0;
        s.jobs.alert_webhook = Some(url);
    });
    let first = f.run(JobName::Backup, Trigger::Manual).await;
    assert!(!first.ok);
    let alert = tokio::task::spawn_blocking(move || alerts.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("no alert arrived");
    assert_eq!(alert["event"], "job_failed");
    assert_eq!(alert["job"], "backup");
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("after 3 attempt"),
        "{alert}"
    );
    let runs = runs_of(&f.jobs, JobName::Backup).await;
    let seen: Vec<(i64, &str, &str)> = runs
        .iter()
        .rev()
        .map(|r| (r.attempt, r.trigger.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "manual", "failed"),
            (2, "retry", "failed"),
            (3, "retry", "failed")
        ]
    );
    assert_eq!(alert["run_id"], runs[0].id);
}

#[tokio::test]
async fn stale_backups_alert_once_per_stale_spell() {
    let (url, alerts) = receiver();
    let f = fixture(|s| {
        s.backup.alert_after_hours = 2;
        s.jobs.alert_webhook = Some(url);
    });
    let started = f.jobs.inner.started;
    let health = f
        .jobs
        .backup_health(started + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(health.warning.is_none());
    let later = started + chrono::Duration::hours(3);
    let health = f.jobs.backup_health(later).await.unwrap();
    assert!(health.warning.unwrap().contains("no backup has succeeded"));
    f.jobs.check_backup_age_at(later).await;
    f.jobs
        .check_backup_age_at(later + chrono::Duration::hours(1))
        .await;
    let first = alerts.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first["event"], "backup_stale");
    assert!(
        alerts.recv_timeout(Duration::from_millis(300)).is_err(),
        "alerted twice"
    );
    // A success ends the spell; staleness after it alerts again.
    assert!(f.run(JobName::Backup, Trigger::Cli).await.ok);
    f.jobs.check_backup_age_at(Utc::now()).await;
    f.jobs
        .check_backup_age_at(Utc::now() + chrono::Duration::hours(3))
        .await;
    let second = alerts.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(second["last_success"].is_string(), "{second}");
}

#[tokio::test]
async fn the_scheduler_runs_a_job_on_its_cron_schedule() {
    let f = fixture(|s| {
        s.jobs.backup = "off".into();
        s.jobs.optimize = "off".into();
        s.jobs.prune = "* * * * * *".into();
    });
    let mut scheduler = f.jobs.schedule().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut runs = Vec::new();
    while Instant::now() < deadline {
        runs = runs_of(&f.jobs, JobName::Prune).await;
        if runs.iter().any(|r| r.status == "ok") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scheduler.shutdown().await.unwrap();
    assert!(
        runs.iter()
            .any(|r| r.trigger == "schedule" && r.status == "ok"),
        "{runs:?}"
    );
    assert!(runs_of(&f.jobs, JobName::Backup).await.is_empty());
}

#[tokio::test]
async fn runs_left_running_by_a_stopped_process_are_marked_failed() {
    let f = fixture(|_| {});
    let now = crate::time::now();
    f.db.write(move |c| -> Result<i64, DbError> {
        Ok(runs::insert(c, "backup", "schedule", 1, &now)?)
    })
    .await
    .unwrap();
    f.jobs.recover().await.unwrap();
    let run = runs_of(&f.jobs, JobName::Backup).await.pop().unwrap();
    assert_eq!(run.status, "failed");
    assert!(run.detail.unwrap().contains("interrupted"));
}

#[tokio::test]
async fn prune_removes_old_runs_and_only_backed_up_old_change_log_rows() {
    let f = fixture(|_| {});
    f.db
        .write(|c| -> Result<(), DbError> {
            runs::insert(c, "optimize", "schedule", 1, "2020-01-01T00:00:00.000Z")?;
            c.execute("UPDATE _job_runs SET status = 'ok'", [])?;
            for (time, id) in [("2020-01-01T00:00:00.000Z", "a"), ("2020-01-02T00:00:00.000Z", "b")] {
                c.execute(
                    "INSERT INTO _changes (time, collection, op, record_id) VALUES (?1, 'x', 'delete', ?2)",
                    [time, id],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // The backup holds seq 1 and 2; a row written after it must stay, however old.
    assert!(f.run(JobName::Backup, Trigger::Cli).await.ok);
    f.db
        .write(|c| -> Result<(), DbError> {
            c.execute(
                "INSERT INTO _changes (time, collection, op, record_id) VALUES ('2020-01-03T00:00:00.000Z', 'x', 'delete', 'c')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let outcome = f.run(JobName::Prune, Trigger::Cli).await;
    assert!(outcome.ok, "{}", outcome.detail);
    assert!(
        outcome.detail.contains("2 change-log rows"),
        "{}",
        outcome.detail
    );
    let (left, old_runs): (Vec<String>, i64) =
        f.db.read(|c| -> Result<_, DbError> {
            let left = c
                .prepare("SELECT record_id FROM _changes ORDER BY seq")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let old: i64 = c.query_row(
                "SELECT count(*) FROM _job_runs WHERE started < '2021'",
                [],
                |r| r.get(0),
            )?;
            Ok((left, old))
        })
        .await
        .unwrap();
    assert_eq!(left, ["c"]);
    assert_eq!(old_runs, 0);
}
