//! Turns a checked `Expr` into a parenthesised SQL boolean expression over the collection's
//! table. Values only ever become `?` parameters; columns are re-checked against the
//! collection and quoted. Owns the NULL semantics of each operator.

use rusqlite::types::Value as SqlValue;

use super::check::{Cmp, Expr, Value};
use super::column::{ColumnType, column_sql};
use super::lexer::CmpOp;
use super::parser::Tree;
use super::{QueryError, Vars};
use crate::schema::Collection;

/// Compile a checked expression into a SQL boolean expression, appending its parameters.
///
/// The result is wrapped in parentheses so it can be ANDed with other clauses. Columns are
/// qualified with the collection's table name, so the query must use the table unaliased.
///
/// Semantics worth knowing:
/// - `x = null` / `x != null` are `IS NULL` / `IS NOT NULL`; `x != v` and `x !~ v` also match
///   rows where `x` is NULL; `>`, `<`, `~`… never match NULL.
/// - `!` is a plain complement: `!(x = "a")` matches the same rows as `x != "a"` and
///   `!(x ~ "a")` the same as `x !~ "a"`, NULLs included.
/// - `~` is a substring test (SQLite `LIKE`, so ASCII case-insensitive) with `%`, `_` and `\`
///   taken literally; on a multiple select it tests for an element.
/// - With an anonymous caller (`vars.me == None`) a comparison with `@me` compiles to SQL
///   `NULL` ("unknown"): it is never true, and neither is its negation, so `owner != @me` and
///   `!(owner = @me)` match nothing — an anonymous caller owns nothing and is nobody.
pub fn compile(
    expr: &Expr,
    collection: &Collection,
    vars: &Vars,
    params: &mut Vec<SqlValue>,
) -> Result<String, QueryError> {
    let mut out = String::new();
    let mut ctx = Ctx {
        collection,
        vars,
        params,
        negated: false,
    };
    tree_sql(&expr.tree, &mut ctx, &mut out)?;
    Ok(out)
}

struct Ctx<'a> {
    collection: &'a Collection,
    vars: &'a Vars,
    params: &'a mut Vec<SqlValue>,
    /// Inside a `!`: comparisons must say false, not NULL, when their column is NULL.
    negated: bool,
}

fn tree_sql(tree: &Tree<Cmp>, ctx: &mut Ctx<'_>, out: &mut String) -> Result<(), QueryError> {
    match tree {
        Tree::And(items) | Tree::Or(items) => {
            let joiner = if matches!(tree, Tree::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(joiner);
                }
                tree_sql(item, ctx, out)?;
            }
            out.push(')');
        }
        Tree::Not(inner) => {
            let outer = ctx.negated;
            ctx.negated = true;
            out.push_str("(NOT ");
            tree_sql(inner, ctx, out)?;
            out.push(')');
            ctx.negated = outer;
        }
        Tree::Cmp(cmp) => cmp_sql(cmp, ctx, out)?,
    }
    Ok(())
}

fn cmp_sql(cmp: &Cmp, ctx: &mut Ctx<'_>, out: &mut String) -> Result<(), QueryError> {
    // The expression may have been parsed against an older version of the collection.
    if ColumnType::of(ctx.collection, &cmp.field) != Some(cmp.column) {
        return Err(QueryError::new(
            cmp.field_pos,
            format!("field {:?} no longer exists or has changed type", cmp.field),
        ));
    }
    let col = column_sql(ctx.collection, &cmp.field);
    let param = match &cmp.value {
        Value::Null => {
            let test = if cmp.op == CmpOp::Ne {
                "IS NOT NULL"
            } else {
                "IS NULL"
            };
            out.push_str(&format!("({col} {test})"));
            return Ok(());
        }
        Value::Me => match &ctx.vars.me {
            Some(me) => SqlValue::Text(me.clone()),
            None => {
                out.push_str("(NULL)");
                return Ok(());
            }
        },
        Value::Now => SqlValue::Text(ctx.vars.now.clone()),
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Real(f) => SqlValue::Real(*f),
        Value::Text(s) => SqlValue::Text(s.clone()),
    };
    let (core, param) = match (cmp.column, cmp.op) {
        (ColumnType::MultiSelect, CmpOp::Contains | CmpOp::NotContains) => {
            let not = if cmp.op == CmpOp::NotContains {
                "NOT "
            } else {
                ""
            };
            // EXISTS is never NULL, and json_each(NULL) is empty: NULL holds no element.
            // `_e` cannot be a collection name, so the alias never shadows the outer table,
            // and the qualified column is never taken for one of json_each's own (`key`,
            // `path`…).
            ctx.params.push(param);
            out.push_str(&format!(
                "({not}EXISTS (SELECT 1 FROM json_each({col}) AS \"_e\" WHERE \"_e\".value = ?))"
            ));
            return Ok(());
        }
        (_, CmpOp::NotContains) => {
            ctx.params.push(like_pattern(param));
            out.push_str(&format!(
                "({col} IS NULL OR {col} NOT LIKE '%' || ? || '%' ESCAPE '\\')"
            ));
            return Ok(());
        }
        (_, CmpOp::Ne) => {
            // IS NOT: a NULL column differs from any value, so `x != v` matches it.
            ctx.params.push(param);
            out.push_str(&format!("({col} IS NOT ?)"));
            return Ok(());
        }
        (_, CmpOp::Contains) => (
            format!("{col} LIKE '%' || ? || '%' ESCAPE '\\'"),
            like_pattern(param),
        ),
        (_, CmpOp::Eq) => (format!("{col} = ?"), param),
        (_, CmpOp::Gt) => (format!("{col} > ?"), param),
        (_, CmpOp::Ge) => (format!("{col} >= ?"), param),
        (_, CmpOp::Lt) => (format!("{col} < ?"), param),
        (_, CmpOp::Le) => (format!("{col} <= ?"), param),
    };
    ctx.params.push(param);
    if ctx.negated {
        // These are NULL when the column is NULL, and NOT NULL is NULL: under `!` that would
        // hide the row, making `!(x = "a")` differ from `x != "a"`. Forcing false keeps them
        // equal; only an anonymous `@me` stays unknown under negation.
        out.push_str(&format!("({core} AND {col} IS NOT NULL)"));
    } else {
        out.push_str(&format!("({core})"));
    }
    Ok(())
}

