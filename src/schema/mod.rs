//! Collections: their definitions, validation of definitions and of record values, and the DDL
//! that creates and alters their tables. No HTTP here and no connection handling beyond the
//! `&Connection` the caller passes in.

mod types;

pub use types::*;
