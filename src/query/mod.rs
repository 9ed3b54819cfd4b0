//! The filter language shared by the API, the site and collection rules: lexer, parser,
//! type-checking against a collection, compilation to parameterised SQL, sort specs and
//! keyset cursors. Nothing here touches a connection or knows about HTTP.
//!
//! INTERFACE STUB: replaced by the real implementation.

use rusqlite::types::Value as SqlValue;

use crate::schema::Collection;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr;

/// A filter, sort or cursor error; `position` is a 0-based character offset into the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

/// Values the `@me` and `@now` variables stand for.
#[derive(Debug, Clone)]
pub struct Vars {
    pub me: Option<String>,
    pub now: String,
}

/// Parse and type-check `input` against `collection`.
pub fn parse_filter(input: &str, collection: &Collection) -> Result<Expr, QueryError> {
    let _ = (input, collection);
    Err(QueryError {
        position: 0,
        message: "filters are not implemented".into(),
    })
}

/// Compile a checked expression into a SQL boolean expression, appending its parameters.
pub fn compile(
    expr: &Expr,
    collection: &Collection,
    vars: &Vars,
    params: &mut Vec<SqlValue>,
) -> Result<String, QueryError> {
    let _ = (expr, collection, vars, params);
    Ok("1".into())
}
