//! Opening the database: refusing files that are not healthy SQLite databases (before anything
//! writes to them), the PRAGMAs every connection gets, and the embedded migrations.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

use crate::config::Durability;

/// Why the database cannot be opened; the message is meant for an admin.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path} is not a usable SQLite database: {reason}; the file was left untouched")]
    Corrupt { path: String, reason: String },
    #[error("cannot open {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot upgrade the database schema: {0}")]
    Migration(String),
}

/// The system tables' migrations, applied in order at open. `true` marks one that edits the
/// stored schema text (`writable_schema`): as SQLite's documented procedure asks, its hook then
/// bumps the schema version, so every connection re-reads the schema.
const MIGRATIONS: [(&str, bool); 5] = [
    (include_str!("migrations/0001_system_tables.sql"), false),
    (include_str!("migrations/0002_sessions_and_totp.sql"), false),
    (include_str!("migrations/0003_totp_pending.sql"), false),
    (include_str!("migrations/0004_job_runs.sql"), false),
    (
        include_str!("migrations/0005_changes_check_without_in.sql"),
        true,
    ),
];

/// The embedded migrations for the system tables, applied in order at open.
fn migrations() -> Migrations<'static> {
    Migrations::new(
        MIGRATIONS
            .iter()
            .map(|&(sql, edits_schema_text)| {
                if edits_schema_text {
                    M::up_with_hook(sql, bump_schema_version)
                } else {
                    M::up(sql)
                }
            })
            .collect(),
    )
}

fn bump_schema_version(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    let version: i64 = tx.pragma_query_value(None, "schema_version", |r| r.get(0))?;
    tx.pragma_update(None, "schema_version", version + 1)?;
    Ok(())
}

