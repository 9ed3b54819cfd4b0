//! A thin VFS over SQLite's own (`unix`) that writes the WAL frames of a commit to the file
//! in one system call instead of two per frame (a 24-byte header, then the page). Only the
//! writer connection opens the database through it; everything but WAL writes passes straight
//! through to the `unix` VFS's own file object, which this one wraps.
//!
//! Why it is safe to hold frames back, and for how long:
//! - Other connections read a frame only once the WAL index's header lists it, and SQLite
//!   publishes that header after the commit frame's write returns. The commit frame is the one
//!   whose header carries the database size (`nTruncate` ≠ 0); its page is the last write of a
//!   commit, and that write returns only after everything held back is in the file, with the
//!   file's error (a full disk, say) as its result: the commit then fails like any other.
//! - The writer's own reads of the WAL (a page spilled earlier in a big transaction, the WAL
//!   header at recovery), and every size, truncate, sync, file-control, fetch and close call,
//!   first write what is held back. A write that does not continue the held-back bytes (the
//!   WAL starting over at offset 0, a frame rewritten in place) writes them first too.
//! - A write that follows a read goes straight out: at the end of a transaction that wrote
//!   some pages twice, SQLite reads each frame back and rewrites its header's checksum, the
//!   commit frame's last, with no page after it.
//! - With `durability = "full"` SQLite syncs the WAL at each commit (`xSync`), which also writes
//!   what is held back first.
//! - A crash loses only frames of a commit that had not returned, which SQLite's WAL recovery
//!   discards by their checksums in any case.
//!
//! Measured: bench/FINDINGS.md, "What makes it fast, with the figures" (scenarios (e0), (e)).

#![allow(unsafe_code)]

use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's registered name, for `Connection::open_with_flags_and_vfs`.
pub(crate) const NAME: &CStr = c"onebox-walbuf";

/// Size of a WAL frame header; the database size after a commit is at bytes 4..8.
const FRAME_HEADER: usize = 24;

/// Held-back bytes past which they are written anyway (a large transaction's frames).
const MAX_HELD: usize = 1 << 20;

/// Largest single write: the unix VFS writes at most 128 KiB − 1 bytes per call (it masks the
/// length with `0x1ffff`) and reports a longer write as a full disk. 31 pages of 4 KiB.
const PIECE: usize = 31 * 4096;

#[cfg(test)]
thread_local! {
    /// Writes that reached a WAL file from this thread (tests count them).
    static WAL_WRITES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Our file object: what SQLite allocates `szOsFile` bytes for. The `unix` VFS's own file
/// object follows it in the same allocation.
#[repr(C)]
struct File {
    /// Must come first: SQLite sees a `*mut sqlite3_file`.
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    /// Frames held back; null for files that are not a WAL.
    held: *mut Held,
}

struct Held {
    bytes: Vec<u8>,
    /// File offset of `bytes[0]`.
    start: i64,
    /// The last write was the header of a commit frame: write everything after its page.
    commit_page_next: bool,
    /// The last call was a read: the next write is written through, not held back.
    after_read: bool,
}

/// Register the VFS (once per process); later calls return the first call's result.
pub(crate) fn register() -> rusqlite::Result<()> {
    static RC: OnceLock<c_int> = OnceLock::new();
    // SAFETY: `register_once` runs once; see there.
    let rc = *RC.get_or_init(|| unsafe { register_once() });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("cannot register the onebox-walbuf VFS".into()),
        ))
    }
}

/// SAFETY: calls SQLite's documented VFS registration API. The registered struct is leaked,
/// as SQLite requires it to outlive every connection.
unsafe fn register_once() -> c_int {
    // SAFETY: sqlite3_initialize is safe to call any number of times.
    let rc = unsafe { ffi::sqlite3_initialize() };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    // SAFETY: the default VFS is registered by sqlite3_initialize and lives forever.
    let real = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
    let Some(base) = (unsafe { real.as_ref() }) else {
        return ffi::SQLITE_ERROR;
    };
    let Ok(size) = c_int::try_from(size_of::<File>() + base.szOsFile as usize) else {
        return ffi::SQLITE_ERROR;
    };
    // Every other method is the real VFS's own: the unix VFS uses its `sqlite3_vfs` argument
    // only in xOpen (its `pAppData`), which goes through `open` below with the real one.
    let vfs = ffi::sqlite3_vfs {
        szOsFile: size,
        pNext: ptr::null_mut(),
        zName: NAME.as_ptr(),
        pAppData: real.cast(),
        xOpen: Some(open),
        ..*base
    };
    // SAFETY: the struct is leaked, so it outlives every connection; not the default VFS.
    unsafe { ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0) }
}

