//! The single writer: one thread owns the only read-write connection and runs write jobs sent
//! over a channel. Jobs that queue up while a transaction commits are grouped into the next
//! one (group commit): one `BEGIN IMMEDIATE … COMMIT` (and, with `durability = "full"`, one
//! fsync) for many requests, each job inside its own SAVEPOINT so a failing job rolls back only
//! itself. Between batches it copies the WAL's tail when the checkpointer thread asks (and
//! the rest at the WAL limit), and pauses while that thread is behind.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::checkpointer::{Checkpoints, WAKE_FRAMES};

/// Most jobs grouped into one transaction; bounds the latency one commit adds.
const MAX_BATCH: usize = 256;

/// WAL size (frames) at which the writer copies the WAL itself, whatever the checkpointer
/// thread is doing: 16,384 pages, 64 MiB. Normally the checkpointer asks for the final copy
/// long before (see `db::checkpointer`); this bound holds even when that thread gets no CPU.
pub(crate) const WAL_LIMIT_FRAMES: i64 = 16_384;

/// WAL size (frames) past which the writer pauses after each batch, longer the larger the
/// WAL, so the checkpointer can catch up: 8,192 pages, 32 MiB, twice what it is woken for.
const PACE_FRAMES: i64 = 2 * WAKE_FRAMES;

/// How long the RESTART at the limit waits for readers (the checkpointer it waits for apart):
/// API reads take well under a millisecond, so only a long read (a backup's snapshot) makes
/// it give up.
const RESTART_WAIT: Duration = Duration::from_millis(10);

/// How long the writer waits (running batches meanwhile) for a checkpointer pass in progress
/// before its RESTART at the limit. A pass over a WAL at the limit usually ends within it; one
/// over a WAL that grew behind a long read can take seconds.
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
    conn: Connection,
    stats: Arc<WriterStats>,
    checkpoints: Arc<Checkpoints>,
) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>(4096);
    std::thread::Builder::new()
        .name("onebox-writer".into())
        .spawn(move || {
            conn.wal_hook(Some(note_wal_size));
            let mut writer = Writer {
                conn,
                rx,
                stats,
                checkpoints,
                batch: Vec::with_capacity(MAX_BATCH),
                limit_not_before: Instant::now(),
                limit_due: None,
            };
            while writer.step() {}
            tracing::debug!("writer stopped");
        })?;
    Ok(tx)
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    stats: Arc<WriterStats>,
    checkpoints: Arc<Checkpoints>,
    batch: Vec<BatchedJob>,
    /// No copy at the WAL limit before this (after one that gave up, or a schema change).
    limit_not_before: Instant,
    /// Since when the WAL has been at the limit with the checkpointer's pass in progress: the
    /// writer copies once that pass ends, running batches meanwhile.
    limit_due: Option<Instant>,
}

