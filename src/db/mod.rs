//! Storage access. `Db` is the whole async surface: `read` sends a closure to a small set of
//! reader threads, each holding one read-only connection from the r2d2 pool (so its prepared
//! statement cache stays warm); `write` sends it to the single writer thread, where it runs in
//! a group-committed transaction. No SQLite call runs on an async thread. Repositories
//! elsewhere are plain synchronous functions over `&Connection`, so several compose inside one
//! `write`.

mod checkpointer;
mod error;
mod open;
mod walbuf;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use checkpointer::Checkpoints;
pub use error::DbError;
pub use open::{BUSY_TIMEOUT, OpenError, check_existing, schema_version};
pub use writer::{CommitFailed, WriterStats};
use writer::{Job, Ran};

use crate::config::Durability;

/// A handle to the database: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Dropped with the last `Db`, which stops the checkpointer thread.
    _checkpoints: crossbeam_channel::Sender<()>,
    stats: Arc<WriterStats>,
    reads: crossbeam_channel::Sender<ReadJob>,
    jobs: mpsc::Sender<Job>,
}

/// A read, run by whichever reader thread is free.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

impl Db {
    /// Open (creating if needed) the database at `path`, migrate it, start the writer thread
    /// and the reader pool. Blocking: call before serving, or from a blocking context.
    pub fn open(path: &Path, durability: Durability, readers: u32) -> Result<Db, OpenError> {
        let conn = open::open_writer(path, durability)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .with_init(open::apply_reader_pragmas);
        let shown = path.display().to_string();
        let pool = r2d2::Pool::builder()
            .max_size(readers)
            // Open connections lazily: start-up stays fast and idle memory small.
            .min_idle(Some(1))
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager)
            .map_err(|e| OpenError::Migration(format!("reader pool for {shown}: {e}")))?;
        let io = |source| OpenError::Io {
            path: shown.clone(),
            source,
        };
        let stats = Arc::new(WriterStats::default());
        let (checkpoints, woken) = Checkpoints::new();
        let checkpoints = Arc::new(checkpoints);
        let jobs = writer::spawn(conn, stats.clone(), checkpoints.clone()).map_err(io)?;
        // Planner statistics, as SQLite advises for long-lived connections: analyse tables
        // that have none or whose size changed a lot, in the background so start-up does not
        // wait (a full ANALYZE of a 1M-row table takes ~1 s; later runs are no-ops unless the
        // data changed a lot). Plans without statistics can be badly off, e.g. an equality
        // index plus a sort of a third of the table instead of an ordered index walk. Its own
        // short-lived thread and connection: ANALYZE fills a page cache with whole indexes,
        // and the allocator returns a finished thread's memory, where an idle writer kept
        // ~10 MB of it (idle RSS 23 → 13 MB on a freshly seeded database).
        let optimize_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("onebox-optimize".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let result = open::open_checkpointer(&optimize_path)
                    .and_then(|conn| conn.execute_batch("PRAGMA optimize = 0x10002;"));
                match result {
                    Ok(()) => {
                        tracing::debug!(ms = started.elapsed().as_millis() as u64, "optimize")
                    }
                    Err(e) => tracing::warn!(error = %e, "PRAGMA optimize failed"),
                }
            })
            .map_err(io)?;
        let (reads, queue) = crossbeam_channel::unbounded::<ReadJob>();
        for n in 0..readers {
            let (pool, queue) = (pool.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("onebox-reader-{n}"))
                .spawn(move || reader_loop(&pool, &queue))
                .map_err(io)?;
        }
        let (stop_checkpoints, stopped) = crossbeam_channel::bounded::<()>(0);
        let checkpoint_conn =
            open::open_checkpointer(path).map_err(|source| OpenError::Sqlite {
                path: shown.clone(),
                source,
            })?;
        std::thread::Builder::new()
            .name("onebox-checkpoint".into())
            .spawn(move || checkpointer::run(&checkpoint_conn, &stopped, &woken, &checkpoints))
            .map_err(io)?;
        Ok(Db {
            inner: Arc::new(Inner {
                _checkpoints: stop_checkpoints,
                path: path.to_path_buf(),
                stats,
                reads,
                jobs,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What the writer has done so far.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Run `f` on a read-only connection, on a reader thread.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let span = tracing::Span::current();
        let job: ReadJob = Box::new(move |conn: &Connection| {
            let result = span.in_scope(|| f(conn));
            let _ = tx.send(result);
        });
        if self.inner.reads.send(job).is_err() {
            return Err(DbError::Unavailable.into());
        }
        match rx.await {
            Ok(result) => result,
            // The closure panicked (its reply channel was dropped); the reader lives on.
            Err(_) => Err(DbError::Unavailable.into()),
        }
    }

    /// Run `f` inside the writer's transaction (in its own savepoint). `Ok` means committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let span = tracing::Span::current();
        let job = Job::Batched(Box::new(move |conn: &Connection| {
            let result = span.in_scope(|| f(conn));
            let ok = result.is_ok();
            Ran {
                ok,
                finish: Box::new(move |committed| {
                    let answer = match (result, committed) {
                        (Ok(_), Err(failed)) => Err(commit_error(failed).into()),
                        (result, _) => result,
                    };
                    let _ = tx.send(answer);
                }),
            }
        }));
        self.send(job, rx).await
    }

    /// Run `f` with the writer connection to itself; `f` manages its own transaction. For
    /// schema alterations, which need `PRAGMA foreign_keys=OFF` outside any transaction.
    pub async fn write_exclusive<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let span = tracing::Span::current();
        let job = Job::Exclusive(Box::new(move |conn: &mut Connection| {
            let result = span.in_scope(|| f(conn));
            let _ = tx.send(result);
        }));
        self.send(job, rx).await
    }

    async fn send<T, E: From<DbError>>(
        &self,
        job: Job,
        rx: oneshot::Receiver<Result<T, E>>,
    ) -> Result<T, E> {
        if self.inner.jobs.send(job).await.is_err() {
            return Err(DbError::Unavailable.into());
        }
        match rx.instrument(tracing::Span::current()).await {
            Ok(result) => result,
            // The job panicked or could not start; it was rolled back.
            Err(_) => Err(DbError::Unavailable.into()),
        }
    }
}

/// A reader thread: hold one pooled connection and run reads until the channel closes.
fn reader_loop(
    pool: &r2d2::Pool<SqliteConnectionManager>,
    queue: &crossbeam_channel::Receiver<ReadJob>,
) {
    let mut conn = None;
    while let Ok(job) = queue.recv() {
        if conn.is_none() {
            match pool.get() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    // Dropping the job closes its reply channel: the caller sees an error.
                    tracing::error!(error = %e, "no reader connection");
                    continue;
                }
            }
        }
        if let Some(c) = &conn {
            let c: &Connection = c;
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(c))).is_err() {
                tracing::error!("a read panicked");
            }
        }
    }
}

fn commit_error(failed: CommitFailed) -> DbError {
    if failed.disk_full {
        DbError::DiskFull
    } else {
        DbError::Commit(failed.message)
    }
}

#[cfg(test)]
mod tests {
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
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (x BLOB)")
                .map_err(DbError::from)
        })
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
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
                .map_err(DbError::from)
        })
        .await
        .unwrap();
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
            let conn =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
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
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (n INTEGER)")
                .map_err(DbError::from)
        })
        .await
        .unwrap();
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
}
