//! The list and count queries the records service runs: projection (`fields=`), filter, rule,
//! keyset cursor, sort, limit and offset assembled into one parameterised statement.
//!
//! Typical use: `parse_filter` → `parse_sort` → `ListPlan::new` (kept while the listing does
//! not depend on the caller) → `Cursor::decode` → `ListPlan::statements` → run them →
//! keep the first `limit` rows → if a further row came back, `cursor_after_row` on the last
//! kept row and hand out `Cursor::encode`. A `before` cursor runs the same queries in the
//! reverse order (see `Sort::reversed`): the rows come nearest first and the caller reverses
//! the page.

use std::sync::Arc;

use rusqlite::types::Value as SqlValue;

use super::column::{ColumnType, push_column_sql, table_sql};
use super::cursor::{Cursor, keyset_segments};
use super::sort::{Sort, order_by_sql};
use super::{Expr, QueryError, Vars, check_input_size, compile};
use crate::schema::{Collection, SYSTEM_FIELDS};

/// What to list, in one value, for `list_sql` (the tests' way to build a page's statements;
/// the records service keeps a `ListPlan` and adds each page's position). `filter` is the
/// caller's filter, `rule` the collection's list rule as an expression (`None` = no
/// restriction: the service has already decided that admins and `Anyone` rules need none, and
/// refused the request when the rule is admins-only).
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub struct ListSpec<'a> {
    pub filter: Option<&'a Expr>,
    pub rule: Option<&'a Expr>,
    pub sort: &'a Sort,
    /// Only rows strictly after this position (keyset pagination).
    pub after: Option<&'a Cursor>,
    /// Only rows strictly before this position, read backwards: the statements order by
    /// `sort.reversed()`, so they give the nearest rows first and the caller reverses the
    /// page. At most one of `after` and `before`.
    pub before: Option<&'a Cursor>,
    /// Rows wanted (the caller keeps it within 1..=its page-size cap); the query asks for
    /// `limit + 1` so the caller learns whether more follow.
    pub limit: u32,
    /// Rows to skip first (page-number pagination); combines with `after` if both are given.
    pub offset: Option<u64>,
    /// Projection from `parse_fields`; empty = every column. The sort columns are added when
    /// missing, so `cursor_after_row` can always read them.
    pub columns: &'a [String],
}

/// Every column of the collection's table: the system fields, then the user fields in order.
pub fn all_columns(collection: &Collection) -> Vec<String> {
    SYSTEM_FIELDS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(collection.fields.iter().map(|f| f.name.clone()))
        .collect()
}

/// Parse a `fields=` projection (`id,title`): every name must be a column; `id` is always
/// included (first, when not named); repeats are dropped. Empty input = every column.
pub fn parse_fields(input: &str, collection: &Collection) -> Result<Vec<String>, QueryError> {
    check_input_size(input)?;
    if input.trim().is_empty() {
        return Ok(all_columns(collection));
    }
    let mut fields = Vec::new();
    let mut offset = 0;
    for segment in input.split(',') {
        let pos = offset + segment.chars().take_while(|c| c.is_whitespace()).count();
        offset += segment.chars().count() + 1;
        let name = segment.trim();
        if name.is_empty() {
            return Err(QueryError::new(pos, "expected a field name"));
        }
        if !collection.has_column(name) {
            return Err(QueryError::new(pos, format!("unknown field {name:?}")));
        }
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_owned());
        }
    }
    if !fields.iter().any(|f| f == "id") {
        fields.insert(0, "id".to_owned());
    }
    Ok(fields)
}

