//! Guards on the SQL the list builder produces, as SQLite executes it: statements stay in the
//! statement cache without re-preparing, and cursor pages are index ranges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rusqlite::types::Value as SqlValue;

use super::test_support::{insert, int, posts, posts_db, text, vars};

/// A list statement must be reusable from the statement cache: SQLite re-prepares statements
/// whose plan depends on a bound value, which cost ~15% of a list for a bound LIMIT and ~25%
/// for a filter on an analyzed index. The second needs SQLite built without STAT4 (the
/// `LIBSQLITE3_FLAGS` in `.cargo/config.toml`): with STAT4 samples in `sqlite_stat4`, every new
/// binding of a value compared with an indexed column re-plans the statement.
#[test]
fn list_statements_are_not_re_prepared_between_runs() {
    let (_dir, conn) = posts_db();
    conn.execute_batch(r#"CREATE INDEX "ix_year" ON "posts" ("year", "id");"#)
        .unwrap();
    // Skewed years, so sampled statistics would differ by value; then gather them as
    // `PRAGMA optimize` does.
    for i in 0..400 {
        let year = if i % 4 == 0 { 1990 + i % 40 } else { 2020 };
        insert(&conn, &format!("{i:026}"), &[("year", int(year))]);
    }
    conn.execute_batch("ANALYZE").unwrap();
    let c = posts();
    let sort = crate::query::parse_sort("-year", &c).unwrap();
    for (year, offset) in [(2000, None), (2010, None), (1990, Some(3)), (2020, Some(7))] {
        let filter = crate::query::parse_filter(&format!("year >= {year}"), &c).unwrap();
        let spec = crate::query::ListSpec {
            filter: Some(&filter),
            rule: None,
            sort: &sort,
            after: None,
            before: None,
            limit: 20,
            offset,
            columns: &[],
        };
        let (sql, params) = crate::query::list_sql(&c, &spec, &vars(None))
            .unwrap()
            .remove(0);
        let mut stmt = conn.prepare_cached(&sql).unwrap();
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).unwrap();
        while rows.next().unwrap().is_some() {}
        drop(rows);
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{sql}"
        );
    }
}

/// Deep cursor pages must start at the cursor in the index, not step over earlier rows: every
/// arm of a keyset query is an index range (descending on an optional field included).
#[test]
fn keyset_pages_are_index_ranges() {
    let (_dir, conn) = posts_db();
    conn.execute_batch(r#"CREATE INDEX "ix_year" ON "posts" ("year", "id"); CREATE INDEX "ix_created" ON "posts" ("created", "id");"#)
        .unwrap();
    let c = posts();
    for spec_text in ["-year", "year", "-created", "created"] {
        let sort = crate::query::parse_sort(spec_text, &c).unwrap();
        let value = if spec_text.ends_with("year") {
            SqlValue::Integer(2000)
        } else {
            text("2024-01-01T00:00:00.000Z")
        };
        let cursor = crate::query::cursor_from_values(
            &sort,
            vec![value, text("01HZZZZZZZZZZZZZZZZZZZZZZZ")],
        )
        .unwrap();
        // Pages before a cursor walk the same index the other way.
        for backwards in [false, true] {
            let spec = crate::query::ListSpec {
                filter: None,
                rule: None,
                sort: &sort,
                after: (!backwards).then_some(&cursor),
                before: backwards.then_some(&cursor),
                limit: 20,
                offset: None,
                columns: &[],
            };
            let mut plan: Vec<String> = Vec::new();
            for (sql, params) in crate::query::list_sql(&c, &spec, &vars(None)).unwrap() {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                plan.extend(
                    stmt.query_map(rusqlite::params_from_iter(params), |r| {
                        r.get::<_, String>(3)
                    })
                    .unwrap()
                    .map(Result::unwrap),
                );
            }
            let scans: Vec<&String> = plan
                .iter()
                .filter(|l| l.contains("posts") && !l.contains("SEARCH"))
                .collect();
            assert!(
                scans.is_empty(),
                "{spec_text} (backwards: {backwards}): full scans in {plan:#?}"
            );
            assert!(
                !plan.iter().any(|l| l.contains("TEMP B-TREE")),
                "{spec_text} (backwards: {backwards}): a sort step in {plan:#?}"
            );
        }
    }
}
