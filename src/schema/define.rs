//! Turning a `CollectionSpec` (admin input, or JSON read back from `_collections`) into a
//! validated `Collection`. Every problem is collected and reported at once, keyed by a path into
//! the spec (`name`, `fields.title.max`, `fields.3.type`, `rules.list`, `indexes.by_title.fields`)
//! so an editor can show each message next to its input. Field-level checks live in `field.rs`.
//!
//! Path keys: a field or index is addressed by its name when that name is valid and seen for the
//! first time, otherwise by its 0-based position in the list.
//!
//! This module never touches a database: whether relation targets exist is asked through the
//! `known` callback.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use super::field::{indexable, parse_field};
use super::types::{
    Collection, CollectionSpec, Field, FieldSpec, IndexSpec, Rule, Rules, RulesSpec, SYSTEM_FIELDS,
    is_valid_name,
};

/// Most user fields a collection may have.
pub const MAX_FIELDS: usize = 200;
/// Most extra indexes (`indexes` specs) a collection may have.
pub const MAX_INDEXES: usize = 32;
/// Most fields one index may cover.
pub const MAX_INDEX_FIELDS: usize = 8;

/// The message for names that break `is_valid_name`.
pub(crate) const NAME_RULE: &str =
    "must start with a lowercase letter and contain only a-z, 0-9 and _ (at most 48 characters)";

/// Every problem found in a definition: path → message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DefinitionErrors(pub BTreeMap<String, String>);