/// The file object SQLite handed us, and the real VFS's file object inside it.
///
/// SAFETY: `f` must be a file opened by `open` (SQLite only calls our methods on those).
unsafe fn parts<'a>(f: *mut ffi::sqlite3_file) -> (&'a mut File, *mut ffi::sqlite3_file) {
    // SAFETY: per the contract, `f` points to a live `File`.
    let file = unsafe { &mut *f.cast::<File>() };
    let inner = file.inner;
    (file, inner)
}

/// The real file's methods.
///
/// SAFETY: `inner` must be an open real file (its `pMethods` is non-null once `open` set ours).
unsafe fn methods<'a>(inner: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    // SAFETY: per the contract.
    unsafe { &*(*inner).pMethods }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes our registered VFS and `szOsFile` bytes at `f`, which hold a
    // `File` followed by the real VFS's file object (`File` is 8-byte aligned and sized).
    unsafe {
        let real = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
        let inner = f
            .cast::<u8>()
            .add(size_of::<File>())
            .cast::<ffi::sqlite3_file>();
        (*inner).pMethods = ptr::null();
        ptr::write(
            f.cast::<File>(),
            File {
                base: ffi::sqlite3_file {
                    pMethods: ptr::null(),
                },
                inner,
                held: ptr::null_mut(),
            },
        );
        let Some(real_open) = (*real).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let rc = real_open(real, name, inner, flags, out_flags);
        // SQLite calls xClose whenever pMethods is set, even after a failed open.
        if !(*inner).pMethods.is_null() {
            (*f).pMethods = &METHODS;
            if rc == ffi::SQLITE_OK && flags & ffi::SQLITE_OPEN_WAL != 0 {
                (*f.cast::<File>()).held = Box::into_raw(Box::new(Held {
                    bytes: Vec::new(),
                    start: 0,
                    commit_page_next: false,
                    after_read: false,
                }));
            }
        }
        rc
    }
}

/// Write what is held back, if anything, in pieces of at most `PIECE` bytes.
///
/// SAFETY: `file` must be an open `File`.
unsafe fn write_held(file: &mut File) -> c_int {
    // SAFETY: `held` is null or owned by this open file.
    let Some(held) = (unsafe { file.held.as_mut() }) else {
        return ffi::SQLITE_OK;
    };
    // SAFETY: the real file is open.
    let Some(write) = (unsafe { methods(file.inner) }).xWrite else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut rc = ffi::SQLITE_OK;
    let mut offset = held.start;
    for piece in held.bytes.chunks(PIECE) {
        #[cfg(test)]
        WAL_WRITES.set(WAL_WRITES.get() + 1);
        // SAFETY: `piece` is valid for its length, which fits a c_int (at most `PIECE`).
        rc = unsafe {
            write(
                file.inner,
                piece.as_ptr().cast(),
                piece.len() as c_int,
                offset,
            )
        };
        if rc != ffi::SQLITE_OK {
            break;
        }
        offset += piece.len() as i64;
    }
    held.bytes.clear();
    rc
}

unsafe extern "C" fn close(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file it opened through `open` once.
    unsafe {
        let (file, inner) = parts(f);
        let written = write_held(file);
        if !file.held.is_null() {
            drop(Box::from_raw(file.held));
            file.held = ptr::null_mut();
        }
        let closed = match methods(inner).xClose {
            Some(c) => c(inner),
            None => ffi::SQLITE_OK,
        };
        if written != ffi::SQLITE_OK {
            written
        } else {
            closed
        }
    }
}