impl Writer {
    /// Run the next job (with those queued behind it), then checkpoint if due; false once
    /// every sender is gone.
    fn step(&mut self) -> bool {
        let job = if self.limit_due.is_some() {
            match self.rx.try_recv() {
                Ok(job) => Some(job),
                // Nothing queued: look again shortly whether the checkpointer's pass ended.
                Err(TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(1));
                    None
                }
                Err(TryRecvError::Disconnected) => return false,
            }
        } else {
            match self.rx.blocking_recv() {
                Some(job) => Some(job),
                None => return false,
            }
        };
        let ran = job.map(|job| self.run(job)).is_some();
        self.checkpoint();
        if ran {
            self.pace();
        }
        true
    }

    /// Run `job`, and with a batched one every batched job queued behind it (up to
    /// `MAX_BATCH`) in one transaction.
    fn run(&mut self, job: Job) {
        let exclusive = match job {
            Job::Exclusive(f) => Some(f),
            Job::Batched(f) => {
                self.batch.push(f);
                let mut exclusive = None;
                while self.batch.len() < MAX_BATCH {
                    match self.rx.try_recv() {
                        Ok(Job::Batched(f)) => self.batch.push(f),
                        Ok(Job::Exclusive(f)) => {
                            exclusive = Some(f);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                let jobs = self.batch.len() as u64;
                self.stats.jobs.fetch_add(jobs, Ordering::Relaxed);
                let before = WAL_FRAMES.get();
                run_batch(&self.conn, &mut self.batch);
                if WAL_FRAMES.get() / WAKE_FRAMES > before / WAKE_FRAMES {
                    self.checkpoints.wake();
                }
                exclusive
            }
        };
        if let Some(f) = exclusive {
            // A panic inside is confined to that job; its reply channel is dropped, which its
            // caller sees as an error.
            let _ = catch_unwind(AssertUnwindSafe(|| f(&mut self.conn)));
            // Never leave a transaction open for the next batch.
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            let _ = self.conn.pragma_update(None, "foreign_keys", "ON");
            if WAL_FRAMES.get() >= WAL_LIMIT_FRAMES {
                // A schema change (an index build, a table rebuild) can take the WAL past the
                // limit in one go. Copying it right here made the next writes wait for all of
                // it (~0.2 s after indexing 1M rows): the checkpointer copies it meanwhile, and
                // the writer copies the tail as usual.
                self.checkpoints.wake();
                self.limit_not_before = Instant::now() + AFTER_EXCLUSIVE;
            }
        }
    }

    /// Copy the rest of the WAL here, where no write can be in progress, so that the next
    /// transaction starts the WAL over: PASSIVE when the checkpointer has copied all but the
    /// tail; at the limit RESTART.
    fn checkpoint(&mut self) {
        let started = Instant::now();
        let at_limit = WAL_FRAMES.get() >= WAL_LIMIT_FRAMES && started >= self.limit_not_before;
        let mode = if self.limit_due.is_some() || at_limit {
            if !self.restart() {
                return;
            }
            "restart"
        } else if self.checkpoints.finish.swap(false, Ordering::Relaxed) {
            let done = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            if let Err(e) = done {
                tracing::warn!(error = %e, "checkpoint failed");
            }
            "finish"
        } else {
            return;
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

    /// Pause after a batch while the WAL is past `PACE_FRAMES`: the checkpointer is behind
    /// (the disk takes its writes slower than the writer makes them), and the writer's own
    /// copy at the limit would stop every write for as long as the disk needs to catch up.
    /// Not while the WAL grows behind a long read, which no pause would end.
    fn pace(&self) {
        let frames = WAL_FRAMES.get();
        if frames <= PACE_FRAMES
            || self.checkpoints.held_back.load(Ordering::Relaxed)
            || Instant::now() < self.limit_not_before
        {
            return;
        }
        let per_4mib = ((frames - PACE_FRAMES) / 1024).min(10) as u64;
        std::thread::sleep(Duration::from_micros(500 + 1000 * per_4mib));
    }

    /// `wal_checkpoint(RESTART)` at the WAL limit, once the checkpointer's pass in progress
    /// has ended, waiting at most `RESTART_WAIT` for readers; false while that pass goes on.
    fn restart(&mut self) -> bool {
        let due = *self.limit_due.get_or_insert_with(Instant::now);
        let checkpoints = Arc::clone(&self.checkpoints);
        let Some(pass) = checkpoints.try_pass() else {
            if due.elapsed() < PASS_WAIT {
                return false;
            }
            // A long pass (the WAL grew behind a long read): it copies what the RESTART
            // would have, so let it go on.
            self.gave_up();
            return true;
        };
        self.limit_due = None;
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        let _ = self.conn.busy_timeout(RESTART_WAIT);
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
        let _ = self.conn.busy_timeout(super::open::BUSY_TIMEOUT);
        drop(pass);
        match done {
            // The next transaction starts the WAL over; until its commit reports the new
            // size, the old one would make `pace` pause for a WAL that is gone.
            Ok(0) => WAL_FRAMES.set(0),
            Ok(_) => self.gave_up(),
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint failed");
                self.gave_up();
            }
        }
        true
    }

    /// A long read (a backup's snapshot, say) holds an old snapshot, or the checkpointer is
    /// copying a WAL grown behind one: leave the WAL alone for a while rather than pause every
    /// batch. It grows until that read ends, and no longer.
    fn gave_up(&mut self) {
        self.checkpoints.stop_waiting();
        self.limit_due = None;
        self.limit_not_before = Instant::now() + RESTART_RETRY;
    }
}

fn run_batch(conn: &Connection, batch: &mut Vec<BatchedJob>) {
    let began = Instant::now();
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
    let committing = Instant::now();
    let outcome = run("COMMIT").map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "commit failed");
        let failed = CommitFailed::from_sqlite(&e);
        let _ = conn.execute_batch("ROLLBACK");
        failed
    });
    // Every job of the batch waits for all of it (under `durability = "full"`, the COMMIT
    // includes the WAL's fsync).
    let ms = began.elapsed().as_millis() as u64;
    if ms >= 10 {
        let commit_ms = committing.elapsed().as_millis() as u64;
        tracing::debug!(ms, commit_ms, jobs = finishers.len(), "slow batch");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer thread with no checkpointer thread, over a table `t (x BLOB)`.
    struct TestWriter {
        _dir: tempfile::TempDir,
        jobs: mpsc::Sender<Job>,
        stats: Arc<WriterStats>,
        checkpoints: Arc<Checkpoints>,
        wal: std::path::PathBuf,
    }

    impl TestWriter {
        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.db");
            let conn =
                super::super::open::open_writer(&path, crate::config::Durability::Normal).unwrap();
            conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
            let stats = Arc::new(WriterStats::default());
            let checkpoints = Arc::new(Checkpoints::new().0);
            let jobs = spawn(conn, stats.clone(), checkpoints.clone()).unwrap();
            let wal = dir.path().join("t.db-wal");
            TestWriter {
                _dir: dir,
                jobs,
                stats,
                checkpoints,
                wal,
            }
        }
    }

    /// Run one job writing a random blob of `bytes`; how long until it was acknowledged.
    fn write_blob(jobs: &mpsc::Sender<Job>, bytes: i64) -> Duration {
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        let job: BatchedJob = Box::new(move |conn| {
            let ok = conn
                .execute("INSERT INTO t SELECT randomblob(?1)", [bytes])
                .is_ok();
            let finish: Finish = Box::new(move |done| {
                let _ = tx.send(done.is_ok());
            });
            Ran { ok, finish }
        });
        jobs.blocking_send(Job::Batched(job)).unwrap();
        assert!(rx.recv().unwrap(), "the write failed");
        started.elapsed()
    }

    #[test]
    fn the_writer_paces_itself_while_the_checkpointer_is_behind() {
        let w = TestWriter::start();
        let (jobs, checkpoints, wal) = (&w.jobs, &w.checkpoints, &w.wal);
        let frame = 4096 + 24;
        // Small writes are quick while the WAL is under `PACE_FRAMES`.
        let quick = (0..20).map(|_| write_blob(jobs, 100)).sum::<Duration>();
        // The checkpointer copies nothing (its pass does not end) and the WAL passes 40 MiB.
        let pass = checkpoints.pass();
        while std::fs::metadata(wal).unwrap().len() < (PACE_FRAMES as u64 + 2048) * frame {
            write_blob(jobs, 40960);
        }
        // Each batch is now followed by a pause of 2.5 ms or more, which the next write
        // waits for.
        let paced = (0..20).map(|_| write_blob(jobs, 100)).sum::<Duration>();
        assert!(
            paced >= Duration::from_micros(20 * 2500),
            "20 writes took {paced:?} (before the WAL grew: {quick:?})"
        );
        // Not while a reader holds the checkpointer back: no pause would help.
        checkpoints.held_back.store(true, Ordering::Relaxed);
        let unpaced = (0..20).map(|_| write_blob(jobs, 100)).sum::<Duration>();
        assert!(
            unpaced < paced / 2,
            "20 writes took {unpaced:?} held back, {paced:?} paced"
        );
        drop(pass);
    }

    #[test]
    fn at_the_wal_limit_writes_go_on_while_a_checkpointer_pass_is_in_progress() {
        let w = TestWriter::start();
        let (jobs, stats, checkpoints, wal) = (&w.jobs, &w.stats, &w.checkpoints, &w.wal);
        let limit_bytes = WAL_LIMIT_FRAMES as u64 * (4096 + 24);
        // A checkpointer pass that does not end (one behind a long read, or a slow disk).
        let pass = checkpoints.pass();
        while std::fs::metadata(wal).unwrap().len() < limit_bytes {
            write_blob(jobs, 40960);
        }
        // Past the limit, the writer copies the WAL only once that pass has ended; waiting
        // for it (`PASS_WAIT`, 100 ms) used to hold up the write behind.
        let past = Instant::now();
        let mut slowest = Duration::ZERO;
        let mut writes = 0;
        while past.elapsed() < Duration::from_millis(600) {
            slowest = slowest.max(write_blob(jobs, 4096));
            writes += 1;
        }
        assert!(
            slowest < PASS_WAIT,
            "a write past the limit took {slowest:?}"
        );
        assert!(writes > 20, "{writes} writes in 600 ms");
        assert_eq!(stats.restarts.load(Ordering::Relaxed), 0);
        // Once the pass ends, the writer copies the WAL and it starts over.
        drop(pass);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(wal).unwrap().len() > 64 << 20 && Instant::now() < deadline {
            write_blob(jobs, 4096);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(stats.restarts.load(Ordering::Relaxed) >= 1);
        assert!(
            std::fs::metadata(wal).unwrap().len() <= 64 << 20,
            "the WAL never started over"
        );
    }
}