impl DefinitionErrors {
    /// Record a problem; the first message for a path wins.
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.entry(path.into()).or_insert_with(|| message.into());
    }

    /// The message for `path`, if there is one.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.0.get(path).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for DefinitionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid collection definition")?;
        for (i, (path, message)) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{path}: {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DefinitionErrors {}

/// Validate `spec`. `known(name)` says whether a relation target collection exists; `users`
/// (the system users table) and the collection itself are always valid targets.
pub fn parse_collection(
    spec: CollectionSpec,
    known: &dyn Fn(&str) -> bool,
) -> Result<Collection, DefinitionErrors> {
    let mut errs = DefinitionErrors::default();
    check_collection_name(&spec.name, &mut errs);
    if spec.fields.len() > MAX_FIELDS {
        errs.add("fields", format!("at most {MAX_FIELDS} fields are allowed"));
    }

    let mut fields: Vec<Field> = Vec::with_capacity(spec.fields.len());
    let mut canonical = Vec::with_capacity(spec.fields.len());
    let mut seen = HashSet::new();
    let mut renamed_from = HashSet::new();
    for (i, fs) in spec.fields.iter().enumerate() {
        let valid = is_valid_name(&fs.name);
        let first = valid && seen.insert(fs.name.as_str());
        let key = if first {
            format!("fields.{}", fs.name)
        } else {
            format!("fields.{i}")
        };
        if valid && !first {
            errs.add(format!("{key}.name"), "duplicate field name");
        }
        if let Some(from) = &fs.rename_from
            && !renamed_from.insert(from.as_str())
        {
            errs.add(
                format!("{key}.rename_from"),
                "another field is already renamed from this name",
            );
        }
        let Some(field) = parse_field(fs, &spec.name, known, &key, &mut errs) else {
            continue;
        };
        if first {
            let mut stored = fs.clone();
            stored.rename_from = None;
            stored.default.clone_from(&field.default);
            canonical.push(stored);
            fields.push(field);
        }
    }

    check_indexes(&spec.indexes, &spec.fields, &mut errs);

    let mut collection = Collection {
        name: spec.name.clone(),
        fields,
        rules: Rules::default(),
        indexes: spec.indexes.clone(),
        spec: CollectionSpec {
            name: spec.name,
            fields: canonical,
            rules: spec.rules,
            indexes: spec.indexes,
        },
    };
    collection.rules = parse_rules(&collection.spec.rules, &collection, &mut errs);

    if errs.is_empty() {
        Ok(collection)
    } else {
        Err(errs)
    }
}

/// The field renames a PATCH spec asks for, as `(from, to)` pairs for `alter`.
pub fn field_renames(spec: &CollectionSpec) -> Vec<(String, String)> {
    spec.fields
        .iter()
        .filter_map(|f| {
            let from = f.rename_from.as_ref()?;
            (*from != f.name).then(|| (from.clone(), f.name.clone()))
        })
        .collect()
}

/// Point relation fields of `spec` that target collection `from` at `to` (after a collection is
/// renamed, for the definitions of the collections referring to it). Returns whether any changed.
pub fn retarget_relations(spec: &mut CollectionSpec, from: &str, to: &str) -> bool {
    let mut changed = false;
    for f in &mut spec.fields {
        if f.ty == "relation" && f.collection.as_deref() == Some(from) {
            f.collection = Some(to.to_owned());
            changed = true;
        }
    }
    changed
}

fn check_collection_name(name: &str, errs: &mut DefinitionErrors) {
    if !is_valid_name(name) {
        errs.add("name", NAME_RULE);
    } else if name == "users" {
        errs.add("name", "\"users\" is reserved for the system users table");
    }
}

fn check_indexes(indexes: &[IndexSpec], specs: &[FieldSpec], errs: &mut DefinitionErrors) {
    if indexes.len() > MAX_INDEXES {
        errs.add(
            "indexes",
            format!("at most {MAX_INDEXES} indexes are allowed"),
        );
    }
    let mut names = HashSet::new();
    for (i, ix) in indexes.iter().enumerate() {
        let valid = is_valid_name(&ix.name);
        let first = valid && names.insert(ix.name.as_str());
        let key = if first {
            format!("indexes.{}", ix.name)
        } else {
            format!("indexes.{i}")
        };
        if !valid {
            errs.add(format!("{key}.name"), NAME_RULE);
        } else if !first {
            errs.add(format!("{key}.name"), "duplicate index name");
        }
        let fkey = format!("{key}.fields");
        if ix.fields.is_empty() || ix.fields.len() > MAX_INDEX_FIELDS {
            errs.add(&fkey, format!("must list 1 to {MAX_INDEX_FIELDS} fields"));
            continue;
        }
        let mut used = HashSet::new();
        for name in &ix.fields {
            if !used.insert(name.as_str()) {
                errs.add(&fkey, format!("field \"{name}\" is listed twice"));
            } else if SYSTEM_FIELDS.contains(&name.as_str()) {
                // id, created and updated are plain TEXT columns and may be indexed.
            } else if let Some(fs) = specs.iter().find(|s| s.name == *name) {
                if !indexable(fs) {
                    errs.add(
                        &fkey,
                        format!("field \"{name}\" holds JSON and cannot be indexed"),
                    );
                }
            } else {
                errs.add(&fkey, format!("unknown field \"{name}\""));
            }
        }
    }
}

fn parse_rules(spec: &RulesSpec, c: &Collection, errs: &mut DefinitionErrors) -> Rules {
    Rules {
        list: parse_rule("list", spec.list.as_deref(), c, errs),
        view: parse_rule("view", spec.view.as_deref(), c, errs),
        create: parse_rule("create", spec.create.as_deref(), c, errs),
        update: parse_rule("update", spec.update.as_deref(), c, errs),
        delete: parse_rule("delete", spec.delete.as_deref(), c, errs),
    }
}

fn parse_rule(op: &str, text: Option<&str>, c: &Collection, errs: &mut DefinitionErrors) -> Rule {
    match text {
        None => Rule::AdminOnly,
        Some("") => Rule::Anyone,
        Some(text) => match crate::query::parse_filter(text, c) {
            Ok(expr) => Rule::Filter(expr),
            Err(e) => {
                errs.add(format!("rules.{op}"), e.to_string());
                Rule::AdminOnly
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testutil::{collection, spec};
    use serde_json::json;

    fn errors(v: serde_json::Value) -> DefinitionErrors {
        parse_collection(spec(v), &|n| n == "authors").unwrap_err()
    }

    #[test]
    fn valid_definition_parses_with_canonical_spec() {
        let c = collection(json!({
            "name": "posts",
            "fields": [
                {"name": "title", "type": "text", "required": true, "max": 100},
                {"name": "when", "type": "datetime", "default": "2024-05-01T14:00:00+02:00",
                 "rename_from": "at"},
                {"name": "author", "type": "relation", "collection": "authors",
                 "on_delete": "cascade"},
            ],
            "rules": {"list": "", "view": null},
            "indexes": [{"name": "by_title", "fields": ["title", "created"], "unique": true}],
        }));
        assert_eq!(c.name, "posts");
        assert_eq!(c.fields.len(), 3);
        assert!(matches!(c.rules.list, Rule::Anyone));
        assert!(matches!(c.rules.view, Rule::AdminOnly));
        let when = &c.spec.fields[1];
        assert_eq!(when.rename_from, None);
        assert_eq!(when.default, Some(json!("2024-05-01T12:00:00.000Z")));
        assert_eq!(c.field("when").unwrap().default, when.default);
        assert_eq!(c.spec.indexes.len(), 1);
    }

    #[test]
    fn reports_every_problem_at_once_with_exact_keys() {
        let e = errors(json!({
            "name": "_bad",
            "fields": [
                {"name": "title", "type": "text", "max": -1, "integer": true},
                {"name": "title", "type": "text"},
                {"name": "Bad Name", "type": "nope"},
                {"name": "id", "type": "text"},
                {"name": "tags", "type": "select", "values": [], "multiple": true, "unique": true},
                {"name": "meta", "type": "json", "indexed": true},
                {"name": "owner", "type": "relation", "collection": "ghosts"},
                {"name": "boss", "type": "relation", "collection": "authors",
                 "on_delete": "set_null", "required": true},
            ],
            "rules": {"list": "title = 1"},
            "indexes": [
                {"name": "by_title", "fields": []},
                {"name": "by_meta", "fields": ["meta", "nothing"]},
                {"name": "by_meta", "fields": ["title"]},
            ],
        }));
        let keys: Vec<&str> = e.0.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "fields.1.name",
                "fields.2.name",
                "fields.2.type",
                "fields.boss.on_delete",
                "fields.id.name",
                "fields.meta.indexed",
                "fields.owner.collection",
                "fields.tags.unique",
                "fields.tags.values",
                "fields.title.integer",
                "fields.title.max",
                "indexes.2.name",
                "indexes.by_meta.fields",
                "indexes.by_title.fields",
                "name",
                "rules.list",
            ]
        );
        assert_eq!(e.get("fields.1.name"), Some("duplicate field name"));
        assert!(e.get("rules.list").unwrap().contains("at position"));
        assert!(
            e.to_string()
                .starts_with("invalid collection definition: fields.1.name")
        );
    }

    #[test]
    fn collection_name_rules() {
        assert!(errors(json!({"name": "users"})).get("name").is_some());
        assert!(errors(json!({"name": "Posts"})).get("name").is_some());
        assert!(
            errors(json!({"name": "a".repeat(49)}))
                .get("name")
                .is_some()
        );
        assert!(parse_collection(spec(json!({"name": "a".repeat(48)})), &|_| false).is_ok());
    }

    #[test]
    fn too_many_fields_is_reported() {
        let fields: Vec<_> = (0..=MAX_FIELDS)
            .map(|i| json!({"name": format!("f{i}"), "type": "bool"}))
            .collect();
        let e = errors(json!({"name": "wide", "fields": fields}));
        assert_eq!(e.get("fields"), Some("at most 200 fields are allowed"));
    }

    #[test]
    fn index_names_and_fields_are_checked() {
        let e = errors(json!({
            "name": "posts",
            "fields": [{"name": "a", "type": "text"}],
            "indexes": [
                {"name": "Bad", "fields": ["a"]},
                {"name": "twice", "fields": ["a", "a"]},
                {"name": "wide", "fields": ["a","b","c","d","e","f","g","h","i"]},
            ],
        }));
        assert_eq!(e.get("indexes.0.name"), Some(NAME_RULE));
        assert_eq!(
            e.get("indexes.twice.fields"),
            Some("field \"a\" is listed twice")
        );
        assert_eq!(
            e.get("indexes.wide.fields"),
            Some("must list 1 to 8 fields")
        );
    }

    #[test]
    fn invalid_rule_is_reported_under_its_operation() {
        let e = errors(json!({"name": "posts", "rules": {"delete": "x = 1", "view": ""}}));
        assert_eq!(e.0.len(), 1);
        assert!(e.get("rules.delete").is_some());
    }

    #[test]
    fn renames_and_retargeting() {
        let mut s = spec(json!({
            "name": "posts",
            "fields": [
                {"name": "title", "type": "text", "rename_from": "name"},
                {"name": "same", "type": "text", "rename_from": "same"},
                {"name": "by", "type": "relation", "collection": "authors"},
            ],
        }));
        assert_eq!(field_renames(&s), [("name".to_owned(), "title".to_owned())]);
        assert!(retarget_relations(&mut s, "authors", "writers"));
        assert_eq!(s.fields[2].collection.as_deref(), Some("writers"));
        assert!(!retarget_relations(&mut s, "authors", "writers"));
    }

    #[test]
    fn duplicate_rename_sources_are_reported() {
        let e = errors(json!({
            "name": "posts",
            "fields": [
                {"name": "a", "type": "text", "rename_from": "x"},
                {"name": "b", "type": "text", "rename_from": "x"},
            ],
        }));
        assert!(e.get("fields.b.rename_from").is_some());
    }
}
