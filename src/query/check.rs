//! Type-checks a syntax tree against a collection, producing the `Expr` that `compile` turns
//! into SQL. Owns the rules of which operator and which value go with which column type, and
//! normalises datetime literals. Errors point at the field, operator or value at fault.

use super::QueryError;
use super::column::ColumnType;
use super::lexer::{CmpOp, Number, Var};
use super::parser::{Literal, RawCmp, Tree, parse};
use crate::schema::Collection;

/// A parsed filter, type-checked against the collection it was parsed for. Only
/// `parse_filter` builds one.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub(crate) tree: Tree<Cmp>,
}

impl Expr {
    /// Whether the expression mentions `@me` or `@now`, so its SQL depends on the caller or
    /// the clock.
    pub fn uses_vars(&self) -> bool {
        fn walk(tree: &Tree<Cmp>) -> bool {
            match tree {
                Tree::And(items) | Tree::Or(items) => items.iter().any(walk),
                Tree::Not(inner) => walk(inner),
                Tree::Cmp(c) => matches!(c.value, Value::Me | Value::Now),
            }
        }
        walk(&self.tree)
    }
}

/// A checked comparison: the field exists, the operator applies and the value fits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmp {
    pub field: String,
    pub field_pos: usize,
    pub column: ColumnType,
    pub op: CmpOp,
    pub value: Value,
}

/// A checked value, already in its storage form (datetimes canonical).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(String),
    Me,
    Now,
}

/// Parse `input` and type-check it against `collection`. Syntax errors are reported before
/// type errors.
pub fn parse_filter(input: &str, collection: &Collection) -> Result<Expr, QueryError> {
    let tree = parse(input)?.try_map(&mut |raw| check_cmp(raw, collection))?;
    Ok(Expr { tree })
}

fn check_cmp(raw: RawCmp, collection: &Collection) -> Result<Cmp, QueryError> {
    let RawCmp {
        field,
        field_pos,
        op,
        op_pos,
        value,
        value_pos,
    } = raw;
    let Some(column) = ColumnType::of(collection, &field) else {
        return Err(QueryError::new(
            field_pos,
            format!("unknown field {field:?}"),
        ));
    };
    let value_err = |message: String| Err(QueryError::new(value_pos, message));
    let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);

    if value == Literal::Null {
        if !equality {
            return value_err("null can only be compared with = or !=".into());
        }
        return Ok(Cmp {
            field,
            field_pos,
            column,
            op,
            value: Value::Null,
        });
    }

    let op_fits = match column {
        ColumnType::Text => true,
        ColumnType::Datetime | ColumnType::Number => {
            !matches!(op, CmpOp::Contains | CmpOp::NotContains)
        }
        ColumnType::Bool => equality,
        ColumnType::MultiSelect | ColumnType::Json => {
            matches!(op, CmpOp::Contains | CmpOp::NotContains)
        }
    };
    if !op_fits {
        let hint = match column {
            ColumnType::MultiSelect => " (use ~ or !~ to test for a value, or = null)",
            ColumnType::Json => " (use ~ or !~ to search its text, or = null)",
            ColumnType::Bool => " (use = or !=)",
            _ => "",
        };
        return Err(QueryError::new(
            op_pos,
            format!(
                "operator {} does not apply to {} field {field:?}{hint}",
                op.symbol(),
                column.describe()
            ),
        ));
    }

    let checked = match (column, value) {
        (ColumnType::Text, Literal::Var(Var::Me)) if !equality => {
            return value_err("@me can only be compared with = or !=".into());
        }
        (ColumnType::Text, Literal::Var(Var::Me)) => Value::Me,
        (ColumnType::Text | ColumnType::MultiSelect | ColumnType::Json, Literal::Str(s)) => {
            Value::Text(s)
        }
        (ColumnType::Datetime, Literal::Str(s)) => match crate::time::canonical(&s) {
            Some(canonical) => Value::Text(canonical),
            None => {
                return value_err(format!(
                    "invalid datetime {s:?} (expected RFC 3339, like \"2024-05-01T12:00:00Z\")"
                ));
            }
        },
        (ColumnType::Datetime, Literal::Var(Var::Now)) => Value::Now,
        (ColumnType::Number, Literal::Num(Number::Int(i))) => Value::Int(i),
        (ColumnType::Number, Literal::Num(Number::Float(f))) => Value::Real(f),
        (ColumnType::Bool, Literal::Bool(b)) => Value::Bool(b),
        (column, other) => {
            let expected = match column {
                ColumnType::Text => "a string or @me",
                ColumnType::Datetime => "a datetime string or @now",
                ColumnType::Number => "a number",
                ColumnType::Bool => "true or false",
                ColumnType::MultiSelect | ColumnType::Json => "a string",
            };
            return value_err(format!(
                "expected {expected} for {} field {field:?}, found {}",
                column.describe(),
                describe(&other)
            ));
        }
    };
    Ok(Cmp {
        field,
        field_pos,
        column,
        op,
        value: checked,
    })
}

