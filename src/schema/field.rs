//! One `FieldSpec` → one validated `Field`: the name, the type, the options that belong to that
//! type (anything else is an error, not silently ignored) and the default, which is validated
//! with the same code that validates record values and kept in canonical form.

use regex::RegexBuilder;
use rusqlite::types::ValueRef;
use serde_json::Value;

use super::define::{DefinitionErrors, NAME_RULE};
use super::types::{Field, FieldKind, FieldSpec, OnDelete, Pattern, SYSTEM_FIELDS, is_valid_name};
use super::{rows, values};

/// The field types, as written in `FieldSpec::ty`.
pub const FIELD_TYPES: [&str; 9] = [
    "text", "number", "bool", "datetime", "email", "url", "select", "json", "relation",
];
/// Longest accepted `pattern`, in characters.
pub const MAX_PATTERN_CHARS: usize = 512;
/// Most `values` a select field may list.
pub const MAX_SELECT_VALUES: usize = 500;
/// Longest select value, in characters.
pub const MAX_SELECT_VALUE_CHARS: usize = 200;
/// Compiled-size limit for patterns, so an admin cannot make every write expensive.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Whether a field spec may be `unique`/`indexed` or part of an index: json and multi-select
/// values are JSON text, where an index would only compare whole documents.
pub(crate) fn indexable(spec: &FieldSpec) -> bool {
    !(spec.ty == "json" || (spec.ty == "select" && spec.multiple))
}

/// Errors of one field, under `key` (`fields.<name>` or `fields.<position>`).
struct Sink<'e> {
    errs: &'e mut DefinitionErrors,
    key: &'e str,
    failed: bool,
}

impl Sink<'_> {
    fn add(&mut self, option: &str, message: impl Into<String>) {
        self.errs.add(format!("{}.{option}", self.key), message);
        self.failed = true;
    }
}

/// Validate one field of collection `collection`. Problems go to `errs` under `key`; the field
/// is returned only when it has none.
pub(crate) fn parse_field(
    spec: &FieldSpec,
    collection: &str,
    known: &dyn Fn(&str) -> bool,
    key: &str,
    errs: &mut DefinitionErrors,
) -> Option<Field> {
    let mut sink = Sink {
        errs,
        key,
        failed: false,
    };
    if !is_valid_name(&spec.name) {
        sink.add("name", NAME_RULE);
    } else if SYSTEM_FIELDS.contains(&spec.name.as_str()) {
        sink.add("name", "is a system field");
    }
    if let Some(from) = &spec.rename_from
        && !is_valid_name(from)
    {
        sink.add("rename_from", NAME_RULE);
    }
    if !indexable(spec) {
        let what = if spec.ty == "json" {
            "json fields"
        } else {
            "multiple select fields"
        };
        if spec.unique {
            sink.add("unique", format!("not allowed for {what}"));
        }
        if spec.indexed {
            sink.add("indexed", format!("not allowed for {what}"));
        }
    }
    let kind = parse_kind(spec, collection, known, &mut sink);
    if let Some(FieldKind::Relation {
        on_delete: OnDelete::SetNull,
        ..
    }) = &kind
        && spec.required
    {
        sink.add(
            "on_delete",
            "set_null contradicts required: a required relation cannot be cleared",
        );
    }
    let mut field = Field {
        name: spec.name.clone(),
        required: spec.required,
        unique: spec.unique,
        indexed: spec.indexed,
        default: None,
        kind: kind?,
    };
    if let Some(default) = &spec.default {
        match canonical_default(&field, default) {
            Ok(v) => field.default = Some(v),
            Err(m) => sink.add("default", m),
        }
    }
    (!sink.failed).then_some(field)
}

/// The default as it reads back from storage (e.g. datetimes in UTC with milliseconds).
fn canonical_default(field: &Field, default: &Value) -> Result<Value, String> {
    match values::to_stored(field, default)? {
        None => Err("must not be empty".into()),
        Some(stored) => rows::decode(Some(&field.kind), ValueRef::from(&stored)),
    }
}