/// The part of a listing's query that all its pages share: the projection, the filter and
/// rule conditions with their parameters, the ORDER BY and the LIMIT. `statements` adds a
/// page's position (cursor, offset). It depends on the caller only through `@me` and `@now`
/// in the filter or the rule; without them it can be kept and reused (the records service
/// does, per collection version).
#[derive(Debug)]
pub struct ListPlan {
    /// The collection (version) the plan was built for.
    collection: Arc<Collection>,
    sort: Sort,
    columns: Vec<String>,
    /// The quoted table name.
    table: String,
    /// `SELECT <columns> FROM <table>`.
    select_from: String,
    /// The filter's and the rule's SQL, each to be ANDed; their parameters in order.
    conditions: Vec<String>,
    params: Vec<SqlValue>,
    /// ` ORDER BY <sort>`.
    order_by: String,
    /// ` LIMIT <limit + 1>`.
    limit: String,
    /// The first page's whole statement.
    first: String,
}

impl ListPlan {
    /// Build the plan: `SELECT <columns> FROM <table> [WHERE (filter) AND (rule)] ORDER BY
    /// <sort> LIMIT <limit + 1>`. `columns` comes from `parse_fields` (empty = every column);
    /// the sort columns are added when missing, so `cursor_after_row` can always read them.
    /// Result columns are named after the fields, so rows can be read by name.
    pub fn new(
        collection: &Arc<Collection>,
        filter: Option<&Expr>,
        rule: Option<&Expr>,
        sort: Sort,
        columns: Vec<String>,
        limit: u32,
        vars: &Vars,
    ) -> Result<ListPlan, QueryError> {
        for key in sort.keys() {
            if ColumnType::of(collection, key.field()) != Some(key.column) {
                return Err(QueryError::new(
                    0,
                    format!("cannot sort by field {:?}", key.field()),
                ));
            }
        }
        let mut selected: Vec<&str> = if columns.is_empty() {
            SYSTEM_FIELDS
                .iter()
                .copied()
                .chain(collection.fields.iter().map(|f| f.name.as_str()))
                .collect()
        } else {
            columns.iter().map(String::as_str).collect()
        };
        for name in sort.columns() {
            if !selected.contains(&name) {
                selected.push(name);
            }
        }
        let table = table_sql(collection);
        // `SELECT "posts"."title" AS "title", … FROM "posts"`, written into one buffer.
        let mut select_from =
            String::with_capacity(selected.len() * (2 * collection.name.len() + 24));
        select_from.push_str("SELECT ");
        for (i, name) in selected.into_iter().enumerate() {
            // Projections come from `parse_fields`, but a stale or hand-made one must not
            // reach SQL.
            if !collection.has_column(name) {
                return Err(QueryError::new(0, format!("unknown field {name:?}")));
            }
            if i > 0 {
                select_from.push_str(", ");
            }
            push_column_sql(&mut select_from, collection, name);
            select_from.push_str(" AS ");
            crate::schema::push_quoted_ident(&mut select_from, name);
        }
        select_from.push_str(" FROM ");
        select_from.push_str(&table);
        let mut params = Vec::new();
        let conditions = conditions(collection, filter, rule, vars, &mut params)?;
        // The limit is written into the SQL, not bound: SQLite plans with a bound LIMIT's
        // value and so re-prepares such a statement on every run (measured: ~15% of a list
        // request). It is a number onebox computed, never request text. OFFSET stays bound
        // (no re-prepare).
        let limit = format!(" LIMIT {}", u64::from(limit) + 1);
        let order_by = format!(" ORDER BY {}", order_by_sql(collection, &sort));
        let mut plan = ListPlan {
            collection: Arc::clone(collection),
            sort,
            columns,
            table,
            select_from,
            conditions,
            params,
            order_by,
            limit,
            first: String::new(),
        };
        plan.first = plan.statement(None, &plan.order_by);
        Ok(plan)
    }

    /// The sort the rows come in (a cursor for this listing must be made for it).
    pub fn sort(&self) -> &Sort {
        &self.sort
    }

