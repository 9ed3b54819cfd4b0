//! The admin Jobs and Backups pages: who may open them, Run now and Back up now (CSRF, the
//! flash, the run they start), the backup list with its download link (which works with the
//! session cookie), a stale-backup warning and a target that cannot be listed.

use sha2::{Digest, Sha256};

use crate::backups::{backup, unreachable_s3};
use crate::helpers::{PASSWORD, TestApp};
use crate::site_admin::{admin_site, assert_redirect};
use crate::site_client::SiteClient;

/// The id of the newest run.
fn newest_run(app: &TestApp) -> i64 {
    app.sqlite()
        .query_row("SELECT max(id) FROM _job_runs", [], |r| r.get(0))
        .unwrap()
}

#[rocket::async_test]
async fn the_jobs_and_backups_pages_show_jobs_runs_and_backups_to_admins() {
    let app = TestApp::spawn().await;
    let m = backup(&app).await;
    let id = m["id"].as_str().unwrap();
    let admin = admin_site(&app).await;

    let index = admin.get("/admin").await;
    let jobs = admin.get("/admin/jobs").await;
    let backups = admin.get("/admin/backups").await;

    assert!(index.body.contains("href=\"/admin/jobs\""));
    assert!(index.body.contains("href=\"/admin/backups\""));
    assert_eq!(jobs.status, 200, "{}", jobs.body);
    for job in ["backup", "prune", "optimize"] {
        assert!(jobs.body.contains(&format!("id=\"job-{job}\"")), "{job}");
        assert!(
            jobs.body
                .contains(&format!("action=\"/admin/jobs/{job}/run\"")),
            "{job}"
        );
    }
    let run = newest_run(&app);
    assert!(
        jobs.body.contains(&format!("id=\"run-{run}\"")),
        "{}",
        jobs.body
    );
    assert!(jobs.body.contains(id), "the run's detail names the backup");
    assert_eq!(backups.status, 200, "{}", backups.body);
    assert_eq!(backups.header("cache-control"), Some("no-store"));
    assert!(backups.body.contains(&format!("id=\"backup-local-{id}\"")));
    assert!(!backups.body.contains("id=\"backup-warning\""));
    assert!(!backups.body.contains("id=\"problems\""));
    assert!(backups.body.contains("action=\"/admin/backups\""));
    assert!(
        backups.body.contains(&format!(
            "href=\"/api/admin/backups/{id}/download?from=local\""
        )),
        "{}",
        backups.body
    );
}

#[rocket::async_test]
async fn plain_users_get_403_and_anonymous_visitors_are_sent_to_sign_in() {
    let app = TestApp::spawn().await;
    app.user("ann@example.com").await;
    let user = SiteClient::new(&app);
    user.sign_in("ann@example.com", PASSWORD).await;
    let anonymous = SiteClient::new(&app);

    for path in ["/admin/jobs", "/admin/backups"] {
        let refused = user.get(path).await;
        let away = anonymous.get(path).await;

        assert_eq!(refused.status, 403, "{path}");
        assert_eq!(away.status, 303, "{path}");
        assert!(away.location().starts_with("/sign-in?next="), "{path}");
    }
}

#[rocket::async_test]
async fn run_now_without_the_csrf_token_is_403_and_starts_nothing() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    admin.get("/admin/jobs").await;
    let before = app.run_count();

    let missing = admin.post_raw("/admin/jobs/optimize/run", &[]).await;
    let forged = admin
        .post_raw(
            "/admin/jobs/optimize/run",
            &[("csrf", "forged-token-forged-token-forged-token-123")],
        )
        .await;
    let backup_now = admin.post_raw("/admin/backups", &[]).await;

    for page in [&missing, &forged, &backup_now] {
        assert_eq!(page.status, 403, "{}", page.body);
    }
    assert_eq!(app.run_count(), before);
}

#[rocket::async_test]
async fn run_now_redirects_with_a_flash_naming_the_run_it_started() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    admin.get("/admin/jobs").await;

    let started = admin.post("/admin/jobs/backup/run", &[]).await;

    assert_redirect(&started, "/admin/jobs");
    let run = newest_run(&app);
    assert_eq!(app.run_count(), 1);
    let page = admin.get("/admin/jobs").await;
    assert!(
        page.body.contains(&format!("backup started (run {run})")),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("id=\"run-{run}\"")));
    assert_eq!(app.wait_for_run(run).await["status"], "ok");
    let again = admin.get("/admin/jobs").await;
    assert!(!again.body.contains("started (run"), "the flash shows once");
}

