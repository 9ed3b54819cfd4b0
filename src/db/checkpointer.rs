//! The checkpointer thread: copies the WAL into the database file off the writer's path and
//! flushes it, so that the WAL can start over under any write load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::Connection;

/// WAL frames appended since the checkpointer was last woken at which the writer wakes it
/// again: 4,096 pages, 16 MiB. Under a steady write load the WAL grows this much in tens of
/// milliseconds; a checkpointer on a timer fell so far behind that the writer did nearly all
/// the copying itself, at the limit, while every write waited (stalls of ~130 ms in every
/// ~240 ms at 10k creates/s).
pub(crate) const WAKE_FRAMES: i64 = 4_096;

/// What the writer and the checkpointer thread share.
pub(crate) struct Checkpoints {
    /// Set by the checkpointer when all but the WAL's tail is copied: the writer copies the
    /// rest between two batches.
    pub finish: AtomicBool,
    /// Held by the checkpointer for each pass and by the writer for its RESTART, so the
    /// RESTART never runs during a pass (the writer takes it between two batches once a pass
    /// has ended) and gives up only for readers.
    pass: std::sync::Mutex<()>,
    /// Set while the writer wants `pass` for its copy at the WAL limit: the checkpointer
    /// finishes the pass in progress and starts no new one meanwhile (a mutex is not fair; in
    /// a hurry it would take the lock straight back).
    restart_waiting: AtomicBool,
    /// Set by the checkpointer when its last pass could not copy every frame, because a
    /// reader still needs them (a long read's old snapshot): no pause of the writer's would
    /// help it catch up.
    pub held_back: AtomicBool,
    /// Wakes the checkpointer (which otherwise sleeps between timed passes) each time the WAL
    /// grows by `WAKE_FRAMES`.
    wake: crossbeam_channel::Sender<()>,
}

impl Checkpoints {
    /// The shared state, and the receiving end of its wake-ups for the checkpointer thread.
    pub fn new() -> (Self, crossbeam_channel::Receiver<()>) {
        // One pending wake-up is enough: the pass it starts copies everything there is.
        let (wake, woken) = crossbeam_channel::bounded(1);
        let shared = Checkpoints {
            finish: AtomicBool::new(false),
            pass: std::sync::Mutex::new(()),
            restart_waiting: AtomicBool::new(false),
            held_back: AtomicBool::new(false),
            wake,
        };
        (shared, woken)
    }

    /// Wake the checkpointer for a pass now.
    pub(super) fn wake(&self) {
        // Full means a wake-up is already pending.
        let _ = self.wake.try_send(());
    }

    pub(super) fn pass(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic while it was held leaves nothing inconsistent.
        self.pass.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pass lock if no checkpointer pass is in progress. Without it, the checkpointer
    /// starts no new pass until the writer has had it or gives up (`stop_waiting`).
    pub(super) fn try_pass(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.restart_waiting.store(true, Ordering::Relaxed);
        let guard = match self.pass.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        if guard.is_some() {
            self.stop_waiting();
        }
        guard
    }

    /// Let the checkpointer start passes again.
    pub(super) fn stop_waiting(&self) {
        self.restart_waiting.store(false, Ordering::Relaxed);
    }
}

/// WAL size (frames of one page) past which the WAL should start again from the beginning:
/// 4096 pages, 16 MiB.
const RESTART_FRAMES: i64 = 4096;
/// Most frames the writer is left to copy itself when it finishes a checkpoint (4 MiB).
const TAIL_FRAMES: i64 = 1024;
/// Frames few enough to leave to the writer whenever a pass finds no more (512 KiB).
const MIN_TAIL_FRAMES: i64 = 128;

/// What the checkpointer does after a pass, from the WAL's size and the frames that pass found
/// new. Once the WAL is big it copies again at once while each pass still finds clearly fewer
/// new frames than the one before, and leaves the writer the rest when that stops: every write
/// waits while the writer copies its tail, and a tail of 1,024 frames (the old fixed threshold)
/// made those waits 15–30 ms, the bulk of a create's p99. Passes stop shrinking at what the
/// writer appends during one pass, which the pass's flush of the database file dominates.
#[derive(Debug, Default)]
struct Tail {
    /// New frames found by the previous pass while hurrying.
    last_new: Option<i64>,
}

/// The checkpointer's next step after a pass.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Wait for the timer or the writer's wake-up.
    Wait,
    /// Copy again at once.
    Hurry,
    /// Ask the writer to copy the rest (`Checkpoints::finish`), then wait.
    Finish,
}

impl Tail {
    fn after_pass(&mut self, frames: i64, new: i64) -> Next {
        if frames < RESTART_FRAMES {
            self.last_new = None;
            return Next::Wait;
        }
        let stopped_shrinking = self.last_new.is_some_and(|last| 4 * new > 3 * last);
        if new <= MIN_TAIL_FRAMES || (new <= TAIL_FRAMES && stopped_shrinking) {
            self.last_new = None;
            Next::Finish
        } else {
            self.last_new = Some(new);
            Next::Hurry
        }
    }
}

