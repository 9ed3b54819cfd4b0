//! Errors shown beside a form's inputs: the service's `errors` map (keys such as
//! `fields.title.min`, `rules.list`, `indexes.by_title.fields`) split into the messages of one
//! form (keyed by input) and the rest, listed at the top of the page.

use std::collections::BTreeMap;

use crate::error::AppError;

/// A form's messages by input name; `""` holds a message about the whole form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(pub BTreeMap<String, String>);

impl Errors {
    /// The message for `input`, if any.
    pub fn get(&self, input: &str) -> Option<&str> {
        self.0.get(input).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn insert(&mut self, input: impl Into<String>, message: impl Into<String>) {
        self.0.insert(input.into(), message.into());
    }

    /// Move the messages whose key is `prefix` or starts with `prefix.` out of `all`, keyed by
    /// the rest of the key (`fields.title.min` under `fields.title` → `min`).
    pub fn take(all: &mut BTreeMap<String, String>, prefixes: &[&str]) -> Errors {
        let mut mine = Errors::default();
        all.retain(|key, message| {
            for prefix in prefixes {
                let rest = if key == prefix {
                    Some("")
                } else {
                    key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.'))
                };
                if let Some(rest) = rest {
                    mine.insert(rest, message.clone());
                    return false;
                }
            }
            true
        });
        mine
    }
}

/// What a failed form submission shows: the form's own messages and the others.
#[derive(Debug, Default)]
pub struct Failure {
    /// The service's messages, keyed by path into what it was sent.
    pub errors: BTreeMap<String, String>,
    /// Messages the form itself found, already keyed by input.
    pub own: Errors,
    pub problems: Vec<String>,
}

impl Failure {
    /// The messages a failed service call has for a form, or the error itself when it is not
    /// about the input (a 404, an internal error): the page handler answers that one as is.
    pub fn from_service(e: AppError) -> Result<Failure, AppError> {
        match e {
            AppError::Validation { errors, .. } => Ok(Failure {
                errors,
                ..Failure::default()
            }),
            AppError::Conflict {
                detail,
                field: Some(field),
            } => Ok(Failure {
                errors: BTreeMap::from([(field, detail)]),
                ..Failure::default()
            }),
            AppError::Conflict { detail, .. } | AppError::BadRequest(detail) => Ok(Failure {
                problems: vec![detail],
                ..Failure::default()
            }),
            other => Err(other),
        }
    }

    /// Input-level messages from a form conversion (already keyed by input).
    pub fn of_form(errors: Errors) -> Failure {
        Failure {
            own: errors,
            ..Failure::default()
        }
    }

    /// Take this form's messages (see `Errors::take`); whatever is left becomes a problem line.
    pub fn split(mut self, prefixes: &[&str]) -> (Errors, Vec<String>) {
        let mut mine = Errors::take(&mut self.errors, prefixes);
        mine.0.extend(self.own.0);
        let mut problems = self.problems;
        problems.extend(self.errors.into_iter().map(|(k, v)| format!("{k}: {v}")));
        (mine, problems)
    }

    /// For a flat form: the messages keyed by one of `inputs` stay keyed so; the rest become
    /// problem lines.
    pub fn pick(self, inputs: &[&str]) -> (Errors, Vec<String>) {
        let mut mine = self.own;
        let mut problems = self.problems;
        for (k, v) in self.errors {
            if inputs.contains(&k.as_str()) {
                mine.insert(k, v);
            } else {
                problems.push(format!("{k}: {v}"));
            }
        }
        (mine, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn take_moves_the_messages_under_a_prefix_and_leaves_the_rest() {
        let mut all = map(&[
            ("fields.title.min", "too small"),
            ("fields.title", "has nulls"),
            ("fields.titles.max", "other field"),
            ("fields.3.type", "unknown type"),
            ("rules.list", "bad"),
        ]);
        let mine = Errors::take(&mut all, &["fields.title", "fields.3"]);
        assert_eq!(mine.get("min"), Some("too small"));
        assert_eq!(mine.get(""), Some("has nulls"));
        assert_eq!(mine.get("type"), Some("unknown type"));
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            ["fields.titles.max", "rules.list"]
        );
    }

    #[test]
    fn service_errors_become_input_messages_or_problems() {
        let named = AppError::Conflict {
            detail: "taken".into(),
            field: Some("email".into()),
        };
        let (mine, rest) = Failure::from_service(named)
            .unwrap()
            .pick(&["email", "password"]);
        assert_eq!((mine.get("email"), rest.len()), (Some("taken"), 0));
        let plain = AppError::conflict("referenced by posts");
        let (mine, rest) = Failure::from_service(plain).unwrap().split(&["name"]);
        assert!(mine.is_empty());
        assert_eq!(rest, ["referenced by posts"]);
        let v = AppError::fields(map(&[("name", "bad"), ("rules.view", "worse")]));
        let (mine, rest) = Failure::from_service(v).unwrap().split(&["name"]);
        assert_eq!(mine.get(""), Some("bad"));
        assert_eq!(rest, ["rules.view: worse"]);
        let mut own = Errors::default();
        own.insert("default", "must be a number");
        let (mine, rest) = Failure::of_form(own).split(&["fields.n"]);
        assert_eq!(
            (mine.get("default"), rest.len()),
            (Some("must be a number"), 0)
        );
        assert!(matches!(
            Failure::from_service(AppError::NotFound),
            Err(AppError::NotFound)
        ));
    }
}
