//! `/api/admin/jobs…`: starting jobs, following their runs, refusing a second start while one
//! runs, and who may do any of it.

use rocket::http::Method;
use serde_json::Value;

use crate::helpers::TestApp;

/// The audit entries of `action`, as (actor, detail) pairs.
pub fn audited(app: &TestApp, action: &str) -> Vec<(Option<String>, Value)> {
    let db = app.sqlite();
    let mut stmt = db
        .prepare("SELECT actor, detail FROM _audit WHERE action = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([action], |r| {
        let detail: Option<String> = r.get(1)?;
        Ok((
            r.get(0)?,
            detail.map_or(Value::Null, |d| serde_json::from_str(&d).unwrap()),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[rocket::async_test]
async fn starting_a_job_answers_202_with_the_run_to_follow_and_is_audited() {
    let app = TestApp::spawn().await;

    let r = app
        .call(
            Method::Post,
            "/api/admin/jobs/optimize/run",
            Some(&app.admin),
            None,
        )
        .await;

    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["job"], "optimize");
    let id = r.json["run_id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/admin/jobs/runs/{id}").as_str())
    );
    let run = app.wait_for_run(id).await;
    assert_eq!(
        (
            run["id"].as_i64(),
            run["job"].as_str(),
            run["trigger"].as_str()
        ),
        (Some(id), Some("optimize"), Some("manual"))
    );
    let entries = audited(&app, "job.run");
    assert_eq!(entries.len(), 1);
    assert!(entries[0].0.is_some(), "the admin is named");
    assert_eq!(entries[0].1["job"], "optimize");
    assert_eq!(entries[0].1["run_id"], id);
}

#[rocket::async_test]
async fn prune_and_optimize_run_ok_and_are_listed_with_their_detail() {
    let app = TestApp::spawn().await;

    let prune = app.start_job("prune").await;
    let prune_run = app.wait_for_run(prune).await;
    let optimize = app.start_job("optimize").await;
    let optimize_run = app.wait_for_run(optimize).await;
    let r = app.get("/api/admin/jobs", Some(&app.admin)).await;

    assert_eq!(prune_run["status"], "ok", "{prune_run}");
    assert!(
        prune_run["detail"]
            .as_str()
            .unwrap()
            .starts_with("removed "),
        "{prune_run}"
    );
    assert_eq!(optimize_run["status"], "ok", "{optimize_run}");
    assert!(
        optimize_run["detail"]
            .as_str()
            .unwrap()
            .starts_with("optimized"),
        "{optimize_run}"
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let runs = r.json["runs"].as_array().unwrap();
    let listed: Vec<(i64, &str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["job"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![(optimize, "optimize", "ok"), (prune, "prune", "ok")],
        "newest first"
    );
    assert_eq!(runs[1]["detail"], prune_run["detail"]);
    let jobs = r.json["jobs"].as_array().unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["backup", "prune", "optimize"]);
    assert_eq!(jobs[1]["last_run"]["id"], prune);
    assert_eq!(jobs[1]["last_success"]["id"], prune);
    assert_eq!(jobs[1]["running"], false);
    assert_eq!(jobs[0]["last_run"], Value::Null);
    assert_eq!(jobs[0]["schedule"], "0 0 3 * * *");
    assert!(r.json["backup"].is_object(), "{:?}", r.json);
    assert_eq!(r.json["backup"]["last_success"], Value::Null);
}

#[rocket::async_test]
async fn a_second_start_while_the_job_runs_is_409_and_starts_nothing() {
    let app = TestApp::spawn().await;
    let lock = app.hold_job_lock("backup");

    let by_name = app
        .call(
            Method::Post,
            "/api/admin/jobs/backup/run",
            Some(&app.admin),
            None,
        )
        .await;
    let by_backups = app
        .call(Method::Post, "/api/admin/backups", Some(&app.admin), None)
        .await;

    for r in [&by_name, &by_backups] {
        assert_eq!(r.status, 409, "{:?}", r.json);
        assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(r.json["detail"], "backup is already running");
    }
    assert_eq!(app.run_count(), 0);
    assert!(audited(&app, "job.run").is_empty());
    // Other jobs are not held up, and the backup starts once the lock is free.
    let optimize = app.start_job("optimize").await;
    assert_eq!(app.wait_for_run(optimize).await["status"], "ok");
    drop(lock);
    let backup = app.start_job("backup").await;
    assert_eq!(app.wait_for_run(backup).await["status"], "ok");
}

#[rocket::async_test]
async fn an_unknown_job_or_run_is_a_404_problem() {
    let app = TestApp::spawn().await;

    let job = app
        .call(
            Method::Post,
            "/api/admin/jobs/vacuum/run",
            Some(&app.admin),
            None,
        )
        .await;
    let run = app
        .get("/api/admin/jobs/runs/999999", Some(&app.admin))
        .await;
    let not_a_number = app.get("/api/admin/jobs/runs/abc", Some(&app.admin)).await;

    for r in [&job, &run, &not_a_number] {
        assert_eq!(r.status, 404, "{:?}", r.json);
        assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
    }
    assert_eq!(app.run_count(), 0);
}

#[rocket::async_test]
async fn jobs_and_backups_endpoints_refuse_plain_users_with_403_and_anonymous_callers_with_401() {
    let app = TestApp::spawn().await;
    let (_, user) = app.user("ann@example.com").await;
    let id = "20260102T030405Z-3f9a";
    let endpoints = [
        (Method::Get, "/api/admin/jobs".to_string()),
        (Method::Post, "/api/admin/jobs/backup/run".to_string()),
        (Method::Get, "/api/admin/jobs/runs/1".to_string()),
        (Method::Get, "/api/admin/backups".to_string()),
        (Method::Post, "/api/admin/backups".to_string()),
        (Method::Get, format!("/api/admin/backups/{id}/download")),
    ];

    for (method, path) in &endpoints {
        let as_user = app.call(*method, path, Some(&user), None).await;
        let as_nobody = app.call(*method, path, None, None).await;

        assert_eq!(as_user.status, 403, "user {method} {path}");
        assert_eq!(as_nobody.status, 401, "anonymous {method} {path}");
        for r in [&as_user, &as_nobody] {
            assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
        }
    }
    assert_eq!(app.run_count(), 0);
}
