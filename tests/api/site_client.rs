//! `SiteClient`: a browser-like client for the site over `TestApp`'s in-process server. It
//! keeps its own cookies (so two clients are two browsers), follows nothing by itself, and
//! reads the CSRF token out of the last page it loaded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;

use rocket::http::{ContentType, Cookie, Header, Method};

use crate::helpers::TestApp;

pub struct SiteClient<'a> {
    app: &'a TestApp,
    pub cookies: RefCell<HashMap<String, String>>,
    csrf: RefCell<Option<String>>,
}

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub body: String,
    /// The body as sent (`body` is it as text).
    pub bytes: Vec<u8>,
    pub headers: HashMap<String, String>,
    /// Every `Set-Cookie` header, as sent.
    pub set_cookies: Vec<String>,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }

    /// The value of the first hidden input called `name`.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_string())
    }
}

impl<'a> SiteClient<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        SiteClient {
            app,
            cookies: RefCell::new(HashMap::new()),
            csrf: RefCell::new(None),
        }
    }

    /// The CSRF token of the last page that had a form.
    pub fn csrf(&self) -> String {
        self.csrf.borrow().clone().unwrap_or_default()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.borrow().get(name).cloned()
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Page {
        let body = form.map(|fields| {
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter())
                .finish();
            (ContentType::Form, encoded)
        });
        self.send(method, path, body, headers).await
    }

    /// A JSON call to the API with this browser's cookies (as a same-origin script would).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        json: serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Page {
        self.send(
            method,
            path,
            Some((ContentType::JSON, json.to_string())),
            headers,
        )
        .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(ContentType, String)>,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .app
            .client
            .req(method, path.to_string())
            .remote("127.0.0.1:40000".parse::<SocketAddr>().unwrap());
        for (k, v) in self.cookies.borrow().iter() {
            req = req.cookie(Cookie::new(k.clone(), v.clone()));
        }
        for (k, v) in headers {
            req = req.header(Header::new(k.to_string(), v.to_string()));
        }
        if let Some((content_type, body)) = body {
            req = req.header(content_type).body(body);
        }
        let res = req.dispatch().await;
        let status = res.status().code;
        let headers: HashMap<String, String> = res
            .headers()
            .iter()
            .map(|h| {
                (
                    h.name().as_str().to_ascii_lowercase(),
                    h.value().to_string(),
                )
            })
            .collect();
        let set_cookies: Vec<String> = res
            .headers()
            .get("Set-Cookie")
            .map(str::to_string)
            .collect();
        for raw in &set_cookies {
            let c = Cookie::parse_encoded(raw.clone()).unwrap();
            let gone = c.value().is_empty() || c.max_age().is_some_and(|a| a.whole_seconds() <= 0);
            if gone {
                self.cookies.borrow_mut().remove(c.name());
            } else {
                self.cookies
                    .borrow_mut()
                    .insert(c.name().to_string(), c.value().to_string());
            }
        }
        let bytes = res.into_bytes().await.unwrap_or_default();
        let page = Page {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            headers,
            set_cookies,
        };
        if let Some(token) = page.hidden("csrf") {
            *self.csrf.borrow_mut() = Some(token);
        }
        page
    }

    pub async fn get(&self, path: &str) -> Page {
        self.request(Method::Get, path, None, &[]).await
    }

    /// POST a form with the current CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.request(Method::Post, path, Some(&all), &[]).await
    }

    /// POST a form exactly as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.request(Method::Post, path, Some(fields), &[]).await
    }

    /// Load the sign-in page and sign in; panics unless it redirects.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.get("/sign-in").await;
        let page = self
            .post("/sign-in", &[("email", email), ("password", password)])
            .await;
        assert_eq!(page.status, 303, "sign-in failed: {}", page.body);
        page
    }
}
