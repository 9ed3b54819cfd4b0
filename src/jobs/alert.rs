//! Alerts: a JSON POST to the configured webhook when a job has failed for good or backups
//! have gone stale. Delivery problems are logged; they never fail the job.

use std::time::Duration;

use serde::Serialize;

/// What an alert says.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// `job_failed` or `backup_stale`.
    pub event: &'static str,
    pub job: &'static str,
    pub time: String,
    pub host: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
}

impl Alert {
    pub fn new(event: &'static str, job: &'static str, message: String) -> Self {
        Self {
            event,
            job,
            time: crate::time::now(),
            host: hostname(),
            message,
            run_id: None,
            last_success: None,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// POST `alert` to `url`; returns whether the receiver answered 2xx.
pub async fn send(url: &str, alert: &Alert) -> bool {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("onebox/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the alert client");
            return false;
        }
    };
    match client.post(url).json(alert).send().await {
        Ok(r) if r.status().is_success() => {
            tracing::info!(event = alert.event, job = alert.job, "alert sent");
            true
        }
        Ok(r) => {
            tracing::error!(
                status = r.status().as_u16(),
                event = alert.event,
                "the alert webhook refused the alert"
            );
            false
        }
        Err(e) => {
            tracing::error!(error = %e, event = alert.event, "cannot reach the alert webhook");
            false
        }
    }
}
