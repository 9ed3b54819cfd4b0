//! Rendering: the layout every page shares, the `Page` responder (askama output as HTML,
//! never cached), page errors, and the HTML catchers for everything outside `/api`.

use std::io::Cursor;

use askama::Template;
use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Redirect, Responder, Response};

use crate::api::problem::{Problem, take_stashed};
use crate::auth::User;
use crate::error::AppError;
use crate::observe::RequestMeta;

use super::assets;

/// A one-off message shown on the next page (post/redirect/get).
#[derive(Debug, Clone)]
pub struct Notice {
    /// `success` or `error`: a CSS class and an ARIA role choice.
    pub kind: String,
    pub message: String,
}

/// What `base.html` needs: the title, who is signed in, the CSRF token for the sign-out
/// form, a flash notice, and the asset URLs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub user: Option<User>,
    pub csrf: String,
    pub notice: Option<Notice>,
}

impl Layout {
    pub fn is_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role == crate::auth::Role::Admin)
    }

    /// The content-hashed URL of a file in `static/`.
    pub fn asset(&self, path: &str) -> String {
        assets::url(path)
    }
}

/// A rendered page with its status.
pub struct Page {
    status: Status,
    html: String,
}

/// Render a template into a 200 page.
pub fn render<T: Template>(template: &T) -> Result<Page, WebError> {
    let html = template
        .render()
        .map_err(|e| WebError(AppError::Internal(format!("template: {e}"))))?;
    Ok(Page {
        status: Status::Ok,
        html,
    })
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .status(self.status)
            .header(ContentType::HTML)
            // Pages show per-user data; no cache (browser or shared) may keep them.
            .header(Header::new("Cache-Control", "no-store"))
            .sized_body(self.html.len(), Cursor::new(self.html))
            .ok()
    }
}

/// A page handler's answer: a page, or a redirect after a form.
#[derive(Responder)]
pub enum Answer {
    Page(Page),
    Redirect(Redirect),
    Flash(rocket::response::Flash<Redirect>),
}

impl From<Page> for Answer {
    fn from(p: Page) -> Self {
        Answer::Page(p)
    }
}

impl From<Redirect> for Answer {
    fn from(r: Redirect) -> Self {
        Answer::Redirect(r)
    }
}

impl From<rocket::response::Flash<Redirect>> for Answer {
    fn from(f: rocket::response::Flash<Redirect>) -> Self {
        Answer::Flash(f)
    }
}

/// An error a page handler could not turn into a page of its own: rendered as the friendly
/// error page (internal causes are logged once and never shown).
#[derive(Debug)]
pub struct WebError(pub AppError);

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    title: String,
    detail: String,
    request_id: String,
}

fn error_page(req: &Request<'_>, problem: Problem) -> Page {
    let page = ErrorPage {
        layout: Layout {
            title: problem.title.clone(),
            user: None,
            csrf: String::new(),
            notice: None,
        },
        status: problem.status,
        title: problem.title,
        detail: problem.detail,
        request_id: RequestMeta::of(req).id.clone(),
    };
    let status = Status::new(page.status);
    match page.render() {
        Ok(html) => Page { status, html },
        // The error template is compiled in; this only happens if rendering itself fails.
        Err(_) => Page {
            status,
            html: format!(
                "<!doctype html><title>{}</title><p>Error {}</p>",
                status.code, status.code
            ),
        },
    }
}

impl<'r> Responder<'r, 'static> for WebError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let id = RequestMeta::of(req).id.clone();
        page_for(req, Problem::from_error(self.0, id)).respond_to(req)
    }
}

/// The answer to a failed page: a visitor who must sign in first is sent to the sign-in page
/// (and back here afterwards) when they asked with GET; anything else is the error page.
fn page_for(req: &Request<'_>, problem: Problem) -> Answer {
    if problem.status == 401 && req.method() == rocket::http::Method::Get {
        let next = req.uri().to_string();
        return Answer::Redirect(Redirect::to(format!(
            "/sign-in?next={}",
            urlencoding(&next)
        )));
    }
    Answer::Page(error_page(req, problem))
}

/// The catcher for everything outside `/api`: not signed in → the sign-in page (coming back
/// here afterwards); anything else → the error page.
#[rocket::catch(default)]
pub fn html_catcher(status: Status, req: &Request<'_>) -> Answer {
    let id = RequestMeta::of(req).id.clone();
    let problem = match take_stashed(req) {
        Some(err) => Problem::from_error(err, id),
        None => Problem::for_status(status, id),
    };
    page_for(req, problem)
}

/// Percent-encode a value for a query string.
pub fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
