//! Test fixtures: a hand-built collection with one field of every type, the STRICT table that
//! stores it, and helpers to fill and query that table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use super::Vars;
use crate::schema::{Collection, CollectionSpec, Field, FieldKind, OnDelete, Rules};

/// Fixed "now" so tests are reproducible.
pub(crate) const NOW: &str = "2024-06-01T00:00:00.000Z";

fn field(name: &str, kind: FieldKind) -> Field {
    Field {
        name: name.into(),
        required: false,
        unique: false,
        indexed: false,
        default: None,
        kind,
    }
}

/// A `posts` collection with a field of every kind.
pub(crate) fn posts() -> Collection {
    let fields = vec![
        field(
            "title",
            FieldKind::Text {
                min: None,
                max: None,
                pattern: None,
            },
        ),
        field(
            "year",
            FieldKind::Number {
                min: None,
                max: None,
                integer: true,
            },
        ),
        field(
            "score",
            FieldKind::Number {
                min: None,
                max: None,
                integer: false,
            },
        ),
        field("featured", FieldKind::Bool),
        field("published", FieldKind::Datetime),
        field("email", FieldKind::Email),
        field("site", FieldKind::Url),
        field(
            "owner",
            FieldKind::Relation {
                collection: "users".into(),
                on_delete: OnDelete::SetNull,
            },
        ),
        field(
            "status",
            FieldKind::Select {
                values: vec!["draft".into(), "live".into()],
                multiple: false,
            },
        ),
        field(
            "tags",
            FieldKind::Select {
                values: vec!["rust".into(), "sql".into(), "web".into()],
                multiple: true,
            },
        ),
        field("meta", FieldKind::Json),
        // Named like json_each's own columns, to prove the SQL never confuses them.
        field(
            "path",
            FieldKind::Select {
                values: vec!["a".into(), "b".into()],
                multiple: true,
            },
        ),
    ];
    Collection {
        name: "posts".into(),
        fields,
        rules: Rules::default(),
        indexes: Vec::new(),
        spec: CollectionSpec {
            name: "posts".into(),
            fields: Vec::new(),
            rules: Default::default(),
            indexes: Vec::new(),
        },
    }
}

pub(crate) fn vars(me: Option<&str>) -> Vars {
    Vars {
        me: me.map(str::to_owned),
        now: NOW.into(),
    }
}

/// A fresh database file holding the `posts` table, as the schema module would create it.
pub(crate) fn posts_db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("test.db")).unwrap();
    // Test data is disposable: skip the fsync per insert that would dominate test time.
    conn.execute_batch(
        r#"PRAGMA synchronous = OFF;
        CREATE TABLE "posts" (
            "id" TEXT PRIMARY KEY NOT NULL,
            "created" TEXT NOT NULL,
            "updated" TEXT NOT NULL,
            "title" TEXT,
            "year" INTEGER,
            "score" REAL,
            "featured" INTEGER CHECK ("featured" IN (0, 1)),
            "published" TEXT,
            "email" TEXT,
            "site" TEXT,
            "owner" TEXT,
            "status" TEXT,
            "tags" TEXT,
            "meta" TEXT,
            "path" TEXT
        ) STRICT;"#,
    )
    .unwrap();
    (dir, conn)
}

/// Insert a row; `created`/`updated` default to a fixed time when not given.
pub(crate) fn insert(conn: &Connection, id: &str, values: &[(&str, SqlValue)]) {
    let mut names = vec!["id".to_owned()];
    let mut params = vec![SqlValue::Text(id.into())];
    for system in ["created", "updated"] {
        if !values.iter().any(|(n, _)| *n == system) {
            names.push(system.into());
            params.push(SqlValue::Text("2024-01-01T00:00:00.000Z".into()));
        }
    }
    for (name, value) in values {
        names.push((*name).into());
        params.push(value.clone());
    }
    let placeholders = vec!["?"; names.len()].join(", ");
    let sql = format!(
        "INSERT INTO \"posts\" ({}) VALUES ({placeholders})",
        names.join(", ")
    );
    conn.execute(&sql, rusqlite::params_from_iter(params))
        .unwrap();
}

/// Run `SELECT id ... WHERE <sql>` and return the ids in id order.
pub(crate) fn ids_where(conn: &Connection, sql: &str, params: &[SqlValue]) -> Vec<String> {
    // `sql` is compiler output: quoted identifiers and `?` placeholders only.
    let query = [
        "SELECT \"id\" FROM \"posts\" WHERE ",
        sql,
        " ORDER BY \"id\"",
    ]
    .concat();
    let mut stmt = conn.prepare(&query).unwrap();
    stmt.query_map(rusqlite::params_from_iter(params), |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub(crate) fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

/// A tiny deterministic generator, so failures reproduce.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn pick(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

pub(crate) fn int(i: i64) -> SqlValue {
    SqlValue::Integer(i)
}

pub(crate) fn real(f: f64) -> SqlValue {
    SqlValue::Real(f)
}
