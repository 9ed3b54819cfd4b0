//! Observability: tracing setup (text or JSON), request ids, and one log line per request
//! inside a per-request span.

use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::route::{Handler, Outcome, Route};
use rocket::{Data, Request, Response};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global tracing subscriber. Safe to call more than once (later calls no-op).
pub fn init_tracing(format: LogFormat, level: &str) {
    let mut filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Rocket's own lines (e.g. "Remote left") are noise next to onebox's request log, unless
    // asked for by name.
    if !level.contains("rocket")
        && let Ok(d) = "rocket=error".parse()
    {
        filter = filter.add_directive(d);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Per-request facts set by `RequestLog` before routing.
pub struct RequestMeta {
    pub id: String,
    pub start: Instant,
    pub span: tracing::Span,
}

impl RequestMeta {
    /// The meta of `req`; created on first use (the fairing uses it first).
    pub fn of<'r>(req: &'r Request<'_>) -> &'r RequestMeta {
        req.local_cache(|| {
            let id = ulid::Ulid::generate().to_string();
            let span = tracing::info_span!(
                "request",
                id = %id,
                method = %req.method(),
                path = %escape_log(req.uri().path().as_str()),
                user = tracing::field::Empty,
            );
            RequestMeta {
                id,
                start: Instant::now(),
                span,
            }
        })
    }
}

/// Escape CR/LF so a logged value cannot forge log lines.
pub fn escape_log(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        s.replace('\r', "\\r").replace('\n', "\\n").into()
    } else {
        s.into()
    }
}

/// Gives every request an id (echoed as `X-Request-Id`) and logs one line when it completes.
pub struct RequestLog;

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info {
            name: "request log",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        RequestMeta::of(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let meta = RequestMeta::of(req);
        res.set_header(Header::new("X-Request-Id", meta.id.clone()));
        let status = res.status().code;
        let micros = meta.start.elapsed().as_micros() as u64;
        let route = req.route().and_then(|r| r.name.as_deref()).unwrap_or("-");
        let _entered = meta.span.enter();
        if status >= 500 {
            tracing::warn!(status, micros, route, "request failed");
        } else {
            tracing::info!(status, micros, route, "request");
        }
    }
}

/// A route handler run inside its request's span, so guards, services and database jobs log
/// with the request id (Rocket 0.5 has no other hook around a handler).
#[derive(Clone)]
struct InRequestSpan(Box<dyn Handler>);

#[rocket::async_trait]
impl Handler for InRequestSpan {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let span = RequestMeta::of(req).span.clone();
        self.0.handle(req, data).instrument(span).await
    }
}

/// Wrap every route's handler in its request span.
pub fn traced(routes: Vec<Route>) -> Vec<Route> {
    routes
        .into_iter()
        .map(|mut r| {
            r.handler = Box::new(InRequestSpan(r.handler));
            r
        })
        .collect()
}
