//! The `jobs` and `backup` sections of the configuration: schedules, retries and alerts, and
//! where backups go and how they are kept, with the checks `Settings` runs on them.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// When the scheduled jobs run and what happens when one fails.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// 6-field cron strings (`sec min hour day month weekday`, UTC); `"off"` disables one.
    pub backup: String,
    pub prune: String,
    pub optimize: String,
    /// Further attempts after a failed run.
    pub retries: u32,
    /// Wait before the first retry, in seconds; doubled for each further one.
    pub retry_backoff_secs: u64,
    /// A URL that receives a JSON POST when a job has failed for good, or backups are stale.
    pub alert_webhook: Option<String>,
    /// Job runs older than this many days are pruned.
    pub keep_runs_days: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            backup: "0 0 3 * * *".into(),
            prune: "0 30 3 * * *".into(),
            optimize: "0 0 4 * * *".into(),
            retries: 3,
            retry_backoff_secs: 60,
            alert_webhook: None,
            keep_runs_days: 90,
        }
    }
}

/// Where backups go, how long they are kept, and whom they are encrypted to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// The local target directory (relative paths are inside the data dir); `""` disables it.
    pub local_dir: PathBuf,
    /// age recipients (`age1…` public keys); when set, every backup is encrypted to all of them.
    pub encrypt_to: Vec<String>,
    /// zstd level, 1 (fast) to 19 (small).
    pub zstd_level: i32,
    /// Alert when the last successful backup is older than this many hours (0 = never).
    pub alert_after_hours: u32,
    pub retention: crate::backup::retention::Retention,
    pub s3: Option<S3Config>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            local_dir: PathBuf::from("backups"),
            encrypt_to: Vec::new(),
            zstd_level: 3,
            alert_after_hours: 26,
            retention: Default::default(),
            s3: None,
        }
    }
}

/// An S3-compatible bucket (AWS, MinIO, Garage, R2…). Credentials may also come from the
/// standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` variables.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// e.g. `https://s3.eu-central-1.amazonaws.com` or `http://127.0.0.1:9000`; unset = AWS.
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket, e.g. `onebox/backups`.
    #[serde(default)]
    pub prefix: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`), which MinIO and most self-hosted servers need.
    #[serde(default = "yes")]
    pub path_style: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn yes() -> bool {
    true
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Whether a schedule is `off` or a valid 6-field cron string.
pub fn check_cron(name: &str, schedule: &str) -> Result<(), String> {
    if schedule == "off" {
        return Ok(());
    }
    let fields = schedule.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "jobs.{name}: \"{schedule}\" has {fields} fields; a schedule has 6 \
             (sec min hour day month weekday, UTC), or is \"off\""
        ));
    }
    // The scheduler's own parser, so what passes here is what runs.
    tokio_cron_scheduler::Job::new_async(schedule, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|_| format!("jobs.{name}: \"{schedule}\" is not a valid cron schedule"))
}

pub(super) fn check_jobs(jobs: &JobsConfig) -> Result<(), String> {
    check_cron("backup", &jobs.backup)?;
    check_cron("prune", &jobs.prune)?;
    check_cron("optimize", &jobs.optimize)?;
    if jobs.retries > 10 {
        return Err("jobs.retries must be at most 10".into());
    }
    if let Some(url) = &jobs.alert_webhook {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err("jobs.alert_webhook must be an http(s) URL".into()),
        }
    }
    Ok(())
}

pub(super) fn check_backup(backup: &BackupConfig) -> Result<(), String> {
    if !(1..=19).contains(&backup.zstd_level) {
        return Err("backup.zstd_level must be between 1 and 19".into());
    }
    backup
        .retention
        .validate()
        .map_err(|m| format!("backup.retention: {m}"))?;
    for r in &backup.encrypt_to {
        if r.parse::<age::x25519::Recipient>().is_err() {
            return Err(format!(
                "backup.encrypt_to: \"{r}\" is not an age public key (age1…)"
            ));
        }
    }
    if let Some(s3) = &backup.s3 {
        if s3.bucket.is_empty() {
            return Err("backup.s3.bucket must not be empty".into());
        }
        if let Some(e) = &s3.endpoint
            && url::Url::parse(e).is_err()
        {
            return Err(format!("backup.s3.endpoint \"{e}\" is not a URL"));
        }
    }
    if backup.local_dir.as_os_str().is_empty() && backup.s3.is_none() {
        return Err("backups need a target: set backup.local_dir or backup.s3".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{DataDir, RawConfig, Settings};
    use super::*;

    #[test]
    fn schedules_must_be_six_field_cron_or_off() {
        let with = |backup: &str| {
            let mut raw = RawConfig::default();
            raw.jobs.backup = backup.into();
            Settings::from_raw(DataDir::new("/tmp/x"), raw)
        };
        assert!(with("0 0 3 * * *").is_ok());
        assert!(with("off").is_ok());
        let five = with("0 3 * * *").unwrap_err().to_string();
        assert!(five.contains("has 5 fields"), "{five}");
        let bad = with("0 0 25 * * *").unwrap_err().to_string();
        assert!(bad.contains("not a valid cron schedule"), "{bad}");
    }

    #[test]
    fn backup_settings_are_checked() {
        let with = |change: &dyn Fn(&mut BackupConfig)| {
            let mut raw = RawConfig::default();
            change(&mut raw.backup);
            Settings::from_raw(DataDir::new("/tmp/x"), raw).map_err(|e| e.to_string())
        };
        let err = with(&|b| b.encrypt_to = vec!["age1nope".into()]).unwrap_err();
        assert!(err.contains("not an age public key"), "{err}");
        let err = with(&|b| b.local_dir = PathBuf::new()).unwrap_err();
        assert!(err.contains("need a target"), "{err}");
        let err = with(&|b| b.zstd_level = 30).unwrap_err();
        assert!(err.contains("zstd_level"), "{err}");
    }
}
