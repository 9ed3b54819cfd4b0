//! Keyset cursors: the sort-key values of the last row of a page, carried opaquely to the
//! client and back, and the WHERE fragment selecting the rows strictly after them.
//!
//! Wire form: base64url (no padding) of `{"s": <sort fingerprint>, "v": [<value>…]}` where a
//! value is `null`, `{"i": int}`, `{"r": "float"}` (text, so infinities and exact bits
//! survive) or `{"t": text}`. The cursor is not signed: it is only a
//! position, every value in it is bound as a parameter, and a forged one can only select rows
//! the filter and rules allow anyway.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};

use super::QueryError;
use super::column::{ColumnType, column_sql};
use super::sort::Sort;
use crate::schema::Collection;

/// Longest encoded cursor accepted; bounds the work spent on garbage.
const MAX_CURSOR_CHARS: usize = 64 * 1024;

/// A position in a sorted listing: the values of the sort keys of the last row seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    fingerprint: String,
    values: Vec<SqlValue>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    s: String,
    v: Vec<Option<WireValue>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
enum WireValue {
    #[serde(rename = "i")]
    Integer(i64),
    #[serde(rename = "r")]
    Real(String),
    #[serde(rename = "t")]
    Text(String),
}

fn invalid() -> QueryError {
    QueryError::new(0, "invalid cursor")
}

impl Cursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let wire = Wire {
            s: self.fingerprint.clone(),
            v: self
                .values
                .iter()
                .map(|v| match v {
                    SqlValue::Null => None,
                    SqlValue::Integer(i) => Some(WireValue::Integer(*i)),
                    SqlValue::Real(f) => Some(WireValue::Real(f.to_string())),
                    SqlValue::Text(t) => Some(WireValue::Text(t.clone())),
                    // Never present: `cursor_from_values` admits no blobs (no column holds one).
                    SqlValue::Blob(_) => None,
                })
                .collect(),
        };
        // Serialising plain strings and integers cannot fail; an empty cursor would simply be
        // rejected as invalid when it comes back.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decode a cursor made for `sort`. Garbage, a cursor for another sort, or values of the
    /// wrong type all give "invalid cursor" at position 0.
    pub fn decode(text: &str, sort: &Sort) -> Result<Cursor, QueryError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(invalid());
        }
        let json = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let wire: Wire = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if wire.s != sort.fingerprint() {
            return Err(invalid());
        }
        let values = wire
            .v
            .into_iter()
            .map(|v| {
                Ok(match v {
                    None => SqlValue::Null,
                    Some(WireValue::Integer(i)) => SqlValue::Integer(i),
                    Some(WireValue::Real(r)) => SqlValue::Real(r.parse().map_err(|_| invalid())?),
                    Some(WireValue::Text(t)) => SqlValue::Text(t),
                })
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        cursor_from_values(sort, values)
    }

    /// The sort-key values, in sort order.
    pub fn values(&self) -> &[SqlValue] {
        &self.values
    }

    /// The same position under `sort`, a sort over the same columns (its `reversed()` form):
    /// how a `before` cursor becomes an `after` cursor of the reverse order.
    pub fn for_sort(&self, sort: &Sort) -> Result<Cursor, QueryError> {
        cursor_from_values(sort, self.values.clone())
    }
}

/// Build a cursor from the values of `sort`'s keys (in key order), e.g. read from the last
/// row of a page. Fails when the count or a value's storage type does not fit the sort.
pub fn cursor_from_values(sort: &Sort, values: Vec<SqlValue>) -> Result<Cursor, QueryError> {
    if values.len() != sort.keys().len() {
        return Err(invalid());
    }
    for (key, value) in sort.keys().iter().zip(&values) {
        let fits = match (key.column, value) {
            // `id` is the unique, non-null tiebreaker that makes the order total.
            (_, SqlValue::Null) => key.field() != "id",
            (ColumnType::Text | ColumnType::Datetime, SqlValue::Text(_)) => true,
            (ColumnType::Number, SqlValue::Integer(_) | SqlValue::Real(_)) => true,
            (ColumnType::Bool, SqlValue::Integer(_)) => true,
            _ => false,
        };
        if !fits {
            return Err(invalid());
        }
    }
    Ok(Cursor {
        fingerprint: sort.fingerprint(),
        values,
    })
}