/// Escape `%`, `_` and `\` so a `~` operand is matched literally.
fn like_pattern(value: SqlValue) -> SqlValue {
    match value {
        SqlValue::Text(s) => {
            let mut escaped = String::with_capacity(s.len());
            for c in s.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            SqlValue::Text(escaped)
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::query::parse_filter;
    use crate::query::test_support::{NOW, posts, vars};

    fn sql(input: &str, me: Option<&str>) -> (String, Vec<SqlValue>) {
        let c = posts();
        let expr = parse_filter(input, &c).unwrap();
        let mut params = Vec::new();
        let sql = compile(&expr, &c, &vars(me), &mut params).unwrap();
        (sql, params)
    }

    fn t(s: &str) -> SqlValue {
        SqlValue::Text(s.into())
    }

    #[test]
    fn combined_filter_is_parenthesised_with_bound_values() {
        let (sql, params) = sql(
            r#"title ~ "rust" && (year >= 2020 || featured = true)"#,
            None,
        );
        assert_eq!(
            sql,
            concat!(
                r#"(("posts"."title" LIKE '%' || ? || '%' ESCAPE '\') AND "#,
                r#"(("posts"."year" >= ?) OR ("posts"."featured" = ?)))"#
            )
        );
        assert_eq!(
            params,
            vec![t("rust"), SqlValue::Integer(2020), SqlValue::Integer(1)]
        );
    }

    #[test]
    fn null_and_not_equal_semantics() {
        assert_eq!(sql("title = null", None).0, r#"("posts"."title" IS NULL)"#);
        assert_eq!(
            sql("title != null", None).0,
            r#"("posts"."title" IS NOT NULL)"#
        );
        assert_eq!(sql("year != 3", None).0, r#"("posts"."year" IS NOT ?)"#);
        assert_eq!(
            sql("title !~ \"a\"", None).0,
            r#"("posts"."title" IS NULL OR "posts"."title" NOT LIKE '%' || ? || '%' ESCAPE '\')"#
        );
        assert_eq!(
            sql("!(year = 3)", None).0,
            r#"(NOT ("posts"."year" = ? AND "posts"."year" IS NOT NULL))"#
        );
    }

    #[test]
    fn like_wildcards_in_values_are_escaped() {
        let (_, params) = sql(r#"title ~ "50%_a\\b""#, None);
        assert_eq!(params, vec![t("50\\%\\_a\\\\b")]);
    }

    #[test]
    fn variables_bind_the_caller_and_the_time() {
        assert_eq!(
            sql("owner = @me", Some("u1")),
            (r#"("posts"."owner" = ?)"#.into(), vec![t("u1")])
        );
        assert_eq!(
            sql("owner != @me", Some("u1")).0,
            r#"("posts"."owner" IS NOT ?)"#
        );
        assert_eq!(sql("owner = @me", None), ("(NULL)".into(), vec![]));
        assert_eq!(sql("owner != @me", None), ("(NULL)".into(), vec![]));
        assert_eq!(sql("published < @now", None).1, vec![t(NOW)]);
    }

    #[test]
    fn values_are_typed_for_their_columns() {
        assert_eq!(sql("score > 1", None).1, vec![SqlValue::Integer(1)]);
        assert_eq!(sql("score > 1.5", None).1, vec![SqlValue::Real(1.5)]);
        assert_eq!(sql("featured != false", None).1, vec![SqlValue::Integer(0)]);
        assert_eq!(
            sql("created >= \"2024-05-01T14:00:00+02:00\"", None).1,
            vec![t("2024-05-01T12:00:00.000Z")]
        );
        assert_eq!(
            sql("tags ~ \"rust\"", None),
            (
                r#"(EXISTS (SELECT 1 FROM json_each("posts"."tags") AS "_e" WHERE "_e".value = ?))"#
                    .into(),
                vec![t("rust")]
            )
        );
        assert!(sql("tags !~ \"rust\"", None).0.starts_with("(NOT EXISTS"));
    }

    #[test]
    fn hostile_text_only_reaches_sql_as_parameters() {
        let (sql, params) = sql(
            r#"title = "x\" --" || title = '; DROP TABLE posts; --'"#,
            None,
        );
        assert_eq!(sql, r#"(("posts"."title" = ?) OR ("posts"."title" = ?))"#);
        assert_eq!(params, vec![t("x\" --"), t("; DROP TABLE posts; --")]);
    }

    #[test]
    fn a_filter_for_a_changed_collection_is_refused() {
        let expr = parse_filter("title = \"a\" && year = 1", &posts()).unwrap();
        let mut changed = posts();
        changed.fields.retain(|f| f.name != "year");
        let err = compile(&expr, &changed, &vars(None), &mut Vec::new()).unwrap_err();
        assert_eq!(err.position, 15);
    }
}