unsafe extern "C" fn write(
    f: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite passes an open file and `amount` readable bytes at `data`.
    unsafe {
        let (file, inner) = parts(f);
        let through = |rc: c_int| {
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match methods(inner).xWrite {
                Some(w) => w(inner, data, amount, offset),
                None => ffi::SQLITE_IOERR_WRITE,
            }
        };
        let Some(held) = file.held.as_mut() else {
            return through(ffi::SQLITE_OK);
        };
        let len = usize::try_from(amount).unwrap_or(0);
        if len == 0 || data.is_null() {
            return ffi::SQLITE_OK;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
        let commit_header = len == FRAME_HEADER && bytes[4..8] != [0, 0, 0, 0];
        // A write that follows a read rewrites frames already written, at the commit (their
        // checksums, after a big transaction wrote some pages twice): no page follows the
        // commit frame's header then, so nothing would write it before the commit returns.
        if std::mem::take(&mut held.after_read) {
            held.commit_page_next = commit_header;
            #[cfg(test)]
            WAL_WRITES.set(WAL_WRITES.get() + 1);
            return through(write_held(file));
        }
        let continues = offset == held.start + held.bytes.len() as i64;
        if !held.bytes.is_empty() && (!continues || held.bytes.len() + len > MAX_HELD) {
            let rc = write_held(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let Some(held) = file.held.as_mut() else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        if held.bytes.is_empty() {
            held.start = offset;
        }
        held.bytes.extend_from_slice(bytes);
        let commit_page = std::mem::replace(&mut held.commit_page_next, commit_header);
        if commit_page {
            write_held(file)
        } else {
            ffi::SQLITE_OK
        }
    }
}

/// Forward a method after writing what is held back.
macro_rules! after_held {
    ($f:ident, $method:ident, $($arg:expr),*) => {{
        // SAFETY: SQLite calls our methods only on files opened through `open`.
        unsafe {
            let (file, inner) = parts($f);
            let rc = write_held(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match methods(inner).$method {
                Some(m) => m(inner, $($arg),*),
                None => ffi::SQLITE_IOERR,
            }
        }
    }};
}

/// Forward a method as it is.
macro_rules! forward {
    ($f:ident, $method:ident, $missing:expr, $($arg:expr),*) => {{
        // SAFETY: SQLite calls our methods only on files opened through `open`.
        unsafe {
            let (_, inner) = parts($f);
            match methods(inner).$method {
                Some(m) => m(inner, $($arg),*),
                None => $missing,
            }
        }
    }};
}

unsafe extern "C" fn read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: i64,
) -> c_int {
    // SAFETY: SQLite calls our methods only on files opened through `open`.
    if let Some(held) = unsafe { (*f.cast::<File>()).held.as_mut() } {
        held.after_read = true;
    }
    after_held!(f, xRead, buf, n, off)
}

unsafe extern "C" fn truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    after_held!(f, xTruncate, size)
}

unsafe extern "C" fn sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    after_held!(f, xSync, flags)
}

unsafe extern "C" fn file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    after_held!(f, xFileSize, size)
}

unsafe extern "C" fn file_control(f: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    after_held!(f, xFileControl, op, arg)
}

unsafe extern "C" fn fetch(
    f: *mut ffi::sqlite3_file,
    off: i64,
    n: c_int,
    out: *mut *mut c_void,
) -> c_int {
    after_held!(f, xFetch, off, n, out)
}

unsafe extern "C" fn lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(f, xLock, ffi::SQLITE_IOERR_LOCK, level)
}

unsafe extern "C" fn unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(f, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level)
}

unsafe extern "C" fn check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    forward!(
        f,
        xCheckReservedLock,
        ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
        out
    )
}

unsafe extern "C" fn sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    forward!(f, xSectorSize, 4096,)
}

unsafe extern "C" fn device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    forward!(f, xDeviceCharacteristics, 0,)
}

unsafe extern "C" fn shm_map(
    f: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(
        f,
        xShmMap,
        ffi::SQLITE_IOERR_SHMMAP,
        page,
        size,
        extend,
        out
    )
}

unsafe extern "C" fn shm_lock(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    forward!(f, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags)
}

unsafe extern "C" fn shm_barrier(f: *mut ffi::sqlite3_file) {
    forward!(f, xShmBarrier, (),)
}

unsafe extern "C" fn shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    forward!(f, xShmUnmap, ffi::SQLITE_OK, delete)
}

unsafe extern "C" fn unfetch(f: *mut ffi::sqlite3_file, off: i64, p: *mut c_void) -> c_int {
    forward!(f, xUnfetch, ffi::SQLITE_OK, off, p)
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

#[cfg(test)]
#[path = "walbuf_tests.rs"]
mod tests;