/// The schema version this build migrates to (`PRAGMA user_version` after migrating).
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Check that an existing file looks like a complete SQLite database, without writing to it.
///
/// Reads the 100-byte header: the magic string, the page size and the page count, and
/// compares the page count with the file's length, which catches truncated copies that SQLite
/// itself would only notice when a missing page is read.
pub fn check_existing(path: &Path) -> Result<(), OpenError> {
    let shown = path.display().to_string();
    let corrupt = |reason: &str| OpenError::Corrupt {
        path: shown.clone(),
        reason: reason.to_string(),
    };
    let mut file = File::open(path).map_err(|source| OpenError::Io {
        path: shown.clone(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| OpenError::Io {
            path: shown.clone(),
            source,
        })?
        .len();
    if len == 0 {
        // SQLite treats an empty file as a new database; nothing to protect.
        return Ok(());
    }
    let mut header = [0u8; 100];
    if len < 100 || file.read_exact(&mut header).is_err() {
        return Err(corrupt("the file is shorter than a database header"));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(corrupt("the file does not start with the SQLite header"));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        _ => return Err(corrupt("the header holds an invalid page size")),
    };
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    let change_counter = &header[24..28];
    let valid_for = &header[92..96];
    // The in-header size is only meaningful when it was written by the same change, and only
    // binding when no write-ahead log holds pages not yet copied into the file (a partial
    // checkpoint may have copied page 1 before the pages past the file's end).
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_has_frames = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 32);
    if change_counter == valid_for && !wal_has_frames && pages * page_size > len {
        return Err(corrupt(&format!(
            "the file is truncated ({len} bytes, the header says {})",
            pages * page_size
        )));
    }
    // Ask SQLite too, read-only: this reads the schema and fails on garbage pages there.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(&e.to_string()))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| corrupt(&e.to_string()))?;
    Ok(())
}

/// Open the writer connection, set WAL mode, and run the migrations.
pub fn open_writer(path: &Path, durability: Durability) -> Result<Connection, OpenError> {
    let shown = path.display().to_string();
    if path.exists() {
        check_existing(path)?;
    }
    let sqlite = |source| OpenError::Sqlite {
        path: shown.clone(),
        source,
    };
    // Through the WAL-write shim (see `db::walbuf`): only this connection writes WAL frames.
    super::walbuf::register().map_err(sqlite)?;
    let mut conn =
        Connection::open_with_flags_and_vfs(path, OpenFlags::default(), super::walbuf::NAME)
            .map_err(sqlite)?;
    // WAL: readers never block the writer and the writer never blocks readers.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite)?;
    apply_common_pragmas(&conn).map_err(sqlite)?;
    // NORMAL in WAL mode is durable across process crashes; FULL also across power loss.
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(sqlite)?;
    // Checkpoints run on the checkpointer thread (see `db::checkpointer`), never inside a
    // commit: an automatic checkpoint made the commit that crossed the threshold, and every
    // request queued behind it, wait.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(sqlite)?;
    // After a checkpoint resets the WAL, truncate the file back to 64 MiB at most, so a burst
    // of writes does not leave a huge WAL file behind.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(sqlite)?;
    // 4 MiB, not more: a commit after a page split scans the writer's whole page cache (a
    // split renumbers pages through the lock-byte page's number, so SQLite's truncate at the
    // end of the transaction walks every hash slot), and that scan grows with the cache.
    // Creates at 1M rows: 13,000-13,400/s with 4 MiB, 11,300-11,500 with 8, 9,500-10,400 with
    // 32, though the larger caches read fewer pages. Each connection's page cache is its own
    // and stays within its `cache_size`: SQLite is built without
    // `SQLITE_ENABLE_MEMORY_MANAGEMENT` (see `.cargo/config.toml`), which would pool them all
    // behind one mutex and let a busy reader grow into the others' unused budgets.
    conn.pragma_update(None, "cache_size", -4_000)
        .map_err(sqlite)?;
    // Every write job runs in a savepoint, which copies each page it first changes into the
    // savepoint journal. With temp storage in memory SQLite keeps that journal in 1 KiB
    // pieces, each allocated (~12% of the writer's instructions per create, callgrind); with
    // temp files it keeps it in one piece of `SQLITE_STMTJRNL_SPILL` (120 KiB, see
    // `.cargo/config.toml`) and spills only a bigger one to a file. Index builds here sort
    // through temp files too, instead of wholly in memory. Readers keep temp storage in
    // memory.
    conn.pragma_update(None, "temp_store", "FILE")
        .map_err(sqlite)?;
    migrations()
        .to_latest(&mut conn)
        .map_err(|e| OpenError::Migration(e.to_string()))?;
    Ok(conn)
}

/// A second read-write connection, for the checkpointer thread and the start-up optimize.
pub fn open_checkpointer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    apply_common_pragmas(&conn)?;
    // This connection never writes pages itself; it must not checkpoint on close either while
    // the writer is busy, which the busy timeout already bounds.
    // A checkpoint copies frames without the page cache, and the start-up `PRAGMA optimize`
    // (which uses this connection too) reads indexes once: 64 KiB, not the 2 MiB default.
    conn.pragma_update(None, "cache_size", -64)?;
    // The start-up `PRAGMA optimize` sorts in memory, as it always has.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// The start-up `PRAGMA optimize`: check every table (0x10000), and ANALYZE those without
/// statistics or whose size changed tenfold (0x02) from a sample of about 2,000 rows per index
/// (0x10). ANALYZE holds the write lock while it reads, so writes wait for it: read whole
/// (0x10002, without the sample), a freshly seeded 1M-row collection took 2.0 s, and a big
/// enough database would keep writes waiting past the busy timeout; sampled, 0.15–0.19 s.
pub const STARTUP_OPTIMIZE: &str = "PRAGMA optimize = 0x10012;";

/// How long a connection waits for a lock before answering "busy".
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// PRAGMAs every connection (writer and readers) gets.
pub fn apply_common_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    // Enforce relation integrity (restrict / cascade / set null) in SQLite itself.
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Wait for a lock instead of failing at once: another process (the CLI, a backup) may
    // hold it briefly.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // No memory map (`mmap_size` stays at SQLite's default, 0): pages are read with `pread`
    // through the OS page cache. A map saved each point read about 6 µs of the readers'
    // system time at 1M rows, and each create 3-5 µs of the writer's, but every mapped page
    // a connection touches counts in the process's RSS, once per connection that maps it:
    // 1.6 GB after 5 s of point reads on an 800 MB database, against 34 MB without. And an
    // I/O error on a mapped page kills the process (SIGBUS) instead of failing one request.
    Ok(())
}

