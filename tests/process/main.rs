//! Process-level tests: the real `onebox` binary, started on port 0, killed with SIGKILL,
//! pointed at corrupt files, driven through its CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod backup;
mod backup_s3;

const BIN: &str = env!("CARGO_BIN_EXE_onebox");
const PASSWORD: &str = "a-long-passphrase";

fn onebox(data: &Path) -> Command {
    hermetic(Command::new(BIN), data)
}

/// `onebox` that may not write files larger than `kib` KiB (`ulimit -f`): a write past that
/// fails with EFBIG, as it would on a full disk (SIGXFSZ, which would kill it, is ignored).
fn onebox_with_file_limit(data: &Path, kib: u64) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
        .arg(BIN);
    hermetic(c, data)
}

fn hermetic(mut c: Command, data: &Path) -> Command {
    c.arg("--data-dir").arg(data);
    // Hermetic: no ONEBOX_* from the environment running the tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("ONEBOX_") {
            c.env_remove(key);
        }
    }
    c
}

/// Run a CLI command with `stdin`, returning (success, stdout, stderr).
fn run(data: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = onebox(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running server; learns its port from the line it prints on stdout.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        Server::start_as(onebox(data))
    }

    fn start_as(mut command: Command) -> Server {
        let mut child = command
            .args(["serve", "--port", "0"])
            .env("ONEBOX_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("the server printed nothing").unwrap();
        let base = line
            .strip_prefix("onebox listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, token: &str, body: Value) -> (u16, Value) {
    let mut res = agent
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    let status = res.status().as_u16();
    let json = res.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, json)
}

fn get(agent: &ureq::Agent, url: &str, token: &str) -> (u16, Value) {
    let mut res = agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = res.status().as_u16();
    let json = res.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, json)
}

/// `POST /api/collections` with `definition`, which must succeed.
fn create_collection(agent: &ureq::Agent, base: &str, token: &str, definition: Value) {
    let (s, body) = post(agent, &format!("{base}/api/collections"), token, definition);
    assert_eq!(s, 201, "{body}");
}

/// Create an admin and a token through the CLI; returns the token.
fn admin_token(data: &Path) -> String {
    let (ok, out, err) = run(
        data,
        &[
            "admin",
            "create",
            "--email",
            "admin@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "admin create failed: {out}{err}");
    let (ok, out, err) = run(
        data,
        &[
            "token",
            "create",
            "--email",
            "admin@example.com",
            "--name",
            "deploy",
            "--expires",
            "30d",
        ],
        "",
    );
    assert!(ok, "token create failed: {out}{err}");
    let token = out.trim().to_string();
    assert!(token.starts_with("obx_"), "{out}");
    token
}

#[test]
fn cli_creates_admin_user_and_token_that_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data);
    let (ok, out, _) = run(
        &data,
        &[
            "user",
            "create",
            "--email",
            "u@example.com",
            "--password-stdin",
            "--role",
            "user",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok && out.contains("u@example.com"), "{out}");
    // A weak password is refused with a readable message.
    let (ok, _, err) = run(
        &data,
        &[
            "user",
            "create",
            "--email",
            "w@example.com",
            "--password-stdin",
        ],
        "password\n",
    );
    assert!(!ok);
    assert!(err.contains("password"), "{err}");
    // Duplicate email.
    let (ok, _, err) = run(
        &data,
        &[
            "admin",
            "create",
            "--email",
            "ADMIN@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(!ok && err.contains("email"), "{err}");
    let server = Server::start(&data);
    let a = agent();
    let (status, me) = get(&a, &format!("{}/api/auth/me", server.base), &token);
    assert_eq!(status, 200);
    assert_eq!(me["email"], "admin@example.com");
    assert_eq!(me["role"], "admin");
    // The secret key was generated with mode 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn version_and_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(dir.path(), &["version"], "");
    assert!(ok && out.starts_with("onebox "), "{out}");
    let (ok, out, err) = run(dir.path(), &["config", "check"], "");
    assert!(ok, "{err}");
    assert!(out.contains("port = 8000"), "{out}");
    // An unknown key is one readable error and a non-zero exit.
    std::fs::write(dir.path().join("onebox.toml"), "prot = 9000\n").unwrap();
    let (ok, _, err) = run(dir.path(), &["config", "check"], "");
    assert!(!ok);
    assert!(err.contains("prot"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Environment overrides the file.
    std::fs::write(dir.path().join("onebox.toml"), "port = 9000\n").unwrap();
    let out = onebox(dir.path())
        .args(["config", "check"])
        .env("ONEBOX_PORT", "9100")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("port = 9100"));
}

#[test]
fn corrupt_database_refuses_to_start_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let db = dir.path().join("onebox.db");
    let mut garbage = b"SQLite format 3\0".to_vec();
    garbage.extend(std::iter::repeat_n(0xAB, 4096 * 3));
    std::fs::write(&db, &garbage).unwrap();
    let out = onebox(dir.path())
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a usable SQLite database"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
    // A truncated real database too.
    let dir2 = tempfile::tempdir().unwrap();
    let data = dir2.path().join("data");
    let token = admin_token(&data);
    {
        let server = Server::start(&data);
        let a = agent();
        let (s, _) = post(
            &a,
            &format!("{}/api/collections", server.base),
            &token,
            json!({ "name": "bulk", "fields": [ { "name": "t", "type": "text" } ] }),
        );
        assert_eq!(s, 201);
        for i in 0..200 {
            let (s, _) = post(
                &a,
                &format!("{}/api/collections/bulk/records", server.base),
                &token,
                json!({ "t": format!("{i}-{}", "x".repeat(500)) }),
            );
            assert_eq!(s, 201);
        }
    }
    let conn = rusqlite::Connection::open(data.join("onebox.db")).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(data.join("onebox.db")).unwrap();
    std::fs::write(data.join("onebox.db"), &bytes[..bytes.len() / 2]).unwrap();
    let _ = std::fs::remove_file(data.join("onebox.db-wal"));
    let _ = std::fs::remove_file(data.join("onebox.db-shm"));
    let out = onebox(&data)
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    assert_eq!(
        std::fs::read(data.join("onebox.db")).unwrap().len(),
        bytes.len() / 2
    );
}

#[test]
fn kill_9_during_creates_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data);
    let server = Server::start(&data);
    let base = server.base.clone();
    let a = agent();
    create_collection(
        &a,
        &base,
        &token,
        json!({
            "name": "events",
            "fields": [ { "name": "n", "type": "number", "integer": true }, { "name": "who", "type": "text", "indexed": true } ]
        }),
    );
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (acked, stop, base, token) = (acked.clone(), stop.clone(), base.clone(), token.clone());
        writers.push(std::thread::spawn(move || {
            let a = agent();
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && i < 100_000 {
                let res = a
                    .post(&format!("{base}/api/collections/events/records"))
                    .header("Authorization", &format!("Bearer {token}"))
                    .send_json(json!({ "n": i, "who": format!("w{w}") }));
                match res {
                    Ok(mut r) if r.status().as_u16() == 201 => {
                        let v: Value = r.body_mut().read_json().unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                    }
                    _ => break, // the server is gone
                }
                i += 1;
            }
        }));
    }
    // Let writes flow, then kill without warning.
    let t0 = Instant::now();
    while acked.lock().unwrap().len() < 300 && t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} writes before the kill",
        acked.len()
    );
    // Restart on the same data: every acknowledged record is there and the file is sound.
    let server = Server::start(&data);
    let conn = rusqlite::Connection::open(data.join("onebox.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn.prepare("SELECT 1 FROM events WHERE id = ?1").unwrap();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stmt.exists([id]).unwrap())
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records lost",
        missing.len()
    );
    let (status, list) = get(
        &agent(),
        &format!(
            "{}/api/collections/events/records?count=true&limit=1",
            server.base
        ),
        &token,
    );
    assert_eq!(status, 200);
    assert!(list["total"].as_u64().unwrap() >= acked.len() as u64);
}

