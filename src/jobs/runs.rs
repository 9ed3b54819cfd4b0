//! The `_job_runs` table: one row per run, written when it starts and when it ends.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// One recorded run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub attempt: i64,
    pub started: String,
    pub finished: Option<String>,
    /// `running`, `ok` or `failed`.
    pub status: String,
    pub detail: Option<String>,
}

const COLUMNS: &str = "id, job, trigger, attempt, started, finished, status, detail";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        job: r.get(1)?,
        trigger: r.get(2)?,
        attempt: r.get(3)?,
        started: r.get(4)?,
        finished: r.get(5)?,
        status: r.get(6)?,
        detail: r.get(7)?,
    })
}

/// Record that a run started; returns its id.
pub fn insert(
    conn: &Connection,
    job: &str,
    trigger: &str,
    attempt: u32,
    now: &str,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO _job_runs (job, trigger, attempt, started, status) VALUES (?1, ?2, ?3, ?4, 'running')",
    )?
    .execute(params![job, trigger, attempt, now])?;
    Ok(conn.last_insert_rowid())
}

/// Record how a run ended.
pub fn finish(
    conn: &Connection,
    id: i64,
    ok: bool,
    detail: &str,
    now: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE _job_runs SET finished = ?2, status = ?3, detail = ?4 WHERE id = ?1",
    )?
    .execute(params![id, now, if ok { "ok" } else { "failed" }, detail])?;
    Ok(())
}

/// Mark runs of `job` still `running` as failed: their process stopped before they ended.
pub fn mark_interrupted(conn: &Connection, job: &str, now: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE _job_runs SET finished = ?2, status = 'failed', \
         detail = 'interrupted: the process running it stopped' \
         WHERE job = ?1 AND status = 'running'",
        params![job, now],
    )
}

/// In a backup's snapshot: the backup run that is taking it has succeeded, as far as a
/// database restored from it will ever know.
pub fn settle_in_snapshot(conn: &Connection, now: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE _job_runs SET finished = ?1, status = 'ok', \
         detail = 'this run took the snapshot this database was restored from' \
         WHERE job = 'backup' AND status = 'running'",
        [now],
    )
}

/// The newest runs, optionally of one job, newest first.
pub fn recent(conn: &Connection, job: Option<&str>, limit: u32) -> rusqlite::Result<Vec<Run>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM _job_runs WHERE ?1 IS NULL OR job = ?1 ORDER BY id DESC LIMIT ?2"
    );
    conn.prepare_cached(&sql)?
        .query_map(params![job, limit], from_row)?
        .collect()
}

/// One run by id.
pub fn find(conn: &Connection, id: i64) -> rusqlite::Result<Option<Run>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM _job_runs WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// The newest successful run of `job`.
pub fn last_success(conn: &Connection, job: &str) -> rusqlite::Result<Option<Run>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM _job_runs WHERE job = ?1 AND status = 'ok' ORDER BY id DESC LIMIT 1"
    ))?
    .query_row([job], from_row)
    .optional()
}

/// Delete finished runs that started before `before`.
pub fn delete_older(conn: &Connection, before: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM _job_runs WHERE started < ?1 AND status != 'running'",
        [before],
    )
}
