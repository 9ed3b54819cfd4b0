//! What an alteration does to each column: which old field a new field takes its values from
//! (same name, or a rename), whether values are converted or filled, which old fields go, and
//! whether SQLite's in-place `ALTER TABLE` can do it or the table must be rebuilt.

use std::collections::HashMap;

use rusqlite::types::{Value as SqlValue, ValueRef};

use super::alter::AlterError;
use super::types::{Collection, Field, FieldKind};
use super::{convert, ddl, rows, values};

/// The plan for one new field.
pub(crate) struct ColumnPlan<'a> {
    pub new: &'a Field,
    /// The old field whose column holds this field's values (`None`: a new field).
    pub old: Option<&'a Field>,
    /// Values change their stored form and go through `convert`.
    pub convert: bool,
    /// The field becomes required: values without one are found and filled.
    pub tighten: bool,
    /// What a required field gets where it has no value: its default in stored form.
    pub fill: Option<SqlValue>,
}

impl ColumnPlan<'_> {
    /// Whether every value must be looked at (before and while copying).
    pub fn inspects_values(&self) -> bool {
        self.old.is_some() && (self.convert || self.tighten)
    }

    /// One stored value → its new stored form; `Ok(None)` means "no value".
    pub fn transform(&self, v: ValueRef<'_>) -> Result<Option<SqlValue>, String> {
        let Some(old) = self.old else {
            return Ok(None);
        };
        if matches!(v, ValueRef::Null) {
            return Ok(None);
        }
        if !self.convert && !self.tighten {
            return SqlValue::try_from(v)
                .map(Some)
                .map_err(|_| "stored text is not UTF-8".to_owned());
        }
        let json = rows::decode(Some(&old.kind), v)?;
        let input = if self.convert {
            convert::convert(&old.kind, &self.new.kind, json)?
        } else {
            json
        };
        if self.convert {
            values::to_stored(self.new, &input)
        } else if is_blank(&self.new.kind, &input) {
            Ok(None)
        } else {
            // Unchanged type: values are kept as they are even if they break a tightened option.
            SqlValue::try_from(v)
                .map(Some)
                .map_err(|_| "stored text is not UTF-8".to_owned())
        }
    }

    /// The value to store for "no value": the default for required fields, NULL otherwise.
    pub fn empty_value(&self) -> Option<SqlValue> {
        if self.new.required {
            self.fill.clone()
        } else {
            Some(SqlValue::Null)
        }
    }
}

/// Whether a stored value counts as "no value" for a required field (see `values`).
fn is_blank(kind: &FieldKind, v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.is_empty() && !matches!(kind, FieldKind::Json),
        serde_json::Value::Array(a) => {
            a.is_empty() && matches!(kind, FieldKind::Select { multiple: true, .. })
        }
        _ => false,
    }
}

/// The whole alteration.
pub(crate) struct Plan<'a> {
    pub columns: Vec<ColumnPlan<'a>>,
    /// Old fields without a successor.
    pub dropped: Vec<&'a Field>,
    /// `(old column, new column)` for renamed fields.
    pub renamed: Vec<(&'a str, &'a str)>,
    /// In-place `ALTER TABLE` cannot do it: rebuild the table.
    pub rebuild: bool,
}

impl<'a> Plan<'a> {
    pub fn new(
        old: &'a Collection,
        new: &'a Collection,
        renames: &'a [(String, String)],
    ) -> Result<Self, AlterError> {
        let mut source: HashMap<&str, &str> = HashMap::new();
        for (from, to) in renames {
            if old.field(from).is_none() {
                return Err(AlterError::field(
                    to,
                    format!("cannot rename field \"{from}\": there is no such field"),
                ));
            }
            if new.field(to).is_none() {
                return Err(AlterError::field(
                    to,
                    format!(
                        "cannot rename field \"{from}\" to \"{to}\": it is not in the new definition"
                    ),
                ));
            }
            if source.insert(to.as_str(), from.as_str()).is_some()
                || source.values().filter(|f| **f == from.as_str()).count() > 1
            {
                return Err(AlterError::field(
                    to,
                    format!("field \"{from}\" is renamed twice"),
                ));
            }
        }
        let renamed_away = |name: &str| source.values().any(|from| *from == name);

        let mut columns = Vec::with_capacity(new.fields.len());
        for f in &new.fields {
            let old_field = match source.get(f.name.as_str()) {
                Some(from) => old.field(from),
                None if renamed_away(&f.name) => None,
                None => old.field(&f.name),
            };
            let convert = old_field.is_some_and(|o| convert::needs_conversion(&o.kind, &f.kind));
            let tighten = f.required && old_field.is_some_and(|o| !o.required || convert);
            let fill = match &f.default {
                Some(d) if f.required => values::to_stored(f, d).ok().flatten(),
                _ => None,
            };
            columns.push(ColumnPlan {
                new: f,
                old: old_field,
                convert,
                tighten,
                fill,
            });
        }
        let used = |o: &Field| {
            columns
                .iter()
                .any(|c| c.old.is_some_and(|x| x.name == o.name))
        };
        let dropped: Vec<&Field> = old.fields.iter().filter(|o| !used(o)).collect();
        let renamed: Vec<(&str, &str)> = columns
            .iter()
            .filter_map(|c| Some((c.old?.name.as_str(), c.new.name.as_str())))
            .filter(|(from, to)| from != to)
            .collect();

        let changed_column = columns.iter().any(|c| match c.old {
            Some(o) => c.convert || !same_column(o, c.new, old, new),
            None => c.new.required,
        });
        let dropped_fk = dropped
            .iter()
            .any(|f| matches!(f.kind, FieldKind::Relation { .. }));
        // A rename onto a name an old column still has (a swap or a chain) cannot be done one
        // column at a time; a rebuild copies every column to its final name at once.
        let tangled = renamed
            .iter()
            .any(|(_, to)| old.field(to).is_some() && !dropped.iter().any(|d| d.name == *to));
        Ok(Plan {
            rebuild: changed_column || dropped_fk || tangled,
            columns,
            dropped,
            renamed,
        })
    }
}

/// Whether two fields have the same column definition. A relation to the collection itself
/// follows a rename of the collection.
fn same_column(a: &Field, b: &Field, old: &Collection, new: &Collection) -> bool {
    match (&a.kind, &b.kind) {
        (
            FieldKind::Relation {
                collection: ta,
                on_delete: da,
            },
            FieldKind::Relation {
                collection: tb,
                on_delete: db,
            },
        ) => {
            let ta = if *ta == old.name { &new.name } else { ta };
            ta == tb && da == db && a.required == b.required
        }
        _ => ddl::column_constraints(a) == ddl::column_constraints(b),
    }
}
