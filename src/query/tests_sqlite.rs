//! End-to-end tests: compiled filters, sorts and keyset cursors run against a real SQLite file
//! with a STRICT table, checking the rows that come back rather than the SQL text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rusqlite::Connection;

use super::test_support::{Lcg, ids_where, insert, int, posts, posts_db, real, text, vars};
use super::*;

fn filter_ids(conn: &Connection, filter: &str, me: Option<&str>) -> Vec<String> {
    let c = posts();
    let expr = parse_filter(filter, &c).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    let mut params = Vec::new();
    let sql = compile(&expr, &c, &vars(me), &mut params).unwrap();
    ids_where(conn, &sql, &params)
}

/// Five rows covering every type, with NULLs spread around.
fn filter_fixture() -> (tempfile::TempDir, Connection) {
    let (dir, conn) = posts_db();
    insert(
        &conn,
        "r1",
        &[
            ("title", text("Rust in Action")),
            ("year", int(2021)),
            ("score", real(4.5)),
            ("featured", int(1)),
            ("published", text("2024-01-10T00:00:00.000Z")),
            ("email", text("a@x.io")),
            ("site", text("https://a.io")),
            ("owner", text("u1")),
            ("status", text("live")),
            ("tags", text(r#"["rust","web"]"#)),
            ("meta", text(r#"{"k":"v"}"#)),
            ("path", text(r#"["a"]"#)),
        ],
    );
    insert(
        &conn,
        "r2",
        &[
            ("title", text("SQL 100% _fast_")),
            ("year", int(2019)),
            ("score", real(3.0)),
            ("featured", int(0)),
            ("published", text("2024-07-01T00:00:00.000Z")),
            ("email", text("b@y.io")),
            ("owner", text("u2")),
            ("status", text("draft")),
            ("tags", text(r#"["sql"]"#)),
            ("path", text(r#"["b"]"#)),
        ],
    );
    insert(
        &conn,
        "r3",
        &[
            ("title", text("rust tips")),
            ("year", int(2020)),
            ("owner", text("u1")),
            ("tags", text("[]")),
            ("meta", text(r#"{"rust":true}"#)),
        ],
    );
    insert(
        &conn,
        "r4",
        &[
            ("score", real(-1.5)),
            ("featured", int(1)),
            ("published", text("2023-12-31T23:00:00.000Z")),
            ("status", text("live")),
            ("path", text(r#"["a","b"]"#)),
        ],
    );
    insert(
        &conn,
        "r5",
        &[
            ("title", text("Back\\slash")),
            ("year", int(2022)),
            ("score", real(10.0)),
            ("featured", int(0)),
            ("published", text("2024-05-31T23:59:59.999Z")),
            ("owner", text("u3")),
            ("status", text("draft")),
            ("tags", text(r#"["web"]"#)),
            ("path", text("[]")),
        ],
    );
    (dir, conn)
}

#[test]
fn filters_select_the_right_rows_for_every_type_and_operator() {
    let (_dir, conn) = filter_fixture();
    let cases: &[(&str, &[&str])] = &[
        // text: contains is ASCII case-insensitive and literal about wildcards
        (r#"title ~ "rust""#, &["r1", "r3"]),
        (r#"title !~ "rust""#, &["r2", "r4", "r5"]),
        (r#"!(title ~ "rust")"#, &["r2", "r4", "r5"]),
        (r#"title ~ "100%""#, &["r2"]),
        (r#"title ~ "%""#, &["r2"]),
        (r#"title ~ "_""#, &["r2"]),
        (r#"title ~ "\\""#, &["r5"]),
        (r#"title ~ """#, &["r1", "r2", "r3", "r5"]),
        (r#"title = "rust tips""#, &["r3"]),
        (r#"title != "rust tips""#, &["r1", "r2", "r4", "r5"]),
        (r#"!(title = "rust tips")"#, &["r1", "r2", "r4", "r5"]),
        (r#"title = null"#, &["r4"]),
        (r#"title != null"#, &["r1", "r2", "r3", "r5"]),
        (r#"title > "S""#, &["r2", "r3"]),
        (r#"title <= "Rust in Action""#, &["r1", "r5"]),
        (r#"email ~ "@X.IO""#, &["r1"]),
        (r#"site = "https://a.io""#, &["r1"]),
        (r#"id = "r3""#, &["r3"]),
        (r#"id > "r3""#, &["r4", "r5"]),
        (r#"status = "live""#, &["r1", "r4"]),
        (r#"status != "live""#, &["r2", "r3", "r5"]),
        // numbers: integer and real columns, integer and float literals
        ("year >= 2020", &["r1", "r3", "r5"]),
        ("year < 2020", &["r2"]),
        ("year != 2020", &["r1", "r2", "r4", "r5"]),
        ("year = 2021.0", &["r1"]),
        ("year > 2020.5", &["r1", "r5"]),
        ("!(year > 2020)", &["r2", "r3", "r4"]),
        ("score > 3", &["r1", "r5"]),
        ("score = 3", &["r2"]),
        ("score <= -1", &["r4"]),
        ("score = null", &["r3"]),
        // bools
        ("featured = true", &["r1", "r4"]),
        ("featured = false", &["r2", "r5"]),
        ("featured != true", &["r2", "r3", "r5"]),
        ("featured = null", &["r3"]),
        // datetimes: literals are normalised before comparing as text
        ("published < @now", &["r1", "r4", "r5"]),
        (
            r#"published > "2024-01-01T00:00:00+01:00""#,
            &["r1", "r2", "r5"],
        ),
        (r#"published = "2023-12-31T23:00:00Z""#, &["r4"]),
        (
            r#"created = "2024-01-01T00:00:00Z""#,
            &["r1", "r2", "r3", "r4", "r5"],
        ),
        ("updated > @now", &[]),
        // multiple select: element tests, even on a field named like a json_each column
        (r#"tags ~ "rust""#, &["r1"]),
        (r#"tags ~ "web""#, &["r1", "r5"]),
        (r#"tags ~ "RUST""#, &[]),
        (r#"tags ~ "ru""#, &[]),
        (r#"tags !~ "web""#, &["r2", "r3", "r4"]),
        (r#"!(tags ~ "web")"#, &["r2", "r3", "r4"]),
        ("tags = null", &["r4"]),
        ("tags != null", &["r1", "r2", "r3", "r5"]),
        (r#"path ~ "a""#, &["r1", "r4"]),
        (r#"path !~ "a""#, &["r2", "r3", "r5"]),
        // json: substring of the stored text
        (r#"meta ~ "rust""#, &["r3"]),
        (r#"meta !~ "k""#, &["r2", "r3", "r4", "r5"]),
        ("meta = null", &["r2", "r4", "r5"]),
        // combinations
        (
            r#"title ~ "rust" && (year >= 2021 || featured = true)"#,
            &["r1"],
        ),
        (
            r#"title ~ "rust" || status = "live" && score < 0"#,
            &["r1", "r3", "r4"],
        ),
        (r#"!(title ~ "rust" || year = null)"#, &["r2", "r5"]),
        (r#"!!(year = 2020)"#, &["r3"]),
        // hostile text is just a value
        (r#"title = "x\" --""#, &[]),
        (r#"title = '; DROP TABLE posts; --'"#, &[]),
        (r#"title ~ "' OR 1=1 --""#, &[]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            &filter_ids(&conn, filter, None),
            expected,
            "filter {filter}"
        );
    }
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM posts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 5);
}

#[test]
fn me_matches_the_caller_and_an_anonymous_caller_matches_nothing() {
    let (_dir, conn) = filter_fixture();
    assert_eq!(filter_ids(&conn, "owner = @me", Some("u1")), ["r1", "r3"]);
    assert_eq!(
        filter_ids(&conn, "owner != @me", Some("u1")),
        ["r2", "r4", "r5"]
    );
    assert_eq!(
        filter_ids(&conn, "!(owner = @me)", Some("u1")),
        ["r2", "r4", "r5"]
    );
    let none: &[&str] = &[];
    assert_eq!(filter_ids(&conn, "owner = @me", None), none);
    assert_eq!(filter_ids(&conn, "owner != @me", None), none);
    assert_eq!(filter_ids(&conn, "!(owner = @me)", None), none);
    assert_eq!(filter_ids(&conn, "!(owner != @me)", None), none);
    assert_eq!(
        filter_ids(&conn, "owner = @me || featured = true", None),
        ["r1", "r4"]
    );
    // A hostile user id is a value too.
    assert_eq!(filter_ids(&conn, "owner = @me", Some("' OR 1=1 --")), none);
}

#[test]
fn count_and_list_apply_filter_and_rule_together() {
    let (_dir, conn) = filter_fixture();
    let c = posts();
    let filter = parse_filter(r#"title ~ "rust""#, &c).unwrap();
    let rule = parse_filter("owner = @me", &c).unwrap();
    let me = vars(Some("u1"));
    let (sql, params) = count_sql(&c, Some(&filter), Some(&rule), &me).unwrap();
    let n: i64 = conn
        .query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    let (sql, params) = count_sql(&c, None, Some(&rule), &vars(None)).unwrap();
    let n: i64 = conn
        .query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);

    let sort = parse_sort("-year", &c).unwrap();
    let columns = parse_fields("title", &c).unwrap();
    let spec = ListSpec {
        filter: Some(&filter),
        rule: Some(&rule),
        sort: &sort,
        after: None,
        before: None,
        limit: 10,
        offset: None,
        columns: &columns,
    };
    let (sql, params) = list_sql(&c, &spec, &me).unwrap().remove(0);
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows: Vec<(String, String, i64)> = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            Ok((r.get("id")?, r.get("title")?, r.get("year")?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("r1".into(), "Rust in Action".into(), 2021),
            ("r3".into(), "rust tips".into(), 2020)
        ]
    );
}

/// A random filter from a small grammar; many are ill-typed, which is the point.
fn random_filter(rng: &mut Lcg, depth: usize) -> String {
    const FIELDS: [&str; 10] = [
        "title",
        "year",
        "score",
        "featured",
        "published",
        "tags",
        "path",
        "meta",
        "owner",
        "id",
    ];
    const OPS: [&str; 8] = ["=", "!=", "~", "!~", ">", ">=", "<", "<="];
    const VALUES: [&str; 10] = [
        "\"rust\"",
        "'%_\\\\'",
        "2020",
        "-2.5",
        "true",
        "false",
        "null",
        "@me",
        "@now",
        "\"2024-01-01T00:00:00Z\"",
    ];
    match if depth == 0 { 0 } else { rng.pick(4) } {
        0 => format!(
            "{} {} {}",
            FIELDS[rng.pick(FIELDS.len())],
            OPS[rng.pick(OPS.len())],
            VALUES[rng.pick(VALUES.len())]
        ),
        1 => format!(
            "({} && {})",
            random_filter(rng, depth - 1),
            random_filter(rng, depth - 1)
        ),
        2 => format!(
            "{} || {}",
            random_filter(rng, depth - 1),
            random_filter(rng, depth - 1)
        ),
        _ => format!("!({})", random_filter(rng, depth - 1)),
    }
}

#[test]
fn random_inputs_never_panic_and_accepted_filters_always_run() {
    let (_dir, conn) = filter_fixture();
    let c = posts();
    let junk = [
        "(", ")", "!", "&&", "||", "\"", "'", "\\", "1e400", "@x", "\0", "é", ",", "-", ";",
        "rowid", "x\" --",
    ];
    let mut rng = Lcg(42);
    let mut accepted = 0;
    for round in 0..3000 {
        let mut input = random_filter(&mut rng, 4);
        // Break a third of them with a piece of junk at a random character boundary.
        if round % 3 == 0 {
            let at = rng.pick(input.chars().count() + 1);
            let byte = input.char_indices().nth(at).map_or(input.len(), |(i, _)| i);
            input.insert_str(byte, junk[rng.pick(junk.len())]);
        }
        let _ = parse_sort(&input, &c);
        let _ = parse_fields(&input, &c);
        let _ = Cursor::decode(&input, &Sort::default());
        let expr = match parse_filter(&input, &c) {
            Ok(expr) => expr,
            Err(e) => {
                assert!(e.position <= input.chars().count(), "{input:?}: {e}");
                continue;
            }
        };
        accepted += 1;
        let me = if round % 2 == 0 { Some("u1") } else { None };
        let mut params = Vec::new();
        let sql = compile(&expr, &c, &vars(me), &mut params).unwrap();
        assert_eq!(sql.matches('?').count(), params.len(), "{input:?}");
        ids_where(&conn, &sql, &params);
    }
    assert!(accepted > 100, "only {accepted} inputs parsed");
}
