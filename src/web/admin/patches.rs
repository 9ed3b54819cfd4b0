//! The merge patches the collection editor sends to `Collections::update`, built from the
//! current definition. `fields` and `indexes` are lists, which a merge patch replaces whole, so
//! each patch carries the complete new list; `rules` is an object and is patched key by key.

use serde_json::{Value, json};

use crate::error::AppError;
use crate::schema::{CollectionSpec, FieldSpec, IndexSpec, RulesSpec};

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, AppError> {
    serde_json::to_value(v).map_err(|e| AppError::Internal(format!("patch: {e}")))
}

fn position(spec: &CollectionSpec, field: &str) -> Result<usize, AppError> {
    spec.fields
        .iter()
        .position(|f| f.name == field)
        .ok_or(AppError::NotFound)
}

/// Append `field`.
pub fn add_field(spec: &CollectionSpec, field: FieldSpec) -> Result<Value, AppError> {
    let mut fields = spec.fields.clone();
    fields.push(field);
    Ok(json!({ "fields": to_value(&fields)? }))
}

/// Replace the options (and type) of field `name`, keeping its place and its name.
pub fn edit_field(
    spec: &CollectionSpec,
    name: &str,
    mut field: FieldSpec,
) -> Result<Value, AppError> {
    let at = position(spec, name)?;
    field.name = name.to_string();
    let mut fields = spec.fields.clone();
    fields[at] = field;
    Ok(json!({ "fields": to_value(&fields)? }))
}

/// Rename field `from` to `to` (its data moves along) and follow the rename in the indexes.
pub fn rename_field(spec: &CollectionSpec, from: &str, to: &str) -> Result<Value, AppError> {
    let at = position(spec, from)?;
    let mut fields = spec.fields.clone();
    fields[at].name = to.to_string();
    fields[at].rename_from = Some(from.to_string());
    let mut indexes = spec.indexes.clone();
    for ix in &mut indexes {
        for f in &mut ix.fields {
            if f == from {
                *f = to.to_string();
            }
        }
    }
    Ok(json!({ "fields": to_value(&fields)?, "indexes": to_value(&indexes)? }))
}

/// The indexes that cover field `name` (dropped with it).
pub fn indexes_using<'s>(spec: &'s CollectionSpec, name: &str) -> Vec<&'s IndexSpec> {
    spec.indexes
        .iter()
        .filter(|ix| ix.fields.iter().any(|f| f == name))
        .collect()
}

/// Drop field `name` and the indexes that cover it.
pub fn drop_field(spec: &CollectionSpec, name: &str) -> Result<Value, AppError> {
    position(spec, name)?;
    let fields: Vec<&FieldSpec> = spec.fields.iter().filter(|f| f.name != name).collect();
    let indexes: Vec<&IndexSpec> = spec
        .indexes
        .iter()
        .filter(|ix| !ix.fields.iter().any(|f| f == name))
        .collect();
    Ok(json!({ "fields": to_value(&fields)?, "indexes": to_value(&indexes)? }))
}

/// Set all five rules (`null` = admins only, `""` = anyone, else an expression).
pub fn rules(rules: &RulesSpec) -> Result<Value, AppError> {
    let r = |v: &Option<String>| v.as_ref().map_or(Value::Null, |t| Value::from(t.as_str()));
    Ok(json!({ "rules": {
        "list": r(&rules.list),
        "view": r(&rules.view),
        "create": r(&rules.create),
        "update": r(&rules.update),
        "delete": r(&rules.delete),
    }}))
}

/// Append index `index`.
pub fn add_index(spec: &CollectionSpec, index: IndexSpec) -> Result<Value, AppError> {
    let mut indexes = spec.indexes.clone();
    indexes.push(index);
    Ok(json!({ "indexes": to_value(&indexes)? }))
}

/// Drop index `name`.
pub fn drop_index(spec: &CollectionSpec, name: &str) -> Result<Value, AppError> {
    if !spec.indexes.iter().any(|ix| ix.name == name) {
        return Err(AppError::NotFound);
    }
    let indexes: Vec<&IndexSpec> = spec.indexes.iter().filter(|ix| ix.name != name).collect();
    Ok(json!({ "indexes": to_value(&indexes)? }))
}