/// Build a cursor from a result row that contains the sort columns (by name), as the queries
/// from `ListPlan::statements` do. Meant for the last row of a page, inside a rusqlite row
/// mapper.
pub fn cursor_after_row(sort: &Sort, row: &rusqlite::Row<'_>) -> rusqlite::Result<Cursor> {
    let values = sort
        .columns()
        .map(|name| row.get::<_, SqlValue>(name))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    cursor_from_values(sort, values)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A SQL condition true for the rows strictly after `cursor` in `sort` order, appending its
/// parameters. For keys k1..kn it is the OR over i of (k1..k(i-1) equal AND ki after), where
/// "after" follows SQLite's NULL placement: NULLs first ascending, last descending.
pub fn keyset_sql(
    collection: &Collection,
    sort: &Sort,
    cursor: &Cursor,
    params: &mut Vec<SqlValue>,
) -> Result<String, QueryError> {
    keyset_condition(collection, sort, cursor, params, false)
}

/// Whether `field` may hold NULL. System fields never do, and required fields hold a value in
/// every row (a NOT NULL column), so their terms need no NULL branch.
fn nullable(collection: &Collection, field: &str) -> bool {
    !crate::schema::SYSTEM_FIELDS.contains(&field)
        && !collection.field(field).is_some_and(|f| f.required)
}

/// The rows after `cursor` as one or two conditions, each a range an index can serve, to be
/// read in order (the second only when the first runs out). Two when the first key is a
/// nullable one sorted descending from a non-NULL value: its NULL rows come last, and "less
/// than v or NULL" is no single index range, so a deep page would step over every row before
/// it. Each condition comes with its own parameters.
pub fn keyset_segments(
    collection: &Collection,
    sort: &Sort,
    cursor: &Cursor,
) -> Result<Vec<(String, Vec<SqlValue>)>, QueryError> {
    let first = sort.keys().first().zip(cursor.values.first());
    let split = first.is_some_and(|(key, v)| {
        key.descending() && *v != SqlValue::Null && nullable(collection, key.field())
    });
    let mut params = Vec::new();
    let main = keyset_condition(collection, sort, cursor, &mut params, split)?;
    let mut out = vec![(main, params)];
    if let (true, Some((key, _))) = (split, first) {
        let col = column_sql(collection, key.field());
        out.push((format!("({col} IS NULL)"), Vec::new()));
    }
    Ok(out)
}

/// The keyset condition; with `first_not_null`, rows whose first key is NULL are left out
/// (the caller reads them separately).
fn keyset_condition(
    collection: &Collection,
    sort: &Sort,
    cursor: &Cursor,
    params: &mut Vec<SqlValue>,
    first_not_null: bool,
) -> Result<String, QueryError> {
    if cursor.fingerprint != sort.fingerprint() || cursor.values.len() != sort.keys().len() {
        return Err(invalid());
    }
    let nullable =
        |i: usize, field: &str| !(first_not_null && i == 0) && nullable(collection, field);
    // Parameters of the branches; the bound's parameter comes first in the SQL text.
    let mut branch_params = Vec::new();
    let mut branches = Vec::new();
    for (i, (key, value)) in sort.keys().iter().zip(&cursor.values).enumerate() {
        let params = &mut branch_params;
        // Descending NULLs come last: nothing comes after NULL on this key.
        if key.descending() && *value == SqlValue::Null {
            continue;
        }
        let mut terms = Vec::new();
        for (prev_key, prev_value) in sort.keys()[..i].iter().zip(&cursor.values) {
            let prev_col = column_sql(collection, prev_key.field());
            terms.push(match prev_value {
                SqlValue::Null => format!("{prev_col} IS NULL"),
                v => bind(format!("{prev_col} = ?"), v, params),
            });
        }
        let col = column_sql(collection, key.field());
        terms.push(match (key.descending(), value) {
            // Ascending from NULL: every non-NULL value comes after.
            (false, SqlValue::Null) => format!("{col} IS NOT NULL"),
            (false, v) => bind(format!("{col} > ?"), v, params),
            (true, v) if nullable(i, key.field()) => {
                bind(format!("({col} < ? OR {col} IS NULL)"), v, params)
            }
            (true, v) => bind(format!("{col} < ?"), v, params),
        });
        branches.push(format!("({})", terms.join(" AND ")));
    }
    if branches.is_empty() {
        // The cursor sits on the very last possible position.
        return Ok("(0)".into());
    }
    // A redundant range on the first key lets SQLite start the index walk at the cursor
    // instead of skipping every earlier row (the OR of branches alone is not a range).
    let first = sort.keys().first().zip(cursor.values.first());
    let bound = match first {
        Some((key, v)) if *v != SqlValue::Null => {
            let col = column_sql(collection, key.field());
            match (key.descending(), nullable(0, key.field())) {
                (false, _) => Some(bind(format!("{col} >= ?"), v, params)),
                (true, false) => Some(bind(format!("{col} <= ?"), v, params)),
                // NULLs follow in descending order, so no single range covers the rest.
                (true, true) => None,
            }
        }
        _ => None,
    };
    params.append(&mut branch_params);
    let branches = branches.join(" OR ");
    Ok(match bound {
        Some(b) => format!("({b} AND ({branches}))"),
        None => format!("({branches})"),
    })
}

fn bind(sql: String, value: &SqlValue, params: &mut Vec<SqlValue>) -> String {
    params.push(value.clone());
    sql
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::query::parse_sort;
    use crate::query::test_support::posts;

    fn sort(spec: &str) -> Sort {
        parse_sort(spec, &posts()).unwrap()
    }

    fn encode_wire(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn cursors_round_trip_every_value_type() {
        let s = sort("-score,title,featured,published,year");
        for score in [0.1, -0.0, f64::INFINITY, 1e300, 3.0] {
            let values = vec![
                SqlValue::Real(score),
                SqlValue::Text("é \"x\" ,".into()),
                SqlValue::Integer(1),
                SqlValue::Null,
                SqlValue::Integer(i64::MIN),
                SqlValue::Text("01HZX".into()),
            ];
            let cursor = cursor_from_values(&s, values.clone()).unwrap();
            let text = cursor.encode();
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
            let back = Cursor::decode(&text, &s).unwrap();
            assert_eq!(back.values(), values.as_slice());
            if let SqlValue::Real(r) = back.values()[0] {
                assert_eq!(r.to_bits(), score.to_bits());
            }
        }
    }

    #[test]
    fn a_cursor_for_another_sort_is_invalid() {
        let a = sort("-year");
        let b = sort("year");
        let cursor =
            cursor_from_values(&a, vec![SqlValue::Integer(1), SqlValue::Text("x".into())]).unwrap();
        let err = Cursor::decode(&cursor.encode(), &b).unwrap_err();
        assert_eq!((err.position, err.message.as_str()), (0, "invalid cursor"));
        assert!(keyset_sql(&posts(), &b, &cursor, &mut Vec::new()).is_err());
    }

    #[test]
    fn garbage_and_tampered_cursors_are_invalid() {
        let s = sort("-year");
        let fp = s.fingerprint();
        let bad = [
            String::new(),
            "!!!".into(),
            "abc".into(),
            encode_wire("not json"),
            encode_wire("{}"),
            encode_wire(&format!(r#"{{"s":"{fp}","v":[{{"i":1}}]}}"#)),
            encode_wire(&format!(r#"{{"s":"{fp}","v":[{{"t":"1"}},{{"t":"x"}}]}}"#)),
            encode_wire(&format!(r#"{{"s":"{fp}","v":[{{"i":1}},null]}}"#)),
            encode_wire(&format!(
                r#"{{"s":"{fp}","v":[{{"r":"abc"}},{{"t":"x"}}]}}"#
            )),
            encode_wire(&format!(
                r#"{{"s":"{fp}","v":[{{"i":1}},{{"t":"x"}}],"z":1}}"#
            )),
            encode_wire(&format!(r#"{{"s":"{fp}","v":[{{"q":1}},{{"t":"x"}}]}}"#)),
            encode_wire(r#"{"s":"000000000000","v":[{"i":1},{"t":"x"}]}"#),
            "A".repeat(MAX_CURSOR_CHARS + 1),
        ];
        for text in bad {
            let err = Cursor::decode(&text, &s).unwrap_err();
            assert_eq!(err, QueryError::new(0, "invalid cursor"), "{text:?}");
        }
        let blob = vec![SqlValue::Blob(vec![1]), SqlValue::Text("x".into())];
        assert_eq!(cursor_from_values(&s, blob).unwrap_err(), invalid());
        let good = encode_wire(&format!(r#"{{"s":"{fp}","v":[null,{{"t":"x"}}]}}"#));
        assert!(Cursor::decode(&good, &s).is_ok());
    }

    #[test]
    fn keyset_handles_directions_and_nulls() {
        let s = sort("-year,title");
        let c = cursor_from_values(
            &s,
            vec![SqlValue::Null, SqlValue::Null, SqlValue::Text("r1".into())],
        )
        .unwrap();
        let mut params = Vec::new();
        let sql = keyset_sql(&posts(), &s, &c, &mut params).unwrap();
        // Descending from NULL: nothing after on year; ascending from NULL title: non-NULLs.
        assert_eq!(
            sql,
            concat!(
                r#"(("posts"."year" IS NULL AND "posts"."title" IS NOT NULL) OR "#,
                r#"("posts"."year" IS NULL AND "posts"."title" IS NULL AND "posts"."id" > ?))"#
            )
        );
        assert_eq!(params, vec![SqlValue::Text("r1".into())]);
    }
}
