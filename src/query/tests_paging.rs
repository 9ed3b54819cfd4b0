//! Paging against a real SQLite file: keyset cursors both ways and offsets, compared with a
//! plain ORDER BY over random rows full of ties and NULLs, also while rows are inserted.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use super::test_support::{Lcg, insert, int, posts, posts_db, real, text, vars};
use super::*;

/// A row with few distinct values per column, so sorts see many ties and NULLs.
fn random_row(conn: &Connection, rng: &mut Lcg, id: &str) {
    let years = [SqlValue::Null, int(2019), int(2020), int(2021)];
    let titles = [SqlValue::Null, text("a"), text("b"), text("B"), text("c")];
    let flags = [SqlValue::Null, int(0), int(1)];
    let scores = [SqlValue::Null, real(1.5), real(-2.0), real(3.0)];
    let dates = [
        SqlValue::Null,
        text("2024-01-01T00:00:00.000Z"),
        text("2024-02-01T00:00:00.000Z"),
    ];
    let statuses = [SqlValue::Null, text("draft"), text("live")];
    insert(
        conn,
        id,
        &[
            ("year", years[rng.pick(years.len())].clone()),
            ("title", titles[rng.pick(titles.len())].clone()),
            ("featured", flags[rng.pick(flags.len())].clone()),
            ("score", scores[rng.pick(scores.len())].clone()),
            ("published", dates[rng.pick(dates.len())].clone()),
            ("status", statuses[rng.pick(statuses.len())].clone()),
        ],
    );
}

/// Ids in order for the same filter and sort without any cursor: the reference order.
fn plain_order(conn: &Connection, sort: &Sort, filter: Option<&Expr>) -> Vec<String> {
    page(conn, sort, filter, None, u32::MAX - 1).0
}

/// One page as the records service would run it: the ids, and the encoded cursor for the
/// next page when a further row exists.
fn page(
    conn: &Connection,
    sort: &Sort,
    filter: Option<&Expr>,
    after: Option<&Cursor>,
    limit: u32,
) -> (Vec<String>, Option<String>) {
    let c = posts();
    let spec = ListSpec {
        filter,
        rule: None,
        sort,
        after,
        before: None,
        limit,
        offset: None,
        columns: &["id".to_owned(), "title".to_owned()],
    };
    let mut ids = Vec::new();
    let mut last = None;
    let mut next = None;
    // The statements are read in order until one row more than the page is seen.
    'statements: for (sql, params) in list_sql(&c, &spec, &vars(None)).unwrap() {
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).unwrap();
        while let Some(row) = rows.next().unwrap() {
            if ids.len() == limit as usize {
                next = last.take();
                break 'statements;
            }
            ids.push(row.get::<_, String>("id").unwrap());
            last = Some(cursor_after_row(sort, row).unwrap());
        }
    }
    (ids, next.map(|c: Cursor| c.encode()))
}

/// Walk every page through encoded cursors, as a client would.
fn walk(conn: &Connection, sort: &Sort, filter: Option<&Expr>, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let (ids, next) = page(conn, sort, filter, cursor.as_ref(), limit);
        assert!(ids.len() <= limit as usize);
        seen.extend(ids);
        match next {
            Some(text) => cursor = Some(Cursor::decode(&text, sort).unwrap()),
            None => return seen,
        }
    }
}

const SORTS: [&str; 9] = [
    "",
    "-id",
    "-year,title",
    "year,-title",
    "featured,-score",
    "-published,-year,featured",
    "status,-featured,score,title",
    "title,-created",
    "-score,-title,year,published,status",
];

