//! `POST /admin/collections/<name>/rules`: the five access rules, each "admins only",
//! "anyone" or an expression. An expression the service refuses is shown beside its rule,
//! with every typed value kept, and nothing changes.

use rocket::form::FromForm;
use rocket::response::{Flash, Redirect};
use rocket::{State, post};

use crate::app::App;
use crate::schema::RulesSpec;

use super::super::page::{Answer, WebError, render};
use super::super::visitor::{Checked, Staff};
use super::collection_editor::{OPERATIONS, RuleView, editor, editor_url, stored_spec};
use super::form_errors::{Errors, Failure};
use super::patches;

/// The rules form: a mode and an expression per operation.
#[derive(Debug, Clone, Default, FromForm)]
pub struct RulesForm {
    #[field(default = String::from("admins"))]
    pub list_mode: String,
    #[field(default = String::new())]
    pub list_expr: String,
    #[field(default = String::from("admins"))]
    pub view_mode: String,
    #[field(default = String::new())]
    pub view_expr: String,
    #[field(default = String::from("admins"))]
    pub create_mode: String,
    #[field(default = String::new())]
    pub create_expr: String,
    #[field(default = String::from("admins"))]
    pub update_mode: String,
    #[field(default = String::new())]
    pub update_expr: String,
    #[field(default = String::from("admins"))]
    pub delete_mode: String,
    #[field(default = String::new())]
    pub delete_expr: String,
}

impl RulesForm {
    /// `(mode, expression)` of each operation, in `OPERATIONS` order.
    fn pairs(&self) -> [(&str, &str); 5] {
        [
            (&self.list_mode, &self.list_expr),
            (&self.view_mode, &self.view_expr),
            (&self.create_mode, &self.create_expr),
            (&self.update_mode, &self.update_expr),
            (&self.delete_mode, &self.delete_expr),
        ]
        .map(|(m, e)| (m.as_str(), e.as_str()))
    }

    /// The rules asked for, or messages keyed by operation.
    pub fn to_spec(&self) -> Result<RulesSpec, Errors> {
        let mut errors = Errors::default();
        let mut rules: [Option<String>; 5] = Default::default();
        for (i, (mode, expr)) in self.pairs().into_iter().enumerate() {
            let op = OPERATIONS[i].0;
            rules[i] = match mode {
                "admins" => None,
                "anyone" => Some(String::new()),
                "expression" if expr.trim().is_empty() => {
                    errors.insert(op, "write an expression, or choose another option");
                    None
                }
                "expression" => Some(expr.trim().to_string()),
                _ => {
                    errors.insert(op, "choose admins only, anyone or an expression");
                    None
                }
            };
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let [list, view, create, update, delete] = rules;
        Ok(RulesSpec {
            list,
            view,
            create,
            update,
            delete,
        })
    }

    /// The form's rows as typed, with messages beside them.
    fn views(&self, errors: &Errors) -> Vec<RuleView> {
        OPERATIONS
            .iter()
            .zip(self.pairs())
            .map(|((op, label), (mode, expr))| RuleView {
                op,
                label,
                mode: mode.to_string(),
                expr: expr.to_string(),
                error: errors.get(op).map(str::to_string),
            })
            .collect()
    }
}

#[post("/admin/collections/<name>/rules", data = "<form>")]
pub async fn save_rules_submit(
    app: &State<App>,
    s: Staff,
    name: &str,
    form: Checked<RulesForm>,
) -> Result<Answer, WebError> {
    let form = form.0;
    stored_spec(app, name)?;
    let failure = match form.to_spec() {
        Err(errors) => Failure::of_form(errors),
        Ok(rules) => {
            let patch = patches::rules(&rules)?;
            match app
                .collections
                .update(s.0.caller.actor(), name, patch)
                .await
            {
                Ok(_) => {
                    return Ok(
                        Flash::success(Redirect::to(editor_url(name)), "Rules saved.").into(),
                    );
                }
                Err(e) => Failure::from_service(e)?,
            }
        }
    };
    let (rule_errors, problems) = failure.split(&["rules"]);
    let mut page = editor(app, &s.0, name)?;
    page.rules = form.views(&rule_errors);
    page.problems = problems;
    Ok(render(&page)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_admins() -> RulesForm {
        let admins = || "admins".to_string();
        RulesForm {
            list_mode: admins(),
            view_mode: admins(),
            create_mode: admins(),
            update_mode: admins(),
            delete_mode: admins(),
            ..<RulesForm as Default>::default()
        }
    }

    #[test]
    fn modes_become_null_empty_or_the_expression() {
        let form = RulesForm {
            list_mode: "anyone".into(),
            view_mode: "expression".into(),
            view_expr: "  owner = @me ".into(),
            create_mode: "admins".into(),
            create_expr: "ignored".into(),
            ..all_admins()
        };
        let spec = form.to_spec().unwrap();
        assert_eq!(spec.list.as_deref(), Some(""));
        assert_eq!(spec.view.as_deref(), Some("owner = @me"));
        assert_eq!((spec.create, spec.update, spec.delete), (None, None, None));
    }

    #[test]
    fn an_empty_expression_or_unknown_mode_is_an_error_beside_its_rule() {
        let form = RulesForm {
            list_mode: "expression".into(),
            update_mode: "everyone".into(),
            ..all_admins()
        };
        let e = form.to_spec().unwrap_err();
        assert!(e.get("list").is_some());
        assert!(e.get("update").is_some());
        assert!(e.get("view").is_none());
        let views = form.views(&e);
        assert_eq!(views[0].mode, "expression");
        assert!(views[0].error.is_some() && views[1].error.is_none());
    }
}
