//! Backups and restore through the real binary: `onebox backup now` as a second process beside
//! a busy server, encrypted and tampered artifacts, the data-dir lock, point-in-time choice,
//! and a disk that fills up mid-backup.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use rusqlite::{Connection, OpenFlags};

use super::*;

/// A collection `items` with a unique text field and a number.
fn create_items(a: &ureq::Agent, base: &str, token: &str) {
    let (s, body) = post(
        a,
        &format!("{base}/api/collections"),
        token,
        json!({
            "name": "items",
            "fields": [
                { "name": "label", "type": "text", "unique": true },
                { "name": "n", "type": "number", "integer": true }
            ]
        }),
    );
    assert_eq!(s, 201, "{body}");
}

/// Create one item; returns its id.
fn add_item(a: &ureq::Agent, base: &str, token: &str, label: &str, n: i64) -> String {
    let (s, body) = post(
        a,
        &format!("{base}/api/collections/items/records"),
        token,
        json!({ "label": label, "n": n }),
    );
    assert_eq!(s, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Create `count` items labelled `<prefix>-<i>`; returns their ids.
fn add_items(a: &ureq::Agent, base: &str, token: &str, prefix: &str, count: i64) -> Vec<String> {
    (0..count)
        .map(|i| add_item(a, base, token, &format!("{prefix}-{i}"), i))
        .collect()
}

/// Open a database file read-only: looking never changes it (no checkpoint, no WAL removal).
fn open_ro(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn integrity(db: &Path) -> String {
    open_ro(db)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// The ids of every item in the database at `db`.
fn item_ids(db: &Path) -> HashSet<String> {
    let conn = open_ro(db);
    let mut stmt = conn.prepare("SELECT id FROM items").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The data dir's database and its WAL, byte for byte (to prove nothing touched them).
fn db_files(data: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(data.join("onebox.db")).unwrap(),
        std::fs::read(data.join("onebox.db-wal")).ok(),
    )
}

/// Names in `dir` (empty when it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Databases kept aside by restores (without their `-wal` and `-shm`).
fn kept_aside(data: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = names_in(data)
        .into_iter()
        .filter(|n| {
            n.starts_with("onebox.db.before-restore-")
                && !n.ends_with("-wal")
                && !n.ends_with("-shm")
        })
        .map(|n| data.join(n))
        .collect();
    found.sort();
    found
}

/// Scratch files left in `data/tmp` by a backup or restore (job lock files are expected).
fn scratch_left(data: &Path) -> Vec<String> {
    names_in(&data.join("tmp"))
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

/// The backup artifacts and manifests in a local target directory.
fn stored(backups: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = names_in(backups)
        .into_iter()
        .map(|n| backups.join(n))
        .collect();
    found.sort();
    found
}

/// Run `cmd` to its end, killing it (and failing the test) if it takes longer than `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained meanwhile, so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut pipe.unwrap(), &mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `backup now`, which must succeed; returns the new backup's id.
fn backup_now(data: &Path) -> String {
    let (ok, out, err) = run(data, &["backup", "now"], "");
    assert!(ok, "backup now failed: {out}{err}");
    let id = out.split(':').next().unwrap().trim().to_string();
    assert_eq!(id.len(), 21, "{out}");
    id
}

/// The last line of a CLI's stderr that onebox itself wrote (not a log line).
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("onebox: "))
        .unwrap_or_else(|| panic!("no error line in: {stderr}"))
}

/// `onebox.toml` with a `[backup]` section made of `lines`.
fn write_backup_config(data: &Path, lines: &[String]) {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(
        data.join("onebox.toml"),
        format!("[backup]\n{}\n", lines.join("\n")),
    )
    .unwrap();
}

/// One write as the stream saw it.
struct Ack {
    id: String,
    at: Instant,
}

/// Bulk records (and their size) that give the database of the streaming test some weight.
const BULK_RECORDS: usize = 10;
const BULK_BYTES: usize = 800_000;

/// The snapshot is one instant inside the `backup now` command, taken by a second process
/// while the server goes on writing: what was acknowledged before the command started must be
/// in it, later writes may or may not be, and no write may fail because of it.
#[test]
fn backup_taken_during_a_stream_of_writes_restores_every_record_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data);
    let server = Server::start(&data);
    let base = server.base.clone();
    let a = agent();
    create_items(&a, &base, &token);
    // Some bulk, so the copy takes a while and the stream runs beside it.
    let (s, body) = post(
        &a,
        &format!("{base}/api/collections"),
        &token,
        json!({ "name": "bulk", "fields": [ { "name": "t", "type": "text" } ] }),
    );
    assert_eq!(s, 201, "{body}");
    for i in 0..BULK_RECORDS {
        let text: String = (0..BULK_BYTES)
            .map(|j| char::from(b'a' + ((i * 7 + j * j) % 26) as u8))
            .collect();
        let (s, body) = post(
            &a,
            &format!("{base}/api/collections/bulk/records"),
            &token,
            json!({ "t": text }),
        );
        assert_eq!(s, 201, "{body}");
    }

    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acks, failures, stop) = (acks.clone(), failures.clone(), stop.clone());
        let (base, token) = (base.clone(), token.clone());
        std::thread::spawn(move || {
            let a = agent();
            let deadline = Instant::now() + Duration::from_secs(40);
            let mut i: i64 = 0;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && i < 200_000 {
                let res = a
                    .post(&format!("{base}/api/collections/items/records"))
                    .header("Authorization", &format!("Bearer {token}"))
                    .send_json(json!({ "label": format!("stream-{i}"), "n": i }));
                match res {
                    Ok(mut r) if r.status().is_success() => {
                        let v: Value = r.body_mut().read_json().unwrap();
                        let id = v["id"].as_str().unwrap().to_string();
                        acks.lock().unwrap().push(Ack {
                            id,
                            at: Instant::now(),
                        });
                    }
                    Ok(mut r) => failures.lock().unwrap().push(format!(
                        "write {i}: {} {}",
                        r.status(),
                        r.body_mut().read_to_string().unwrap_or_default()
                    )),
                    Err(e) => failures.lock().unwrap().push(format!("write {i}: {e}")),
                }
                i += 1;
            }
        })
    };
    let acked = || acks.lock().unwrap().len();
    let waiting = Instant::now();
    while acked() < 300 && waiting.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(acked() >= 300, "the stream made only {} writes", acked());

    let backup_started = Instant::now();
    let id = backup_now(&data);
    let backup_ended = Instant::now();
    // Keep writing a little after the backup, so the live database moves past it.
    let after = acked();
    let waiting = Instant::now();
    while acked() < after + 100 && waiting.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    let acks = std::mem::take(&mut *acks.lock().unwrap());
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "writes failed: {failures:?}");
    let before: Vec<&str> = acks
        .iter()
        .filter(|w| w.at < backup_started)
        .map(|w| w.id.as_str())
        .collect();
    let during = acks
        .iter()
        .filter(|w| w.at >= backup_started && w.at <= backup_ended)
        .count();
    let seconds = (backup_ended - backup_started).as_secs_f64();
    let warm_up = (backup_started - acks[0].at).as_secs_f64();
    eprintln!(
        "stream: {during} writes acknowledged during the {seconds:.2} s backup ({:.0} writes/s; \
         {:.0} writes/s before it); {} before it, {} in all",
        during as f64 / seconds,
        (before.len() - 1) as f64 / warm_up,
        before.len(),
        acks.len()
    );
    let final_count = item_ids(&data.join("onebox.db")).len();
    assert_eq!(final_count, acks.len());

    // Restore into a fresh data dir that reads the first one's backups.
    let fresh = dir.path().join("fresh");
    let backups = toml::Value::String(data.join("backups").display().to_string());
    write_backup_config(&fresh, &[format!("local_dir = {backups}")]);
    let (ok, out, err) = run(&fresh, &["restore", "latest"], "");
    assert!(ok, "restore failed: {out}{err}");
    assert!(out.contains(&format!("restored backup {id}")), "{out}");
    let restored_db = fresh.join("onebox.db");
    assert_eq!(integrity(&restored_db), "ok");
    let restored = item_ids(&restored_db);
    let missing: Vec<&&str> = before
        .iter()
        .filter(|id| !restored.contains(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} records acknowledged before the backup are not in it: {:?}",
        missing.len(),
        before.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        restored.len() >= before.len() && restored.len() <= final_count,
        "restored {} records; {} were acknowledged before the backup, {final_count} in the end",
        restored.len(),
        before.len()
    );

    // A server on the restored data dir serves them (the token is in the backup too).
    drop(server);
    let server = Server::start(&fresh);
    let a = agent();
    let (status, list) = get(
        &a,
        &format!(
            "{}/api/collections/items/records?count=true&limit=1",
            server.base
        ),
        &token,
    );
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"].as_u64().unwrap(), restored.len() as u64);
    for id in [
        before[0],
        before[before.len() / 2],
        before[before.len() - 1],
    ] {
        let (status, record) = get(
            &a,
            &format!("{}/api/collections/items/records/{id}", server.base),
            &token,
        );
        assert_eq!(status, 200, "{record}");
        assert_eq!(record["id"], id);
        assert!(
            record["label"].as_str().unwrap().starts_with("stream-"),
            "{record}"
        );
    }
}

