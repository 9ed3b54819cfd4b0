//! The inputs of a record form, generated from the field types: one `FormField` per field with
//! its input kind, HTML constraints, current values and error, ready for `_field_input.html`.
//! Relation fields offer the target's records the visitor may list (or a text box for the id).

use serde_json::Value;

use crate::app::App;
use crate::schema::{Collection, FieldKind};
use crate::services::identity::Caller;
use crate::services::records::{self, ListParams, ValueRows};

use super::record_form::{FormErrors, RawForm};

/// Most records a relation's `<select>` lists; beyond that the id is typed.
pub const MAX_CHOICES: u32 = 200;
/// Text fields longer than this (or unbounded) get a `<textarea>`.
const LONG_TEXT: u32 = 200;

/// One option of a `<select>` or one checkbox of a group.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One field of the form as the template draws it.
pub struct FormField {
    pub name: String,
    /// `text`, `textarea`, `number`, `checkbox`, `datetime`, `email`, `url`, `select`,
    /// `checkboxes` or `json`.
    pub kind: &'static str,
    pub required: bool,
    /// The (first) value of the input as typed or stored.
    pub value: String,
    pub checked: bool,
    pub choices: Vec<Choice>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub step: Option<String>,
    pub minlength: Option<u32>,
    pub maxlength: Option<u32>,
    /// A line under the label (what the value means, e.g. that a time is in UTC).
    pub hint: Option<String>,
    pub error: Option<String>,
}

impl FormField {
    /// The `type` of an `<input>` for this field.
    pub fn input_type(&self) -> &'static str {
        match self.kind {
            "number" => "number",
            "datetime" => "datetime-local",
            "email" => "email",
            "url" => "url",
            _ => "text",
        }
    }

    /// The `aria-describedby` ids: the hint and the error, when present.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("hint-{}", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("error-{}", self.name));
        }
        ids.join(" ")
    }
}