fn describe(literal: &Literal) -> &'static str {
    match literal {
        Literal::Str(_) => "a string",
        Literal::Num(_) => "a number",
        Literal::Bool(true) => "true",
        Literal::Bool(false) => "false",
        Literal::Null => "null",
        Literal::Var(Var::Me) => "@me",
        Literal::Var(Var::Now) => "@now",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::query::test_support::posts;

    fn ok(input: &str) {
        if let Err(e) = parse_filter(input, &posts()) {
            panic!("{input:?} should parse: {e}");
        }
    }

    fn err(input: &str) -> (usize, String) {
        let e = parse_filter(input, &posts()).unwrap_err();
        (e.position, e.message)
    }

    #[test]
    fn uses_vars_finds_me_and_now_at_any_depth_but_not_in_strings() {
        let uses = |input: &str| parse_filter(input, &posts()).unwrap().uses_vars();
        assert!(uses("owner = @me"));
        assert!(uses("year > 1 && !(title = \"a\" || published < @now)"));
        assert!(!uses("title = \"@me\" && year > 1"));
        assert!(!uses("!(owner = null)"));
    }

    #[test]
    fn unknown_fields_are_reported_at_the_identifier() {
        assert_eq!(err("foo = 1"), (0, "unknown field \"foo\"".into()));
        assert_eq!(err("title = \"a\" && rowid = 1").0, 15);
        assert_eq!(err("sqlite_master = 1").0, 0);
        assert_eq!(err("Title = \"a\""), (0, "unknown field \"Title\"".into()));
        assert_eq!(err("(year > 1) || _x = 1").0, 14);
    }

    #[test]
    fn text_like_fields_take_strings_and_every_operator() {
        for field in ["title", "email", "site", "owner", "status", "id"] {
            for op in ["=", "!=", ">", ">=", "<", "<=", "~", "!~"] {
                ok(&format!("{field} {op} \"x\""));
            }
            ok(&format!("{field} = null"));
            ok(&format!("{field} != null"));
            ok(&format!("{field} = @me"));
            ok(&format!("{field} != @me"));
        }
        assert_eq!(
            err("title > 5"),
            (
                8,
                "expected a string or @me for text field \"title\", found a number".into()
            )
        );
        assert_eq!(err("title = true").0, 8);
        assert_eq!(err("title = @now").0, 8);
        assert_eq!(
            err("owner ~ @me"),
            (8, "@me can only be compared with = or !=".into())
        );
        assert_eq!(
            err("title ~ null"),
            (8, "null can only be compared with = or !=".into())
        );
    }

    #[test]
    fn numbers_take_numbers_and_no_contains() {
        for op in ["=", "!=", ">", ">=", "<", "<="] {
            ok(&format!("year {op} 2020"));
            ok(&format!("score {op} -1.5e2"));
        }
        ok("year = null");
        assert_eq!(
            err("year ~ \"x\""),
            (
                5,
                "operator ~ does not apply to number field \"year\"".into()
            )
        );
        assert_eq!(err("year !~ 1").0, 5);
        assert_eq!(err("year = \"2020\"").0, 7);
        assert_eq!(err("year > @me").0, 7);
    }

    #[test]
    fn bools_take_true_false_with_equality_only() {
        ok("featured = true");
        ok("featured != false");
        ok("featured = null");
        assert_eq!(
            err("featured = \"yes\""),
            (
                11,
                "expected true or false for bool field \"featured\", found a string".into()
            )
        );
        assert_eq!(err("featured = 1").0, 11);
        assert_eq!(err("featured > false").0, 9);
        assert_eq!(err("featured ~ \"t\"").0, 9);
    }

    #[test]
    fn datetimes_take_valid_datetimes_or_now() {
        for field in ["published", "created", "updated"] {
            for op in ["=", "!=", ">", ">=", "<", "<="] {
                ok(&format!("{field} {op} \"2024-01-01T00:00:00Z\""));
                ok(&format!("{field} {op} @now"));
            }
        }
        assert_eq!(err("created ~ \"2024\"").0, 8);
        assert_eq!(err("created > \"2024-01-01\"").0, 10);
        assert!(
            err("created > \"yesterday\"")
                .1
                .starts_with("invalid datetime")
        );
        assert_eq!(err("created > 5").0, 10);
        assert_eq!(err("created = @me").0, 10);
    }

    #[test]
    fn datetime_literals_are_normalised() {
        let expr = parse_filter("created > \"2024-05-01T14:00:00+02:00\"", &posts()).unwrap();
        let Tree::Cmp(cmp) = expr.tree else {
            panic!("expected a comparison")
        };
        assert_eq!(cmp.value, Value::Text("2024-05-01T12:00:00.000Z".into()));
    }

    #[test]
    fn multiple_selects_take_contains_or_null() {
        ok("tags ~ \"rust\"");
        ok("tags !~ \"rust\"");
        ok("tags = null");
        ok("tags != null");
        assert!(err("tags = \"rust\"").1.contains("use ~ or !~"));
        assert_eq!(err("tags = \"rust\"").0, 5);
        assert_eq!(err("tags > \"a\"").0, 5);
        assert_eq!(err("tags ~ 1").0, 7);
    }

    #[test]
    fn json_takes_contains_or_null() {
        ok("meta ~ \"key\"");
        ok("meta !~ \"key\"");
        ok("meta = null");
        assert_eq!(err("meta = \"{}\"").0, 5);
        assert_eq!(err("meta < \"a\"").0, 5);
    }
}