/// Rename the collection.
pub fn rename_collection(to: &str) -> Value {
    json!({ "name": to.trim() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::collections::merge_patch;

    fn spec() -> CollectionSpec {
        serde_json::from_value(json!({
            "name": "books",
            "fields": [
                {"name": "title", "type": "text", "required": true},
                {"name": "year", "type": "number", "integer": true},
                {"name": "tags", "type": "select", "values": ["a", "b"], "multiple": true},
            ],
            "rules": {"list": "", "view": "year > 2000"},
            "indexes": [
                {"name": "by_title_year", "fields": ["title", "year"], "unique": true},
                {"name": "by_year", "fields": ["year"]},
            ],
        }))
        .unwrap()
    }

    /// The definition the service would see after merging `patch`.
    fn applied(patch: Value) -> CollectionSpec {
        let mut doc = serde_json::to_value(spec()).unwrap();
        merge_patch(&mut doc, &patch);
        serde_json::from_value(doc).unwrap()
    }

    fn names(s: &CollectionSpec) -> Vec<&str> {
        s.fields.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn add_field_appends_and_keeps_every_other_field() {
        let field: FieldSpec =
            serde_json::from_value(json!({"name": "isbn", "type": "text", "unique": true}))
                .unwrap();
        let s = applied(add_field(&spec(), field.clone()).unwrap());
        assert_eq!(names(&s), ["title", "year", "tags", "isbn"]);
        assert_eq!(s.fields[3], field);
        assert_eq!(s.fields[..3], spec().fields[..]);
        assert_eq!(s.rules, spec().rules);
        assert_eq!(s.indexes, spec().indexes);
    }

    #[test]
    fn edit_field_keeps_its_place_and_name() {
        let mut field = spec().fields[1].clone();
        field.name = "ignored".into();
        field.min = Some(1450.0);
        let s = applied(edit_field(&spec(), "year", field).unwrap());
        assert_eq!(names(&s), ["title", "year", "tags"]);
        assert_eq!(s.fields[1].min, Some(1450.0));
        assert!(matches!(
            edit_field(&spec(), "nope", FieldSpec::default()),
            Err(AppError::NotFound)
        ));
    }

    #[test]
    fn rename_field_sends_rename_from_and_follows_in_indexes() {
        let s = applied(rename_field(&spec(), "year", "published").unwrap());
        assert_eq!(names(&s), ["title", "published", "tags"]);
        assert_eq!(s.fields[1].rename_from.as_deref(), Some("year"));
        assert_eq!(s.indexes[0].fields, ["title", "published"]);
        assert_eq!(s.indexes[1].fields, ["published"]);
        assert_eq!(
            crate::schema::field_renames(&s),
            [("year".into(), "published".into())]
        );
    }

    #[test]
    fn drop_field_removes_it_and_the_indexes_that_cover_it() {
        assert_eq!(
            indexes_using(&spec(), "year")
                .iter()
                .map(|ix| ix.name.as_str())
                .collect::<Vec<_>>(),
            ["by_title_year", "by_year"]
        );
        let s = applied(drop_field(&spec(), "year").unwrap());
        assert_eq!(names(&s), ["title", "tags"]);
        assert!(s.indexes.is_empty());
        let s = applied(drop_field(&spec(), "tags").unwrap());
        assert_eq!(s.indexes.len(), 2);
    }

    #[test]
    fn rules_patch_sets_all_five_with_null_for_admins_only() {
        let r = RulesSpec {
            list: Some(String::new()),
            view: None,
            create: Some("@me != null".into()),
            ..RulesSpec::default()
        };
        let s = applied(rules(&r).unwrap());
        assert_eq!(s.rules, r);
    }

    #[test]
    fn indexes_are_added_and_dropped_by_name() {
        let ix = IndexSpec {
            name: "by_tags_title".into(),
            fields: vec!["title".into()],
            unique: false,
        };
        let s = applied(add_index(&spec(), ix.clone()).unwrap());
        assert_eq!(s.indexes.len(), 3);
        assert_eq!(s.indexes[2], ix);
        let s = applied(drop_index(&spec(), "by_title_year").unwrap());
        assert_eq!(s.indexes, spec().indexes[1..]);
        assert!(matches!(
            drop_index(&spec(), "nope"),
            Err(AppError::NotFound)
        ));
        assert_eq!(applied(rename_collection(" novels ")).name, "novels");
    }
}
