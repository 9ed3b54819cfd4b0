//! Converting stored values when a field changes type. A value is read back as JSON (as the API
//! would answer it), mapped to an *input* for the new type by the table below, and then goes
//! through the same validation as a record write (`values::to_stored`), so converted data obeys
//! every option of the new field (min/max, pattern, select values, integer…). NULL stays NULL;
//! a conversion yielding `""`/null counts as "no value" (filled with the default if the field is
//! required).
//!
//! "string" below = text, email, url, datetime, relation or single select.
//!
//! | from ↓ / to →  | text               | email, url, datetime, relation, select | number            | bool                   | multiple select | json       |
//! |----------------|--------------------|-----------------------------------------|-------------------|------------------------|-----------------|------------|
//! | string         | as is              | validated as the new type               | text/select: parsed decimal | text/select: true/false/1/0 (any case) | wrapped `[v]` | JSON string |
//! | number         | decimal text       | —                                       | as is (float → integer only when whole) | 0 → false, 1 → true | —        | JSON number |
//! | bool           | `true` / `false`   | —                                       | 0 / 1             | as is                  | —               | JSON bool  |
//! | multiple select| the single element (0 → none, >1 fails) | select: same; others —  | —                 | —                      | as is (checked against the new values) | JSON array |
//! | json           | strings unwrapped, other JSON as compact text | validated as input    | validated as input | validated as input    | validated as input | as is  |
//!
//! `—` is an unsupported change; it is refused only when the field holds values.

use serde_json::Value;

use super::types::FieldKind;

/// Whether changing a field from `from` to `to` changes how its values are stored, so every
/// value must go through `convert`.
pub(crate) fn needs_conversion(from: &FieldKind, to: &FieldKind) -> bool {
    match (from, to) {
        (FieldKind::Number { integer: a, .. }, FieldKind::Number { integer: b, .. }) => a != b,
        (FieldKind::Select { multiple: a, .. }, FieldKind::Select { multiple: b, .. }) => a != b,
        _ => from.type_name() != to.type_name(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Str,
    Number,
    Bool,
    Multi,
    Json,
}

fn class(kind: &FieldKind) -> Class {
    match kind {
        FieldKind::Number { .. } => Class::Number,
        FieldKind::Bool => Class::Bool,
        FieldKind::Select { multiple: true, .. } => Class::Multi,
        FieldKind::Json => Class::Json,
        _ => Class::Str,
    }
}

/// Whether parsing numbers and bools from this string type makes sense.
fn is_textual(kind: &FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Text { .. }
            | FieldKind::Select {
                multiple: false,
                ..
            }
    )
}

/// Whether the table above has a conversion from `from` to `to`.
pub(crate) fn supported(from: &FieldKind, to: &FieldKind) -> bool {
    match (class(from), class(to)) {
        (_, Class::Json) | (Class::Json, _) => true,
        (Class::Str, Class::Str | Class::Multi) => true,
        (Class::Str, Class::Number | Class::Bool) => is_textual(from),
        (Class::Number | Class::Bool, Class::Number | Class::Bool) => true,
        (Class::Number | Class::Bool, Class::Str) => matches!(to, FieldKind::Text { .. }),
        (Class::Multi, Class::Multi) => true,
        (Class::Multi, Class::Str) => matches!(
            to,
            FieldKind::Text { .. }
                | FieldKind::Select {
                    multiple: false,
                    ..
                }
        ),
        _ => false,
    }
}

/// One non-null stored value of a `from` field (as JSON) → the input for a `to` field.
pub(crate) fn convert(from: &FieldKind, to: &FieldKind, v: Value) -> Result<Value, String> {
    if !supported(from, to) {
        return Err(format!(
            "a {} cannot become a {}",
            from.type_name(),
            to.type_name()
        ));
    }
    Ok(match (class(from), class(to), v) {
        (_, Class::Json, v) => v,
        (Class::Json, _, Value::String(s)) => Value::String(s),
        (Class::Json, _, v) if matches!(to, FieldKind::Text { .. }) => {
            Value::String(serde_json::to_string(&v).map_err(|_| "cannot be converted")?)
        }
        (Class::Json, _, v) => v,
        (Class::Str, Class::Number, Value::String(s)) => parse_number(&s)?,
        (Class::Str, Class::Bool, Value::String(s)) => parse_bool(&s)?,
        (Class::Str, Class::Multi, Value::String(s)) if s.is_empty() => Value::Null,
        (Class::Str, Class::Multi, v) => Value::Array(vec![v]),
        (Class::Number, Class::Str, Value::Number(n)) => Value::String(n.to_string()),
        (Class::Number, Class::Bool, Value::Number(n)) => match n.as_f64() {
            Some(0.0) => Value::Bool(false),
            Some(1.0) => Value::Bool(true),
            _ => return Err("only 0 and 1 can become a bool".into()),
        },
        (Class::Bool, Class::Str, Value::Bool(b)) => Value::String(b.to_string()),
        (Class::Bool, Class::Number, Value::Bool(b)) => Value::from(i64::from(b)),
        (Class::Multi, Class::Str, Value::Array(mut items)) => match items.len() {
            0 => Value::Null,
            1 => items.remove(0),
            n => return Err(format!("holds {n} values, only one can be kept")),
        },
        (_, _, v) => v,
    })
}

fn parse_number(s: &str) -> Result<Value, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Value::from(i));
    }
    t.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| "is not a number".to_owned())
}