    /// The projection asked for (empty = every column).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The statements of one page, with their parameters: one, or two for a cursor whose rows
    /// lie in two index ranges (see `keyset_segments`). Run them in order and stop once
    /// `limit + 1` rows are read; together they give the rows in sort order. Rows before a
    /// `before` cursor come nearest first (ordered by `sort.reversed()`), for the caller to
    /// reverse. `offset` (page numbers) skips rows first and combines with `after`.
    pub fn statements(
        &self,
        after: Option<&Cursor>,
        before: Option<&Cursor>,
        offset: Option<u64>,
    ) -> Result<Vec<(String, Vec<SqlValue>)>, QueryError> {
        let mut statements = match (after, before) {
            (Some(_), Some(_)) => {
                return Err(QueryError::new(0, "use either after or before, not both"));
            }
            (None, None) => vec![(self.first.clone(), self.params.clone())],
            (Some(cursor), None) => self.keyset_statements(&self.sort, &self.order_by, cursor)?,
            // Rows before a cursor are the rows after it in the reverse order.
            (None, Some(before)) => {
                let reversed = self.sort.reversed();
                let cursor = before.for_sort(&reversed)?;
                let order_by = format!(" ORDER BY {}", order_by_sql(&self.collection, &reversed));
                self.keyset_statements(&reversed, &order_by, &cursor)?
            }
        };
        if let (Some(offset), [(sql, params)]) = (offset, statements.as_mut_slice()) {
            let offset =
                i64::try_from(offset).map_err(|_| QueryError::new(0, "offset too large"))?;
            sql.push_str(" OFFSET ?");
            params.push(SqlValue::Integer(offset));
        }
        Ok(statements)
    }

    /// `SELECT COUNT(*)` of the rows the filter and rule let through, for a listing's total.
    pub fn count_sql(&self) -> (String, Vec<SqlValue>) {
        (
            count_statement(&self.table, &self.conditions),
            self.params.clone(),
        )
    }

    /// One statement per keyset segment of `cursor`, in `sort` order (`order_by` is its
    /// ORDER BY clause).
    fn keyset_statements(
        &self,
        sort: &Sort,
        order_by: &str,
        cursor: &Cursor,
    ) -> Result<Vec<(String, Vec<SqlValue>)>, QueryError> {
        Ok(keyset_segments(&self.collection, sort, cursor)?
            .into_iter()
            .map(|(keyset, keyset_params)| {
                let mut params = self.params.clone();
                params.extend(keyset_params);
                (self.statement(Some(&keyset), order_by), params)
            })
            .collect())
    }

    /// `SELECT … FROM … [WHERE conditions [AND keyset]] ORDER BY … LIMIT …`.
    fn statement(&self, keyset: Option<&str>, order_by: &str) -> String {
        let mut sql = String::with_capacity(self.select_from.len() + order_by.len() + 256);
        sql.push_str(&self.select_from);
        push_where(
            &mut sql,
            self.conditions.iter().map(String::as_str).chain(keyset),
        );
        sql.push_str(order_by);
        sql.push_str(&self.limit);
        sql
    }
}

/// Build the page query of `spec` (see `ListPlan::new` and `ListPlan::statements`).
#[cfg(test)]
pub fn list_sql(
    collection: &Collection,
    spec: &ListSpec<'_>,
    vars: &Vars,
) -> Result<Vec<(String, Vec<SqlValue>)>, QueryError> {
    ListPlan::new(
        &Arc::new(collection.clone()),
        spec.filter,
        spec.rule,
        spec.sort.clone(),
        spec.columns.to_vec(),
        spec.limit,
        vars,
    )?
    .statements(spec.after, spec.before, spec.offset)
}

/// Build `SELECT COUNT(*) FROM <table> [WHERE (filter) AND (rule)]` for a listing's total.
#[cfg(test)]
pub fn count_sql(
    collection: &Collection,
    filter: Option<&Expr>,
    rule: Option<&Expr>,
    vars: &Vars,
) -> Result<(String, Vec<SqlValue>), QueryError> {
    let mut params = Vec::new();
    let clauses = conditions(collection, filter, rule, vars, &mut params)?;
    Ok((count_statement(&table_sql(collection), &clauses), params))
}

fn count_statement(table: &str, clauses: &[String]) -> String {
    let mut sql = String::from("SELECT COUNT(*) FROM ");
    sql.push_str(table);
    push_where(&mut sql, clauses.iter().map(String::as_str));
    sql
}