#[test]
fn encrypted_backup_hides_its_data_and_restores_only_with_the_identity() {
    use age::secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = age::x25519::Identity::generate();
    let identity = dir.path().join("backup-key.txt");
    std::fs::write(&identity, key.to_string().expose_secret()).unwrap();
    let other = dir.path().join("other-key.txt");
    std::fs::write(
        &other,
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret(),
    )
    .unwrap();
    let recipient = toml::Value::String(key.to_public().to_string());
    write_backup_config(&data, &[format!("encrypt_to = [{recipient}]")]);
    let token = admin_token(&data);
    let server = Server::start(&data);
    let a = agent();
    create_items(&a, &server.base, &token);
    let secret_label = "plaintext-that-must-not-leak-7f3a9c";
    let secret_id = add_item(&a, &server.base, &token, secret_label, 1);
    let others = add_items(&a, &server.base, &token, "sealed", 20);
    let id = backup_now(&data);
    let later = add_item(&a, &server.base, &token, "after-the-backup", 2);
    drop(server);

    let files = stored(&data.join("backups"));
    let artifact = files
        .iter()
        .find(|p| !p.to_string_lossy().ends_with(".json"))
        .unwrap();
    assert!(
        artifact
            .to_string_lossy()
            .ends_with(&format!("{id}.db.zst.age")),
        "{files:?}"
    );
    let bytes = std::fs::read(artifact).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    let leaked = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!leaked(secret_label.as_bytes()));
    assert!(!leaked(secret_id.as_bytes()));
    assert!(!leaked(b"SQLite format 3"));
    assert!(zstd::decode_all(&bytes[..]).is_err());

    // Without the identity only the artifact's hash can be checked, and verify says so.
    let (ok, out, err) = run(&data, &["backup", "verify", &id], "");
    assert!(ok, "{out}{err}");
    assert!(out.contains("contents not checked"), "{out}");
    let identity_arg = identity.to_str().unwrap();
    let (ok, out, err) = run(
        &data,
        &["backup", "verify", &id, "--identity", identity_arg],
        "",
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("integrity_check pass"), "{out}");

    // Restores without the identity, or with someone else's, are refused and change nothing.
    let untouched = db_files(&data);
    let (ok, _, err) = run(&data, &["restore", "latest"], "");
    assert!(!ok);
    let line = error_line(&err);
    assert!(
        line.contains("encrypted") && line.contains("--identity"),
        "{line}"
    );
    let (ok, _, err) = run(
        &data,
        &["restore", "latest", "--identity", other.to_str().unwrap()],
        "",
    );
    assert!(!ok);
    assert!(error_line(&err).contains("decrypting"), "{err}");
    assert!(
        db_files(&data) == untouched,
        "a refused restore changed the database"
    );
    assert!(kept_aside(&data).is_empty());
    assert!(scratch_left(&data).is_empty(), "{:?}", scratch_left(&data));

    let (ok, out, err) = run(
        &data,
        &["restore", "latest", "--identity", identity_arg],
        "",
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("restored backup {id}")), "{out}");
    let db = data.join("onebox.db");
    assert_eq!(integrity(&db), "ok");
    let ids = item_ids(&db);
    assert!(ids.contains(&secret_id) && others.iter().all(|id| ids.contains(id)));
    assert!(!ids.contains(&later));
    let label: String = open_ro(&db)
        .query_row("SELECT label FROM items WHERE id = ?1", [&secret_id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(label, secret_label);
    let aside = kept_aside(&data);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(item_ids(&aside[0]).contains(&later));
}

#[test]
fn tampered_backup_fails_verify_and_restore_leaves_the_database_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data);
    let server = Server::start(&data);
    let a = agent();
    create_items(&a, &server.base, &token);
    let ids = add_items(&a, &server.base, &token, "kept", 30);
    let id = backup_now(&data);
    drop(server);

    let artifact = data.join("backups").join(format!("{id}.db.zst"));
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();

    let (ok, out, err) = run(&data, &["backup", "verify"], "");
    assert!(!ok, "{out}{err}");
    let failed = out.lines().find(|l| l.contains("FAILED")).unwrap_or("");
    assert!(
        failed.starts_with(&id) && failed.contains(&format!("{id}.db.zst")),
        "{out}"
    );
    assert!(error_line(&err).contains("failed verification"), "{err}");

    let untouched = db_files(&data);
    let (ok, out, err) = run(&data, &["restore", "latest"], "");
    assert!(!ok, "{out}{err}");
    let line = error_line(&err);
    assert!(
        line.contains(&id) && line.contains("manifest") && line.contains("sha256"),
        "{line}"
    );
    assert!(
        db_files(&data) == untouched,
        "a refused restore changed the database"
    );
    assert!(kept_aside(&data).is_empty(), "{:?}", kept_aside(&data));
    assert!(scratch_left(&data).is_empty(), "{:?}", scratch_left(&data));
    let now = item_ids(&data.join("onebox.db"));
    assert!(ids.iter().all(|id| now.contains(id)));
}

