//! The field form (add a field, edit a field's options) and its conversion to and from a
//! `FieldSpec`. One form carries every option; only the options of the chosen type are kept,
//! so switching the type never leaves options the service would refuse. Typed text is turned
//! into JSON here (numbers, booleans, lists); what the value means is the service's call.

use rocket::form::FromForm;
use serde_json::Value;

use crate::schema::FieldSpec;

use super::form_errors::Errors;

/// Every field type with its label, in menu order.
pub const TYPES: [(&str, &str); 9] = [
    ("text", "Text"),
    ("number", "Number"),
    ("bool", "Yes / no"),
    ("datetime", "Date and time"),
    ("email", "Email"),
    ("url", "URL"),
    ("select", "Choice from a list"),
    ("json", "JSON"),
    ("relation", "Relation to a record"),
];

/// The on-delete choices of a relation.
pub const ON_DELETE: [(&str, &str); 3] = [
    ("restrict", "refuse the delete"),
    ("cascade", "delete these records too"),
    ("set_null", "clear the relation"),
];

/// The field form as typed (every value kept as text so a refused form shows it again).
#[derive(Debug, Clone, Default, PartialEq, FromForm)]
pub struct FieldForm {
    #[field(default = String::new())]
    pub name: String,
    #[field(name = "type", default = String::from("text"))]
    pub ty: String,
    pub required: bool,
    pub unique: bool,
    pub indexed: bool,
    #[field(default = String::new())]
    pub default: String,
    #[field(default = String::new())]
    pub min: String,
    #[field(default = String::new())]
    pub max: String,
    #[field(default = String::new())]
    pub pattern: String,
    pub integer: bool,
    /// Select values: one per line, or separated by commas when on one line.
    #[field(default = String::new())]
    pub values: String,
    pub multiple: bool,
    /// Relation target collection (`users` for the users table).
    #[field(default = String::new())]
    pub collection: String,
    #[field(default = String::new())]
    pub on_delete: String,
}

impl FieldForm {
    /// A blank form for a new field.
    pub fn blank() -> Self {
        FieldForm {
            ty: "text".into(),
            on_delete: "restrict".into(),
            ..<FieldForm as Default>::default()
        }
    }

    /// The form showing a stored field.
    pub fn from_spec(spec: &FieldSpec) -> Self {
        let number = |v: Option<f64>| v.map(format_number).unwrap_or_default();
        FieldForm {
            name: spec.name.clone(),
            ty: spec.ty.clone(),
            required: spec.required,
            unique: spec.unique,
            indexed: spec.indexed,
            default: spec.default.as_ref().map(default_text).unwrap_or_default(),
            min: number(spec.min),
            max: number(spec.max),
            pattern: spec.pattern.clone().unwrap_or_default(),
            integer: spec.integer,
            values: spec
                .values
                .as_ref()
                .map(|v| v.join("\n"))
                .unwrap_or_default(),
            multiple: spec.multiple,
            collection: spec.collection.clone().unwrap_or_default(),
            on_delete: spec
                .on_delete
                .clone()
                .unwrap_or_else(|| "restrict".to_string()),
        }
    }

    /// The spec this form asks for, or the inputs that do not parse (keyed by input name).
    pub fn to_spec(&self) -> Result<FieldSpec, Errors> {
        let mut errors = Errors::default();
        let ty = self.ty.trim();
        let mut spec = FieldSpec {
            name: self.name.trim().to_string(),
            ty: ty.to_string(),
            required: self.required,
            unique: self.unique,
            indexed: self.indexed,
            ..FieldSpec::default()
        };
        if matches!(ty, "text" | "number") {
            spec.min = parse_number(&self.min, "min", &mut errors);
            spec.max = parse_number(&self.max, "max", &mut errors);
        }
        match ty {
            "text" => spec.pattern = non_empty(&self.pattern),
            "number" => spec.integer = self.integer,
            "select" => {
                spec.values = Some(split_values(&self.values));
                spec.multiple = self.multiple;
            }
            "relation" => {
                spec.collection = non_empty(&self.collection);
                spec.on_delete = non_empty(&self.on_delete);
            }
            _ => {}
        }
        match parse_default(&self.default, ty, self.multiple) {
            Ok(v) => spec.default = v,
            Err(m) => errors.insert("default", m),
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn parse_number(text: &str, input: &str, errors: &mut Errors) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            errors.insert(input, "must be a number");
            None
        }
    }
}

/// Show 3.0 as `3`, 2.5 as `2.5`.
fn format_number(v: f64) -> String {
    v.to_string()
}