/// Copy the WAL into the database file off the writer's path (a commit that triggers an
/// automatic checkpoint waits for it): five times a second, and whenever the writer reports
/// another `WAKE_FRAMES` frames. PASSIVE never takes the writer's lock.
///
/// SQLite starts the WAL over only when a write transaction begins with every frame already
/// copied. Under a steady write load this thread never sees that moment, so the WAL grew
/// without bound (3.6 GB after a minute of creates, every append extending the file). So once
/// the WAL passes `RESTART_FRAMES`, this thread copies again without pausing (each pass copies
/// what was appended during the one before, so passes shrink) until passes stop shrinking
/// (`Tail`), then asks the writer to copy that tail between two batches (`finish`), after
/// which its next transaction starts the WAL over. If copying cannot keep up (or this thread
/// gets no CPU), the writer copies by itself at `writer::WAL_LIMIT_FRAMES`, which bounds the
/// WAL.
pub(super) fn run(
    conn: &Connection,
    stop: &crossbeam_channel::Receiver<()>,
    woken: &crossbeam_channel::Receiver<()>,
    checkpoints: &Checkpoints,
) {
    let interval = Duration::from_millis(200);
    let mut hurry = false;
    let mut seen = 0;
    let mut tail = Tail::default();
    loop {
        let wait = if hurry { Duration::ZERO } else { interval };
        crossbeam_channel::select! {
            // Nothing is ever sent: the channel closes when the last `Db` is dropped.
            recv(stop) -> _ => return,
            recv(woken) -> _ => {}
            default(wait) => {}
        }
        if checkpoints.restart_waiting.load(Ordering::Relaxed) {
            // The writer is about to copy and restart the WAL itself.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        // The WAL's size when this pass began, in frames; the pass copies all of them that no
        // reader still needs.
        let pass = checkpoints.pass();
        let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        drop(pass);
        let frames = match copied {
            Ok((frames, backfilled)) => {
                checkpoints
                    .held_back
                    .store(backfilled < frames, Ordering::Relaxed);
                frames
            }
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint failed");
                hurry = false;
                continue;
            }
        };
        // Frames appended since the previous pass (all of them if the WAL started over).
        let new = if frames >= seen {
            frames - seen
        } else {
            frames
        };
        seen = frames;
        if new > 0
            && let Err(e) = sync_database(conn)
        {
            tracing::warn!(error = %e, "cannot flush the database file");
        }
        let next = tail.after_pass(frames, new);
        if next == Next::Finish {
            checkpoints.finish.store(true, Ordering::Relaxed);
        }
        hurry = next == Next::Hurry;
    }
}

/// Flush the pages a checkpoint pass copied into the database file to disk. SQLite does so
/// only after a pass that reached the WAL's end, which under a steady write load the
/// checkpointer's never does: a whole WAL cycle of copied pages was then flushed by the
/// writer's final copy, with every write waiting for it.
///
/// Through the connection's own file handle, via SQLite's documented file-control interface
/// (`SQLITE_FCNTL_FILE_POINTER`, then the VFS's `xSync`): a second descriptor of our own
/// would, when closed, drop every POSIX lock this process holds on the file, SQLite's
/// included.
#[allow(unsafe_code)]
pub(super) fn sync_database(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    let failed = |code| Err(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None));
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` is open for the whole call; SQLITE_FCNTL_FILE_POINTER stores the main
    // database's file object (owned by the connection) into `file`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&raw mut file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return failed(rc);
    }
    // SAFETY: a non-null file object stays valid while `conn` is open; `pMethods` is null
    // when the file is not open, and xSync is the VFS's own fsync for it.
    let sync = unsafe {
        file.as_ref()
            .and_then(|f| f.pMethods.as_ref())
            .and_then(|m| m.xSync)
    };
    let Some(sync) = sync else {
        return Ok(());
    };
    // SAFETY: as above; the file object belongs to `conn`, which only this thread uses.
    let rc = unsafe { sync(file, ffi::SQLITE_SYNC_NORMAL) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        failed(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_wal_is_left_to_the_timer() {
        let mut tail = Tail::default();
        assert_eq!(tail.after_pass(RESTART_FRAMES - 1, 5_000), Next::Wait);
        assert_eq!(tail.after_pass(100, 100), Next::Wait);
    }

    #[test]
    fn a_big_wal_is_copied_again_while_passes_shrink_and_left_to_the_writer_after() {
        let mut tail = Tail::default();
        let wal = RESTART_FRAMES + 2_000;
        // The first pass has nothing to compare with: at most TAIL_FRAMES is not enough.
        assert_eq!(tail.after_pass(wal, 3_000), Next::Hurry);
        assert_eq!(tail.after_pass(wal, 900), Next::Hurry);
        assert_eq!(tail.after_pass(wal, 400), Next::Hurry);
        // 350 is more than three quarters of 400: passes no longer shrink.
        assert_eq!(tail.after_pass(wal, 350), Next::Finish);
        // A new cycle compares afresh.
        assert_eq!(tail.after_pass(wal, 350), Next::Hurry);
        assert_eq!(tail.after_pass(wal, MIN_TAIL_FRAMES), Next::Finish);
    }

    #[test]
    fn passes_that_cannot_get_below_the_tail_limit_keep_hurrying() {
        // The writer copies at its WAL limit if the checkpointer never catches up.
        let mut tail = Tail::default();
        let wal = RESTART_FRAMES * 3;
        for _ in 0..5 {
            assert_eq!(tail.after_pass(wal, TAIL_FRAMES + 1), Next::Hurry);
        }
        // A tiny pass is always the end, even right after a big one.
        assert_eq!(tail.after_pass(wal, MIN_TAIL_FRAMES), Next::Finish);
    }

    #[test]
    fn the_checkpointer_flushes_the_database_file_through_its_own_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer =
            super::super::open::open_writer(&path, crate::config::Durability::Normal).unwrap();
        writer
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let conn = super::super::open::open_checkpointer(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .unwrap();
        sync_database(&conn).unwrap();
        // The connection and its locks are intact: the writer still writes and both read it.
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
