//! Static files from `static/`, embedded in the binary with rust-embed and served under
//! content-hashed names (`app.css` → `/static/app.1a2b3c4d5e6f.css`) with a year of immutable
//! caching and an ETag. Only names in the embedded index resolve: no directory listing and no
//! path is ever read from disk, so there is nothing to traverse.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use rocket::http::uri::{Segments, fmt::Path};
use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};

#[derive(rust_embed::Embed)]
#[folder = "static/"]
#[exclude = ".*"]
struct Files;

struct Entry {
    path: String,
    etag: String,
}

struct Index {
    /// Hashed name → the file.
    by_name: HashMap<String, Entry>,
    /// File path → its URL.
    urls: HashMap<String, String>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut by_name = HashMap::new();
    let mut urls = HashMap::new();
    for path in Files::iter() {
        let Some(file) = Files::get(&path) else {
            continue;
        };
        let digest = hex::encode(&file.metadata.sha256_hash()[..6]);
        let name = match path.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{digest}.{ext}"),
            _ => format!("{path}.{digest}"),
        };
        urls.insert(path.to_string(), format!("/static/{name}"));
        by_name.insert(
            name,
            Entry {
                path: path.to_string(),
                etag: format!("\"{digest}\""),
            },
        );
    }
    Index { by_name, urls }
});

/// The URL of `path` (relative to `static/`). An unknown path is a programming error in a
/// template; it yields a URL that answers 404 rather than a panic.
pub fn url(path: &str) -> String {
    INDEX
        .urls
        .get(path)
        .cloned()
        .unwrap_or_else(|| format!("/static/missing/{path}"))
}

fn content_type(path: &str) -> ContentType {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    ContentType::from_extension(ext).unwrap_or(ContentType::Binary)
}

/// An embedded file, or 304 when the client has it.
pub struct Asset {
    body: Option<Cow<'static, [u8]>>,
    content_type: ContentType,
    etag: String,
}

impl<'r> Responder<'r, 'static> for Asset {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.header(Header::new(
            "Cache-Control",
            "public, max-age=31536000, immutable",
        ))
        .header(Header::new("ETag", self.etag));
        match self.body {
            Some(body) => {
                let len = body.len();
                res.header(self.content_type)
                    .sized_body(len, std::io::Cursor::new(body));
            }
            None => {
                res.status(Status::NotModified);
            }
        }
        res.ok()
    }
}

/// `GET /static/<name>`: embedded files by exact hashed name only (the raw segments are
/// joined and looked up; `..` or anything else unknown is simply not found).
#[rocket::get("/static/<name..>")]
pub fn asset(name: Segments<'_, Path>, cond: crate::api::guards::Conditions) -> Option<Asset> {
    let name: Vec<&str> = name.collect();
    let entry = INDEX.by_name.get(&name.join("/"))?;
    if cond.not_modified(&entry.etag) {
        return Some(Asset {
            body: None,
            content_type: content_type(&entry.path),
            etag: entry.etag.clone(),
        });
    }
    let file = Files::get(&entry.path)?;
    Some(Asset {
        body: Some(file.data),
        content_type: content_type(&entry.path),
        etag: entry.etag.clone(),
    })
}
