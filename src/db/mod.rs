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

    /// Gather planner statistics in the background, as SQLite advises for long-lived
    /// connections: analyse tables that have none or whose size changed a lot (later runs are
    /// no-ops unless the data changed a lot). Plans without statistics can be badly off, e.g.
    /// an equality index plus a sort of a third of the table instead of an ordered index walk.
    /// ANALYZE holds the write lock, so the server calls this once its own start-up writes are
    /// done, and short-lived CLI commands leave it to the server. Its own short-lived thread
    /// and connection: ANALYZE fills a page cache with index pages, and the allocator returns
    /// a finished thread's memory, where an idle writer kept ~10 MB of it (idle RSS 23 → 13 MB
    /// on a freshly seeded database).
    pub fn optimize_in_background(&self) -> std::io::Result<()> {
        let path = self.inner.path.clone();
        std::thread::Builder::new()
            .name("onebox-optimize".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let result = open::open_checkpointer(&path)
                    .and_then(|conn| conn.execute_batch(open::STARTUP_OPTIMIZE));
                match result {
                    Ok(()) => {
                        tracing::debug!(ms = started.elapsed().as_millis() as u64, "optimize")
                    }
                    Err(e) => tracing::warn!(error = %e, "PRAGMA optimize failed"),
                }
            })
            .map(drop)
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
mod tests;
