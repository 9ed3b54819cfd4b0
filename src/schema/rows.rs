//! Record values on the way out: a stored row → a JSON object. This runs for every record read,
//! so the column → field lookup is done once per query (`RowReader::new`) and each row only
//! converts values. `write_json` writes the object straight into a byte buffer (the API's hot
//! path: no map, no per-value allocation); `values` gives the values alone, in column order
//! (the site's pages). `PageRows` collects a page of rows as JSON text or as values.

use std::ops::Range;

use rusqlite::Row;
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::{Number, Value};

use super::types::{Collection, FieldKind};

/// Converts rows of one query whose columns are known up front. It borrows nothing, so it can
/// be built before a job goes to the writer or to a reader thread.
#[derive(Debug, Clone)]
pub struct RowReader {
    /// Output key and the stored form of each selected column.
    columns: Vec<(String, Stored)>,
    /// `"key":` of each column, JSON-escaped once.
    keys: Vec<Vec<u8>>,
}

/// What a stored value needs beyond its storage class to become JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// System and computed columns, and every field converted by its storage class alone.
    Plain,
    /// 0/1 → false/true.
    Bool,
    /// Text holding JSON (json fields and multiple selects), checked and copied as it is.
    Json,
}

impl Stored {
    fn of(kind: Option<&FieldKind>) -> Self {
        match kind {
            Some(FieldKind::Bool) => Stored::Bool,
            Some(FieldKind::Json | FieldKind::Select { multiple: true, .. }) => Stored::Json,
            _ => Stored::Plain,
        }
    }
}

impl RowReader {
    /// A reader for rows whose columns, in order, are `columns` of collection `c`.
    pub fn new(c: &Collection, columns: &[String]) -> Self {
        let keys = columns
            .iter()
            .map(|name| {
                let mut k = serde_json::to_vec(name).unwrap_or_default();
                k.push(b':');
                k
            })
            .collect();
        let columns = columns
            .iter()
            .map(|name| (name.clone(), Stored::of(c.field(name).map(|f| &f.kind))))
            .collect();
        RowReader { columns, keys }
    }

    /// Append the JSON object for one row to `out`, in column order. Stored JSON (json and
    /// multiple select columns) is checked to be well-formed and copied as it is.
    pub fn write_json(&self, row: &Row<'_>, out: &mut Vec<u8>) -> rusqlite::Result<()> {
        out.push(b'{');
        for i in 0..self.columns.len() {
            self.write_column(i, row.get_ref(i)?, out)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// Append the JSON object of the row that storing `values` (one per column, in order) in a
    /// `STRICT` table writes, as `write_json` would read it back, without reading it. Each
    /// value must be of its column's storage class, as validation gives them: a `STRICT`
    /// table stores those as they are, except that a REAL column keeps a whole number as an
    /// integer, so a stored `-0.0` reads back as `0.0`.
    pub fn write_stored<'v>(
        &self,
        mut values: impl Iterator<Item = &'v SqlValue>,
        out: &mut Vec<u8>,
    ) -> rusqlite::Result<()> {
        out.push(b'{');
        for i in 0..self.columns.len() {
            let value = values
                .next()
                .ok_or(rusqlite::Error::InvalidColumnIndex(i))?;
            let raw = match ValueRef::from(value) {
                // -0.0 == 0.0: stored as the integer 0, it reads back as 0.0.
                ValueRef::Real(f) => ValueRef::Real(if f == 0.0 { 0.0 } else { f }),
                raw => raw,
            };
            self.write_column(i, raw, out)?;
        }
        if values.next().is_some() {
            return Err(rusqlite::Error::InvalidColumnIndex(self.columns.len()));
        }
        out.push(b'}');
        Ok(())
    }

    /// Append `"key":value` of column `i`, whose stored value is `raw` (a comma first unless
    /// it is the first column).
    fn write_column(&self, i: usize, raw: ValueRef<'_>, out: &mut Vec<u8>) -> rusqlite::Result<()> {
        let conversion = |m: &str| {
            rusqlite::Error::FromSqlConversionFailure(i, raw.data_type(), m.to_owned().into())
        };
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&self.keys[i]);
        let kind = self.columns[i].1;
        match raw {
            ValueRef::Null => out.extend_from_slice(b"null"),
            ValueRef::Integer(v) => match kind {
                Stored::Bool => out.extend_from_slice(if v != 0 { b"true" } else { b"false" }),
                _ => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
            },
            ValueRef::Real(f) if f.is_finite() => {
                out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes())
            }
            ValueRef::Real(_) => out.extend_from_slice(b"null"),
            ValueRef::Text(bytes) => {
                let s = std::str::from_utf8(bytes)
                    .map_err(|_| conversion("stored text is not UTF-8"))?;
                match kind {
                    Stored::Json => {
                        serde_json::from_str::<serde::de::IgnoredAny>(s)
                            .map_err(|_| conversion("stored JSON is malformed"))?;
                        out.extend_from_slice(bytes);
                    }
                    _ => push_json_str(out, s).map_err(|_| conversion("cannot write JSON"))?,
                }
            }
            ValueRef::Blob(_) => return Err(conversion("unexpected binary value")),
        }
        Ok(())
    }

    /// The JSON object for one row (for tests, which compare whole records).
    #[cfg(test)]
    pub fn read(&self, row: &Row<'_>) -> rusqlite::Result<serde_json::Map<String, Value>> {
        let names = self.columns.iter().map(|(name, _)| name.clone());
        Ok(names.zip(self.values(row)?).collect())
    }

    /// The values of one row, in column order.
    pub fn values(&self, row: &Row<'_>) -> rusqlite::Result<Vec<Value>> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (i, (_, kind)) in self.columns.iter().enumerate() {
            let raw = row.get_ref(i)?;
            let value = decode_as(*kind, raw).map_err(|m| {
                rusqlite::Error::FromSqlConversionFailure(i, raw.data_type(), m.into())
            })?;
            out.push(value);
        }
        Ok(out)
    }
}

