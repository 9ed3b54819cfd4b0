//! The single writer: one thread owns the only read-write connection and runs write jobs sent
//! over a channel. Jobs that queue up while a transaction commits are grouped into the next
//! one (group commit): one `BEGIN IMMEDIATE … COMMIT` (and, with `durability = "full"`, one
//! fsync) for many requests, each job inside its own SAVEPOINT so a failing job rolls back only
//! itself.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::mpsc;

use super::checkpointer::{Checkpoints, WAKE_FRAMES};

/// Most jobs grouped into one transaction; bounds the latency one commit adds.
const MAX_BATCH: usize = 256;

/// WAL size (frames) at which the writer copies the WAL itself, whatever the checkpointer
/// thread is doing: 16,384 pages, 64 MiB. Normally the checkpointer asks for the final copy
/// long before (see `db::checkpointer`); this bound holds even when that thread gets no CPU.
pub(crate) const WAL_LIMIT_FRAMES: i64 = 16_384;

/// How long the RESTART at the limit waits for readers (the checkpointer it waits for apart):
/// API reads take well under a millisecond, so only a long read (a backup's snapshot) makes
/// it give up.
const RESTART_WAIT: Duration = Duration::from_millis(10);

/// How long the RESTART at the limit waits for a checkpointer pass in progress. A pass over
/// a WAL at the limit usually ends within it; one over a WAL that grew behind a long read can
/// take seconds.
const PASS_WAIT: Duration = Duration::from_millis(100);

/// After a RESTART that gave up, the writer leaves the WAL alone this long, so a long read
/// costs writes at most `RESTART_WAIT` in every `RESTART_RETRY`.
const RESTART_RETRY: Duration = Duration::from_millis(250);

/// After a job of its own (a schema change) left the WAL past the limit, the writer leaves
/// the copy to the checkpointer this long before it copies at the limit itself.
const AFTER_EXCLUSIVE: Duration = Duration::from_secs(1);

thread_local! {
    /// Frames in the WAL after the writer's last commit (set by SQLite's WAL hook, which runs
    /// on this thread inside `COMMIT`).
    static WAL_FRAMES: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn note_wal_size(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(i64::from(frames));
    Ok(())
}

/// Delivers a job's result once the fate of its transaction is known.
pub(crate) type Finish = Box<dyn FnOnce(Result<(), CommitFailed>) + Send>;

/// A job that ran inside the shared transaction: whether it succeeded, and how to answer.
pub(crate) struct Ran {
    pub ok: bool,
    pub finish: Finish,
}

/// A job that runs inside the batch transaction.
pub(crate) type BatchedJob = Box<dyn FnOnce(&Connection) -> Ran + Send>;

pub(crate) enum Job {
    /// Runs inside the batch transaction, in its own savepoint.
    Batched(BatchedJob),
    /// Runs alone with the connection to itself and manages its own transaction (schema
    /// alterations, which must switch foreign keys off outside any transaction).
    Exclusive(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// The batch's COMMIT (or BEGIN) failed, so none of its jobs took effect.
#[derive(Debug, Clone)]
pub struct CommitFailed {
    pub disk_full: bool,
    pub message: String,
}

impl CommitFailed {
    fn from_sqlite(e: &rusqlite::Error) -> Self {
        Self {
            disk_full: e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            message: e.to_string(),
        }
    }
}

/// Counters of the writer's work (for metrics and tests).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed (or attempted) for batched jobs.
    pub batches: std::sync::atomic::AtomicU64,
    /// Batched jobs run.
    pub jobs: std::sync::atomic::AtomicU64,
    /// WAL copies the writer ran itself at the WAL limit (`wal_checkpoint(RESTART)`).
    pub restarts: std::sync::atomic::AtomicU64,
}

/// Start the writer thread; it stops when every sender is dropped.
pub(crate) fn spawn(
    mut conn: Connection,
    stats: Arc<WriterStats>,
    checkpoints: Arc<Checkpoints>,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, mut rx) = mpsc::channel::<Job>(4096);
    std::thread::Builder::new()
        .name("onebox-writer".into())
        .spawn(move || {
            conn.wal_hook(Some(note_wal_size));
            let mut restart_not_before = Instant::now();
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while let Some(job) = rx.blocking_recv() {
                let mut exclusive = None;
                match job {
                    Job::Exclusive(f) => exclusive = Some(f),
                    Job::Batched(f) => {
                        batch.push(f);
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(Job::Batched(f)) => batch.push(f),
                                Ok(Job::Exclusive(f)) => {
                                    exclusive = Some(f);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        stats.batches.fetch_add(1, Ordering::Relaxed);
                        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        let before = WAL_FRAMES.get();
                        run_batch(&conn, &mut batch);
                        if WAL_FRAMES.get() / WAKE_FRAMES > before / WAKE_FRAMES {
                            checkpoints.wake();
                        }
                    }
                }
                if let Some(f) = exclusive {
                    // A panic inside is confined to that job; its reply channel is dropped,
                    // which its caller sees as an error.
                    let _ = catch_unwind(AssertUnwindSafe(|| f(&mut conn)));
                    // Never leave a transaction open for the next batch.
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    let _ = conn.pragma_update(None, "foreign_keys", "ON");
                    if WAL_FRAMES.get() >= WAL_LIMIT_FRAMES {
                        // A schema change (an index build, a table rebuild) can take the WAL
                        // past the limit in one go. Copying it right here made the next writes
                        // wait for all of it (~0.2 s after indexing 1M rows): the checkpointer
                        // copies it meanwhile, and the writer copies the tail as usual.
                        checkpoints.wake();
                        restart_not_before = Instant::now() + AFTER_EXCLUSIVE;
                    }
                }
                // Copy the rest of the WAL here, where no write can be in progress, so that the
                // next transaction starts the WAL over: PASSIVE when the checkpointer has
                // copied all but the tail; at the limit RESTART, which also waits briefly for
                // a checkpointer pass still running and for readers of old snapshots.
                let started = Instant::now();
                let mode = if WAL_FRAMES.get() >= WAL_LIMIT_FRAMES && started >= restart_not_before
                {
                    stats.restarts.fetch_add(1, Ordering::Relaxed);
                    if !restart(&conn, &checkpoints) {
                        // A long read (a backup's snapshot, say) holds an old snapshot: leave
                        // the WAL alone for a while rather than pause every batch. It grows
                        // until that read ends, and no longer.
                        restart_not_before = Instant::now() + RESTART_RETRY;
                    }
                    "restart"
                } else if checkpoints.finish.swap(false, Ordering::Relaxed) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "checkpoint failed");
                    }
                    "finish"
                } else {
                    ""
                };
                // Writes queue behind this: slow ones are what a write's p99 is made of.
                let ms = started.elapsed().as_millis() as u64;
                if ms >= 10 {
                    tracing::debug!(
                        mode,
                        ms,
                        wal_frames = WAL_FRAMES.get(),
                        "slow writer checkpoint"
                    );
                }
            }
            tracing::debug!("writer stopped");
        })?;
    Ok(tx)
}