fn parse_bool(s: &str) -> Result<Value, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" => Ok(Value::Null),
        "true" | "1" => Ok(Value::Bool(true)),
        "false" | "0" => Ok(Value::Bool(false)),
        _ => Err("is not true, false, 1 or 0".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testutil::{collection, db_with, insert, records, run_alter};
    use serde_json::json;

    fn kind(f: Value) -> FieldKind {
        let mut f = f;
        f["name"] = json!("f");
        collection(json!({"name": "t", "fields": [f]}))
            .fields
            .remove(0)
            .kind
    }

    #[test]
    fn conversion_table() {
        let text = kind(json!({"type": "text"}));
        let int = kind(json!({"type": "number", "integer": true}));
        let float = kind(json!({"type": "number"}));
        let bool_ = kind(json!({"type": "bool"}));
        let dt = kind(json!({"type": "datetime"}));
        let email = kind(json!({"type": "email"}));
        let one = kind(json!({"type": "select", "values": ["a", "b"]}));
        let many = kind(json!({"type": "select", "values": ["a", "b"], "multiple": true}));
        let json_ = kind(json!({"type": "json"}));
        let c = |from: &FieldKind, to: &FieldKind, v: Value| convert(from, to, v);
        assert_eq!(c(&text, &int, json!(" 42 ")), Ok(json!(42)));
        assert_eq!(c(&text, &float, json!("1.5")), Ok(json!(1.5)));
        assert_eq!(c(&text, &int, json!("")), Ok(Value::Null));
        assert!(c(&text, &int, json!("abc")).is_err());
        assert!(c(&text, &float, json!("NaN")).is_err());
        assert_eq!(c(&int, &text, json!(42)), Ok(json!("42")));
        assert_eq!(c(&float, &text, json!(0.25)), Ok(json!("0.25")));
        assert_eq!(c(&bool_, &int, json!(true)), Ok(json!(1)));
        assert_eq!(c(&int, &bool_, json!(0)), Ok(json!(false)));
        assert!(c(&int, &bool_, json!(2)).is_err());
        assert_eq!(c(&text, &bool_, json!("TRUE")), Ok(json!(true)));
        assert_eq!(c(&text, &bool_, json!("0")), Ok(json!(false)));
        assert!(c(&text, &bool_, json!("yes")).is_err());
        assert_eq!(c(&bool_, &text, json!(false)), Ok(json!("false")));
        assert_eq!(c(&text, &dt, json!("x")), Ok(json!("x"))); // validated afterwards
        assert_eq!(c(&one, &many, json!("a")), Ok(json!(["a"])));
        assert_eq!(c(&many, &one, json!(["b"])), Ok(json!("b")));
        assert_eq!(c(&many, &text, json!([])), Ok(Value::Null));
        assert!(c(&many, &one, json!(["a", "b"])).is_err());
        assert_eq!(c(&many, &json_, json!(["a"])), Ok(json!(["a"])));
        assert_eq!(c(&text, &json_, json!("s")), Ok(json!("s")));
        assert_eq!(c(&json_, &text, json!("s")), Ok(json!("s")));
        assert_eq!(c(&json_, &text, json!({"a": 1})), Ok(json!(r#"{"a":1}"#)));
        assert_eq!(c(&json_, &int, json!(5)), Ok(json!(5)));
        for (from, to) in [
            (&int, &dt),
            (&bool_, &email),
            (&dt, &int),
            (&email, &bool_),
            (&int, &many),
        ] {
            assert!(!supported(from, to));
            assert!(c(from, to, json!(1)).is_err());
        }
        assert!(needs_conversion(&int, &float));
        assert!(needs_conversion(&one, &many));
        assert!(!needs_conversion(
            &one,
            &kind(json!({"type": "select", "values": ["z"]}))
        ));
    }

    fn posts(fields: Value) -> crate::schema::Collection {
        collection(json!({"name": "posts", "fields": fields}))
    }

    #[test]
    fn type_changes_convert_stored_values() {
        let old = posts(json!([
            {"name": "n", "type": "text"},
            {"name": "flag", "type": "text"},
            {"name": "when", "type": "text"},
            {"name": "count", "type": "number", "integer": true},
            {"name": "tag", "type": "select", "values": ["a", "b"]},
            {"name": "data", "type": "text"},
            {"name": "on", "type": "bool"},
        ]));
        let new = posts(json!([
            {"name": "n", "type": "number", "integer": true},
            {"name": "flag", "type": "bool"},
            {"name": "when", "type": "datetime"},
            {"name": "count", "type": "text"},
            {"name": "tag", "type": "select", "values": ["a", "b"], "multiple": true},
            {"name": "data", "type": "json"},
            {"name": "on", "type": "number"},
        ]));
        let (_dir, conn) = db_with(&[&old]);
        insert(
            &conn,
            &old,
            "r1",
            json!({"n": "12", "flag": "true", "when": "2024-01-01T01:00:00+01:00",
            "count": 7, "tag": "b", "data": "hello", "on": true}),
        );
        insert(
            &conn,
            &old,
            "r2",
            json!({"n": "", "flag": "0", "when": null, "count": null,
            "tag": null, "data": "", "on": false}),
        );
        run_alter(&conn, &old, &new, &[]).unwrap();
        assert_eq!(
            records(&conn, &new),
            [
                json!({"id": "r1", "n": 12, "flag": true, "when": "2024-01-01T00:00:00.000Z",
                       "count": "7", "tag": ["b"], "data": "hello", "on": 1.0}),
                json!({"id": "r2", "n": null, "flag": false, "when": null, "count": null,
                       "tag": null, "data": "", "on": 0.0}),
            ]
        );
    }

    #[test]
    fn failed_conversion_names_the_field_and_leaves_data_intact() {
        let old = posts(json!([{"name": "price", "type": "text"}, {"name": "x", "type": "text"}]));
        let new = posts(
            json!([{"name": "price", "type": "number", "min": 0}, {"name": "x", "type": "text"}]),
        );
        let (_dir, conn) = db_with(&[&old]);
        insert(&conn, &old, "r1", json!({"price": "10", "x": "a"}));
        insert(&conn, &old, "r2", json!({"price": "cheap", "x": "b"}));
        insert(&conn, &old, "r3", json!({"price": "-1", "x": "c"}));
        let before = records(&conn, &old);
        let err = run_alter(&conn, &old, &new, &[]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("price"));
        assert_eq!(
            err.message,
            "cannot change field \"price\" from text to number: 2 values cannot be converted \
             (e.g. \"cheap\": is not a number)"
        );
        assert_eq!(records(&conn, &old), before);
    }

    #[test]
    fn unsupported_change_fails_only_when_values_exist() {
        let old = posts(json!([{"name": "n", "type": "number"}]));
        let new = posts(json!([{"name": "n", "type": "datetime"}]));
        let (_dir, conn) = db_with(&[&old]);
        insert(&conn, &old, "r0", json!({}));
        run_alter(&conn, &old, &new, &[]).unwrap();
        let (_dir2, conn) = db_with(&[&old]);
        insert(&conn, &old, "r1", json!({"n": 5}));
        let err = run_alter(&conn, &old, &new, &[]).unwrap_err();
        assert_eq!(
            err.message,
            "cannot change field \"n\" from number to datetime while it holds values \
             (1 record has one)"
        );
        assert_eq!(records(&conn, &old), [json!({"id": "r1", "n": 5.0})]);
    }
}
