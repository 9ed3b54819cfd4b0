//! Backups to S3 for real: moto's S3 server on a free loopback port stands in for the bucket.
//! The real binary backs up to it, lists, verifies and restores from it, fails cleanly (and
//! alerts) when it is down, and applies retention there.
//!
//! moto comes from `MOTO_SERVER` (set by `.ci/run`), else `moto_server` on PATH. Without it
//! these tests are skipped with a banner, except under `CI=true`, where they fail.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;

use super::*;

const BUCKET: &str = "onebox-backups";
const PREFIX: &str = "prod/backups";

/// moto's S3 server on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    endpoint: String,
}

/// Where moto is, or `None` (after a skip banner) when it is not installed. Under CI a missing
/// moto fails the test.
fn moto_binary() -> Option<PathBuf> {
    let found = match std::env::var_os("MOTO_SERVER").filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("moto_server"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "CI=true but moto_server is missing (MOTO_SERVER={:?}): \
             `pip install 'moto[server]'` (see .ci/run)",
            std::env::var_os("MOTO_SERVER")
        );
        eprintln!(
            "\n*** SKIPPING S3 BACKUP TESTS: moto_server not found (MOTO_SERVER or PATH). ***\n\
             *** pip install 'moto[server]' to run them.                               ***\n"
        );
    }
    found
}

impl Moto {
    /// Start moto and create the bucket; `None` when moto is not installed.
    fn start() -> Option<Moto> {
        let bin = moto_binary()?;
        // The port is free when picked but may be taken before moto binds it; moto then exits
        // at once and another port is tried.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            if moto.wait_until_up() {
                moto.create_bucket();
                return Some(moto);
            }
        }
        panic!("moto_server did not start on three free ports");
    }

    /// Poll until moto answers (true) or has exited (false); bounded.
    fn wait_until_up(&mut self) -> bool {
        let probe: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if probe.get(&self.endpoint).call().is_ok() {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {} within 30 s",
                self.endpoint
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// moto does not check request signatures by default: a plain PUT creates the bucket.
    fn create_bucket(&self) {
        let res = agent()
            .put(&format!("{}/{BUCKET}", self.endpoint))
            .send_empty()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "creating the bucket");
    }

    /// The bucket listing (ListObjectsV2 XML) of the keys under `prefix`.
    fn list_xml(&self, prefix: &str) -> String {
        let mut res = agent()
            .get(&format!(
                "{}/{BUCKET}?list-type=2&prefix={prefix}",
                self.endpoint
            ))
            .call()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let xml = res.body_mut().read_to_string().unwrap();
        assert!(
            xml.contains("<IsTruncated>false</IsTruncated>"),
            "listing truncated: {xml}"
        );
        xml
    }

    /// Every key in the bucket under `prefix`, sorted.
    fn keys(&self, prefix: &str) -> Vec<String> {
        let xml = self.list_xml(prefix);
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect();
        keys.sort();
        keys
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Write `<data>/onebox.toml`: backups to `local_dir` and to moto's bucket under `PREFIX`,
/// no scheduled backup, no retries. `jobs` and `backup` add lines to those tables.
fn write_config(data: &Path, endpoint: &str, local_dir: &str, jobs: &str, backup: &str) {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(
        data.join("onebox.toml"),
        format!(
            "[jobs]\nbackup = \"off\"\nretries = 0\n{jobs}\n\
             [backup]\nlocal_dir = \"{local_dir}\"\n{backup}\n\
             [backup.s3]\nbucket = \"{BUCKET}\"\nendpoint = \"{endpoint}\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\nprefix = \"{PREFIX}\"\n"
        ),
    )
    .unwrap();
}

/// Run a CLI command with no AWS_* variables from the environment (they would add to the
/// configured S3 settings); returns (success, stdout, stderr).
fn cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    let mut command = onebox(data);
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let out = command.args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `onebox backup now`, which must succeed; returns the new backup's id.
fn backup_now(data: &Path) -> String {
    let (ok, out, err) = cli(data, &["backup", "now"]);
    assert!(ok, "backup now failed: {out}{err}");
    assert!(out.contains("on local, s3"), "{out}");
    let id = out.split(':').next().unwrap().trim().to_string();
    assert!(is_backup_id(&id), "{out}");
    id
}

fn is_backup_id(s: &str) -> bool {
    s.len() == 21 && s.as_bytes()[8] == b'T' && s.as_bytes()[16] == b'-'
}

/// The backup ids `onebox backup list --from TARGET` shows, in its order (newest first).
fn listed(data: &Path, target: &str) -> Vec<String> {
    let (ok, out, err) = cli(data, &["backup", "list", "--from", target]);
    assert!(ok, "backup list --from {target} failed: {out}{err}");
    out.lines()
        .map(|line| {
            let mut cols = line.split_whitespace();
            let id = cols.next().unwrap().to_string();
            assert_eq!(cols.next(), Some(target), "{line}");
            id
        })
        .collect()
}

/// The objects one backup consists of, under `prefix`.
fn objects(prefix: &str, id: &str) -> [String; 2] {
    [format!("{prefix}{id}.db.zst"), format!("{prefix}{id}.json")]
}

/// A one-shot webhook receiver on a free loopback port: it reads one POST, answers 200 and
/// hands back the request line and the JSON body.
fn alert_receiver() -> (String, mpsc::Receiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (&stream)
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let _ = tx.send((request_line.trim_end().to_string(), body));
    });
    (url, rx)
}

