//! The shapes of a collection definition: the wire/storage form (`CollectionSpec`, flat and
//! serde-friendly) and the validated in-memory form (`Collection`) every other layer uses.
//!
//! A `Collection` is only ever built by `schema::define::parse_collection`, so code holding one
//! may trust that names are valid identifiers, options fit their types and rules parse.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::query::Expr;

/// Names of the columns every collection table has, in this order, before its own fields.
pub const SYSTEM_FIELDS: [&str; 3] = ["id", "created", "updated"];

/// A collection definition as sent by admins and stored in `_collections.definition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    pub name: String,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    #[serde(default)]
    pub rules: RulesSpec,
    /// Extra (possibly multi-column) indexes beyond the per-field `unique`/`indexed` flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexSpec>,
}

/// One field as sent and stored: a flat object whose options are checked against its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// Only in PATCH requests: the current name of a field being renamed to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rename_from: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub indexed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_as_integer"
    )]
    pub min: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_as_integer"
    )]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub integer: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub multiple: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `n` as an integer when it is a whole number an f64 holds exactly (below 2^53 in size), so
/// it can go out as `200` rather than `200.0`.
pub fn exact_integer(n: f64) -> Option<i64> {
    (n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0).then_some(n as i64)
}

/// A whole bound reads back as it was sent (`"max": 200`, not `200.0`); fractions stay.
fn whole_as_integer<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v.map(|x| (x, exact_integer(x))) {
        Some((_, Some(i))) => s.serialize_some(&i),
        Some((x, None)) => s.serialize_some(&x),
        None => s.serialize_none(),
    }
}

/// Per-operation access rules: `None` = admins only, `Some("")` = anyone, else a filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RulesSpec {
    #[serde(default)]
    pub list: Option<String>,
    #[serde(default)]
    pub view: Option<String>,
    #[serde(default)]
    pub create: Option<String>,
    #[serde(default)]
    pub update: Option<String>,
    #[serde(default)]
    pub delete: Option<String>,
}

/// A named index over one or more fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    pub name: String,
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
}

/// A validated collection.
#[derive(Debug, Clone)]
pub struct Collection {
    pub name: String,
    pub fields: Vec<Field>,
    pub rules: Rules,
    pub indexes: Vec<IndexSpec>,
    /// The definition exactly as stored (rename hints removed), for answers and storage.
    pub spec: CollectionSpec,
}

impl Collection {
    /// The user-defined field called `name`, if any (system fields are not in `fields`).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether any rule mentions `@now` (its answers then depend on the clock).
    pub fn uses_now(&self) -> bool {
        let r = &self.spec.rules;
        [&r.list, &r.view, &r.create, &r.update, &r.delete]
            .iter()
            .any(|rule| rule.as_deref().is_some_and(|t| t.contains("@now")))
    }

    /// Whether `name` is a column of this collection's table (system or user field).
    pub fn has_column(&self, name: &str) -> bool {
        SYSTEM_FIELDS.contains(&name) || self.field(name).is_some()
    }
}

/// A validated field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub required: bool,
    pub unique: bool,
    pub indexed: bool,
    /// Already validated against the field's type (canonical JSON form).
    pub default: Option<Value>,
    pub kind: FieldKind,
}

/// A field's type with the options that belong to it.
#[derive(Debug, Clone)]
pub enum FieldKind {
    Text {
        min: Option<u32>,
        max: Option<u32>,
        pattern: Option<Pattern>,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        integer: bool,
    },
    Bool,
    Datetime,
    Email,
    Url,
    Select {
        values: Vec<String>,
        multiple: bool,
    },
    Json,
    Relation {
        /// Target collection name; `users` means the system users table.
        collection: String,
        on_delete: OnDelete,
    },
}

impl FieldKind {
    /// The wire name of the type, as in `FieldSpec::ty`.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Number { .. } => "number",
            FieldKind::Bool => "bool",
            FieldKind::Datetime => "datetime",
            FieldKind::Email => "email",
            FieldKind::Url => "url",
            FieldKind::Select { .. } => "select",
            FieldKind::Json => "json",
            FieldKind::Relation { .. } => "relation",
        }
    }
}

/// A compiled regular expression that remembers its source (regex has no PartialEq).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: regex::Regex,
}

/// What happens to records pointing at a deleted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    Restrict,
    Cascade,
    SetNull,
}

impl OnDelete {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDelete::Restrict => "restrict",
            OnDelete::Cascade => "cascade",
            OnDelete::SetNull => "set_null",
        }
    }
}

/// Parsed rules. `Rule::AdminOnly` is the default for every operation.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub list: Rule,
    pub view: Rule,
    pub create: Rule,
    pub update: Rule,
    pub delete: Rule,
}

#[derive(Debug, Clone, Default)]
pub enum Rule {
    #[default]
    AdminOnly,
    Anyone,
    /// A filter expression the record must satisfy, checked against the stored schema.
    Filter(Expr),
}

/// The operations rules govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    List,
    View,
    Create,
    Update,
    Delete,
}

impl Rules {
    pub fn get(&self, op: Operation) -> &Rule {
        match op {
            Operation::List => &self.list,
            Operation::View => &self.view,
            Operation::Create => &self.create,
            Operation::Update => &self.update,
            Operation::Delete => &self.delete,
        }
    }
}

/// Name rule for collections and fields: `^[a-z][a-z0-9_]{0,47}$`.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 48
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// Quote an identifier for SQL. Callers pass only names taken from a validated schema.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    push_quoted_ident(&mut out, name);
    out
}

/// Append `name` quoted as an identifier to `out` (what `quote_ident` returns), without an
/// allocation of its own: list SQL quotes every column on every request.
pub fn push_quoted_ident(out: &mut String, name: &str) {
    out.push('"');
    for part in name.split_inclusive('"') {
        out.push_str(part);
        if part.ends_with('"') {
            out.push('"');
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_serialize_whole_values_as_integers_and_keep_fractions() {
        let spec = FieldSpec {
            name: "n".into(),
            ty: "number".into(),
            min: Some(0.5),
            max: Some(200.0),
            ..FieldSpec::default()
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["min"], serde_json::json!(0.5));
        assert_eq!(json["max"], serde_json::json!(200));
        assert_eq!(json["max"].to_string(), "200");
        let back: FieldSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        let huge = FieldSpec {
            max: Some(1e300),
            ..spec
        };
        assert_eq!(
            serde_json::to_value(&huge).unwrap()["max"],
            serde_json::json!(1e300)
        );
    }

    #[test]
    fn quoted_identifiers_double_inner_quotes_and_name_exactly_that_table() {
        assert_eq!(quote_ident("posts"), "\"posts\"");
        let odd = "a\"b\"\"c\"";
        let quoted = quote_ident(odd);
        assert_eq!(quoted, "\"a\"\"b\"\"\"\"c\"\"\"");
        let mut appended = String::from("x ");
        push_quoted_ident(&mut appended, odd);
        assert_eq!(appended, format!("x {quoted}"));
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("CREATE TABLE {quoted} (v)"))
            .unwrap();
        let name: String = conn
            .query_row("SELECT name FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, odd);
    }
}
