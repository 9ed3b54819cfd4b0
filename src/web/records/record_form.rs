//! Record forms ⇄ record JSON: what the inputs of a generated form send, turned into the JSON
//! object the records service takes (empty = null, checkbox = bool, `datetime-local` = UTC,
//! json text parsed), and a record (or the field defaults) turned back into input values.
//! Only type conversion happens here; every rule about values stays in the service.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDateTime, Timelike};
use serde_json::{Map, Value};

use crate::schema::{Collection, Field, FieldKind};

/// A submitted form: every input name with its values in order (a multiple select or a group
/// of checkboxes repeats its name). Rocket parses a form body straight into this.
pub type RawForm = HashMap<String, Vec<String>>;

/// Per-field messages for inputs that did not convert (shown beside the field).
pub type FormErrors = BTreeMap<String, String>;

/// The values of the input for field `name`, in order.
fn values<'f>(form: &'f RawForm, name: &str) -> &'f [String] {
    form.get(name).map_or(&[][..], Vec::as_slice)
}

/// A submitted form without its CSRF token, leaving only inputs. The token comes first in the
/// document, so a field that happens to be called `csrf` keeps the values after it.
pub fn inputs_of(mut form: RawForm) -> RawForm {
    if let Some(values) = form.get_mut("csrf") {
        if !values.is_empty() {
            values.remove(0);
        }
        if values.is_empty() {
            form.remove("csrf");
        }
    }
    form
}

/// The single value of the input for field `name`: its first value, or `""` when absent.
fn single<'f>(form: &'f RawForm, name: &str) -> &'f str {
    values(form, name).first().map_or("", String::as_str)
}

/// The record JSON for every field of `c` from a submitted form, with the fields whose input
/// did not convert left out and their messages in the errors. Every field is present (the form
/// shows them all): an empty input is null (on create the service then applies the default),
/// an unchecked checkbox is false and an empty group of checkboxes is `[]`.
pub fn to_record(c: &Collection, form: &RawForm) -> (Map<String, Value>, FormErrors) {
    let mut record = Map::new();
    let mut errors = FormErrors::new();
    for field in &c.fields {
        match field_value(field, form) {
            Ok(v) => {
                record.insert(field.name.clone(), v);
            }
            Err(message) => {
                errors.insert(field.name.clone(), message);
            }
        }
    }
    (record, errors)
}

fn field_value(field: &Field, form: &RawForm) -> Result<Value, String> {
    let raw = single(form, &field.name);
    let trimmed = raw.trim();
    let text_or_null = |s: &str| {
        if s.is_empty() {
            Value::Null
        } else {
            Value::String(s.to_owned())
        }
    };
    Ok(match &field.kind {
        // Typed text is kept as typed; only an empty box means "no value".
        FieldKind::Text { .. } => text_or_null(raw),
        FieldKind::Email | FieldKind::Url | FieldKind::Relation { .. } => text_or_null(trimmed),
        FieldKind::Select {
            multiple: false, ..
        } => text_or_null(raw),
        FieldKind::Select { multiple: true, .. } => Value::Array(
            values(form, &field.name)
                .iter()
                .filter(|v| !v.is_empty())
                .map(|v| Value::String(v.clone()))
                .collect(),
        ),
        FieldKind::Bool => Value::Bool(
            values(form, &field.name)
                .iter()
                .any(|x| matches!(x.as_str(), "on" | "true" | "1")),
        ),
        FieldKind::Number { integer, .. } => number(trimmed, *integer)?,
        FieldKind::Datetime => match trimmed {
            "" => Value::Null,
            s => Value::String(local_to_utc(s).unwrap_or_else(|| s.to_owned())),
        },
        FieldKind::Json => match trimmed {
            "" => Value::Null,
            s => serde_json::from_str(s).map_err(|e| format!("is not valid JSON ({e})"))?,
        },
    })
}

/// A number input's text as a JSON number; whole numbers stay integers for integer fields.
fn number(s: &str, integer: bool) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::from(i));
    }
    let f: f64 = s.parse().map_err(|_| "must be a number".to_owned())?;
    if integer && f.fract() != 0.0 {
        return Err("must be a whole number".into());
    }
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "must be a finite number".to_owned())
}

/// A `datetime-local` value (`2024-05-01T12:00`, seconds and fractions optional), read as UTC,
/// in RFC 3339 with `Z`. Anything else (a full RFC 3339 value typed into a plain text box by a
/// browser without date inputs) is left for the service to judge.
pub fn local_to_utc(s: &str) -> Option<String> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()?;
    Some(crate::time::format(naive.and_utc()))
}