#[test]
fn writes_that_cannot_reach_the_disk_fail_and_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = admin_token(&data);
    // Files may not grow past 4 MiB: the WAL and the database file soon reach that.
    let server = Server::start_as(onebox_with_file_limit(&data, 4096));
    let base = server.base.clone();
    let a = agent();
    create_collection(
        &a,
        &base,
        &token,
        json!({ "name": "docs", "fields": [ { "name": "body", "type": "text", "max": 100000 } ] }),
    );
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..600 {
        let text = format!("{i:06}-{}", "lorem ipsum dolor sit amet ".repeat(800));
        let (s, body) = post(
            &a,
            &format!("{base}/api/collections/docs/records"),
            &token,
            json!({ "body": text }),
        );
        if s == 201 {
            acked.push((body["id"].as_str().unwrap().to_string(), text.len()));
        } else {
            failure = Some((s, body));
            break;
        }
    }
    let (status, problem) = failure.expect("600 records of 21 KB fitted under a 4 MiB limit");
    assert!(status >= 500, "{status} {problem}");
    assert!(
        problem["title"].is_string(),
        "not a problem document: {problem}"
    );
    assert!(
        acked.len() >= 20,
        "only {} writes before the limit",
        acked.len()
    );
    server.kill9();

    // Without the limit: every acknowledged record is there, whole, and writes work again.
    let server = Server::start(&data);
    let conn = rusqlite::Connection::open(data.join("onebox.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare("SELECT length(body) FROM docs WHERE id = ?1")
        .unwrap();
    for (id, len) in &acked {
        let stored: i64 = stmt
            .query_row([id], |r| r.get(0))
            .unwrap_or_else(|e| panic!("acknowledged record {id} lost: {e}"));
        assert_eq!(stored, *len as i64, "record {id}");
    }
    let (s, body) = post(
        &a,
        &format!("{}/api/collections/docs/records", server.base),
        &token,
        json!({ "body": "after the limit" }),
    );
    assert_eq!(s, 201, "{body}");
}