#[test]
fn keyset_pages_visit_every_row_once_in_plain_order() {
    let (_dir, conn) = posts_db();
    let mut rng = Lcg(7);
    for i in 0..60 {
        random_row(&conn, &mut rng, &format!("r{i:03}"));
    }
    let c = posts();
    let filters = [
        None,
        Some(parse_filter("year != 2020 || title = null", &c).unwrap()),
    ];
    for spec in SORTS {
        let sort = parse_sort(spec, &c).unwrap();
        for filter in &filters {
            let expected = plain_order(&conn, &sort, filter.as_ref());
            for limit in [1, 3, 7, 100] {
                let seen = walk(&conn, &sort, filter.as_ref(), limit);
                assert_eq!(
                    seen, expected,
                    "sort {spec:?}, limit {limit}, filter {filter:?}"
                );
            }
        }
        // The reference order is SQLite's own ORDER BY over the same columns.
        assert_eq!(plain_order(&conn, &sort, None).len(), 60);
    }
}

/// The page of up to `limit` rows before `before`, as the records service reads it: the
/// statements give the nearest rows first; reversed, with the cursor of the page's first row
/// when more rows lie before it.
fn page_before(
    conn: &Connection,
    sort: &Sort,
    filter: Option<&Expr>,
    before: &Cursor,
    limit: u32,
) -> (Vec<String>, Option<String>) {
    let c = posts();
    let spec = ListSpec {
        filter,
        rule: None,
        sort,
        after: None,
        before: Some(before),
        limit,
        offset: None,
        columns: &["id".to_owned(), "title".to_owned()],
    };
    let mut ids = Vec::new();
    let mut first = None;
    let mut prev = None;
    'statements: for (sql, params) in list_sql(&c, &spec, &vars(None)).unwrap() {
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).unwrap();
        while let Some(row) = rows.next().unwrap() {
            if ids.len() == limit as usize {
                prev = first.take();
                break 'statements;
            }
            ids.push(row.get::<_, String>("id").unwrap());
            // Cursors are made for the sort the client asked for, not the reversed one.
            first = Some(cursor_after_row(sort, row).unwrap());
        }
    }
    ids.reverse();
    (ids, prev.map(|c: Cursor| c.encode()))
}

