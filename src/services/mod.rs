//! Services: what the API (and later the site) can do, in domain terms. They validate input
//! into domain types, enforce rules, and run storage work through `Db`. No HTTP here.

pub mod account;
pub mod audit_trail;
pub mod backups;
pub mod collections;
pub mod identity;
pub mod jobs;
pub mod records;
pub mod sessions;
pub mod setup;
pub mod token_cache;
pub mod totp;