#[test]
fn restore_waits_for_the_server_to_stop_then_keeps_the_old_database_and_honours_at() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data);
    let server = Server::start(&data);
    let a = agent();
    create_items(&a, &server.base, &token);
    let first = add_items(&a, &server.base, &token, "first", 5);
    let older = backup_now(&data);
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let second = add_items(&a, &server.base, &token, "second", 5);
    let newer = backup_now(&data);
    let third = add_items(&a, &server.base, &token, "third", 5);

    // While the server holds the data dir, neither a restore nor a second server may start.
    let out = run_bounded(
        onebox(&data).args(["restore", "latest"]),
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        error_line(&err).contains("another onebox server is using the data directory"),
        "{err}"
    );
    let out = run_bounded(
        onebox(&data).args(["serve", "--port", "0"]),
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(error_line(&err).contains("another onebox server"), "{err}");
    assert!(kept_aside(&data).is_empty());
    let all: Vec<&String> = first.iter().chain(&second).chain(&third).collect();
    let live = item_ids(&data.join("onebox.db"));
    assert!(all.iter().all(|id| live.contains(*id)));
    // The server is still fine.
    let (status, _) = get(&a, &format!("{}/api/auth/me", server.base), &token);
    assert_eq!(status, 200);

    // Stopped hard: the newest records are only in the WAL, and must end up in the copy kept aside.
    server.kill9();
    let (ok, out, err) = run(&data, &["restore", "latest"], "");
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("restored backup {newer}")), "{out}");
    let db = data.join("onebox.db");
    assert_eq!(integrity(&db), "ok");
    let now = item_ids(&db);
    assert!(first.iter().chain(&second).all(|id| now.contains(id)));
    assert!(third.iter().all(|id| !now.contains(id)));
    let aside = kept_aside(&data);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(out.contains(&aside[0].display().to_string()), "{out}");
    assert_eq!(integrity(&aside[0]), "ok");
    let old = item_ids(&aside[0]);
    assert!(all.iter().all(|id| old.contains(*id)));

    // A time between the two backups picks the older one.
    let (ok, out, err) = run(&data, &["restore", "--at", &between], "");
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("restored backup {older}")), "{out}");
    let now = item_ids(&db);
    assert!(first.iter().all(|id| now.contains(id)));
    assert!(second.iter().all(|id| !now.contains(id)));
    let aside = kept_aside(&data);
    assert_eq!(aside.len(), 2, "{aside:?}");
    assert!(aside.iter().any(|p| {
        let ids = item_ids(p);
        second.iter().all(|id| ids.contains(id)) && third.iter().all(|id| !ids.contains(id))
    }));

    // And the restored data dir serves.
    let server = Server::start(&data);
    let (status, record) = get(
        &agent(),
        &format!("{}/api/collections/items/records/{}", server.base, first[0]),
        &token,
    );
    assert_eq!(status, 200, "{record}");
}