fn bound(v: Option<f64>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// Build the form's fields from `inputs` (defaults, a record, or what was just submitted).
pub async fn form_fields(
    app: &App,
    caller: &Caller,
    c: &Collection,
    inputs: &RawForm,
    errors: &FormErrors,
) -> Vec<FormField> {
    let mut out = Vec::with_capacity(c.fields.len());
    for field in &c.fields {
        let values = inputs.get(&field.name).cloned().unwrap_or_default();
        let value = values.first().cloned().unwrap_or_default();
        let mut f = FormField {
            name: field.name.clone(),
            kind: "text",
            required: field.required,
            value,
            checked: false,
            choices: Vec::new(),
            min: None,
            max: None,
            step: None,
            minlength: None,
            maxlength: None,
            hint: None,
            error: errors.get(&field.name).cloned(),
        };
        match &field.kind {
            FieldKind::Text { min, max, .. } => {
                f.kind = if max.is_some_and(|m| m <= LONG_TEXT) {
                    "text"
                } else {
                    "textarea"
                };
                f.minlength = *min;
                f.maxlength = *max;
            }
            FieldKind::Number { min, max, integer } => {
                f.kind = "number";
                f.min = bound(*min);
                f.max = bound(*max);
                f.step = Some(if *integer { "1" } else { "any" }.to_owned());
            }
            FieldKind::Bool => {
                f.kind = "checkbox";
                f.checked = !values.is_empty();
                // A required checkbox would have to be ticked; false is a value too.
                f.required = false;
            }
            FieldKind::Datetime => {
                f.kind = "datetime";
                // Seconds and milliseconds are allowed, so a stored time shows unchanged.
                f.step = Some("any".to_owned());
                f.hint = Some("Date and time in UTC.".to_owned());
            }
            FieldKind::Email => f.kind = "email",
            FieldKind::Url => {
                f.kind = "url";
                f.hint = Some("An http or https address.".to_owned());
            }
            FieldKind::Json => {
                f.kind = "json";
                f.hint = Some("JSON, e.g. {\"key\": [1, 2]}.".to_owned());
            }
            FieldKind::Select {
                values: allowed,
                multiple,
            } => {
                f.kind = if *multiple { "checkboxes" } else { "select" };
                f.choices = allowed
                    .iter()
                    .map(|v| Choice {
                        value: v.clone(),
                        label: v.clone(),
                        selected: values.contains(v),
                    })
                    .collect();
                if *multiple {
                    // A group of checkboxes cannot say "at least one" in HTML.
                    f.required = false;
                }
            }
            FieldKind::Relation { collection, .. } => {
                match relation_choices(app, caller, collection, &f.value).await {
                    Some(choices) => {
                        f.kind = "select";
                        f.choices = choices;
                    }
                    None => {
                        f.kind = "text";
                        f.hint = Some(format!("The id of a record in {collection}."));
                    }
                }
            }
        }
        out.push(f);
    }
    out
}

/// The records of `target` the visitor may list, first `MAX_CHOICES` by id, labelled with the
/// id and the first text field; `None` when a text box fits better (users, more records than
/// fit, or a list the visitor may not see). The current value stays selectable.
async fn relation_choices(
    app: &App,
    caller: &Caller,
    target: &str,
    current: &str,
) -> Option<Vec<Choice>> {
    if target == "users" {
        return None;
    }
    let params = ListParams {
        limit: Some(MAX_CHOICES),
        ..ListParams::default()
    };
    let page = records::list::<ValueRows>(app, target, caller, params)
        .await
        .ok()?;
    if page.next.is_some() {
        return None;
    }
    let label_field = app
        .collections
        .entry(target)?
        .collection
        .fields
        .iter()
        .find(|f| matches!(f.kind, FieldKind::Text { .. }))
        .map(|f| f.name.clone());
    let id_at = page.items.column("id");
    let label_at = label_field.and_then(|name| page.items.column(&name));
    let mut choices: Vec<Choice> = page
        .items
        .rows
        .iter()
        .filter_map(|values| {
            let id = values.get(id_at?)?.as_str()?.to_owned();
            let text = label_at
                .and_then(|i| values.get(i))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty());
            let label = match text {
                Some(t) => format!("{id} — {}", super::cells::shorten(t, 60)),
                None => id.clone(),
            };
            Some(Choice {
                selected: id == current,
                value: id,
                label,
            })
        })
        .collect();
    if !current.is_empty() && !choices.iter().any(|c| c.selected) {
        choices.push(Choice {
            value: current.to_owned(),
            label: current.to_owned(),
            selected: true,
        });
    }
    Some(choices)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collection(fields: Value) -> Collection {
        let spec = serde_json::from_value(json!({ "name": "t", "fields": fields })).unwrap();
        crate::schema::parse_collection(spec, &|_: &str| false).unwrap()
    }

    #[tokio::test]
    async fn inputs_follow_the_field_types_and_options() {
        let c = collection(json!([
            { "name": "short", "type": "text", "max": 200, "min": 2, "required": true },
            { "name": "long", "type": "text", "max": 201 },
            { "name": "free", "type": "text" },
            { "name": "n", "type": "number", "integer": true, "min": 0, "max": 10 },
            { "name": "x", "type": "number" },
            { "name": "b", "type": "bool", "required": true },
            { "name": "tags", "type": "select", "values": ["a", "b"], "multiple": true, "required": true }
        ]));
        let inputs: RawForm = [("tags".to_owned(), vec!["b".to_owned()])].into();
        let dir = tempfile::tempdir().unwrap();
        let app = crate::app::App::start(crate::config::Settings::defaults(dir.path()))
            .await
            .unwrap();
        let fields = form_fields(&app, &Caller::anonymous(), &c, &inputs, &FormErrors::new()).await;
        let kinds: Vec<&str> = fields.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                "text",
                "textarea",
                "textarea",
                "number",
                "number",
                "checkbox",
                "checkboxes"
            ]
        );
        assert_eq!(
            (fields[0].minlength, fields[0].maxlength),
            (Some(2), Some(200))
        );
        assert!(fields[0].required);
        assert_eq!(fields[3].step.as_deref(), Some("1"));
        assert_eq!(
            (fields[3].min.as_deref(), fields[3].max.as_deref()),
            (Some("0"), Some("10"))
        );
        assert_eq!(fields[4].step.as_deref(), Some("any"));
        assert!(!fields[5].required && !fields[5].checked);
        assert!(!fields[6].required);
        let selected: Vec<bool> = fields[6].choices.iter().map(|c| c.selected).collect();
        assert_eq!(selected, [false, true]);
    }
}