fn parse_kind(
    spec: &FieldSpec,
    collection: &str,
    known: &dyn Fn(&str) -> bool,
    sink: &mut Sink<'_>,
) -> Option<FieldKind> {
    let ty = spec.ty.as_str();
    if !FIELD_TYPES.contains(&ty) {
        sink.add(
            "type",
            format!("unknown type (expected one of: {})", FIELD_TYPES.join(", ")),
        );
        return None;
    }
    let options: [(&str, bool, &[&str]); 8] = [
        ("min", spec.min.is_some(), &["text", "number"]),
        ("max", spec.max.is_some(), &["text", "number"]),
        ("pattern", spec.pattern.is_some(), &["text"]),
        ("integer", spec.integer, &["number"]),
        ("values", spec.values.is_some(), &["select"]),
        ("multiple", spec.multiple, &["select"]),
        ("collection", spec.collection.is_some(), &["relation"]),
        ("on_delete", spec.on_delete.is_some(), &["relation"]),
    ];
    for (option, present, types) in options {
        if present && !types.contains(&ty) {
            sink.add(option, format!("not allowed for {ty} fields"));
        }
    }
    let kind = match ty {
        "text" => {
            let min = spec.min.and_then(|v| length_bound(v, "min", sink));
            let max = spec.max.and_then(|v| length_bound(v, "max", sink));
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                sink.add("min", "must not be greater than max");
            }
            let pattern = spec.pattern.as_deref().and_then(|p| compile(p, sink));
            FieldKind::Text { min, max, pattern }
        }
        "number" => {
            for (option, v) in [("min", spec.min), ("max", spec.max)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    sink.add(option, "must be a finite number");
                }
            }
            if let (Some(lo), Some(hi)) = (spec.min, spec.max)
                && lo > hi
            {
                sink.add("min", "must not be greater than max");
            }
            FieldKind::Number {
                min: spec.min,
                max: spec.max,
                integer: spec.integer,
            }
        }
        "bool" => FieldKind::Bool,
        "datetime" => FieldKind::Datetime,
        "email" => FieldKind::Email,
        "url" => FieldKind::Url,
        "json" => FieldKind::Json,
        "select" => FieldKind::Select {
            values: select_values(spec.values.as_deref(), sink)?,
            multiple: spec.multiple,
        },
        _ => relation(spec, collection, known, sink)?,
    };
    Some(kind)
}

fn length_bound(v: f64, option: &str, sink: &mut Sink<'_>) -> Option<u32> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) {
        // Checked above: integral and within u32, so the cast is exact.
        Some(v as u32)
    } else {
        sink.add(
            option,
            "must be a non-negative integer (a length in characters)",
        );
        None
    }
}

fn compile(source: &str, sink: &mut Sink<'_>) -> Option<Pattern> {
    if source.chars().count() > MAX_PATTERN_CHARS {
        sink.add(
            "pattern",
            format!("must be at most {MAX_PATTERN_CHARS} characters"),
        );
        return None;
    }
    match RegexBuilder::new(source)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
    {
        Ok(regex) => Some(Pattern {
            source: source.to_owned(),
            regex,
        }),
        Err(regex::Error::CompiledTooBig(_)) => {
            sink.add("pattern", "is too complex");
            None
        }
        Err(e) => {
            // The crate's message draws the pattern with a caret; keep only its last line.
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or("syntax error");
            sink.add(
                "pattern",
                format!("is not a valid regular expression: {reason}"),
            );
            None
        }
    }
}

fn select_values(values: Option<&[String]>, sink: &mut Sink<'_>) -> Option<Vec<String>> {
    let Some(values) = values else {
        sink.add("values", "required for select fields");
        return None;
    };
    let problem = if values.is_empty() {
        Some("must list at least one value".to_owned())
    } else if values.len() > MAX_SELECT_VALUES {
        Some(format!("at most {MAX_SELECT_VALUES} values are allowed"))
    } else if values.iter().any(String::is_empty) {
        Some("values must not be empty".to_owned())
    } else if let Some(v) = values
        .iter()
        .find(|v| v.chars().count() > MAX_SELECT_VALUE_CHARS)
    {
        let head: String = v.chars().take(20).collect();
        Some(format!(
            "value \"{head}…\" is longer than {MAX_SELECT_VALUE_CHARS} characters"
        ))
    } else {
        let mut seen = std::collections::HashSet::new();
        values
            .iter()
            .find(|v| !seen.insert(v.as_str()))
            .map(|v| format!("value \"{v}\" is listed twice"))
    };
    match problem {
        Some(p) => {
            sink.add("values", p);
            None
        }
        None => Some(values.to_vec()),
    }
}

