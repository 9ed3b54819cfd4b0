//! Integration tests through the HTTP surface: one binary, a fresh data dir per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod access;
mod auth;
mod backups;
mod collections;
mod http;
mod jobs;
mod query;
mod records;
mod rules;
mod site;
mod site_account;
mod site_admin;
mod site_admin_collections;
mod site_admin_jobs;
mod site_admin_users;
mod site_client;
mod site_record_forms;
mod site_records;
mod site_totp;