/// PRAGMAs for a read-only pool connection.
pub fn apply_reader_pragmas(conn: &mut Connection) -> rusqlite::Result<()> {
    apply_common_pragmas(conn)?;
    // Belt and braces on top of the read-only open flag: no statement may write.
    conn.pragma_update(None, "query_only", "ON")?;
    // Sorts and temporary indexes for ORDER BY stay in memory (the writer uses files, see
    // `open_writer`).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 4 MiB of page cache per reader keeps idle memory small; the OS page cache does the rest.
    conn.pragma_update(None, "cache_size", -4_000)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory budget, the statement cache and the writer's speed rely on how the bundled
    /// SQLite is built (`LIBSQLITE3_FLAGS` in `.cargo/config.toml`): per-connection page
    /// caches, no STAT4 samples that make cached list statements re-plan (see
    /// `query::tests_plans`), no allocation statistics behind a global mutex, and savepoint
    /// journals kept in memory up to 120 KiB.
    #[test]
    fn sqlite_is_built_with_the_options_onebox_relies_on() {
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        for unwanted in ["ENABLE_MEMORY_MANAGEMENT", "ENABLE_STAT4"] {
            assert!(!options.iter().any(|o| o == unwanted), "{options:?}");
        }
        for wanted in ["DEFAULT_MEMSTATUS=0", "STMTJRNL_SPILL=122880"] {
            assert!(options.iter().any(|o| o == wanted), "{options:?}");
        }
    }

    #[test]
    fn the_change_log_check_is_rewritten_without_a_temporary_table_and_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("onebox.db");
        // A database as the previous release left it: migrated to 0004, with rows.
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            Migrations::new(MIGRATIONS[..4].iter().map(|(sql, _)| M::up(sql)).collect())
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO _changes (time, collection, op) VALUES ('t', 'a', 'insert'), ('t', 'a', 'schema');",
            )
            .unwrap();
        }
        let conn = open_writer(&path, Durability::Normal).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = '_changes'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            sql.contains(
                "CHECK (op = 'insert' OR op = 'update' OR op = 'delete' OR op = 'schema')"
            ),
            "{sql}"
        );
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        // The rows are intact, every op is still accepted and any other refused.
        for op in ["insert", "update", "delete", "schema"] {
            conn.execute(
                "INSERT INTO _changes (time, collection, op) VALUES ('t', 'a', ?1)",
                [op],
            )
            .unwrap();
        }
        let err = conn
            .execute(
                "INSERT INTO _changes (time, collection, op) VALUES ('t', 'a', 'upsert')",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM _changes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 6);
        // No temporary b-tree is opened to check a change-log row any more.
        let ops: Vec<String> = conn
            .prepare(
                "EXPLAIN INSERT INTO _changes (time, collection, op) VALUES ('t', 'a', 'insert')",
            )
            .unwrap()
            .query_map([], |r| r.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!ops.iter().any(|o| o == "OpenEphemeral"), "{ops:?}");
        // Another connection (a reader) sees the new text too.
        let other = Connection::open(&path).unwrap();
        let seen: String = other
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = '_changes'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(seen, sql);
    }

    #[test]
    fn garbage_file_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("onebox.db");
        let garbage = vec![0x42u8; 8192];
        std::fs::write(&path, &garbage).unwrap();
        let err = open_writer(&path, Durability::Normal).unwrap_err();
        assert!(err.to_string().contains("not a usable SQLite database"));
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }

    #[test]
    fn truncated_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("onebox.db");
        {
            let conn = open_writer(&path, Durability::Normal).unwrap();
            conn.execute_batch(
                "CREATE TABLE t (x TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000) INSERT INTO t SELECT hex(randomblob(100)) FROM n; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = check_existing(&path).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn fresh_database_gets_wal_and_system_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("onebox.db");
        let conn = open_writer(&path, Durability::Normal).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('_users','_changes','_collections')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 3);
        drop(conn);
        // Reopening an existing healthy database works and keeps it.
        open_writer(&path, Durability::Full).unwrap();
    }
}