/// A page of rows, collected in the form its reader wants: JSON text for the API
/// (`JsonRows`), values for the site's pages (`ValueRows`), so neither pays for turning the
/// other's form into its own. The site's list page used to parse the page's JSON back into
/// maps: it now costs about 15% less CPU.
pub trait PageRows: Send + 'static {
    /// An empty page of rows that `reader` will convert, with room for `rows` of them.
    fn new(reader: &RowReader, rows: usize) -> Self;
    /// Append one row, converted by `reader`.
    fn add_row(&mut self, reader: &RowReader, row: &Row<'_>) -> rusqlite::Result<()>;
    /// Turn the rows added so far end to end (a page read backwards comes nearest row first).
    fn reverse_rows(&mut self);
}

/// A page of rows as JSON objects, in one buffer.
#[derive(Debug)]
pub struct JsonRows {
    text: Vec<u8>,
    /// Where each row's object lies in `text`, in page order.
    spans: Vec<Range<usize>>,
}

impl JsonRows {
    /// Append the rows to `out` as a JSON array.
    pub fn write_array(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, span) in self.spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.text[span.clone()]);
        }
        out.push(b']');
    }

    /// The length of `write_array`'s output.
    pub fn array_len(&self) -> usize {
        self.text.len() + self.spans.len().max(1) + 1
    }
}

impl PageRows for JsonRows {
    fn new(_: &RowReader, rows: usize) -> Self {
        JsonRows {
            text: Vec::with_capacity(256 * rows),
            spans: Vec::with_capacity(rows),
        }
    }

    fn add_row(&mut self, reader: &RowReader, row: &Row<'_>) -> rusqlite::Result<()> {
        let start = self.text.len();
        reader.write_json(row, &mut self.text)?;
        self.spans.push(start..self.text.len());
        Ok(())
    }

    fn reverse_rows(&mut self) {
        self.spans.reverse();
    }
}

/// A page of rows as values, each row in the order of `columns`.
#[derive(Debug)]
pub struct ValueRows {
    /// The output keys of the columns.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl ValueRows {
    /// Where column `name` is in each row.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

impl PageRows for ValueRows {
    fn new(reader: &RowReader, rows: usize) -> Self {
        let columns = reader.columns.iter().map(|(name, _)| name.clone());
        ValueRows {
            columns: columns.collect(),
            rows: Vec::with_capacity(rows),
        }
    }

    fn add_row(&mut self, reader: &RowReader, row: &Row<'_>) -> rusqlite::Result<()> {
        self.rows.push(reader.values(row)?);
        Ok(())
    }

