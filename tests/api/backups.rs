//! `/api/admin/backups…`: taking a backup, listing it with its sizes, downloading exactly the
//! stored bytes, and the failure paths (bad ids, unknown targets, an unreachable S3 target).

use rocket::http::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, enc};
use crate::jobs::audited;

/// Take a backup through the API and wait for it; returns its manifest as stored on disk.
pub async fn backup(app: &TestApp) -> Value {
    let r = app
        .call(Method::Post, "/api/admin/backups", Some(&app.admin), None)
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["job"], "backup");
    let run = app.wait_for_run(r.json["run_id"].as_i64().unwrap()).await;
    assert_eq!(run["status"], "ok", "{run}");
    let id = run["detail"].as_str().unwrap().split(':').next().unwrap();
    manifest(app, id)
}

/// The manifest of backup `id` on the local target.
pub fn manifest(app: &TestApp, id: &str) -> Value {
    let path = app.dir.path().join("backups").join(format!("{id}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Settings with an S3 target nobody answers at (a port that was free a moment ago).
pub fn unreachable_s3(s: &mut onebox::config::Settings) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.backup.s3 = Some(onebox::config::S3Config {
        bucket: "backups".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        prefix: String::new(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test-secret".into()),
        path_style: true,
    });
}

#[rocket::async_test]
async fn an_admin_backs_up_lists_the_backup_with_its_sizes_and_downloads_its_exact_bytes() {
    let app = TestApp::spawn().await;
    app.collection(
        serde_json::json!({ "name": "notes", "fields": [ { "name": "t", "type": "text" } ] }),
    )
    .await;
    app.record("notes", serde_json::json!({ "t": "keep me" }))
        .await;

    let m = backup(&app).await;
    let id = m["id"].as_str().unwrap();
    let list = app.get("/api/admin/backups", Some(&app.admin)).await;
    let download = app
        .get(
            &format!("/api/admin/backups/{id}/download"),
            Some(&app.admin),
        )
        .await;

    assert_eq!(list.status, 200, "{:?}", list.json);
    let items = list.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", list.json);
    let item = &items[0];
    assert_eq!(item["id"], id);
    assert_eq!(item["target"], "local");
    assert_eq!(item["created"], m["created"]);
    assert_eq!(item["db_bytes"], m["db_bytes"]);
    assert_eq!(item["file_bytes"], m["file_bytes"]);
    assert_eq!(item["change_seq"], m["change_seq"]);
    assert_eq!(item["schema_version"], m["schema_version"]);
    assert_eq!(item["app_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(item["encrypted"], false);
    let age = item["age_hours"].as_f64().unwrap();
    assert!((0.0..0.1).contains(&age), "{age}");
    let stored = app
        .dir
        .path()
        .join("backups")
        .join(m["file"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(stored).unwrap().len(),
        m["file_bytes"].as_u64().unwrap()
    );
    assert!(m["db_bytes"].as_u64().unwrap() > 0);
    assert!(
        list.json["backup"]["last_success"].is_string(),
        "{:?}",
        list.json
    );
    assert_eq!(list.json["backup"]["warning"], Value::Null);

    assert_eq!(download.status, 200);
    assert_eq!(
        download.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        download.header("content-disposition"),
        Some(format!("attachment; filename=\"{}\"", m["file"].as_str().unwrap()).as_str())
    );
    assert_eq!(download.header("cache-control"), Some("no-store"));
    assert_eq!(
        download.header("content-length"),
        Some(m["file_bytes"].to_string().as_str())
    );
    assert_eq!(
        download.body.len() as u64,
        m["file_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        hex::encode(Sha256::digest(&download.body)),
        m["file_sha256"].as_str().unwrap()
    );
    let entries = audited(&app, "backup.download");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].1["id"].as_str(), entries[0].1["target"].as_str()),
        (Some(id), Some("local"))
    );
}

#[rocket::async_test]
async fn a_malformed_or_missing_backup_id_is_a_404_and_reads_nothing() {
    let app = TestApp::spawn().await;
    let m = backup(&app).await;
    let real = m["id"].as_str().unwrap();
    let missing = "20200102T030405Z-3f9a";

    for id in [
        enc("../../etc/passwd"),
        enc("../onebox.db"),
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd".to_string(),
        format!("{real}.json"),
        format!("{}x", &real[..real.len() - 1]),
        missing.to_string(),
        "nope".to_string(),
    ] {
        let r = app
            .get(
                &format!("/api/admin/backups/{id}/download"),
                Some(&app.admin),
            )
            .await;

        assert_eq!(r.status, 404, "{id}: {:?}", r.json);
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/problem+json"),
            "{id}"
        );
    }
    assert!(audited(&app, "backup.download").is_empty());
}

#[rocket::async_test]
async fn an_unknown_or_unconfigured_target_is_a_400_problem() {
    let app = TestApp::spawn().await;

    let ftp = app
        .get("/api/admin/backups?from=ftp", Some(&app.admin))
        .await;
    let s3 = app
        .get("/api/admin/backups?from=s3", Some(&app.admin))
        .await;
    let download = app
        .get(
            "/api/admin/backups/20260102T030405Z-3f9a/download?from=ftp",
            Some(&app.admin),
        )
        .await;
    let local = app
        .get("/api/admin/backups?from=local", Some(&app.admin))
        .await;

    for r in [&ftp, &s3, &download] {
        assert_eq!(r.status, 400, "{:?}", r.json);
        assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
        assert!(
            r.json["detail"]
                .as_str()
                .unwrap()
                .contains("configured: local"),
            "{:?}",
            r.json
        );
    }
    assert_eq!(local.status, 200, "{:?}", local.json);
    assert_eq!(local.json["items"], serde_json::json!([]));
}

#[rocket::async_test]
async fn an_unreachable_s3_target_is_a_503_problem_that_says_which_target_failed() {
    let app = TestApp::spawn_with(unreachable_s3).await;

    let all = app.get("/api/admin/backups", Some(&app.admin)).await;
    let s3 = app
        .get("/api/admin/backups?from=s3", Some(&app.admin))
        .await;
    let download = app
        .get(
            "/api/admin/backups/20260102T030405Z-3f9a/download?from=s3",
            Some(&app.admin),
        )
        .await;
    let local = app
        .get("/api/admin/backups?from=local", Some(&app.admin))
        .await;

    for r in [&all, &s3, &download] {
        assert_eq!(r.status, 503, "{:?}", r.json);
        assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
        let detail = r.json["detail"].as_str().unwrap();
        assert!(detail.contains("s3 target"), "{detail}");
        assert!(!detail.contains("test-secret"), "{detail}");
    }
    assert_eq!(local.status, 200, "{:?}", local.json);
}