#[rocket::async_test]
async fn run_now_while_the_job_runs_says_so_and_starts_nothing() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    admin.get("/admin/backups").await;
    let lock = app.hold_job_lock("backup");

    let refused = admin.post("/admin/backups", &[]).await;

    assert_redirect(&refused, "/admin/backups");
    let page = admin.get("/admin/backups").await;
    assert!(
        page.body.contains("backup is already running"),
        "{}",
        page.body
    );
    assert!(page.body.contains("class=\"notice error\""));
    assert_eq!(app.run_count(), 0);
    drop(lock);
}

#[rocket::async_test]
async fn back_up_now_takes_a_backup_that_downloads_with_the_session_cookie() {
    let app = TestApp::spawn().await;
    let admin = admin_site(&app).await;
    admin.get("/admin/backups").await;

    let started = admin.post("/admin/backups", &[]).await;

    assert_redirect(&started, "/admin/backups");
    let run = newest_run(&app);
    assert_eq!(app.wait_for_run(run).await["status"], "ok");
    let page = admin.get("/admin/backups").await;
    assert!(page.body.contains(&format!("backup started (run {run})")));
    let id: String = app
        .sqlite()
        .query_row("SELECT detail FROM _job_runs WHERE id = ?1", [run], |r| {
            r.get::<_, String>(0)
        })
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let m = crate::backups::manifest(&app, &id);
    let href = format!("/api/admin/backups/{id}/download?from=local");
    assert!(
        page.body.contains(&format!("href=\"{href}\"")),
        "{}",
        page.body
    );
    let download = admin.get(&href).await;
    assert_eq!(download.status, 200, "{}", download.body);
    assert_eq!(
        download.bytes.len() as u64,
        m["file_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        hex::encode(Sha256::digest(&download.bytes)),
        m["file_sha256"].as_str().unwrap()
    );
    let user = SiteClient::new(&app);
    app.user("ann@example.com").await;
    user.sign_in("ann@example.com", PASSWORD).await;
    assert_eq!(user.get(&href).await.status, 403);
}

#[rocket::async_test]
async fn a_stale_backup_shows_a_warning_on_the_backups_and_jobs_pages() {
    let app = TestApp::spawn().await;
    let db = rusqlite::Connection::open(app.dir.path().join("onebox.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute(
        "INSERT INTO _job_runs (job, trigger, attempt, started, finished, status, detail) \
         VALUES ('backup', 'schedule', 1, '2020-01-01T03:00:00.000Z', \
         '2020-01-01T03:00:05.000Z', 'ok', 'an old backup')",
        [],
    )
    .unwrap();
    let admin = admin_site(&app).await;

    let backups = admin.get("/admin/backups").await;
    let jobs = admin.get("/admin/jobs").await;

    for page in [&backups, &jobs] {
        assert_eq!(page.status, 200);
        assert!(page.body.contains("id=\"backup-warning\""), "{}", page.body);
        assert!(
            page.body.contains("the last successful backup finished"),
            "{}",
            page.body
        );
    }
}

#[rocket::async_test]
async fn the_backups_page_names_a_target_that_cannot_be_listed_and_still_shows_the_others() {
    let app = TestApp::spawn_with(unreachable_s3).await;
    // The backup job itself fails on the S3 target, so put a local backup there by hand.
    let local = onebox::backup::targets::Target::local(&app.dir.path().join("backups")).unwrap();
    let m = serde_json::json!({
        "format": 1, "id": "20260102T030405Z-3f9a", "created": "2026-01-02T03:04:05.000Z",
        "app_version": "0.1.0", "schema_version": 4, "change_seq": 7, "db_bytes": 4096,
        "db_sha256": "00", "file": "20260102T030405Z-3f9a.db.zst", "file_bytes": 3,
        "file_sha256": "00", "compression": "zstd", "encrypted": false
    });
    local
        .put("20260102T030405Z-3f9a.json", m.to_string().into_bytes())
        .await
        .unwrap();
    let admin = admin_site(&app).await;

    let page = admin.get("/admin/backups").await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"problems\""), "{}", page.body);
    assert!(page.body.contains("s3 target"), "{}", page.body);
    assert!(!page.body.contains("test-secret"));
    assert!(
        page.body
            .contains("id=\"backup-local-20260102T030405Z-3f9a\"")
    );
    assert!(page.body.contains("4.1 kB → 3 B"), "{}", page.body);
}
