//! The filter language shared by the API, the site and collection rules: lexer, parser,
//! type-checking against a collection, compilation to parameterised SQL, sort specs, keyset
//! cursors and the list/count queries built from them. Nothing here touches a connection
//! (except reading sort values from a row) or knows about HTTP.
//!
//! Security contract: every value a user writes reaches SQL only as a bound parameter; every
//! identifier is matched exactly against the collection's columns and then quoted with
//! `schema::quote_ident`. Input size, nesting depth and term count are bounded, and every
//! failure is a `QueryError` with a character position, never a panic or SQL text.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod check;
mod column;
mod compile;
mod cursor;
mod lexer;
mod list;
mod parser;
mod sort;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_paging;
#[cfg(test)]
mod tests_plans;
#[cfg(test)]
mod tests_sqlite;

pub use check::{Expr, parse_filter};
pub use compile::compile;
pub use cursor::{Cursor, cursor_after_row, cursor_from_values, keyset_sql};
pub use list::{ListPlan, all_columns, parse_fields};
#[cfg(test)]
pub use list::{ListSpec, count_sql, list_sql};
pub use sort::{Sort, SortKey, order_by_sql, parse_sort};

/// Longest filter, sort or fields text accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 4096;
/// Deepest nesting of parentheses and `!` in a filter.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons in one filter.
pub const MAX_TERMS: usize = 64;
/// Most keys a sort may name (the `id` tiebreaker is not counted).
pub const MAX_SORT_KEYS: usize = 8;

/// A filter, sort or cursor error; `position` is a 0-based character offset into the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

impl QueryError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        QueryError {
            position,
            message: message.into(),
        }
    }
}

/// Values the `@me` and `@now` variables stand for.
#[derive(Debug, Clone)]
pub struct Vars {
    /// The caller's user id; `None` for an anonymous caller.
    pub me: Option<String>,
    /// The current time in canonical form (`crate::time::now()`).
    pub now: String,
}

/// Reject inputs over `MAX_INPUT_BYTES`, pointing at the first character past the limit.
fn check_input_size(input: &str) -> Result<(), QueryError> {
    if input.len() <= MAX_INPUT_BYTES {
        return Ok(());
    }
    let position = input
        .char_indices()
        .take_while(|(i, _)| *i < MAX_INPUT_BYTES)
        .count();
    Err(QueryError::new(
        position,
        format!("input is longer than {MAX_INPUT_BYTES} bytes"),
    ))
}