fn relation(
    spec: &FieldSpec,
    collection: &str,
    known: &dyn Fn(&str) -> bool,
    sink: &mut Sink<'_>,
) -> Option<FieldKind> {
    let on_delete = match spec.on_delete.as_deref() {
        None | Some("restrict") => Some(OnDelete::Restrict),
        Some("cascade") => Some(OnDelete::Cascade),
        Some("set_null") => Some(OnDelete::SetNull),
        Some(_) => {
            sink.add("on_delete", "must be one of: restrict, cascade, set_null");
            None
        }
    };
    let target = match spec.collection.as_deref() {
        None => {
            sink.add("collection", "required for relation fields");
            None
        }
        Some(t) if t == "users" || (is_valid_name(t) && (t == collection || known(t))) => {
            Some(t.to_owned())
        }
        Some(_) => {
            sink.add("collection", "unknown collection");
            None
        }
    };
    Some(FieldKind::Relation {
        collection: target?,
        on_delete: on_delete?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testutil::{collection, spec};
    use serde_json::json;

    /// Errors of a one-field collection `t`, keyed without the `fields.<name>.` prefix.
    fn field_errors(field: Value) -> Vec<(String, String)> {
        let s = spec(json!({"name": "t", "fields": [field]}));
        match crate::schema::parse_collection(s, &|n| n == "others") {
            Ok(_) => vec![],
            Err(e) => {
                e.0.into_iter()
                    .map(|(k, v)| (k.splitn(3, '.').nth(2).unwrap_or(&k).to_owned(), v))
                    .collect()
            }
        }
    }

    fn keys(field: Value) -> Vec<String> {
        field_errors(field).into_iter().map(|(k, _)| k).collect()
    }

    fn field(f: Value) -> Field {
        collection(json!({"name": "t", "fields": [f]}))
            .fields
            .remove(0)
    }

    #[test]
    fn every_type_parses_with_its_options() {
        let text = field(json!({"name": "a", "type": "text", "min": 1, "max": 5, "pattern": "^x"}));
        assert!(matches!(
            text.kind,
            FieldKind::Text {
                min: Some(1),
                max: Some(5),
                pattern: Some(_)
            }
        ));
        let n = field(json!({"name": "a", "type": "number", "min": -1.5, "integer": true}));
        assert!(matches!(n.kind, FieldKind::Number { integer: true, .. }));
        for ty in ["bool", "datetime", "email", "url", "json"] {
            assert_eq!(field(json!({"name": "a", "type": ty})).kind.type_name(), ty);
        }
        let s =
            field(json!({"name": "a", "type": "select", "values": ["x", "y"], "multiple": true}));
        assert!(matches!(s.kind, FieldKind::Select { multiple: true, .. }));
        for (target, on_delete) in [("users", OnDelete::Restrict), ("t", OnDelete::Restrict)] {
            let r = field(json!({"name": "a", "type": "relation", "collection": target}));
            assert!(matches!(r.kind, FieldKind::Relation { on_delete: od, .. } if od == on_delete));
        }
        let r = field(
            json!({"name": "a", "type": "relation", "collection": "others",
                             "on_delete": "set_null"}),
        );
        assert!(matches!(
            r.kind,
            FieldKind::Relation {
                on_delete: OnDelete::SetNull,
                ..
            }
        ));
    }

    #[test]
    fn options_of_other_types_are_rejected() {
        let k = keys(
            json!({"name": "a", "type": "bool", "min": 1, "max": 2, "pattern": "x",
            "integer": true, "values": ["a"], "multiple": true, "collection": "users",
            "on_delete": "cascade"}),
        );
        assert_eq!(
            k,
            [
                "collection",
                "integer",
                "max",
                "min",
                "multiple",
                "on_delete",
                "pattern",
                "values"
            ]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "number", "pattern": "x"})),
            ["pattern"]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "text", "integer": true})),
            ["integer"]
        );
    }

    #[test]
    fn text_bounds_must_be_ordered_non_negative_integers() {
        assert_eq!(
            keys(json!({"name": "a", "type": "text", "min": 1.5})),
            ["min"]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "text", "max": -1})),
            ["max"]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "text", "min": 5, "max": 2})),
            ["min"]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "number", "min": 5, "max": 2})),
            ["min"]
        );
        assert!(keys(json!({"name": "a", "type": "number", "min": -5.5, "max": 2})).is_empty());
    }

    #[test]
    fn patterns_must_compile_and_stay_small() {
        let e = field_errors(json!({"name": "a", "type": "text", "pattern": "(abc"}));
        assert_eq!(e[0].1, "is not a valid regular expression: unclosed group");
        let long = "a".repeat(MAX_PATTERN_CHARS + 1);
        assert_eq!(
            keys(json!({"name": "a", "type": "text", "pattern": long})),
            ["pattern"]
        );
        let huge = field_errors(json!({"name": "a", "type": "text", "pattern": "\\w{1000}{1000}"}));
        assert_eq!(huge[0].1, "is too complex");
    }

    #[test]
    fn select_values_are_checked() {
        let msg = |v: Value| field_errors(json!({"name": "a", "type": "select", "values": v}));
        assert_eq!(
            field_errors(json!({"name": "a", "type": "select"}))[0].1,
            "required for select fields"
        );
        assert_eq!(msg(json!([]))[0].1, "must list at least one value");
        assert_eq!(msg(json!(["a", ""]))[0].1, "values must not be empty");
        assert_eq!(msg(json!(["a", "a"]))[0].1, "value \"a\" is listed twice");
        assert!(
            msg(json!(["x".repeat(201)]))[0]
                .1
                .contains("longer than 200")
        );
        let many: Vec<String> = (0..=MAX_SELECT_VALUES).map(|i| i.to_string()).collect();
        assert_eq!(msg(json!(many))[0].1, "at most 500 values are allowed");
    }

    #[test]
    fn relations_need_a_known_target_and_a_valid_action() {
        assert_eq!(
            keys(json!({"name": "a", "type": "relation"})),
            ["collection"]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "relation", "collection": "_users"})),
            ["collection"]
        );
        assert_eq!(
            keys(
                json!({"name": "a", "type": "relation", "collection": "users",
                        "on_delete": "explode"})
            ),
            ["on_delete"]
        );
        assert_eq!(
            keys(
                json!({"name": "a", "type": "relation", "collection": "users",
                        "on_delete": "set_null", "required": true})
            ),
            ["on_delete"]
        );
    }

    #[test]
    fn unique_and_indexed_are_refused_for_json_values() {
        assert_eq!(
            keys(json!({"name": "a", "type": "json", "unique": true, "indexed": true})),
            ["indexed", "unique"]
        );
        assert_eq!(
            keys(
                json!({"name": "a", "type": "select", "values": ["x"], "multiple": true,
                        "unique": true})
            ),
            ["unique"]
        );
        assert!(
            keys(json!({"name": "a", "type": "select", "values": ["x"], "unique": true}))
                .is_empty()
        );
    }

    #[test]
    fn defaults_are_validated_and_canonicalised() {
        let d = |f: Value| field(f).default.unwrap();
        assert_eq!(
            d(json!({"name": "a", "type": "datetime", "default": "2024-01-01T01:00:00+01:00"})),
            json!("2024-01-01T00:00:00.000Z")
        );
        assert_eq!(
            d(json!({"name": "a", "type": "number", "integer": true, "default": 3.0})),
            json!(3)
        );
        assert_eq!(
            d(json!({"name": "a", "type": "bool", "default": true})),
            json!(true)
        );
        assert_eq!(
            d(
                json!({"name": "a", "type": "select", "values": ["x", "y"], "multiple": true,
                     "default": ["y"]})
            ),
            json!(["y"])
        );
        assert_eq!(
            d(json!({"name": "a", "type": "json", "default": {"k": [1]}})),
            json!({"k": [1]})
        );
        assert_eq!(
            d(json!({"name": "a", "type": "url", "default": "HTTP://Example.com"})),
            json!("http://example.com/")
        );
        let bad = field_errors(json!({"name": "a", "type": "text", "max": 2, "default": "long"}));
        assert_eq!(
            bad,
            [(
                "default".to_owned(),
                "must be at most 2 characters".to_owned()
            )]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "text", "required": true, "default": ""})),
            ["default"]
        );
        assert_eq!(
            keys(json!({"name": "a", "type": "select", "values": ["x"], "default": "z"})),
            ["default"]
        );
    }

    #[test]
    fn reserved_and_invalid_field_names() {
        for name in ["id", "created", "updated"] {
            assert_eq!(
                field_errors(json!({"name": name, "type": "text"})),
                [("name".to_owned(), "is a system field".to_owned())]
            );
        }
        assert_eq!(
            field_errors(json!({"name": "a", "type": "text", "rename_from": "B"}))[0].0,
            "rename_from"
        );
    }
}
