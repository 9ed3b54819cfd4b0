//! onebox: a backend in one binary. `build_rocket` assembles the server from `Settings` and an
//! open `Db`; `main.rs` and the tests both go through it.

pub mod auth;
pub mod query;
pub mod schema;
pub mod time;
