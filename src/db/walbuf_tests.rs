//! Tests of `db::walbuf`: every commit reaches the files before COMMIT returns, and a
//! commit's frames go out in one write.

use super::*;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

fn writer(path: &Path, synchronous: &str) -> Connection {
    register().unwrap();
    let w = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME).unwrap();
    w.pragma_update(None, "journal_mode", "WAL").unwrap();
    w.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    // NORMAL is the server's default (`durability = "normal"`): no sync at commit, so
    // nothing but the shim's own rules write the held-back frames.
    w.pragma_update(None, "synchronous", synchronous).unwrap();
    w.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    w
}

/// What a crash right now would leave: copies of the database and WAL files as they are on
/// disk, opened without the shim (SQLite recovers the WAL from the file alone). Returns the
/// row count and a digest of every row.
fn as_on_disk(path: &Path) -> (i64, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(path, &copy).unwrap();
    let wal = path.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, dir.path().join("copy.db-wal")).unwrap();
    }
    let c = Connection::open(&copy).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    digest(&c)
}

/// The row count of `t` and a digest of its rows.
fn digest(c: &Connection) -> (i64, String) {
    c.query_row(
        "SELECT count(*), coalesce(sum(length(v) * id), 0) || ':' || coalesce(max(v), '') FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn every_commit_is_in_the_files_when_it_returns() {
    commits_reach_the_files("NORMAL");
}

#[test]
fn every_commit_is_in_the_files_when_it_returns_with_full_sync() {
    commits_reach_the_files("FULL");
}

/// The invariant the shim must keep: when COMMIT returns, the files alone hold the commit,
/// whatever shape the transaction had.
fn commits_reach_the_files(synchronous: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let w = writer(&path, synchronous);
    let reader = Connection::open(&path).unwrap();
    let mut expected = 0;
    let commit = |sql: &str| {
        w.execute_batch(&format!("BEGIN IMMEDIATE; {sql}; COMMIT"))
            .unwrap();
        // The files first: any later call on the writer could write what it holds back.
        let on_disk = as_on_disk(&path);
        let now = digest(&w);
        assert_eq!(on_disk, now, "after: {sql}");
        // Another connection in this process reads the commit from the files too.
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, now.0);
        now.0
    };
    // Small commits: one page, a few pages.
    for i in 0..20 {
        expected += 1;
        assert_eq!(
            commit(&format!("INSERT INTO t (v) VALUES ('small {i}')")),
            expected
        );
    }
    // Commits larger than one write (`PIECE`) and than what is held back (`MAX_HELD`).
    for n in [40, 400, 2_000] {
        expected += n;
        let sql = format!(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n}) \
             INSERT INTO t (v) SELECT printf('%.900c', 'x') || i FROM k"
        );
        assert_eq!(commit(&sql), expected);
    }
    // A transaction bigger than the page cache: pages spill into the WAL before the
    // commit, are written again in place, and their frames' checksums are rewritten.
    w.pragma_update(None, "cache_size", 10).unwrap();
    let spill = "UPDATE t SET v = v || 'a'; UPDATE t SET v = v || 'b' WHERE id % 2 = 0; \
                 UPDATE t SET v = substr(v, 1, 700) WHERE id % 3 = 0";
    assert_eq!(commit(spill), expected);
    w.pragma_update(None, "cache_size", -2000).unwrap();
    // The WAL starts over after a checkpoint; then commits again, and a rollback.
    w.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
        .unwrap();
    expected += 1;
    assert_eq!(
        commit("INSERT INTO t (v) VALUES ('after restart')"),
        expected
    );
    w.execute_batch("BEGIN; DELETE FROM t; ROLLBACK").unwrap();
    let on_disk = as_on_disk(&path);
    assert_eq!(on_disk, digest(&w));
    expected += 1;
    assert_eq!(
        commit("INSERT INTO t (v) VALUES ('after rollback')"),
        expected
    );
    // Closing writes nothing that matters any more, and loses nothing.
    let before = digest(&w);
    drop(w);
    assert_eq!(as_on_disk(&path), before);
}

/// What the shim is for: a commit's frames go out in one write, not two per frame.
#[test]
fn a_commit_of_many_pages_takes_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let w = writer(&path, "NORMAL");
    w.execute_batch("CREATE INDEX t_v ON t (v)").unwrap();
    let frames = |w: &Connection| -> i64 {
        w.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap()
    };
    let before = frames(&w);
    let writes = WAL_WRITES.get();
    w.execute_batch(
        "BEGIN IMMEDIATE; \
         WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 20) \
         INSERT INTO t (v) SELECT printf('%.900c', 'y') || i FROM k; COMMIT",
    )
    .unwrap();
    let writes = WAL_WRITES.get() - writes;
    let frames = frames(&w) - before;
    assert!(frames >= 8, "{frames} frames");
    // Two at most: the first frame's header goes straight out when a read came before it.
    assert!(writes <= 2, "{writes} writes for {frames} frames");
}
