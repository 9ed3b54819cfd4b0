//! onebox: a backend in one binary. `build_rocket` assembles the server from `Settings` and an
//! open `Db`; `main.rs` and the tests both go through it.

pub mod api;
pub mod app;
pub mod auth;
pub mod backup;
pub mod config;
pub mod db;
pub mod error;
pub mod etag;
pub mod ids;
pub mod jobs;
pub mod observe;
pub mod query;
pub mod schema;
pub mod services;
pub mod time;
pub mod web;