/// Select values from a textarea: one per line; a single line may separate them by commas.
pub fn split_values(text: &str) -> Vec<String> {
    let parts: Vec<&str> = if text.trim().contains('\n') {
        text.lines().collect()
    } else {
        text.split(',').collect()
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// A stored default as the text of the form's input.
fn default_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The typed default as JSON for a field of type `ty` (empty = no default).
fn parse_default(text: &str, ty: &str, multiple: bool) -> Result<Option<Value>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let value = match ty {
        "number" => {
            let n: f64 = t
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or("must be a number")?;
            // Whole numbers go out as integers so integer fields accept them as typed.
            crate::schema::exact_integer(n).map_or(Value::from(n), Value::from)
        }
        "bool" => match t.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Value::Bool(true),
            "false" | "no" | "off" | "0" => Value::Bool(false),
            _ => return Err("must be true or false".into()),
        },
        "json" => serde_json::from_str(t).map_err(|e| format!("is not valid JSON: {e}"))?,
        "select" if multiple => {
            if t.starts_with('[') {
                serde_json::from_str(t).map_err(|e| format!("is not a valid JSON list: {e}"))?
            } else {
                Value::from(split_values(t))
            }
        }
        _ => Value::String(t.to_string()),
    };
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(ty: &str) -> FieldForm {
        FieldForm {
            name: " title ".into(),
            ty: ty.into(),
            ..FieldForm::blank()
        }
    }

    #[test]
    fn only_the_options_of_the_chosen_type_are_kept() {
        let f = FieldForm {
            min: "2".into(),
            max: "20".into(),
            pattern: "^[a-z]+$".into(),
            integer: true,
            values: "a, b".into(),
            multiple: true,
            collection: "users".into(),
            required: true,
            ..form("text")
        };
        let spec = f.to_spec().unwrap();
        assert_eq!(spec.name, "title");
        assert_eq!((spec.min, spec.max), (Some(2.0), Some(20.0)));
        assert_eq!(spec.pattern.as_deref(), Some("^[a-z]+$"));
        assert!(spec.required && !spec.integer && !spec.multiple);
        assert_eq!((spec.values, spec.collection), (None, None));
        let n = FieldForm {
            ty: "number".into(),
            ..f.clone()
        }
        .to_spec()
        .unwrap();
        assert!(n.integer && n.pattern.is_none());
        let b = FieldForm {
            ty: "bool".into(),
            ..f
        }
        .to_spec()
        .unwrap();
        assert_eq!((b.min, b.max, b.pattern), (None, None, None));
    }

    #[test]
    fn select_values_split_by_lines_or_commas() {
        assert_eq!(split_values("red, green ,,blue"), ["red", "green", "blue"]);
        assert_eq!(split_values("a, b\r\nc\n\n"), ["a, b", "c"]);
        let f = FieldForm {
            values: "x\ny".into(),
            multiple: true,
            default: "y, x".into(),
            ..form("select")
        };
        let spec = f.to_spec().unwrap();
        assert_eq!(spec.values, Some(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(spec.default, Some(json!(["y", "x"])));
    }

    #[test]
    fn defaults_are_typed_by_the_field_type() {
        let typed = |ty: &str, text: &str| {
            FieldForm {
                default: text.into(),
                ..form(ty)
            }
            .to_spec()
            .map(|s| s.default)
        };
        assert_eq!(typed("number", "3").unwrap(), Some(json!(3)));
        assert_eq!(typed("number", "2.5").unwrap(), Some(json!(2.5)));
        assert_eq!(typed("bool", "Yes").unwrap(), Some(json!(true)));
        assert_eq!(
            typed("json", r#"{"a":[1]}"#).unwrap(),
            Some(json!({"a": [1]}))
        );
        assert_eq!(typed("text", "  ").unwrap(), None);
        let xss = "\"><svg onload=alert(1)>";
        assert_eq!(typed("text", xss).unwrap(), Some(json!(xss)));
        assert_eq!(
            typed("number", "many").unwrap_err().get("default"),
            Some("must be a number")
        );
        assert!(typed("bool", "maybe").unwrap_err().get("default").is_some());
        assert!(typed("json", "{").unwrap_err().get("default").is_some());
    }

    #[test]
    fn numbers_that_do_not_parse_are_reported_per_input() {
        let f = FieldForm {
            min: "x".into(),
            max: "inf".into(),
            ..form("number")
        };
        let e = f.to_spec().unwrap_err();
        assert_eq!(e.get("min"), Some("must be a number"));
        assert_eq!(e.get("max"), Some("must be a number"));
    }

    #[test]
    fn a_stored_field_round_trips_through_the_form() {
        let specs = [
            json!({"name": "qty", "type": "number", "integer": true, "min": 0, "max": 100,
                   "indexed": true, "default": 1}),
            json!({"name": "price", "type": "number", "min": 0.5}),
            json!({"name": "code", "type": "text", "pattern": "^[A-Z]{3}$", "unique": true,
                   "default": "ABC"}),
            json!({"name": "tags", "type": "select", "values": ["a", "b"], "multiple": true,
                   "default": ["b"]}),
            json!({"name": "owner", "type": "relation", "collection": "users",
                   "on_delete": "set_null"}),
            json!({"name": "on", "type": "bool", "required": true, "default": false}),
            json!({"name": "meta", "type": "json", "default": {"k": [1, 2]}}),
        ];
        for v in specs {
            let spec: FieldSpec = serde_json::from_value(v).unwrap();
            let back = FieldForm::from_spec(&spec).to_spec().unwrap();
            assert_eq!(back, spec);
        }
    }
}