/// The cursor of row `id` under `sort`, read from the table.
fn cursor_of(conn: &Connection, sort: &Sort, id: &str) -> Cursor {
    let columns: Vec<String> = sort.columns().map(str::to_owned).collect();
    let select = columns
        .iter()
        .map(|c| crate::schema::quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    conn.query_row(
        &format!("SELECT {select} FROM posts WHERE id = ?1"),
        [id],
        |row| cursor_after_row(sort, row),
    )
    .unwrap()
}

#[test]
fn pages_before_a_cursor_walk_back_through_the_same_pages_in_plain_order() {
    let (_dir, conn) = posts_db();
    let mut rng = Lcg(5);
    for i in 0..50 {
        random_row(&conn, &mut rng, &format!("r{i:03}"));
    }
    let c = posts();
    let filters = [
        None,
        Some(parse_filter("year != 2020 || title = null", &c).unwrap()),
    ];
    for spec in SORTS {
        let sort = parse_sort(spec, &c).unwrap();
        for filter in &filters {
            let expected = plain_order(&conn, &sort, filter.as_ref());
            // Before the row at every position: exactly the rows ahead of it in plain order.
            for (i, id) in expected.iter().enumerate() {
                let at = cursor_of(&conn, &sort, id);
                let (ids, prev) = page_before(&conn, &sort, filter.as_ref(), &at, 100);
                assert_eq!(ids, expected[..i], "sort {spec:?}, before {id}");
                assert!(prev.is_none());
            }
            for limit in [1, 3, 7] {
                // Forward pages through `after` cursors, as the Next link walks them.
                let mut forward = Vec::new();
                let mut cursor: Option<Cursor> = None;
                loop {
                    let (ids, next) = page(&conn, &sort, filter.as_ref(), cursor.as_ref(), limit);
                    forward.push(ids);
                    match next {
                        Some(text) => cursor = Some(Cursor::decode(&text, &sort).unwrap()),
                        None => break,
                    }
                }
                // Back from the last page through `before` cursors (the Previous link: the
                // first row of the page shown) gives the same pages in reverse.
                let mut backward = vec![forward.last().unwrap().clone()];
                let mut before = forward
                    .last()
                    .unwrap()
                    .first()
                    .map(|id| cursor_of(&conn, &sort, id));
                while let Some(at) = before {
                    let (ids, prev) = page_before(&conn, &sort, filter.as_ref(), &at, limit);
                    backward.push(ids);
                    before = prev.map(|text| Cursor::decode(&text, &sort).unwrap());
                }
                if forward.len() == 1 && !forward[0].is_empty() {
                    // With a single page, "before its first row" is the empty page.
                    assert_eq!(backward.pop(), Some(Vec::new()));
                }
                backward.reverse();
                assert_eq!(
                    backward, forward,
                    "sort {spec:?}, limit {limit}, filter {filter:?}"
                );
                assert_eq!(backward.concat(), expected);
            }
        }
    }
}

#[test]
fn keyset_pages_stay_exact_while_rows_are_inserted() {
    let c = posts();
    for spec in SORTS {
        let (_dir, conn) = posts_db();
        let mut rng = Lcg(11);
        for i in 0..40 {
            random_row(&conn, &mut rng, &format!("r{i:03}"));
        }
        let originals = plain_order(&conn, &parse_sort("", &c).unwrap(), None);
        let sort = parse_sort(spec, &c).unwrap();
        let mut seen = Vec::new();
        // (inserted id, id of the last row seen when it was inserted)
        let mut inserted = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut n = 0;
        loop {
            let (ids, next) = page(&conn, &sort, None, cursor.as_ref(), 4);
            seen.extend(ids);
            let Some(text) = next else { break };
            cursor = Some(Cursor::decode(&text, &sort).unwrap());
            for _ in 0..3 {
                // Ids land between existing ones, so inserts fall on both sides of the cursor
                // even when sorting by id.
                let id = format!("r{:03}n{n:03}", rng.pick(40));
                n += 1;
                random_row(&conn, &mut rng, &id);
                inserted.push((id, seen.last().unwrap().clone()));
            }
        }
        let order = plain_order(&conn, &sort, None);
        let pos = |id: &str| order.iter().position(|o| o == id).unwrap();
        // Strictly increasing final positions: no row repeated, none out of order.
        for pair in seen.windows(2) {
            assert!(pos(&pair[0]) < pos(&pair[1]), "sort {spec:?}: {pair:?}");
        }
        for id in &originals {
            assert!(seen.contains(id), "sort {spec:?}: {id} skipped");
        }
        for (id, cursor_row) in &inserted {
            let after_cursor = pos(id) > pos(cursor_row);
            assert_eq!(
                seen.contains(id),
                after_cursor,
                "sort {spec:?}: new row {id}"
            );
        }
        // Both cases were exercised: new rows shown and new rows (rightly) not shown.
        assert!(
            inserted.iter().any(|(id, _)| seen.contains(id)),
            "sort {spec:?}"
        );
        assert!(
            inserted.iter().any(|(id, _)| !seen.contains(id)),
            "sort {spec:?}"
        );
    }
}

#[test]
fn offset_pages_follow_the_same_order() {
    let (_dir, conn) = posts_db();
    let mut rng = Lcg(3);
    for i in 0..20 {
        random_row(&conn, &mut rng, &format!("r{i:03}"));
    }
    let c = posts();
    let sort = parse_sort("-year,title", &c).unwrap();
    let all = plain_order(&conn, &sort, None);
    let spec = ListSpec {
        filter: None,
        rule: None,
        sort: &sort,
        after: None,
        before: None,
        limit: 5,
        offset: Some(10),
        columns: &[],
    };
    let (sql, params) = list_sql(&c, &spec, &vars(None)).unwrap().remove(0);
    let mut stmt = conn.prepare(&sql).unwrap();
    let ids: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(params), |r| r.get("id"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // limit + 1 rows: the extra one tells the caller that another page follows.
    assert_eq!(ids, all[10..16]);
}
