//! A consistent copy of the live database while writes go on: SQLite's online backup API, run
//! as one step on a read-only connection of its own, so the copy is one read transaction's
//! snapshot and the writer never waits for it (WAL). The copy is then checked with
//! `PRAGMA integrity_check`; a copy that fails is never stored.

use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

/// What the snapshot holds, read from the copy itself.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub schema_version: i64,
    pub change_seq: i64,
}

/// Seconds spent copying and checking.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub copied: f64,
    pub checked: f64,
}

/// Copy the database at `live` into the new file `copy` and check the copy.
pub fn take(live: &Path, copy: &Path) -> anyhow::Result<(Snapshot, Timing)> {
    let started = std::time::Instant::now();
    let source = Connection::open_with_flags(
        live,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", live.display()))?;
    source.busy_timeout(crate::db::BUSY_TIMEOUT)?;
    let mut target =
        Connection::open(copy).with_context(|| format!("creating {}", copy.display()))?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
        // All pages in one step: one read transaction, so the copy is a consistent snapshot.
        // (Several smaller steps would restart whenever the writer commits in between.)
        match backup.step(-1).context("copying the database")? {
            rusqlite::backup::StepResult::Done => {}
            other => bail!("the database copy did not complete ({other:?})"),
        }
    }
    drop(source);
    // The run taking this snapshot is recorded as running inside it; a server started on a
    // restore of it would report that run as interrupted. In the copy it has succeeded.
    crate::jobs::runs::settle_in_snapshot(&target, &crate::time::now())
        .context("recording the run in the copy")?;
    // A self-contained single file: the copy carries the live database's WAL flag, and
    // restoring switches it back to WAL on open.
    target
        .pragma_update(None, "journal_mode", "DELETE")
        .context("finishing the copy")?;
    let copied = started.elapsed().as_secs_f64();
    check(&target)?;
    let checked = started.elapsed().as_secs_f64() - copied;
    let schema_version: i64 = target.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let change_seq: i64 = target
        .query_row(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = '_changes'), 0)",
            [],
            |r| r.get(0),
        )
        .context("reading the change-log position")?;
    target
        .close()
        .map_err(|(_, e)| e)
        .context("closing the copy")?;
    Ok((
        Snapshot {
            schema_version,
            change_seq,
        },
        Timing { copied, checked },
    ))
}

/// `PRAGMA integrity_check` and a look for onebox's own tables; an error says what is wrong.
pub fn check(conn: &Connection) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()
        .context("running integrity_check")?;
    if problems != ["ok"] {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        bail!("integrity_check failed: {}", shown.join("; "));
    }
    let ours: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('_collections', '_users', '_changes')",
        [],
        |r| r.get(0),
    )?;
    if ours != 3 {
        bail!("the file is a SQLite database but not a onebox one");
    }
    Ok(())
}

/// Open `path` (a restored or downloaded copy) read-only and `check` it.
pub fn check_file(path: &Path) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    check(&conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::db::{Db, DbError};

    #[tokio::test]
    async fn the_snapshot_holds_commits_still_in_the_wal_and_passes_its_checks() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("onebox.db"), Durability::Normal, 1).unwrap();
        db.write(|c| -> Result<(), DbError> {
            c.execute_batch(
                "CREATE TABLE t (x INTEGER);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
                 INSERT INTO t SELECT i FROM n;
                 INSERT INTO _changes (time, collection, op) VALUES ('2026-01-01T00:00:00.000Z', 't', 'schema');",
            )?;
            crate::jobs::runs::insert(c, "backup", "schedule", 1, "2026-01-01T00:00:00.000Z")?;
            Ok(())
        })
        .await
        .unwrap();
        let copy = dir.path().join("copy.db");
        let (snap, _) = take(&dir.path().join("onebox.db"), &copy).unwrap();
        assert_eq!(snap.change_seq, 1);
        assert_eq!(snap.schema_version, crate::db::schema_version());
        let conn = Connection::open(&copy).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 5000);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        // The run taking the snapshot has succeeded in the copy; the live row is untouched.
        let status = |c: &Connection| -> String {
            c.query_row("SELECT status FROM _job_runs", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(status(&conn), "ok");
        let live = Connection::open(dir.path().join("onebox.db")).unwrap();
        assert_eq!(status(&live), "running");
        assert!(!dir.path().join("copy.db-wal").exists());
    }

    #[test]
    fn a_database_that_is_not_onebox_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        let err = check_file(&path).unwrap_err().to_string();
        assert!(err.contains("not a onebox one"), "{err}");
    }
}
