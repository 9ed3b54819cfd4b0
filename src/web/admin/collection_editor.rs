//! `GET /admin/collections/<name>`: the collection editor — fields, rules, indexes and the
//! forms that change them. The page model is shared with the action handlers, which show it
//! again with their form's typed values and messages when the service refuses a change.

use askama::Template;
use rocket::{State, get};

use crate::app::App;
use crate::schema::{CollectionSpec, FieldSpec, RulesSpec};

use rocket::response::{Flash, Redirect};

use crate::error::AppError;

use super::super::page::{Answer, Layout, Page, WebError, render};
use super::super::visitor::{Staff, Visitor};
use super::collection_indexes::IndexForm;
use super::field_form::{FieldForm, ON_DELETE, TYPES};
use super::form_errors::{Errors, Failure};

/// A field as listed on the editor.
pub struct FieldView {
    pub name: String,
    pub ty: String,
    /// The type's options in words (`max 20`, `values: a, b`, `→ users, on delete cascade`).
    pub options: Vec<String>,
    pub flags: Vec<&'static str>,
    /// The default as JSON text, empty when there is none.
    pub default: String,
}

impl FieldView {
    pub fn of(spec: &FieldSpec) -> Self {
        let mut options = Vec::new();
        let n = |v: f64| v.to_string();
        if let Some(v) = spec.min {
            options.push(format!("min {}", n(v)));
        }
        if let Some(v) = spec.max {
            options.push(format!("max {}", n(v)));
        }
        if let Some(p) = &spec.pattern {
            options.push(format!("pattern {p}"));
        }
        if spec.integer {
            options.push("whole numbers".into());
        }
        if let Some(values) = &spec.values {
            options.push(format!("values: {}", values.join(", ")));
        }
        if spec.multiple {
            options.push("several may be chosen".into());
        }
        if let Some(target) = &spec.collection {
            let on_delete = spec.on_delete.as_deref().unwrap_or("restrict");
            options.push(format!("→ {target}, on delete {on_delete}"));
        }
        let flags = [
            (spec.required, "required"),
            (spec.unique, "unique"),
            (spec.indexed, "indexed"),
        ]
        .into_iter()
        .filter_map(|(on, label)| on.then_some(label))
        .collect();
        FieldView {
            name: spec.name.clone(),
            ty: spec.ty.clone(),
            options,
            flags,
            default: spec
                .default
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }
}

/// An index as listed on the editor.
pub struct IndexView {
    pub name: String,
    pub fields: String,
    pub unique: bool,
}

/// One rule's row in the rules form.
pub struct RuleView {
    pub op: &'static str,
    pub label: &'static str,
    /// `admins`, `anyone` or `expression`.
    pub mode: String,
    pub expr: String,
    pub error: Option<String>,
}

/// The operations, in the order the rules form shows them.
pub const OPERATIONS: [(&str, &str); 5] = [
    ("list", "List records"),
    ("view", "View a record"),
    ("create", "Create records"),
    ("update", "Update records"),
    ("delete", "Delete records"),
];

/// The rule rows for stored rules.
pub fn rule_views(rules: &RulesSpec) -> Vec<RuleView> {
    let stored = [
        &rules.list,
        &rules.view,
        &rules.create,
        &rules.update,
        &rules.delete,
    ];
    OPERATIONS
        .iter()
        .zip(stored)
        .map(|((op, label), rule)| {
            let (mode, expr) = match rule.as_deref() {
                None => ("admins", ""),
                Some("") => ("anyone", ""),
                Some(e) => ("expression", e),
            };
            RuleView {
                op,
                label,
                mode: mode.into(),
                expr: expr.into(),
                error: None,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/collection.html")]
pub struct EditorPage {
    pub layout: Layout,
    pub name: String,
    pub fields: Vec<FieldView>,
    pub indexes: Vec<IndexView>,
    pub rules: Vec<RuleView>,
    /// Collections a relation may point to (`users` included).
    pub targets: Vec<String>,
    pub add: FieldForm,
    pub add_errors: Errors,
    pub index_form: IndexForm,
    pub index_errors: Errors,
    pub rename_to: String,
    pub rename_errors: Errors,
    /// Messages that belong to no single input.
    pub problems: Vec<String>,
    pub types: &'static [(&'static str, &'static str)],
    pub on_delete: &'static [(&'static str, &'static str)],
    /// The field form's name input is read-only (editing a field; renaming is its own form).
    pub lock_name: bool,
}

/// Names a relation field may target.
pub fn relation_targets(app: &App) -> Vec<String> {
    let mut names: Vec<String> = app
        .collections
        .list()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    names.push("users".into());
    names
}

/// The stored definition of `name` (404 when there is none).
pub fn stored_spec(app: &App, name: &str) -> Result<CollectionSpec, WebError> {
    Ok(app.collections.get(name)?.collection.spec.clone())
}

/// The editor of `name` as stored, every form blank.
pub fn editor(app: &App, v: &Visitor, name: &str) -> Result<EditorPage, WebError> {
    let spec = stored_spec(app, name)?;
    Ok(EditorPage {
        layout: v.layout(format!("Collection {}", spec.name)),
        fields: spec.fields.iter().map(FieldView::of).collect(),
        indexes: spec
            .indexes
            .iter()
            .map(|ix| IndexView {
                name: ix.name.clone(),
                fields: ix.fields.join(", "),
                unique: ix.unique,
            })
            .collect(),
        rules: rule_views(&spec.rules),
        targets: relation_targets(app),
        add: FieldForm::blank(),
        add_errors: Errors::default(),
        index_form: <IndexForm as Default>::default(),
        index_errors: Errors::default(),
        rename_to: spec.name.clone(),
        rename_errors: Errors::default(),
        problems: Vec::new(),
        types: &TYPES,
        on_delete: &ON_DELETE,
        lock_name: false,
        name: spec.name,
    })
}

/// The editor's address.
/// Apply one editor change to collection `name` (built under the schema lock from the stored
/// definition) and go back to the editor saying `done`; a refusal comes back as the `Failure`
/// to show on the page.
pub async fn change_then_back(
    app: &App,
    s: &Staff,
    name: &str,
    build: impl FnOnce(&CollectionSpec) -> Result<serde_json::Value, AppError>,
    done: String,
) -> Result<Result<Answer, Failure>, WebError> {
    match app
        .collections
        .update_with(s.0.caller.actor(), name, build)
        .await
    {
        Ok(_) => Ok(Ok(
            Flash::success(Redirect::to(editor_url(name)), done).into()
        )),
        Err(e) => Ok(Err(Failure::from_service(e)?)),
    }
}

pub fn editor_url(name: &str) -> String {
    format!("/admin/collections/{name}")
}

#[get("/admin/collections/<name>")]
pub fn collection_page(app: &State<App>, s: Staff, name: &str) -> Result<Page, WebError> {
    render(&editor(app, &s.0, name)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_options_are_described_in_words() {
        let spec: FieldSpec = serde_json::from_value(json!({
            "name": "owner", "type": "relation", "collection": "users",
            "on_delete": "cascade", "required": true, "indexed": true
        }))
        .unwrap();
        let v = FieldView::of(&spec);
        assert_eq!(v.options, ["→ users, on delete cascade"]);
        assert_eq!(v.flags, ["required", "indexed"]);
        let spec: FieldSpec = serde_json::from_value(json!({
            "name": "n", "type": "number", "min": 0, "max": 2.5, "integer": true, "default": 1
        }))
        .unwrap();
        let v = FieldView::of(&spec);
        assert_eq!(v.options, ["min 0", "max 2.5", "whole numbers"]);
        assert_eq!(v.default, "1");
    }

    #[test]
    fn rules_show_as_a_mode_and_an_expression() {
        let rules = RulesSpec {
            list: Some(String::new()),
            view: Some("owner = @me".into()),
            ..RulesSpec::default()
        };
        let views = rule_views(&rules);
        let modes: Vec<(&str, &str, &str)> = views
            .iter()
            .map(|r| (r.op, r.mode.as_str(), r.expr.as_str()))
            .collect();
        assert_eq!(
            modes,
            [
                ("list", "anyone", ""),
                ("view", "expression", "owner = @me"),
                ("create", "admins", ""),
                ("update", "admins", ""),
                ("delete", "admins", ""),
            ]
        );
    }
}
