//! `TestApp`: an in-process onebox on a fresh data dir, with an admin and helpers per endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;

use onebox::app::{App, build_rocket};
use onebox::auth::{PasswordParams, Role};
use onebox::config::Settings;
use onebox::services::identity;
use rocket::http::{ContentType, Header, Method};
use rocket::local::asynchronous::Client;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "a-long-passphrase";

pub struct TestApp {
    pub client: Client,
    pub dir: TempDir,
    pub admin: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub json: Value,
    pub headers: HashMap<String, String>,
    pub content_type: Option<String>,
    /// The body as sent (`json` is it parsed, or null).
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Settings for a test: defaults on `dir`, with cheap password hashing.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::defaults(dir);
    s.password = PasswordParams::insecure_fast();
    s
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        // Logs go through libtest's capture: shown only for failing tests.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(dir.path());
        adjust(&mut settings);
        let app = App::start(settings).await.unwrap();
        identity::create_user(&app, None, ADMIN_EMAIL, PASSWORD, Role::Admin)
            .await
            .unwrap();
        let admin = identity::create_token_for_email(&app, ADMIN_EMAIL, "tests", None)
            .await
            .unwrap()
            .token;
        // Untracked: each `SiteClient` keeps its own cookies, like separate browsers.
        let client = Client::untracked(build_rocket(app)).await.unwrap();
        TestApp { client, dir, admin }
    }

    /// Any request. `body` is sent as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.call_with(method, path, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = body.map(|b| (ContentType::JSON, b.to_string()));
        self.send(method, path, token, body, headers).await
    }

    /// A request with an `application/x-www-form-urlencoded` body.
    pub async fn call_form(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        form: &str,
    ) -> Resp {
        let body = Some((ContentType::Form, form.to_string()));
        self.send(method, path, token, body, &[]).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(ContentType, String)>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .client
            .req(method, path.to_string())
            .remote("127.0.0.1:40000".parse::<SocketAddr>().unwrap());
        if let Some(t) = token {
            req = req.header(Header::new("Authorization", format!("Bearer {t}")));
        }
        for (k, v) in headers {
            req = req.header(Header::new(k.to_string(), v.to_string()));
        }
        if let Some((content_type, b)) = body {
            req = req.header(content_type).body(b);
        }
        let res = req.dispatch().await;
        let status = res.status().code;
        let content_type = res.content_type().map(|c| c.to_string());
        let headers = res
            .headers()
            .iter()
            .map(|h| {
                (
                    h.name().as_str().to_ascii_lowercase(),
                    h.value().to_string(),
                )
            })
            .collect();
        let body = res.into_bytes().await.unwrap_or_default();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Resp {
            status,
            json,
            headers,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::Get, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::Post, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::Patch, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::Delete, path, token, None).await
    }

    /// Create a collection as admin; panics unless 201.
    pub async fn collection(&self, spec: Value) -> Value {
        let r = self.post("/api/collections", Some(&self.admin), spec).await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        r.json
    }

    /// Create a record as admin; panics unless 201.
    pub async fn record(&self, collection: &str, body: Value) -> Value {
        let r = self
            .post(
                &format!("/api/collections/{collection}/records"),
                Some(&self.admin),
                body,
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        r.json
    }

    /// Create a plain user and return (id, token).
    pub async fn user(&self, email: &str) -> (String, String) {
        let r = self
            .post(
                "/api/users",
                Some(&self.admin),
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        let id = r.json["id"].as_str().unwrap().to_string();
        let login = self
            .post(
                "/api/auth/login",
                None,
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(login.status, 200, "{:?}", login.json);
        (id, login.json["token"].as_str().unwrap().to_string())
    }

    /// Start a job through the API as admin; panics unless 202. Returns the run id.
    pub async fn start_job(&self, job: &str) -> i64 {
        let r = self
            .call(
                Method::Post,
                &format!("/api/admin/jobs/{job}/run"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        r.json["run_id"].as_i64().unwrap()
    }

    /// Poll the run until it has ended (a bounded wait, in short steps); returns it.
    pub async fn wait_for_run(&self, id: i64) -> Value {
        for _ in 0..600 {
            let r = self
                .get(&format!("/api/admin/jobs/runs/{id}"), Some(&self.admin))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            if r.json["status"] != "running" {
                return r.json;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("run {id} did not end within 30 seconds");
    }

    /// How many job runs are recorded.
    pub fn run_count(&self) -> i64 {
        self.sqlite()
            .query_row("SELECT count(*) FROM _job_runs", [], |r| r.get(0))
            .unwrap()
    }

    /// Hold the job's lock file, as another process running it would, until dropped.
    pub fn hold_job_lock(&self, job: &str) -> std::fs::File {
        let dir = self.dir.path().join("tmp");
        std::fs::create_dir_all(&dir).unwrap();
        let file = std::fs::File::create(dir.join(format!("job-{job}.lock"))).unwrap();
        file.try_lock().unwrap();
        file
    }

    /// Open the database file directly (read-only) to check what is really stored.
    pub fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.dir.path().join("onebox.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }
}

/// `items[*].<field>` as strings.
pub fn column(list: &Value, field: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match &r[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Percent-encode a query value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
