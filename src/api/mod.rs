//! The JSON API under `/api`, plus `/healthz` and `/readyz`. Handlers are thin: guards, then a
//! service call, then a `Reply`. Every error under `/api` is `application/problem+json`.

mod auth;
mod backups;
mod body;
mod collections;
pub mod guards;
mod health;
mod jobs;
mod openapi;
mod openapi_admin;
pub mod problem;
mod records;
mod reply;
mod tokens;
mod users;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Build, Request, Response, Rocket};

pub use openapi::document as openapi_document;

use crate::observe::traced;

/// Mount every API route and the `/api` catchers (the site's catchers answer elsewhere).
pub fn mount(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount(
            "/",
            traced(rocket::routes![health::healthz, health::readyz]),
        )
        .mount(
            "/api",
            traced(rocket::routes![
                collections::list_collections,
                collections::create_collection,
                collections::get_collection,
                collections::update_collection,
                collections::delete_collection,
                records::list_records,
                records::get_record,
                records::create_record,
                records::update_record,
                records::delete_record,
                auth::login,
                auth::logout,
                auth::me,
                users::list_users,
                users::create_user,
                users::get_user,
                users::update_user,
                users::delete_user,
                tokens::list_tokens,
                tokens::create_token,
                tokens::delete_token,
                jobs::list_jobs,
                jobs::run_job,
                jobs::get_job_run,
                backups::list_backups,
                backups::create_backup,
                backups::download_backup,
                openapi::openapi_json,
            ]),
        )
        .register("/api", rocket::catchers![problem::api_catcher])
}

/// Security headers on every response, errors included (SECURITY.md, "Input and output").
pub struct SecurityHeaders;

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        res.set_header(Header::new(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; img-src 'self' data:; object-src 'none'; \
             base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        if req.rocket().config().tls_enabled() {
            res.set_header(Header::new(
                "Strict-Transport-Security",
                "max-age=63072000; includeSubDomains",
            ));
        }
    }
}