/// `wal_checkpoint(RESTART)` once the checkpointer's pass in progress (if any) has ended,
/// waiting at most `PASS_WAIT` for that and `RESTART_WAIT` for readers; whether the WAL will
/// start over.
fn restart(conn: &Connection, checkpoints: &Checkpoints) -> bool {
    let Some(_pass) = checkpoints.pass_within(PASS_WAIT) else {
        // A long pass (the WAL grew behind a long read): it copies what the RESTART would
        // have copied, so writes go on meanwhile.
        return false;
    };
    let _ = conn.busy_timeout(RESTART_WAIT);
    let done = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    let _ = conn.busy_timeout(super::open::BUSY_TIMEOUT);
    match done {
        Ok(busy) => busy == 0,
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint failed");
            false
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut Vec<BatchedJob>) {
    let mut finishers: Vec<Finish> = Vec::with_capacity(batch.len());
    // Cached statements: these run for every batch or job, and parsing them each time showed.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    if let Err(e) = run("BEGIN IMMEDIATE") {
        let failed = CommitFailed::from_sqlite(&e);
        tracing::error!(error = %e, "cannot begin a write transaction");
        // The jobs never ran; dropping them drops their reply channels after telling them.
        for job in batch.drain(..) {
            let ran = job_failed_to_start(job);
            (ran.finish)(Err(failed.clone()));
        }
        return;
    }
    for job in batch.drain(..) {
        if run("SAVEPOINT job").is_err() {
            // Cannot isolate this job; treat it as failed without running it.
            finishers.push(job_failed_to_start(job).finish);
            continue;
        }
        let ran = catch_unwind(AssertUnwindSafe(|| job(conn)));
        match ran {
            Ok(Ran { ok: true, finish }) => {
                let _ = run("RELEASE job");
                finishers.push(finish);
            }
            Ok(Ran { ok: false, finish }) => {
                let _ = run("ROLLBACK TO job").and_then(|_| run("RELEASE job"));
                finishers.push(finish);
            }
            Err(_) => {
                tracing::error!("a write job panicked; it was rolled back");
                let _ = run("ROLLBACK TO job").and_then(|_| run("RELEASE job"));
            }
        }
    }
    let outcome = run("COMMIT").map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "commit failed");
        let failed = CommitFailed::from_sqlite(&e);
        let _ = conn.execute_batch("ROLLBACK");
        failed
    });
    for finish in finishers {
        finish(outcome.clone());
    }
}

/// A job that could not be run: it is not called; its reply channel closes, which its caller
/// reports as a failed write. Returned as `Ran` so the caller's code path stays uniform.
fn job_failed_to_start(job: BatchedJob) -> Ran {
    drop(job);
    Ran {
        ok: false,
        finish: Box::new(|_| {}),
    }
}
