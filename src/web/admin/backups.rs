//! `GET /admin/backups` (a warning when backups are stale, the stored backups with download
//! links) and `POST /admin/backups` (start the backup job now). A target that cannot be listed
//! is named on the page, above whatever the other targets hold.

use askama::Template;
use chrono::Utc;
use rocket::{State, get, post};

use crate::app::App;
use crate::backup::human_bytes;
use crate::error::AppError;
use crate::jobs::{BackupHealth, JobName};
use crate::services::backups::{self, BackupItem};
use crate::services::jobs;

use super::super::page::{Answer, Layout, Page, WebError, render, urlencoding};
use super::super::visitor::{Checked, NoFields, Staff};
use super::jobs::start_job;
use super::readable_time;

/// One backup as shown.
pub struct BackupView {
    pub id: String,
    pub target: &'static str,
    /// The stored RFC 3339 time (for `<time datetime>`).
    pub created: String,
    pub when: String,
    pub age: String,
    /// `12.3 MB → 2.1 MB`: the database, then what is stored.
    pub size: String,
    pub encrypted: bool,
    pub change_seq: i64,
    /// The API's download URL, which takes the session cookie.
    pub download: String,
}

impl BackupView {
    pub fn of(b: BackupItem) -> Self {
        BackupView {
            download: format!(
                "/api/admin/backups/{}/download?from={}",
                urlencoding(&b.id),
                urlencoding(b.target)
            ),
            when: readable_time(&b.created),
            age: age(b.age_hours),
            size: format!(
                "{} → {}",
                human_bytes(b.db_bytes),
                human_bytes(b.file_bytes)
            ),
            id: b.id,
            target: b.target,
            created: b.created,
            encrypted: b.encrypted,
            change_seq: b.change_seq,
        }
    }
}

/// Hours as people read an age: minutes under an hour, hours under two days, then days.
fn age(hours: f64) -> String {
    if hours < 1.0 {
        format!("{} min", (hours * 60.0).round().max(0.0))
    } else if hours < 48.0 {
        format!("{hours:.1} h")
    } else {
        format!("{:.1} d", hours / 24.0)
    }
}

#[derive(Template)]
#[template(path = "admin/backups.html")]
struct BackupsPage {
    layout: Layout,
    backup: BackupHealth,
    backups: Vec<BackupView>,
    /// Targets that could not be listed, and why.
    problems: Vec<String>,
}

impl BackupsPage {
    fn when(&self, stored: &str) -> String {
        readable_time(stored)
    }
}

#[get("/admin/backups")]
pub async fn backups_page(app: &State<App>, s: Staff) -> Result<Page, WebError> {
    let (items, problems) = match backups::list(app, None, Utc::now()).await {
        Ok(listing) => (
            listing.items,
            listing.failures.into_iter().map(|f| f.detail).collect(),
        ),
        Err(e @ AppError::Unavailable(_)) => (Vec::new(), vec![e.to_string()]),
        Err(e) => return Err(e.into()),
    };
    render(&BackupsPage {
        layout: s.0.layout("Backups"),
        backup: jobs::backup_health(app).await?,
        backups: items.into_iter().map(BackupView::of).collect(),
        problems,
    })
}

#[post("/admin/backups", data = "<_form>")]
pub async fn back_up_now_submit(
    app: &State<App>,
    s: Staff,
    _form: Checked<NoFields>,
) -> Result<Answer, WebError> {
    start_job(app, &s, JobName::Backup, "/admin/backups").await
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages_read_in_minutes_hours_or_days() {
        assert_eq!(age(0.25), "15 min");
        assert_eq!(age(3.04), "3.0 h");
        assert_eq!(age(72.0), "3.0 d");
    }
}