/// A stored UTC datetime as a `datetime-local` value, as short as it can be without losing
/// anything (so an unchanged edit form saves the same instant).
pub fn utc_to_local(s: &str) -> Option<String> {
    let t = crate::time::parse(s)?;
    let format = match (t.second(), t.nanosecond()) {
        (0, 0) => "%Y-%m-%dT%H:%M",
        (_, 0) => "%Y-%m-%dT%H:%M:%S",
        _ => "%Y-%m-%dT%H:%M:%S%.3f",
    };
    Some(t.format(format).to_string())
}

/// The input values that show `value` (a record's value for `field`) in the form.
fn inputs_for(field: &Field, value: &Value) -> Vec<String> {
    match (value, &field.kind) {
        (Value::Null, _) => Vec::new(),
        (Value::Bool(true), _) => vec!["on".to_owned()],
        (Value::Bool(false), _) => Vec::new(),
        (Value::String(s), FieldKind::Datetime) => {
            vec![utc_to_local(s).unwrap_or_else(|| s.clone())]
        }
        (Value::String(s), _) => vec![s.clone()],
        (Value::Array(items), FieldKind::Select { multiple: true, .. }) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        (v, FieldKind::Json) => {
            vec![serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())]
        }
        (v, _) => vec![v.to_string()],
    }
}

/// The form's inputs for an existing record (the edit form).
pub fn from_record(c: &Collection, record: &Map<String, Value>) -> RawForm {
    c.fields
        .iter()
        .map(|f| {
            let value = record.get(&f.name).unwrap_or(&Value::Null);
            (f.name.clone(), inputs_for(f, value))
        })
        .collect()
}

