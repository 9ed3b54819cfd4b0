//! Record values on the way in: request JSON → the SQL values of an INSERT or UPDATE, checked
//! against the collection's fields. Every failing field is reported at once, keyed by field
//! name. Whether a relation target exists is not checked here: the foreign key does that inside
//! the write transaction.
//!
//! Empty input: `null` is "no value". So is `""` for email, url, datetime, single select and
//! relation fields (HTML forms send empty inputs as `""`) and for required text fields, and `[]`
//! for a required multiple select. On create a field without a value takes its default; a
//! required field with neither is an error. An optional text field keeps `""` as a value, and
//! `min`/`pattern` do not apply to it.

use std::collections::BTreeMap;
use std::fmt;

use email_address::{EmailAddress, Options as EmailOptions};
use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value};

use super::types::{Collection, Field, FieldKind, SYSTEM_FIELDS};

/// Longest email address (RFC 5321 path limit), in bytes.
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest URL, in bytes of its normalised form.
pub const MAX_URL_LEN: usize = 2048;
/// Largest json field value, serialised compactly.
pub const MAX_JSON_BYTES: usize = 1 << 20;
/// Longest record id (relation values), in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Per-field problems of one record write: field name → message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// The message for `field`, if there is one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid record")?;
        for (i, (field, message)) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{field}: {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Column/value pairs for a new record: every user field, in definition order, with defaults
/// applied and NULL for fields that have neither a value nor a default.
pub fn validate_create(
    c: &Collection,
    input: &Map<String, Value>,
) -> Result<Vec<(String, SqlValue)>, FieldErrors> {
    let mut errs = check_keys(c, input);
    let mut out = Vec::with_capacity(c.fields.len());
    for f in &c.fields {
        let given = match input.get(&f.name).map(|v| to_stored(f, v)) {
            Some(Err(m)) => {
                errs.add(&f.name, m);
                continue;
            }
            Some(Ok(v)) => v,
            None => None,
        };
        let value = match (given, &f.default) {
            (Some(v), _) => v,
            (None, Some(default)) => match to_stored(f, default) {
                Ok(Some(v)) => v,
                // Defaults are validated when the collection is defined; a stale one is an error
                // for this field rather than a silent NULL.
                Ok(None) | Err(_) => {
                    errs.add(&f.name, "has an invalid default");
                    continue;
                }
            },
            (None, None) if f.required => {
                errs.add(&f.name, "required");
                continue;
            }
            (None, None) => SqlValue::Null,
        };
        out.push((f.name.clone(), value));
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Column/value pairs for the fields present in `input` (a partial update).
pub fn validate_update(
    c: &Collection,
    input: &Map<String, Value>,
) -> Result<Vec<(String, SqlValue)>, FieldErrors> {
    let mut errs = check_keys(c, input);
    let mut out = Vec::with_capacity(input.len());
    for (key, v) in input {
        let Some(f) = c.field(key) else { continue };
        match to_stored(f, v) {
            Ok(Some(v)) => out.push((f.name.clone(), v)),
            Ok(None) if f.required => errs.add(key, "required"),
            Ok(None) => out.push((f.name.clone(), SqlValue::Null)),
            Err(m) => errs.add(key, m),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn check_keys(c: &Collection, input: &Map<String, Value>) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for key in input.keys() {
        if SYSTEM_FIELDS.contains(&key.as_str()) {
            errs.add(key, "cannot be set");
        } else if c.field(key).is_none() {
            errs.add(key, "unknown field");
        }
    }
    errs
}

/// Whether `s` is a well-formed record id: 1 to 64 characters of `[0-9A-Za-z_-]`.
pub fn is_valid_record_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One input value → its stored form; `Ok(None)` means "no value" (see the module docs).
pub(crate) fn to_stored(field: &Field, v: &Value) -> Result<Option<SqlValue>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let stored = match &field.kind {
        FieldKind::Text { min, max, pattern } => {
            let s = string(v)?;
            if s.is_empty() {
                return Ok((!field.required).then(|| SqlValue::Text(String::new())));
            }
            let len = s.chars().count();
            if let Some(min) = min.filter(|m| len < *m as usize) {
                return Err(format!("must be at least {min} characters"));
            }
            if let Some(max) = max.filter(|m| len > *m as usize) {
                return Err(format!("must be at most {max} characters"));
            }
            if let Some(p) = pattern
                && !p.regex.is_match(s)
            {
                return Err("does not match the required pattern".into());
            }
            SqlValue::Text(s.to_owned())
        }
        FieldKind::Number { min, max, integer } => number(v, *min, *max, *integer)?,
        FieldKind::Bool => match v {
            Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
            _ => return Err("must be true or false".into()),
        },
        FieldKind::Datetime => match non_blank(v)? {
            None => return Ok(None),
            Some(s) => SqlValue::Text(crate::time::canonical(s).ok_or(
                "must be an RFC 3339 date-time with a time zone, e.g. 2024-05-01T12:00:00Z",
            )?),
        },
        FieldKind::Email => match non_blank(v)? {
            None => return Ok(None),
            Some(s) => SqlValue::Text(email(s)?),
        },
        FieldKind::Url => match non_blank(v)? {
            None => return Ok(None),
            Some(s) => SqlValue::Text(url(s)?),
        },
        FieldKind::Select {
            values,
            multiple: false,
        } => match non_blank(v)? {
            None => return Ok(None),
            Some(s) if values.iter().any(|x| x == s) => SqlValue::Text(s.to_owned()),
            Some(_) => return Err("is not one of the allowed values".into()),
        },
        FieldKind::Select {
            values,
            multiple: true,
        } => {
            let Value::Array(items) = v else {
                return Err("must be a list of values".into());
            };
            if items.is_empty() && field.required {
                return Ok(None);
            }
            for (i, item) in items.iter().enumerate() {
                let Some(s) = item.as_str().filter(|s| values.iter().any(|x| x == s)) else {
                    return Err("contains a value that is not allowed".into());
                };
                if items[..i].iter().any(|earlier| earlier.as_str() == Some(s)) {
                    return Err(format!("lists \"{s}\" twice"));
                }
            }
            SqlValue::Text(compact(v)?)
        }
        FieldKind::Json => {
            let text = compact(v)?;
            if text.len() > MAX_JSON_BYTES {
                return Err("is larger than 1 MiB".into());
            }
            SqlValue::Text(text)
        }
        FieldKind::Relation { .. } => match non_blank(v)? {
            None => return Ok(None),
            Some(s) if is_valid_record_id(s) => SqlValue::Text(s.to_owned()),
            Some(_) => return Err("must be a record id".into()),
        },
    };
    Ok(Some(stored))
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| "must be a string".to_owned())
}

/// The string in `v`, or `None` for `""`.
fn non_blank(v: &Value) -> Result<Option<&str>, String> {
    string(v).map(|s| (!s.is_empty()).then_some(s))
}

fn compact(v: &Value) -> Result<String, String> {
    serde_json::to_string(v).map_err(|_| "cannot be stored".to_owned())
}

/// 2^63: the first f64 past the i64 range.
const I64_END: f64 = 9_223_372_036_854_775_808.0;

fn number(
    v: &Value,
    min: Option<f64>,
    max: Option<f64>,
    integer: bool,
) -> Result<SqlValue, String> {
    let Value::Number(n) = v else {
        return Err("must be a number".into());
    };
    let (stored, as_f64) = if integer {
        let i = match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            // Range-checked and integral, so the cast is exact.
            (None, Some(f)) if f.fract() == 0.0 && (-I64_END..I64_END).contains(&f) => f as i64,
            (None, Some(f)) if f.fract() == 0.0 => return Err("is too large".into()),
            _ => return Err("must be a whole number".into()),
        };
        // Precision loss past 2^53 only blurs the bound check, never the stored value.
        (SqlValue::Integer(i), i as f64)
    } else {
        let f = n.as_f64().ok_or("must be a number")?;
        (SqlValue::Real(f), f)
    };
    if let Some(min) = min.filter(|m| as_f64 < *m) {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = max.filter(|m| as_f64 > *m) {
        return Err(format!("must be at most {max}"));
    }
    Ok(stored)
}

fn email(s: &str) -> Result<String, String> {
    if s.len() > MAX_EMAIL_LEN {
        return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
    }
    // The crate follows RFC 5322, which admits quoted spaces and display names; an address
    // field wants a plain `local@domain.tld`.
    let options = EmailOptions::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    if s.chars().any(|c| c.is_whitespace() || c.is_control())
        || EmailAddress::parse_with_options(s, options).is_err()
    {
        return Err("must be a valid email address".into());
    }
    Ok(s.to_owned())
}

fn url(s: &str) -> Result<String, String> {
    const BAD: &str = "must be a valid http or https URL";
    if s.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let u = url::Url::parse(s).map_err(|_| BAD.to_owned())?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(BAD.into());
    }
    // Stored normalised (lower-case scheme and host, percent-encoding), so what is rendered as a
    // link is exactly what was checked.
    let normalised = String::from(u);
    if normalised.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testutil::collection;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// The stored value of one field of type `f` for input `v`, or its error message.
    fn store(f: Value, v: Value) -> Result<SqlValue, String> {
        let mut f = f;
        f["name"] = json!("f");
        let c = collection(json!({"name": "t", "fields": [f]}));
        validate_update(&c, &obj(json!({ "f": v })))
            .map(|mut out| out.remove(0).1)
            .map_err(|e| e.0["f"].clone())
    }

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.to_owned())
    }

    #[test]
    fn create_applies_defaults_and_nulls_and_reports_every_field() {
        let c = collection(json!({"name": "t", "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "n", "type": "number", "default": 2},
            {"name": "note", "type": "text"},
            {"name": "kind", "type": "select", "values": ["a", "b"], "required": true,
             "default": "a"},
        ]}));
        let out = validate_create(&c, &obj(json!({"title": "x", "kind": ""}))).unwrap();
        assert_eq!(
            out,
            [
                ("title".to_owned(), text("x")),
                ("n".to_owned(), SqlValue::Real(2.0)),
                ("note".to_owned(), SqlValue::Null),
                ("kind".to_owned(), text("a")),
            ]
        );
        let e = validate_create(
            &c,
            &obj(json!({"title": "", "n": "3", "id": "x", "created": "y", "zzz": 1})),
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            BTreeMap::from([
                ("created".to_owned(), "cannot be set".to_owned()),
                ("id".to_owned(), "cannot be set".to_owned()),
                ("n".to_owned(), "must be a number".to_owned()),
                ("title".to_owned(), "required".to_owned()),
                ("zzz".to_owned(), "unknown field".to_owned()),
            ])
        );
        assert!(
            e.to_string()
                .starts_with("invalid record: created: cannot be set")
        );
    }

    #[test]
    fn update_validates_only_given_fields() {
        let c = collection(json!({"name": "t", "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "note", "type": "text"},
        ]}));
        assert_eq!(
            validate_update(&c, &obj(json!({"note": null}))).unwrap(),
            [("note".to_owned(), SqlValue::Null)]
        );
        let e = validate_update(&c, &obj(json!({"title": null, "updated": "x"}))).unwrap_err();
        assert_eq!(e.get("title"), Some("required"));
        assert_eq!(e.get("updated"), Some("cannot be set"));
        assert_eq!(validate_update(&c, &obj(json!({}))).unwrap(), []);
    }

    #[test]
    fn text_length_and_pattern() {
        let f = json!({"type": "text", "min": 2, "max": 3, "pattern": "^[a-zé]+$"});
        assert_eq!(store(f.clone(), json!("éé")), Ok(text("éé")));
        assert_eq!(
            store(f.clone(), json!("a")),
            Err("must be at least 2 characters".into())
        );
        assert_eq!(
            store(f.clone(), json!("abcd")),
            Err("must be at most 3 characters".into())
        );
        assert_eq!(
            store(f.clone(), json!("A1")),
            Err("does not match the required pattern".into())
        );
        assert_eq!(store(f.clone(), json!("")), Ok(text("")));
        assert_eq!(store(f, json!(5)), Err("must be a string".into()));
    }

    #[test]
    fn numbers_integers_and_bounds() {
        let int = json!({"type": "number", "integer": true, "min": -2, "max": 10});
        assert_eq!(store(int.clone(), json!(7)), Ok(SqlValue::Integer(7)));
        assert_eq!(store(int.clone(), json!(7.0)), Ok(SqlValue::Integer(7)));
        assert_eq!(
            store(int.clone(), json!(7.5)),
            Err("must be a whole number".into())
        );
        assert_eq!(
            store(int.clone(), json!(11)),
            Err("must be at most 10".into())
        );
        assert_eq!(
            store(int.clone(), json!(-3)),
            Err("must be at least -2".into())
        );
        assert_eq!(store(int, json!("7")), Err("must be a number".into()));
        let big = json!({"type": "number", "integer": true});
        assert_eq!(store(big.clone(), json!(1e300)), Err("is too large".into()));
        assert_eq!(store(big, json!(u64::MAX)), Err("is too large".into()));
        let float = json!({"type": "number", "max": 1.5});
        assert_eq!(store(float.clone(), json!(1.25)), Ok(SqlValue::Real(1.25)));
        assert_eq!(store(float, json!(1.75)), Err("must be at most 1.5".into()));
    }

    #[test]
    fn bools_and_datetimes() {
        assert_eq!(
            store(json!({"type": "bool"}), json!(true)),
            Ok(SqlValue::Integer(1))
        );
        assert_eq!(
            store(json!({"type": "bool"}), json!(false)),
            Ok(SqlValue::Integer(0))
        );
        assert!(store(json!({"type": "bool"}), json!(1)).is_err());
        assert!(store(json!({"type": "bool"}), json!("true")).is_err());
        let dt = json!({"type": "datetime"});
        assert_eq!(
            store(dt.clone(), json!("2024-05-01T14:00:00.5+02:00")),
            Ok(text("2024-05-01T12:00:00.500Z"))
        );
        assert!(store(dt.clone(), json!("2024-05-01")).is_err());
        assert!(store(dt.clone(), json!("2024-05-01T12:00:00")).is_err());
        assert_eq!(store(dt, json!("")), Ok(SqlValue::Null));
    }

    #[test]
    fn emails() {
        let e = json!({"type": "email"});
        assert_eq!(
            store(e.clone(), json!("ann@example.com")),
            Ok(text("ann@example.com"))
        );
        assert_eq!(
            store(e.clone(), json!("a.b+c@sub.example.org")),
            Ok(text("a.b+c@sub.example.org"))
        );
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@localhost",
            "ann@[127.0.0.1]",
            "Ann <ann@example.com>",
            "a b@example.com",
            "ann@exa mple.com",
            "ann@example.com\n",
        ] {
            assert!(store(e.clone(), json!(bad)).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            store(e, json!(long)),
            Err("must be at most 254 characters".into())
        );
    }

    #[test]
    fn urls_are_http_only_and_normalised() {
        let u = json!({"type": "url"});
        assert_eq!(
            store(u.clone(), json!("https://Example.com/a b")),
            Ok(text("https://example.com/a%20b"))
        );
        for bad in [
            "javascript:alert(1)",
            "ftp://example.com",
            "example.com",
            "http://",
            "data:text/html,x",
            "file:///etc/passwd",
        ] {
            assert!(store(u.clone(), json!(bad)).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(store(u, json!(long)).is_err());
    }

    #[test]
    fn selects_single_and_multiple() {
        let one = json!({"type": "select", "values": ["a", "b"]});
        assert_eq!(store(one.clone(), json!("b")), Ok(text("b")));
        assert!(store(one.clone(), json!("c")).is_err());
        assert!(store(one, json!(["a"])).is_err());
        let many = json!({"type": "select", "values": ["a", "b"], "multiple": true});
        assert_eq!(
            store(many.clone(), json!(["b", "a"])),
            Ok(text(r#"["b","a"]"#))
        );
        assert_eq!(store(many.clone(), json!([])), Ok(text("[]")));
        assert_eq!(
            store(many.clone(), json!(["a", "a"])),
            Err("lists \"a\" twice".into())
        );
        assert!(store(many.clone(), json!(["c"])).is_err());
        assert!(store(many.clone(), json!([1])).is_err());
        assert!(store(many, json!("a")).is_err());
        let required =
            json!({"type": "select", "values": ["a"], "multiple": true, "required": true});
        assert_eq!(store(required, json!([])), Err("required".into()));
    }

    #[test]
    fn json_values_and_size_limit() {
        let j = json!({"type": "json"});
        assert_eq!(
            store(j.clone(), json!({"a": [1, "x"]})),
            Ok(text(r#"{"a":[1,"x"]}"#))
        );
        assert_eq!(store(j.clone(), json!("s")), Ok(text(r#""s""#)));
        assert_eq!(store(j.clone(), json!(null)), Ok(SqlValue::Null));
        let big = "x".repeat(MAX_JSON_BYTES);
        assert_eq!(store(j, json!(big)), Err("is larger than 1 MiB".into()));
    }

    #[test]
    fn relation_ids() {
        let r = json!({"type": "relation", "collection": "users"});
        assert_eq!(
            store(r.clone(), json!("01HXYZ_a-b")),
            Ok(text("01HXYZ_a-b"))
        );
        assert_eq!(store(r.clone(), json!("")), Ok(SqlValue::Null));
        for bad in ["a b", &"x".repeat(65), "ü", "a;--"] {
            assert_eq!(
                store(r.clone(), json!(bad)),
                Err("must be a record id".into())
            );
        }
        assert_eq!(store(r, json!(5)), Err("must be a string".into()));
    }

    #[test]
    fn blank_required_values_count_as_missing() {
        for f in [
            json!({"type": "text", "required": true}),
            json!({"type": "email", "required": true}),
            json!({"type": "url", "required": true}),
            json!({"type": "datetime", "required": true}),
            json!({"type": "select", "values": ["a"], "required": true}),
            json!({"type": "relation", "collection": "users", "required": true}),
        ] {
            assert_eq!(store(f, json!("")), Err("required".into()));
        }
    }
}