fn conditions(
    collection: &Collection,
    filter: Option<&Expr>,
    rule: Option<&Expr>,
    vars: &Vars,
    params: &mut Vec<SqlValue>,
) -> Result<Vec<String>, QueryError> {
    [filter, rule]
        .into_iter()
        .flatten()
        .map(|expr| compile(expr, collection, vars, params))
        .collect()
}

/// ` WHERE a AND b …`, or nothing without clauses.
fn push_where<'a>(sql: &mut String, clauses: impl Iterator<Item = &'a str>) {
    for (i, clause) in clauses.enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(clause);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::query::test_support::{posts, vars};
    use crate::query::{parse_filter, parse_sort};

    #[test]
    fn fields_are_checked_deduplicated_and_include_id() {
        let c = posts();
        assert_eq!(
            parse_fields("title,year", &c).unwrap(),
            ["id", "title", "year"]
        );
        assert_eq!(parse_fields(" year , id,year", &c).unwrap(), ["year", "id"]);
        assert_eq!(parse_fields("", &c).unwrap(), all_columns(&c));
        assert_eq!(all_columns(&c)[..4], ["id", "created", "updated", "title"]);
        let err = parse_fields("title, rowid", &c).unwrap_err();
        assert_eq!(
            (err.position, err.message.as_str()),
            (7, "unknown field \"rowid\"")
        );
        assert_eq!(parse_fields("title,,year", &c).unwrap_err().position, 6);
        assert_eq!(parse_fields("sqlite_master", &c).unwrap_err().position, 0);
        assert_eq!(parse_fields("title\n", &c).unwrap(), ["id", "title"]);
    }

    #[test]
    fn list_sql_combines_filter_rule_keyset_sort_and_limit() {
        let c = posts();
        let filter = parse_filter("year >= 2020", &c).unwrap();
        let rule = parse_filter("owner = @me", &c).unwrap();
        let sort = parse_sort("-year", &c).unwrap();
        let cursor = crate::query::cursor_from_values(
            &sort,
            vec![SqlValue::Integer(2021), SqlValue::Text("01X".into())],
        )
        .unwrap();
        let columns = vec!["id".to_owned(), "title".to_owned()];
        let spec = ListSpec {
            filter: Some(&filter),
            rule: Some(&rule),
            sort: &sort,
            after: Some(&cursor),
            before: None,
            limit: 10,
            offset: None,
            columns: &columns,
        };
        let statements = list_sql(&c, &spec, &vars(Some("u1"))).unwrap();
        // `year` is optional and sorted descending: the rows after 2021 lie in two index ranges,
        // the values below the cursor and then the NULLs, read one after the other.
        let arm = |keyset: &str| {
            format!(
                concat!(
                    r#"SELECT "posts"."id" AS "id", "posts"."title" AS "title", "posts"."year" AS "year" "#,
                    r#"FROM "posts" WHERE ("posts"."year" >= ?) AND ("posts"."owner" = ?) AND {} "#,
                    r#"ORDER BY "posts"."year" DESC, "posts"."id" DESC LIMIT 11"#
                ),
                keyset
            )
        };
        assert_eq!(statements.len(), 2);
        assert_eq!(
            statements[0].0,
            arm(
                r#"("posts"."year" <= ? AND (("posts"."year" < ?) OR ("posts"."year" = ? AND "posts"."id" < ?)))"#
            )
        );
        assert_eq!(statements[1].0, arm(r#"("posts"."year" IS NULL)"#));
        assert_eq!(
            statements[0].1,
            vec![
                SqlValue::Integer(2020),
                SqlValue::Text("u1".into()),
                SqlValue::Integer(2021),
                SqlValue::Integer(2021),
                SqlValue::Integer(2021),
                SqlValue::Text("01X".into()),
            ]
        );
        assert_eq!(
            statements[1].1,
            vec![SqlValue::Integer(2020), SqlValue::Text("u1".into())]
        );
    }

    #[test]
    fn list_sql_before_a_cursor_reads_the_reverse_order_from_it() {
        let c = posts();
        let sort = parse_sort("title", &c).unwrap();
        let cursor = crate::query::cursor_from_values(
            &sort,
            vec![SqlValue::Text("m".into()), SqlValue::Text("01X".into())],
        )
        .unwrap();
        let columns = vec!["id".to_owned()];
        let spec = ListSpec {
            filter: None,
            rule: None,
            sort: &sort,
            after: None,
            before: Some(&cursor),
            limit: 2,
            offset: None,
            columns: &columns,
        };
        let statements = list_sql(&c, &spec, &vars(None)).unwrap();
        // Descending from "m": the smaller titles, then the NULLs, which sort first ascending
        // and so come last read backwards.
        assert_eq!(statements.len(), 2);
        let select = r#"SELECT "posts"."id" AS "id", "posts"."title" AS "title" FROM "posts" "#;
        let order = r#" ORDER BY "posts"."title" DESC, "posts"."id" DESC LIMIT 3"#;
        assert_eq!(
            statements[0].0,
            format!(
                "{select}{}{order}",
                concat!(
                    r#"WHERE ("posts"."title" <= ? AND (("posts"."title" < ?) OR "#,
                    r#"("posts"."title" = ? AND "posts"."id" < ?)))"#
                )
            )
        );
        assert_eq!(
            statements[1].0,
            format!(r#"{select}WHERE ("posts"."title" IS NULL){order}"#)
        );
        let both = ListSpec {
            after: Some(&cursor),
            ..spec
        };
        assert_eq!(
            list_sql(&c, &both, &vars(None)).unwrap_err().message,
            "use either after or before, not both"
        );
    }

    #[test]
    fn list_sql_without_conditions_has_no_where_and_selects_every_column() {
        let c = posts();
        let sort = Sort::default();
        let spec = ListSpec {
            filter: None,
            rule: None,
            sort: &sort,
            after: None,
            before: None,
            limit: u32::MAX,
            offset: None,
            columns: &[],
        };
        let (sql, params) = list_sql(&c, &spec, &vars(None)).unwrap().remove(0);
        assert!(sql.starts_with(r#"SELECT "posts"."id" AS "id", "posts"."created" AS "created""#));
        assert!(sql.ends_with(r#"FROM "posts" ORDER BY "posts"."id" ASC LIMIT 4294967296"#));
        assert!(params.is_empty());
    }

    #[test]
    fn list_sql_refuses_unchecked_columns_and_huge_offsets() {
        let c = posts();
        let sort = Sort::default();
        let columns = vec!["x\" --".to_owned()];
        let spec = ListSpec {
            filter: None,
            rule: None,
            sort: &sort,
            after: None,
            before: None,
            limit: 1,
            offset: None,
            columns: &columns,
        };
        assert_eq!(
            list_sql(&c, &spec, &vars(None)).unwrap_err().message,
            "unknown field \"x\\\" --\""
        );
        let spec = ListSpec {
            columns: &[],
            offset: Some(u64::MAX),
            ..spec
        };
        assert!(list_sql(&c, &spec, &vars(None)).is_err());
    }

    #[test]
    fn count_sql_uses_filter_and_rule() {
        let c = posts();
        let filter = parse_filter("title ~ \"a\"", &c).unwrap();
        let (sql, params) = count_sql(&c, Some(&filter), None, &vars(None)).unwrap();
        assert_eq!(
            sql,
            r#"SELECT COUNT(*) FROM "posts" WHERE ("posts"."title" LIKE '%' || ? || '%' ESCAPE '\')"#
        );
        assert_eq!(params, vec![SqlValue::Text("a".into())]);
        let (sql, params) = count_sql(&c, None, None, &vars(None)).unwrap();
        assert_eq!(sql, r#"SELECT COUNT(*) FROM "posts""#);
        assert!(params.is_empty());
    }
}