/// The form's inputs for a new record: each field's default, if it has one.
pub fn from_defaults(c: &Collection) -> RawForm {
    c.fields
        .iter()
        .map(|f| {
            let value = f.default.as_ref().unwrap_or(&Value::Null);
            (f.name.clone(), inputs_for(f, value))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rocket::form::Form;
    use serde_json::json;

    fn every_type() -> Collection {
        let spec = serde_json::from_value(json!({
            "name": "things",
            "fields": [
                { "name": "title", "type": "text", "required": true },
                { "name": "n", "type": "number", "integer": true },
                { "name": "score", "type": "number" },
                { "name": "done", "type": "bool", "default": true },
                { "name": "due", "type": "datetime" },
                { "name": "email", "type": "email" },
                { "name": "site", "type": "url" },
                { "name": "status", "type": "select", "values": ["a", "b"], "default": "a" },
                { "name": "tags", "type": "select", "values": ["x", "y", "z"], "multiple": true },
                { "name": "meta", "type": "json" },
                { "name": "owner", "type": "relation", "collection": "users" }
            ]
        }))
        .unwrap();
        crate::schema::parse_collection(spec, &|_: &str| false).unwrap()
    }

    /// A form body as a browser sends it, parsed the way `Checked<RawForm>` parses it.
    fn parse(body: &str) -> RawForm {
        Form::<RawForm>::parse_encoded(rocket::http::RawStr::new(body)).unwrap()
    }

    #[test]
    fn rocket_parses_repeated_names_and_empty_values_into_the_raw_form() {
        let form = parse("csrf=t&title=&tags=x&tags=z&meta=%7B%22a%22%3A1%7D&done=on");
        assert_eq!(form["title"], [""]);
        assert_eq!(form["tags"], ["x", "z"]);
        assert_eq!(form["meta"], [r#"{"a":1}"#]);
        assert_eq!(form["csrf"], ["t"]);
        assert!(!form.contains_key("n"));
    }

    #[test]
    fn every_field_type_converts_to_the_json_the_service_takes() {
        let form = parse(concat!(
            "title=+Hello+&n=42&score=2.5&done=on&due=2024-05-01T12%3A30",
            "&email=+a%40b.io+&site=https%3A%2F%2Fx.io&status=b&tags=x&tags=z",
            "&meta=%7B%22k%22%3A+%5B1%2C2%5D%7D&owner=01ABC"
        ));
        let (record, errors) = to_record(&every_type(), &form);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            Value::Object(record),
            json!({
                "title": " Hello ", "n": 42, "score": 2.5, "done": true,
                "due": "2024-05-01T12:30:00.000Z", "email": "a@b.io", "site": "https://x.io",
                "status": "b", "tags": ["x", "z"], "meta": {"k": [1, 2]}, "owner": "01ABC"
            })
        );
    }

    #[test]
    fn empty_inputs_are_null_and_unchecked_boxes_false() {
        let form = parse("title=&n=&score=&due=&email=&site=&status=&meta=+&owner=");
        let (record, errors) = to_record(&every_type(), &form);
        assert!(errors.is_empty(), "{errors:?}");
        for (key, value) in &record {
            let expected = match key.as_str() {
                "done" => json!(false),
                "tags" => json!([]),
                _ => Value::Null,
            };
            assert_eq!(value, &expected, "{key}");
        }
        assert_eq!(record.len(), every_type().fields.len());
    }

    #[test]
    fn inputs_that_do_not_convert_are_field_errors() {
        let form = parse("title=t&n=1.5&score=abc&meta=%7Bnope");
        let (record, errors) = to_record(&every_type(), &form);
        assert_eq!(errors["n"], "must be a whole number");
        assert_eq!(errors["score"], "must be a number");
        assert!(errors["meta"].starts_with("is not valid JSON"));
        assert!(!record.contains_key("n") && !record.contains_key("meta"));
        assert_eq!(record["title"], "t");
        // Whole floats are fine for integer fields; huge ones are left to the service.
        let (record, errors) = to_record(&every_type(), &parse("n=3.0&score=-0"));
        assert!(errors.is_empty());
        assert_eq!(
            (record["n"].as_f64(), record["score"].as_i64()),
            (Some(3.0), Some(0))
        );
    }

    #[test]
    fn local_datetimes_are_read_as_utc_and_shown_without_losing_precision() {
        assert_eq!(
            local_to_utc("2024-05-01T12:30").as_deref(),
            Some("2024-05-01T12:30:00.000Z")
        );
        assert_eq!(
            local_to_utc("2024-05-01T12:30:15.250").as_deref(),
            Some("2024-05-01T12:30:15.250Z")
        );
        assert_eq!(local_to_utc("2024-05-01T12:30:00+02:00"), None);
        assert_eq!(local_to_utc("yesterday"), None);
        for stored in [
            "2024-05-01T12:30:00.000Z",
            "2024-05-01T12:30:15.000Z",
            "2024-05-01T12:30:15.250Z",
        ] {
            let local = utc_to_local(stored).unwrap();
            assert_eq!(local_to_utc(&local).as_deref(), Some(stored));
        }
        assert_eq!(
            utc_to_local("2024-05-01T12:30:00.000Z").as_deref(),
            Some("2024-05-01T12:30")
        );
        // A full RFC 3339 value typed by hand goes to the service as written.
        let form = parse("title=t&due=2024-05-01T14%3A00%3A00%2B02%3A00");
        assert_eq!(
            to_record(&every_type(), &form).0["due"],
            "2024-05-01T14:00:00+02:00"
        );
    }

    #[test]
    fn a_record_round_trips_through_its_form_inputs() {
        let c = every_type();
        let stored = json!({
            "id": "01X", "title": "Hi", "n": 7, "score": 0.5, "done": false,
            "due": "2024-05-01T12:30:15.250Z", "email": "a@b.io", "site": "https://x.io/",
            "status": "a", "tags": ["y"], "meta": {"a": [1, {"b": null}]}, "owner": null
        });
        let inputs = from_record(&c, stored.as_object().unwrap());
        assert_eq!(inputs["done"], Vec::<String>::new());
        assert_eq!(inputs["n"], ["7"]);
        assert_eq!(inputs["tags"], ["y"]);
        assert_eq!(inputs["due"], ["2024-05-01T12:30:15.250"]);
        let (back, errors) = to_record(&c, &inputs);
        assert!(errors.is_empty(), "{errors:?}");
        let mut expected = stored.as_object().unwrap().clone();
        expected.remove("id");
        assert_eq!(back, expected);
    }

    #[test]
    fn a_field_called_csrf_reads_its_values_after_the_token() {
        let spec = serde_json::from_value(json!({
            "name": "t", "fields": [ { "name": "csrf", "type": "text" } ]
        }))
        .unwrap();
        let c = crate::schema::parse_collection(spec, &|_: &str| false).unwrap();
        let inputs = inputs_of(parse("csrf=token&csrf=value&x=1"));
        assert_eq!(inputs["csrf"], ["value"]);
        assert_eq!(to_record(&c, &inputs).0["csrf"], "value");
        let inputs = inputs_of(parse("csrf=token"));
        assert!(!inputs.contains_key("csrf"));
        assert_eq!(to_record(&c, &inputs).0["csrf"], Value::Null);
    }

    #[test]
    fn a_new_form_starts_from_the_defaults() {
        let inputs = from_defaults(&every_type());
        assert_eq!(inputs["done"], ["on"]);
        assert_eq!(inputs["status"], ["a"]);
        assert!(inputs["title"].is_empty());
    }
}