#[test]
fn backup_to_s3_is_listed_verified_and_restores_into_a_fresh_data_dir() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_config(&data, &moto.endpoint, "backups", "", "");
    let token = admin_token(&data);
    let mut written = Vec::new();
    let id = {
        let server = Server::start(&data);
        let a = agent();
        let (s, body) = post(
            &a,
            &format!("{}/api/collections", server.base),
            &token,
            json!({ "name": "notes", "fields": [ { "name": "title", "type": "text" } ] }),
        );
        assert_eq!(s, 201, "{body}");
        for i in 0..25 {
            let title = format!("note {i:02}: ünïcode and \"quotes\"");
            let (s, body) = post(
                &a,
                &format!("{}/api/collections/notes/records", server.base),
                &token,
                json!({ "title": title }),
            );
            assert_eq!(s, 201, "{body}");
            written.push((body["id"].as_str().unwrap().to_string(), title));
        }
        // Taken while the server runs, as the scheduled job would.
        backup_now(&data)
    };
    written.sort();

    assert_eq!(listed(&data, "s3"), [id.as_str()]);
    // The bucket holds the artifact and the manifest under the prefix, and nothing else.
    assert_eq!(moto.keys(""), objects(&format!("{PREFIX}/"), &id));
    let (ok, out, err) = cli(&data, &["backup", "verify", "--from", "s3"]);
    assert!(ok, "verify failed: {out}{err}");
    assert!(out.starts_with(&id), "{out}");
    assert!(
        out.contains("s3") && out.contains("ok: sha256 and integrity_check pass"),
        "{out}"
    );

    // A new machine: same bucket, its own (empty) local backups dir.
    let fresh = dir.path().join("fresh");
    write_config(&fresh, &moto.endpoint, "other-backups", "", "");
    let (ok, out, err) = cli(&fresh, &["restore", "--from", "s3"]);
    assert!(ok, "restore failed: {out}{err}");
    assert!(
        out.contains(&format!("restored backup {id}")) && out.contains("from the s3 target"),
        "{out}"
    );
    assert_eq!(listed(&fresh, "local"), Vec::<String>::new());
    let server = Server::start(&fresh);
    let (status, list) = get(
        &agent(),
        &format!(
            "{}/api/collections/notes/records?count=true&limit=100",
            server.base
        ),
        &token,
    );
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 25);
    let mut served: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    served.sort();
    assert_eq!(served, written);
    drop(server);
    let conn = rusqlite::Connection::open(fresh.join("onebox.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn backup_fails_cleanly_when_s3_is_down_and_records_and_alerts_the_failure() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    let (hook, alerts) = alert_receiver();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_config(
        &data,
        &moto.endpoint,
        "backups",
        &format!("alert_webhook = \"{hook}\""),
        "",
    );
    let first = backup_now(&data);

    moto.stop();
    let started = Instant::now();
    let (ok, out, err) = cli(&data, &["backup", "now"]);
    let took = started.elapsed();
    assert!(!ok, "backup now succeeded with S3 down: {out}");
    let message = err
        .lines()
        .find(|l| l.starts_with("onebox: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    // Targets are used local first: the local upload succeeded and the S3 one failed.
    assert!(
        message.contains("to the s3 target") && !message.contains("local target"),
        "{message}"
    );
    // The root cause is in the message, once.
    assert_eq!(
        message.matches("Connection refused").count(),
        1,
        "{message}"
    );
    assert!(
        took < Duration::from_secs(20),
        "a down S3 server took {took:?} to fail"
    );
    let failed = &message[message.find("uploading ").unwrap() + "uploading ".len()..][..21];
    assert!(is_backup_id(failed) && failed != first, "{message}");

    let (request, alert) = alerts
        .recv_timeout(Duration::from_secs(10))
        .expect("no alert arrived");
    assert_eq!(request, "POST /hook HTTP/1.1");
    assert_eq!(alert["event"], "job_failed", "{alert}");
    assert_eq!(alert["job"], "backup", "{alert}");
    assert!(
        alert["message"].as_str().unwrap().contains("s3 target"),
        "{alert}"
    );

    let (ok, out, err) = cli(&data, &["jobs", "list"]);
    assert!(ok, "{err}");
    let newest: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(newest[1..4], ["backup", "cli", "failed"], "{out}");
    assert_eq!(newest[0], alert["run_id"].to_string(), "{out}");

    // No half backup: the local target lists only the first backup and holds only its files.
    assert_eq!(listed(&data, "local"), [first.as_str()]);
    let mut files: Vec<String> = std::fs::read_dir(data.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, objects("", &first), "{failed} left files behind");
    // Nor a scratch copy.
    let scratch: Vec<_> = std::fs::read_dir(data.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(scratch.is_empty(), "{scratch:?}");

    // With S3 down, listing every target still shows the local backups, with a warning…
    let (ok, out, err) = cli(&data, &["backup", "list"]);
    assert!(ok, "{err}");
    assert!(out.starts_with(&first), "{out}");
    assert!(
        err.contains("warning") && err.contains("s3 target"),
        "{err}"
    );
    // …restore refuses to guess which backup is the newest, and says how to choose…
    let (ok, _, err) = cli(&data, &["restore"]);
    assert!(!ok);
    assert!(err.contains("--from"), "{err}");
    // …and prune still runs.
    let (ok, out, err) = cli(&data, &["jobs", "run", "prune"]);
    assert!(ok, "prune failed with S3 down: {out}{err}");
}

#[test]
fn retention_on_s3_keeps_only_the_newest_two_backups() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_config(
        &data,
        &moto.endpoint,
        "backups",
        "",
        "[backup.retention]\nkeep_last = 2\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n",
    );
    // Taken in quick succession: often within one second, which ids alone cannot order.
    let ids: Vec<String> = (0..3).map(|_| backup_now(&data)).collect();

    let newest_two = vec![ids[2].clone(), ids[1].clone()];
    assert_eq!(listed(&data, "s3"), newest_two);
    let mut expected: Vec<String> = newest_two
        .iter()
        .flat_map(|id| objects(&format!("{PREFIX}/"), id))
        .collect();
    expected.sort();
    assert_eq!(moto.keys(""), expected);
    assert_eq!(listed(&data, "local"), newest_two);
}

#[test]
fn a_backup_larger_than_one_upload_part_goes_up_in_parts_and_verifies() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_config(&data, &moto.endpoint, "backups", "", "");
    let (ok, _, err) = cli(&data, &["jobs", "list"]);
    assert!(ok, "{err}");
    // 10 MiB that zstd cannot shrink: more than one 8 MiB part.
    let conn = rusqlite::Connection::open(data.join("onebox.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE filler (b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
         INSERT INTO filler SELECT randomblob(1048576) FROM n;",
    )
    .unwrap();
    drop(conn);
    let id = backup_now(&data);

    let (ok, out, err) = cli(&data, &["backup", "verify", "--from", "s3"]);
    assert!(ok, "verify failed: {out}{err}");
    assert!(out.contains("ok: sha256 and integrity_check pass"), "{out}");
    // S3 gives a multipart object an ETag ending in `-<parts>`.
    let xml = moto.list_xml(&format!("{PREFIX}/{id}.db.zst"));
    assert!(xml.contains("-2\"</ETag>"), "{xml}");
}