    fn reverse_rows(&mut self) {
        self.rows.reverse();
    }
}

/// Append `s` as a JSON string. serde_json escapes only `"`, `\` and control characters, which
/// most stored text has none of; one scan for them is much cheaper than its byte-by-byte
/// escaper (a fifth of a list's work on its reader thread).
fn push_json_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    // No early exit, so the compiler checks 16 or 32 bytes at a time.
    let needs_escape = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// A stored value → JSON: bool 0/1 → false/true, json and multiple select text → parsed JSON,
/// INTEGER → integer, REAL → float, TEXT → string, NULL → null.
pub(crate) fn decode(kind: Option<&FieldKind>, v: ValueRef<'_>) -> Result<Value, String> {
    decode_as(Stored::of(kind), v)
}

fn decode_as(kind: Stored, v: ValueRef<'_>) -> Result<Value, String> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => match kind {
            Stored::Bool => Value::Bool(i != 0),
            _ => Value::from(i),
        },
        // Non-finite floats cannot be stored through `values`; map any to null, not an error.
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(bytes) => {
            let s = std::str::from_utf8(bytes).map_err(|_| "stored text is not UTF-8")?;
            match kind {
                Stored::Json => serde_json::from_str(s).map_err(|_| "stored JSON is malformed")?,
                _ => Value::String(s.to_owned()),
            }
        }
        ValueRef::Blob(_) => return Err("unexpected binary value".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testutil::{collection, open_db};
    use crate::schema::{create_table, validate_create};
    use serde_json::json;

    /// The fast path writes exactly what serde_json writes, escapes included.
    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain text, 2024-05-01T12:00:00.000Z",
            "a \"quote\"",
            "back\\slash",
            "line\nbreak\ttab\r",
            "\u{0}\u{1f} controls",
            "\u{7f} delete",
            "é ü 中文 🎉 \u{2028}\u{2029}",
            "</script><!--",
        ] {
            let mut out = b"x".to_vec();
            push_json_str(&mut out, s).unwrap();
            let mut want = b"x".to_vec();
            want.extend(serde_json::to_vec(s).unwrap());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    #[test]
    fn records_round_trip_through_a_real_table() {
        let (_dir, conn) = open_db();
        let c = collection(json!({"name": "things", "fields": [
            {"name": "title", "type": "text"},
            {"name": "count", "type": "number", "integer": true},
            {"name": "ratio", "type": "number"},
            {"name": "done", "type": "bool"},
            {"name": "due", "type": "datetime"},
            {"name": "mail", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "kind", "type": "select", "values": ["a", "b"]},
            {"name": "tags", "type": "select", "values": ["a", "b"], "multiple": true},
            {"name": "meta", "type": "json"},
            {"name": "owner", "type": "relation", "collection": "users"},
            {"name": "empty", "type": "text"},
        ]}));
        for sql in create_table(&c) {
            conn.execute(&sql, []).unwrap();
        }
        let input = json!({
            "title": "Hi", "count": 3, "ratio": 0.5, "done": true,
            "due": "2024-05-01T14:00:00+02:00", "mail": "a@example.com",
            "site": "https://example.com/", "kind": "b", "tags": ["b", "a"],
            "meta": {"x": [1, 2.5, null]}, "owner": null,
        });
        let values = validate_create(&c, input.as_object().unwrap()).unwrap();
        let mut cols = vec!["id".to_owned(), "created".to_owned(), "updated".to_owned()];
        cols.extend(values.iter().map(|(c, _)| c.clone()));
        let mut params: Vec<rusqlite::types::Value> = vec![
            "r1".to_owned().into(),
            "t0".to_owned().into(),
            "t1".to_owned().into(),
        ];
        params.extend(values.into_iter().map(|(_, v)| v));
        let marks = vec!["?"; cols.len()].join(", ");
        conn.execute(
            &format!("INSERT INTO things ({}) VALUES ({marks})", cols.join(", ")),
            rusqlite::params_from_iter(&params),
        )
        .unwrap();

        let reader = RowReader::new(&c, &cols);
        let row = conn
            .query_row(
                &format!("SELECT {} FROM things", cols.join(", ")),
                [],
                |r| reader.read(r),
            )
            .unwrap();
        assert_eq!(
            Value::Object(row),
            json!({
                "id": "r1", "created": "t0", "updated": "t1",
                "title": "Hi", "count": 3, "ratio": 0.5, "done": true,
                "due": "2024-05-01T12:00:00.000Z", "mail": "a@example.com",
                "site": "https://example.com/", "kind": "b", "tags": ["b", "a"],
                "meta": {"x": [1, 2.5, null]}, "owner": null, "empty": null,
            })
        );
        // The byte writer gives the same object, keys in column order.
        let bytes = conn
            .query_row(
                &format!("SELECT {} FROM things", cols.join(", ")),
                [],
                |r| {
                    let mut out = Vec::new();
                    reader.write_json(r, &mut out).map(|()| out)
                },
            )
            .unwrap();
        // The JSON made from the values bound is the JSON read back, byte for byte.
        let mut stored = Vec::new();
        reader.write_stored(params.iter(), &mut stored).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&stored),
            String::from_utf8_lossy(&bytes)
        );
        // One value too few or too many is an error, not a shifted object.
        for values in [&params[1..], &[params.clone(), vec![1.into()]].concat()[..]] {
            assert!(reader.write_stored(values.iter(), &mut Vec::new()).is_err());
        }
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with(r#"{"id":"r1","created":"t0","updated":"t1","title":"Hi","#),
            "{text}"
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            Value::Object(
                conn.query_row(
                    &format!("SELECT {} FROM things", cols.join(", ")),
                    [],
                    |r| reader.read(r),
                )
                .unwrap()
            )
        );
        let one = conn
            .query_row("SELECT done, count FROM things", [], |r| {
                RowReader::new(&c, &["done".to_owned(), "count".to_owned()]).read(r)
            })
            .unwrap();
        assert_eq!(Value::Object(one), json!({"done": true, "count": 3}));
    }

    /// `write_stored` for values a `STRICT` table keeps in another form: a REAL whole number
    /// is stored as an integer, so `-0.0` reads back as `0.0`; very large and small reals and
    /// integers keep their value.
    #[test]
    fn stored_values_are_written_as_they_read_back() {
        use rusqlite::types::Value as V;
        let (_dir, conn) = open_db();
        let c = collection(json!({"name": "nums", "fields": [
            {"name": "r", "type": "number"},
            {"name": "i", "type": "number", "integer": true},
        ]}));
        for sql in create_table(&c) {
            conn.execute(&sql, []).unwrap();
        }
        let cols: Vec<String> = ["id", "created", "updated", "r", "i"]
            .map(String::from)
            .into();
        let reader = RowReader::new(&c, &cols);
        let reals = [
            -0.0,
            0.0,
            2000.0,
            -3.5,
            1e300,
            -1e-300,
            f64::MAX,
            2f64.powi(62),
        ];
        for (n, r) in reals.into_iter().enumerate() {
            let values = vec![
                V::Text(format!("r{n}")),
                V::Text("t".into()),
                V::Text("t".into()),
                V::Real(r),
                V::Integer(i64::MIN + n as i64),
            ];
            conn.execute(
                "INSERT INTO nums (id, created, updated, r, i) VALUES (?, ?, ?, ?, ?)",
                rusqlite::params_from_iter(&values),
            )
            .unwrap();
            let read = conn
                .query_row(
                    "SELECT id, created, updated, r, i FROM nums WHERE id = ?",
                    [format!("r{n}")],
                    |row| {
                        let mut out = Vec::new();
                        reader.write_json(row, &mut out).map(|()| out)
                    },
                )
                .unwrap();
            let mut stored = Vec::new();
            reader.write_stored(values.iter(), &mut stored).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&stored),
                String::from_utf8_lossy(&read),
                "{r}"
            );
        }
    }

    #[test]
    fn decode_handles_storage_classes() {
        assert_eq!(decode(None, ValueRef::Integer(7)), Ok(json!(7)));
        assert_eq!(
            decode(Some(&FieldKind::Bool), ValueRef::Integer(0)),
            Ok(json!(false))
        );
        assert_eq!(decode(None, ValueRef::Real(1.5)), Ok(json!(1.5)));
        assert_eq!(decode(None, ValueRef::Real(f64::NAN)), Ok(Value::Null));
        assert_eq!(
            decode(Some(&FieldKind::Json), ValueRef::Text(b"[1]")),
            Ok(json!([1]))
        );
        assert!(decode(Some(&FieldKind::Json), ValueRef::Text(b"[1")).is_err());
        assert!(decode(None, ValueRef::Blob(b"x")).is_err());
    }
}
