//! Tests of the storage layer: group commit, the WAL's bounds and the checkpointer.

use super::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The integers of a one-column query, read through `Db::read`.
async fn ints(db: &Db, sql: &'static str) -> Vec<i64> {
    db.read(move |c| {
        let mut s = c.prepare(sql).map_err(DbError::from)?;
        let v = s
            .query_map([], |r| r.get(0))
            .map_err(DbError::from)?
            .collect::<Result<Vec<i64>, _>>()
            .map_err(DbError::from)?;
        Ok::<_, DbError>(v)
    })
    .await
    .unwrap()
}

/// The table `t (x BLOB)` for the WAL tests.
async fn blob_table(db: &Db) {
    create_table(db, "CREATE TABLE t (x BLOB)").await;
}

/// Run one `CREATE TABLE` through the writer.
async fn create_table(db: &Db, sql: &'static str) {
    db.write(move |c| c.execute_batch(sql).map_err(DbError::from))
        .await
        .unwrap();
}

/// One write of `bytes` random bytes into `t`.
async fn write_blob(db: &Db, bytes: i64) {
    db.write(move |c| {
        c.execute("INSERT INTO t SELECT randomblob(?1)", [bytes])
            .map_err(DbError::from)
    })
    .await
    .unwrap();
}

/// Whether the WAL starts over within `within` while small writes go on.
async fn wal_starts_over(db: &Db, wal: &std::path::Path, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        write_blob(db, 4096).await;
        // The WAL file is cut back to `journal_size_limit` (64 MiB) when it starts over.
        if std::fs::metadata(wal).unwrap().len() <= 64 << 20 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn open_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), Durability::Normal, 2).unwrap();
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_in_a_batch_rolls_back_only_itself() {
    let (_dir, db) = open_db();
    create_table(&db, "CREATE TABLE t (n INTEGER PRIMARY KEY)").await;
    // Hold the writer so the next writes queue up and are committed as one batch.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let blocker = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |_| {
                hold.recv().ok();
                Ok::<_, DbError>(())
            })
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mut writes = Vec::new();
    for n in 0..40i64 {
        let db = db.clone();
        writes.push(tokio::spawn(async move {
            db.write(move |c| {
                c.execute("INSERT INTO t (n) VALUES (?1)", [n])
                    .map_err(DbError::from)?;
                if n % 4 == 0 {
                    // Fails after writing: its insert must vanish, the others stay.
                    return Err(DbError::Commit(format!("job {n} refuses")));
                }
                Ok(n)
            })
            .await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let batches_before = db.writer_stats().batches.load(Ordering::Relaxed);
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let mut ok = Vec::new();
    for (n, w) in writes.into_iter().enumerate() {
        match w.await.unwrap() {
            Ok(v) => ok.push(v),
            Err(_) => assert_eq!(n % 4, 0, "job {n} failed"),
        }
    }
    assert_eq!(ok.len(), 30);
    let stored = ints(&db, "SELECT n FROM t ORDER BY n").await;
    let expected: Vec<i64> = (0..40).filter(|n| n % 4 != 0).collect();
    assert_eq!(stored, expected);
    // The 40 queued writes were grouped: far fewer transactions than writes.
    let batches = db.writer_stats().batches.load(Ordering::Relaxed) - batches_before;
    assert!(batches <= 4, "{batches} transactions for 40 queued writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_that_changed_many_pages_rolls_back_only_itself() {
    let (_dir, db) = open_db();
    // The writer keeps temp storage in files: a savepoint's journal past 120 KiB spills
    // to a temp file, and rolling back a job must read it back from there.
    let temp_store: i64 = db
        .write(|c| {
            c.execute_batch(
                "CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT);
                 WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 600)
                 INSERT INTO t SELECT n, replace(hex(zeroblob(500)), '0', 'a') FROM s;",
            )?;
            c.pragma_query_value(None, "temp_store", |r| r.get(0))
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(temp_store, 1, "the writer's temp storage is not in files");
    let before = ints(&db, "SELECT sum(length(v)) FROM t").await;
    let writes = (0..6i64).map(|n| {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(move |c| {
                // ~600 KiB of existing pages changed, then the job fails (odd n).
                c.execute("UPDATE t SET v = v || ?1", [n.to_string()])
                    .map_err(DbError::from)?;
                if n % 2 == 1 {
                    return Err(DbError::Commit(format!("job {n} refuses")));
                }
                Ok(n)
            })
            .await
        })
    });
    let mut ok = Vec::new();
    for w in writes.collect::<Vec<_>>() {
        if let Ok(n) = w.await.unwrap() {
            ok.push(n);
        }
    }
    assert_eq!(ok, vec![0, 2, 4]);
    // Each row gained exactly the three successful suffixes, whatever the order.
    let after = ints(&db, "SELECT sum(length(v)) FROM t").await;
    assert_eq!(after[0], before[0] + 600 * 3);
    let odd = ints(
        &db,
        "SELECT count(*) FROM t WHERE v GLOB '*1*' OR v GLOB '*3*' OR v GLOB '*5*'",
    )
    .await;
    assert_eq!(odd, vec![0]);
    let check: String = db
        .read(|c| {
            c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpointer_copies_the_wal_into_the_database_file() {
    let (dir, db) = open_db();
    db.write(|c| {
        c.execute_batch(
            "CREATE TABLE t (x TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO t SELECT hex(randomblob(200)) FROM n;",
        )
        .map_err(DbError::from)
    })
    .await
    .unwrap();
    let file = dir.path().join("t.db");
    let before = std::fs::metadata(&file).unwrap().len();
    // No automatic checkpoint at this size: only the checkpointer thread moves the pages.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::metadata(&file).unwrap().len() < 500_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after 5 s (file {before} bytes)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_a_steady_stream_of_writes() {
    let (dir, db) = open_db();
    blob_table(&db).await;
    // Four writers that never pause, 40 KiB (about 10 pages) per write, until 160 MiB of
    // pages went through the WAL: without a restart the WAL would hold all of them.
    let wal = dir.path().join("t.db-wal");
    let target: u64 = 160 << 20;
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (db, written) = (db.clone(), written.clone());
        writers.push(tokio::spawn(async move {
            while written.load(Ordering::Relaxed) < target {
                write_blob(&db, 40960).await;
                written.fetch_add(40960, Ordering::Relaxed);
            }
        }));
    }
    let mut largest = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    // At `writer::WAL_LIMIT_FRAMES` (64 MiB) the writer copies the rest itself even when
    // the checkpointer thread is starved of CPU; one batch arriving meanwhile is the margin.
    assert!(
        largest < 96 << 20,
        "the WAL reached {} MiB while 160 MiB were written",
        largest >> 20
    );
    let rows = ints(&db, "SELECT count(*) FROM t").await;
    assert_eq!(rows[0] as u64 * 40960, written.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_past_the_wal_limit_leaves_the_copy_to_the_checkpointer() {
    let (dir, db) = open_db();
    blob_table(&db).await;
    // One job of the writer's own (as a schema change is) writes 72 MiB of pages, past
    // the 64 MiB limit at which the writer copies the WAL itself.
    db.write_exclusive(|c| {
        c.execute_batch(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 1800) \
             INSERT INTO t SELECT randomblob(40960) FROM k",
        )
        .map_err(DbError::from)
    })
    .await
    .unwrap();
    let wal = dir.path().join("t.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 64 << 20);
    // The next write does not wait for a copy of all of it.
    write_blob(&db, 4096).await;
    assert_eq!(db.writer_stats().restarts.load(Ordering::Relaxed), 0);
    // The checkpointer copies it, and the WAL starts over.
    assert!(
        wal_starts_over(&db, &wal, Duration::from_secs(20)).await,
        "the WAL never started over"
    );
    let rows = ints(&db, "SELECT count(*) FROM t").await;
    assert!(rows[0] > 1800, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_read_past_the_wal_limit_does_not_stall_writes() {
    let (dir, db) = open_db();
    blob_table(&db).await;
    // A backup's snapshot: one read transaction held open on a connection of its own.
    let path = dir.path().join("t.db");
    let (hold, release) = std::sync::mpsc::channel::<()>();
    let (started, begun) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.execute_batch("BEGIN; SELECT count(*) FROM t;")
            .unwrap();
        started.send(()).unwrap();
        let _ = release.recv();
        conn.execute_batch("COMMIT").unwrap();
    });
    begun.recv().unwrap();
    // 96 MiB of pages, well past the 64 MiB limit, one write at a time.
    let mut slowest = Duration::ZERO;
    for _ in 0..(96 << 20) / 40960 {
        let started = std::time::Instant::now();
        write_blob(&db, 40960).await;
        slowest = slowest.max(started.elapsed());
        if slowest >= Duration::from_secs(1) {
            break;
        }
    }
    // Waiting for the reader (5 s busy timeout per batch) would show here.
    assert!(slowest < Duration::from_secs(1), "a write took {slowest:?}");
    let wal = dir.path().join("t.db-wal");
    let grown = std::fs::metadata(&wal).unwrap().len();
    assert!(grown > 64 << 20, "the WAL is {grown} bytes");
    // Once the read ends, the WAL starts over again (the checkpointer copies it, the
    // writer restarts it).
    hold.send(()).unwrap();
    reader.join().unwrap();
    assert!(
        wal_starts_over(&db, &wal, Duration::from_secs(10)).await,
        "the WAL never started over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_fails_alone_and_the_writer_lives_on() {
    let (_dir, db) = open_db();
    create_table(&db, "CREATE TABLE t (n INTEGER)").await;
    let boom = db
        .write(|c| -> Result<(), DbError> {
            c.execute("INSERT INTO t VALUES (1)", [])
                .map_err(DbError::from)?;
            panic!("job panics");
        })
        .await;
    assert!(matches!(boom, Err(DbError::Unavailable)));
    db.write(|c| {
        c.execute("INSERT INTO t VALUES (2)", [])
            .map_err(DbError::from)
    })
    .await
    .unwrap();
    let n = ints(&db, "SELECT n FROM t").await;
    assert_eq!(n, vec![2]);
    // A panicking read does not take its reader thread down either.
    let r: Result<(), DbError> = db.read(|_| panic!("read panics")).await;
    assert!(matches!(r, Err(DbError::Unavailable)));
    for _ in 0..4 {
        db.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    }
}

/// The start-up `PRAGMA optimize` gathers statistics for a table that has none by sampling its
/// indexes, not by reading them whole as a plain ANALYZE does: it runs in a write transaction,
/// so every write after a start waits for it.
#[test]
fn the_start_up_optimize_samples_big_tables_instead_of_reading_them_whole() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v INTEGER);
         CREATE INDEX t_k ON t (k);
         CREATE INDEX t_v ON t (v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
         INSERT INTO t SELECT i, hex(randomblob(8)), i % 97 FROM n;",
    )
    .unwrap();
    // Virtual-machine steps (in hundreds) a statement takes on a new connection.
    let steps = |sql: &str| {
        let conn = open::open_checkpointer(&path).unwrap();
        let n = Arc::new(AtomicU64::new(0));
        let counter = n.clone();
        conn.progress_handler(
            100,
            Some(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                false
            }),
        )
        .unwrap();
        conn.execute_batch(sql).unwrap();
        n.load(Ordering::Relaxed)
    };
    let stats = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 't' AND idx IN ('t_k', 't_v')",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let sampled = steps(open::STARTUP_OPTIMIZE);
    assert_eq!(stats(&conn), 2, "the start-up optimize gathers statistics");
    // A second start has nothing to do while the table keeps its size.
    assert!(steps(open::STARTUP_OPTIMIZE) < 10);
    conn.execute_batch("DELETE FROM sqlite_stat1").unwrap();
    let whole = steps("ANALYZE");
    assert_eq!(stats(&conn), 2);
    assert!(
        sampled * 5 < whole,
        "the start-up optimize took {sampled} hundred steps, a whole ANALYZE {whole}"
    );
}

/// See `open::apply_common_pragmas`: a memory map would put every page read into the RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_reads_the_database_through_a_memory_map() {
    let (dir, db) = open_db();
    assert_eq!(ints(&db, "PRAGMA mmap_size").await, [0]);
    let written: i64 = db
        .write(|c| {
            c.pragma_query_value(None, "mmap_size", |r| r.get(0))
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(written, 0);
    let checkpointer = open::open_checkpointer(&dir.path().join("t.db")).unwrap();
    let copied: i64 = checkpointer
        .pragma_query_value(None, "mmap_size", |r| r.get(0))
        .unwrap();
    assert_eq!(copied, 0);
}
