//! The browser harness: the real `onebox` binary on a fresh data dir and port 0, chromedriver
//! on a free port, and headless Chromium driven through WebDriver (fantoccini). Chromium's
//! console (errors, CSP violations) is read through chromedriver's log endpoint after every
//! page; screenshots go to `target/screenshots/`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Kills its process when dropped, so a failing test leaves nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Harness {
    pub client: Client,
    pub base: String,
    /// Lines the server printed on stdout (the listening line, the setup link).
    pub stdout: Vec<String>,
    /// The server's data dir, deleted when the harness is dropped.
    _data: tempfile::TempDir,
    shots: PathBuf,
    _server: Guard,
    _driver: Guard,
}

/// Whether the browser tests can run here. In CI they must: a missing Chromium fails the
/// run. Elsewhere they are skipped with a loud message.
pub fn available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing: \
             `apt-get install -y chromium chromium-driver` (see .ci/run)"
        );
        eprintln!(
            "\n*** SKIPPING BROWSER TESTS: {CHROMIUM} / {CHROMEDRIVER} not installed. ***\n\
             *** apt-get install -y chromium chromium-driver to run them.            ***\n"
        );
    }
    present
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver's (pre-W3C) log endpoint: the browser console since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

impl Harness {
    /// Start chromedriver, the server and a browser session.
    pub async fn start(test: &str) -> Harness {
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = Command::new(env!("CARGO_BIN_EXE_onebox"))
            .args(["--data-dir"])
            .arg(data.path())
            .args(["serve", "--port", "0"])
            .env("ONEBOX_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start onebox");
        let out = server.stdout.take().expect("stdout");
        let server = Guard(server);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = Vec::new();
        let mut base = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while base.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("onebox printed its address");
            if let Some(rest) = line.strip_prefix("onebox listening on ") {
                base = Some(rest.trim().to_string());
            }
            stdout.push(line);
        }
        // The setup line follows the listening line at once when there is no admin.
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            stdout.push(line);
        }

        let port = free_port();
        let driver = Guard(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver did not start a session: {e}"),
            }
        };
        let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("screenshots")
            .join(test);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Harness {
            client,
            base: base.expect("base"),
            stdout,
            _data: data,
            shots,
            _server: server,
            _driver: driver,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The setup link the server printed.
    pub fn setup_link(&self) -> String {
        self.stdout
            .iter()
            .find_map(|l| {
                let start = l.find("http")?;
                let rest = &l[start..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                rest[..end]
                    .contains("/setup/")
                    .then(|| rest[..end].to_string())
            })
            .unwrap_or_else(|| panic!("no setup link in {:?}", self.stdout))
    }

    pub async fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        self.client.goto(&url).await.expect("navigate");
        self.assert_clean_console(&url).await;
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// Replace the value of an input or textarea.
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        el.clear().await.expect("clear");
        el.send_keys(value).await.expect("type");
    }

    /// Choose `value` in the `<select>` matched by `css`.
    pub async fn choose(&self, css: &str, value: &str) {
        self.find(&format!("{css} option[value='{value}']"))
            .await
            .click()
            .await
            .expect("choose option");
    }

    /// Tick (or untick) a checkbox.
    pub async fn tick(&self, css: &str, on: bool) {
        let el = self.find(css).await;
        let checked = el.prop("checked").await.expect("checked").as_deref() == Some("true");
        if checked != on {
            el.click().await.expect("click checkbox");
        }
    }

    /// The texts of the elements matched by `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for el in self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find all")
        {
            out.push(el.text().await.expect("text"));
        }
        out
    }

    /// Click and wait for the page that follows to load, then check its console.
    pub async fn submit(&self, css: &str) {
        // Mark the current document; the next one will not carry the mark.
        self.client
            .execute("document.documentElement.dataset.stale = '1';", vec![])
            .await
            .expect("mark page");
        self.find(css).await.click().await.expect("click");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fresh = self
                .client
                .execute(
                    "return document.readyState === 'complete' && \
                     document.documentElement.dataset.stale === undefined;",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if fresh {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = self.client.current_url().await.expect("url");
        self.assert_clean_console(now.as_str()).await;
    }

    /// The page must have logged no error and no CSP violation.
    pub async fn assert_clean_console(&self, at: &str) {
        let logs = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        let bad: Vec<String> = logs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                let level = e["level"].as_str().unwrap_or("");
                let message = e["message"].as_str().unwrap_or("");
                level == "SEVERE"
                    || level == "WARNING"
                    || message.contains("Content Security Policy")
            })
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(bad.is_empty(), "console errors at {at}: {bad:#?}");
    }

    /// Save a screenshot as `target/screenshots/<test>/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }
}
