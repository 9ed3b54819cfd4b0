//! The housekeeping jobs: `prune` (expired sessions and tokens, old throttling rows and job
//! runs, change-log rows a verified backup already holds) and `optimize` (`PRAGMA optimize`
//! and a WAL checkpoint).

use anyhow::Context;
use chrono::Utc;

use crate::config::Settings;
use crate::db::Db;

/// Change-log rows stay at least this long, whatever the backups hold.
const CHANGES_KEEP_DAYS: i64 = 7;

/// Delete what has expired; returns a one-line summary.
pub async fn prune(db: &Db, settings: &Settings) -> anyhow::Result<String> {
    // The change log may shrink only up to what the newest backup holds: a backup plus the
    // rows after it describe everything.
    // Targets that cannot be listed now are skipped: the rows stay until they can be.
    let covered = crate::backup::list(settings, None)
        .await
        .context("listing backups")?
        .items
        .iter()
        .map(|l| l.manifest.change_seq)
        .max()
        .unwrap_or(0);
    let now = Utc::now();
    let stamp = |d: chrono::Duration| crate::time::format(now - d);
    let (now_s, idle_before, day_before, runs_before, changes_before) = (
        crate::time::format(now),
        stamp(chrono::Duration::from_std(settings.session_idle).unwrap_or_default()),
        stamp(chrono::Duration::days(1)),
        stamp(chrono::Duration::days(i64::from(
            settings.jobs.keep_runs_days,
        ))),
        stamp(chrono::Duration::days(CHANGES_KEEP_DAYS)),
    );
    let counts = db
        .write(move |conn| -> anyhow::Result<[usize; 5]> {
            let sessions = conn.execute(
                "DELETE FROM _sessions WHERE expires < ?1 OR last_seen < ?2",
                [&now_s, &idle_before],
            )?;
            let tokens = conn.execute(
                "DELETE FROM _tokens WHERE expires IS NOT NULL AND expires < ?1",
                [&now_s],
            )?;
            let attempts = conn.execute(
                "DELETE FROM _login_attempts WHERE window_start < ?1 \
                 AND (blocked_until IS NULL OR blocked_until < ?2)",
                [&day_before, &now_s],
            )?;
            let runs = crate::jobs::runs::delete_older(conn, &runs_before)?;
            let changes = conn.execute(
                "DELETE FROM _changes WHERE seq <= ?1 AND time < ?2",
                rusqlite::params![covered, changes_before],
            )?;
            Ok([sessions, tokens, attempts, runs, changes])
        })
        .await?;
    let [sessions, tokens, attempts, runs, changes] = counts;
    Ok(format!(
        "removed {sessions} sessions, {tokens} tokens, {attempts} sign-in counters, {runs} job runs, \
         {changes} change-log rows (up to seq {covered})"
    ))
}

/// `PRAGMA optimize` and a WAL checkpoint; returns a one-line summary.
pub async fn optimize(db: &Db) -> anyhow::Result<String> {
    db.write_exclusive(|conn| -> anyhow::Result<String> {
        conn.execute_batch("PRAGMA optimize;")?;
        let (busy, log, copied): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        Ok(if busy == 0 {
            "optimized; the write-ahead log was checkpointed and truncated".to_string()
        } else {
            format!("optimized; checkpoint copied {copied} of {log} frames (readers were busy)")
        })
    })
    .await
}
