//! How a column is stored and therefore which comparisons and sorts make sense on it. The one
//! place that maps schema field kinds (and the system columns) to query-level column types.

use crate::schema::{Collection, FieldKind};

/// The query-relevant type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    /// TEXT compared as text: text, email, url, relation, select (single) and `id`.
    Text,
    /// TEXT in the canonical datetime format: datetime fields, `created`, `updated`.
    Datetime,
    /// INTEGER (when `integer`) or REAL.
    Number,
    /// INTEGER 0/1.
    Bool,
    /// TEXT holding a JSON array of strings (select with `multiple`).
    MultiSelect,
    /// TEXT holding any JSON document.
    Json,
}

impl ColumnType {
    /// The column type of `name` in `collection`, or `None` when it is not a column.
    pub(crate) fn of(collection: &Collection, name: &str) -> Option<ColumnType> {
        match name {
            "id" => return Some(ColumnType::Text),
            "created" | "updated" => return Some(ColumnType::Datetime),
            _ => {}
        }
        let field = collection.field(name)?;
        Some(match &field.kind {
            FieldKind::Text { .. }
            | FieldKind::Email
            | FieldKind::Url
            | FieldKind::Relation { .. } => ColumnType::Text,
            FieldKind::Select {
                multiple: false, ..
            } => ColumnType::Text,
            FieldKind::Select { multiple: true, .. } => ColumnType::MultiSelect,
            FieldKind::Number { .. } => ColumnType::Number,
            FieldKind::Bool => ColumnType::Bool,
            FieldKind::Datetime => ColumnType::Datetime,
            FieldKind::Json => ColumnType::Json,
        })
    }

    /// A short name for error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Datetime => "datetime",
            ColumnType::Number => "number",
            ColumnType::Bool => "bool",
            ColumnType::MultiSelect => "multiple select",
            ColumnType::Json => "json",
        }
    }

    /// Whether rows can be ordered by a column of this type.
    pub(crate) fn sortable(self) -> bool {
        !matches!(self, ColumnType::MultiSelect | ColumnType::Json)
    }
}

/// The quoted table of a collection. Collection tables are named after the collection.
pub(crate) fn table_sql(collection: &Collection) -> String {
    crate::schema::quote_ident(&collection.name)
}

/// A column qualified with its table (`"posts"."title"`), so the SQL stays unambiguous next
/// to joined tables and inside `json_each` subqueries. `name` must be a checked column.
pub(crate) fn column_sql(collection: &Collection, name: &str) -> String {
    let mut out = String::with_capacity(collection.name.len() + name.len() + 5);
    push_column_sql(&mut out, collection, name);
    out
}

/// Append `column_sql(collection, name)` to `out`.
pub(crate) fn push_column_sql(out: &mut String, collection: &Collection, name: &str) {
    crate::schema::push_quoted_ident(out, &collection.name);
    out.push('.');
    crate::schema::push_quoted_ident(out, name);
}