/// How to run a shell script as root of its own mount namespace, where it may mount a tmpfs
/// that nobody else sees: a user namespace (any user), or a plain one when running as root.
/// `None` when this machine allows neither (some containers forbid both).
fn mount_namespace() -> Option<Vec<&'static str>> {
    let probe = tempfile::tempdir().unwrap();
    let candidates: [&[&'static str]; 2] = [
        &["unshare", "--user", "--map-root-user", "--mount"],
        &["unshare", "--mount"],
    ];
    candidates.into_iter().map(<[_]>::to_vec).find(|prefix| {
        Command::new(prefix[0])
            .args(&prefix[1..])
            .args(["sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$1\"", "sh"])
            .arg(probe.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// What `backup now` did on a small file system, and the data dir as it was left.
struct FullDisk {
    /// The exit code of `backup now`.
    code: i32,
    stderr: String,
    /// A copy of the data dir taken right after the run, inside the namespace.
    data: PathBuf,
}

/// Copy the data dir `src` onto a tmpfs of `data_kb` (with the backups directory on its own
/// tmpfs of `backups_kb`, if given), run `backup now` there, and copy the result out to `out`.
fn backup_on_small_disk(
    namespace: &[&str],
    src: &Path,
    out: &Path,
    data_kb: u64,
    backups_kb: Option<u64>,
) -> FullDisk {
    const SCRIPT: &str = r#"set -eu
mount -t tmpfs -o "size=${DATA_KB}k" tmpfs "$MNT"
cp -a "$SRC/." "$MNT/"
if [ -n "$BACKUPS_KB" ]; then
  mkdir -p "$MNT/backups"
  mount -t tmpfs -o "size=${BACKUPS_KB}k" tmpfs "$MNT/backups"
fi
"$BIN" --data-dir "$MNT" backup now >"$OUT/stdout" 2>"$OUT/stderr" && echo 0 >"$OUT/status" || echo $? >"$OUT/status"
mkdir "$OUT/data"
cp -a "$MNT/." "$OUT/data/"
"#;
    let mnt = out.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut cmd = Command::new(namespace[0]);
    cmd.args(&namespace[1..]).args(["sh", "-c", SCRIPT]);
    for (key, _) in std::env::vars() {
        if key.starts_with("ONEBOX_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("BIN", BIN)
        .env("SRC", src)
        .env("MNT", &mnt)
        .env("OUT", out)
        .env("DATA_KB", data_kb.to_string())
        .env(
            "BACKUPS_KB",
            backups_kb.map(|k| k.to_string()).unwrap_or_default(),
        );
    let script = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(
        script.status.success(),
        "the namespace script failed: {}",
        String::from_utf8_lossy(&script.stderr)
    );
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    let code: i32 = String::from_utf8(read("status"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    FullDisk {
        code,
        stderr: String::from_utf8(read("stderr")).unwrap(),
        data: out.join("data"),
    }
}

/// Records of incompressible text (so neither the copy nor the artifact is small).
fn add_noise(a: &ureq::Agent, base: &str, token: &str, records: u64, bytes: usize) -> Vec<String> {
    let (s, body) = post(
        a,
        &format!("{base}/api/collections"),
        token,
        json!({ "name": "noise", "fields": [ { "name": "t", "type": "text" } ] }),
    );
    assert_eq!(s, 201, "{body}");
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..records)
        .map(|_| {
            let text: String = (0..bytes)
                .map(|_| {
                    // xorshift64: cheap bytes that zstd cannot squeeze.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(ALPHABET[(state % 64) as usize])
                })
                .collect();
            let (s, body) = post(
                a,
                &format!("{base}/api/collections/noise/records"),
                token,
                json!({ "t": text }),
            );
            assert_eq!(s, 201, "{body}");
            body["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Simulates a disk that fills up during a backup, for real: the data dir is copied onto a
/// tmpfs of a few MB inside a private mount namespace (`unshare`), and `onebox backup now`
/// runs there and meets ENOSPC — while copying the snapshot (the data dir's file system has no
/// room for a second copy of the database), while compressing it (room for the copy but not
/// for the artifact beside it), and while storing the artifact (the backups directory is a
/// smaller tmpfs of its own). Each time the run must fail with a
/// readable error, be recorded as failed, leave no scratch or partial files and list no
/// backup, and the live database must keep every record and pass `integrity_check`.
///
/// Needs `unshare` with mount namespaces (user namespaces, or root). Where neither is allowed,
/// the test is skipped with a banner — except under CI (`CI` set), where it fails instead.
#[test]
fn backup_that_fills_the_disk_fails_cleanly_and_leaves_the_database_whole() {
    let Some(namespace) = mount_namespace() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to run `unshare --mount` (with a user namespace, or as root)"
        );
        eprintln!(
            "\n*** SKIPPED backup_that_fills_the_disk_fails_cleanly_and_leaves_the_database_whole: \
             this machine allows no mount namespace (unshare --user --map-root-user --mount) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data);
    let ids = {
        let server = Server::start(&data);
        let a = agent();
        let ids = add_noise(&a, &server.base, &token, 50, 40_000);
        server.kill9();
        ids
    };
    // One self-contained file, so its size is what the tmpfs must hold.
    let conn = Connection::open(data.join("onebox.db")).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let db_kb = std::fs::metadata(data.join("onebox.db")).unwrap().len() / 1024;
    assert!(db_kb > 1500, "the database is only {db_kb} kB");

    let cases = [
        ("snapshot", db_kb + 512, None),
        ("pack", 2 * db_kb + 512, None),
        ("upload", 3 * db_kb + 1024, Some(db_kb / 4)),
    ];
    for (case, data_kb, backups_kb) in cases {
        let out = dir.path().join(case);
        let run = backup_on_small_disk(&namespace, &data, &out, data_kb, backups_kb);
        assert_ne!(run.code, 0, "{case}: the backup succeeded");
        let line = error_line(&run.stderr);
        assert!(
            line.contains("backup failed")
                && (line.contains("No space left") || line.contains("disk is full")),
            "{case}: {line}"
        );
        eprintln!("{case}: {line}");
        let left = run.data;
        assert!(
            scratch_left(&left).is_empty(),
            "{case}: {:?}",
            scratch_left(&left)
        );
        assert!(
            stored(&left.join("backups")).is_empty(),
            "{case}: {:?}",
            stored(&left.join("backups"))
        );
        let (ok, listed, err) = super::run(&left, &["backup", "list"], "");
        assert!(ok && listed.trim().is_empty(), "{case}: {listed}{err}");
        let db = left.join("onebox.db");
        assert_eq!(integrity(&db), "ok", "{case}");
        let conn = open_ro(&db);
        let (status, detail): (String, String) = conn
            .query_row(
                "SELECT status, detail FROM _job_runs WHERE job = 'backup' ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(status, "failed", "{case}: {detail}");
        let mut stmt = conn.prepare("SELECT id FROM noise").unwrap();
        let now: HashSet<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            ids.iter().all(|id| now.contains(id)),
            "{case}: records lost"
        );
    }
}
