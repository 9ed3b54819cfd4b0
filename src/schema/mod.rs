//! Collections: their definitions, validation of definitions and of record values, and the DDL
//! that creates and alters their tables. No HTTP here and no connection handling beyond the
//! `&Connection` the caller passes in (and the transaction the caller owns).
//!
//! - `define` / `field`: `CollectionSpec` → validated `Collection` (all problems at once).
//! - `values`: request JSON → SQL values for a record write; `rows`: stored row → JSON.
//! - `ddl`: `CREATE TABLE`/`CREATE INDEX` text and the generated index names.
//! - `changelog`: triggers that append every row change to `_changes`.
//! - `alter` (with `plan`, `convert`, `rebuild`): changing a live table without losing data.

pub mod alter;
mod changelog;
mod convert;
pub mod ddl;
pub mod define;
mod field;
mod plan;
mod rebuild;
pub mod rows;
#[cfg(test)]
mod testutil;
mod types;
pub mod values;

pub use alter::{AlterError, alter};
pub use changelog::{change_triggers, drop_change_triggers};
pub use ddl::create_table;
pub use define::{DefinitionErrors, field_renames, parse_collection, retarget_relations};
pub use rows::{JsonRows, PageRows, RowReader, ValueRows};
pub use types::*;
pub use values::{FieldErrors, is_valid_record_id, validate_create, validate_update};
