//! Change-log triggers: every insert, update and delete on a collection table appends a row to
//! `_changes` inside the same transaction, including rows changed by foreign-key actions
//! (cascade, set null) that no service code sees. The after-image holds the raw column values,
//! which is what replication replays.

use super::types::{Collection, FieldKind, SYSTEM_FIELDS, quote_ident};

/// SQL string literal for a name already validated as an identifier.
fn literal(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

fn trigger_name(collection: &str, op: &str) -> String {
    quote_ident(&format!("_changes_{collection}_{op}"))
}

/// Statements that drop the change-log triggers of `c` (before altering its table: SQLite
/// refuses to drop or rebuild columns a trigger mentions).
pub fn drop_change_triggers(c: &Collection) -> Vec<String> {
    ["insert", "update", "delete"]
        .iter()
        .map(|op| format!("DROP TRIGGER IF EXISTS {}", trigger_name(&c.name, op)))
        .collect()
}

/// Statements that (re)create the three change-log triggers of `c`.
pub fn change_triggers(c: &Collection) -> Vec<String> {
    let table = quote_ident(&c.name);
    let mut pairs: Vec<String> = SYSTEM_FIELDS
        .iter()
        .map(|f| format!("{}, NEW.{}", literal(f), quote_ident(f)))
        .collect();
    for f in &c.fields {
        let col = format!("NEW.{}", quote_ident(&f.name));
        let value = match &f.kind {
            // Stored as JSON text: embed as JSON, not as a string.
            FieldKind::Json | FieldKind::Select { multiple: true, .. } => format!("json({col})"),
            _ => col,
        };
        pairs.push(format!("{}, {value}", literal(&f.name)));
    }
    let image = format!("json_object({})", pairs.join(", "));
    let name = literal(&c.name);
    let trig = |op: &str| trigger_name(&c.name, op);
    let mut out = drop_change_triggers(c);
    out.extend([
        format!(
            "CREATE TRIGGER {} AFTER INSERT ON {table} BEGIN \
             INSERT INTO _changes (time, collection, op, record_id, data) \
             VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), {name}, 'insert', NEW.id, {image}); END",
            trig("insert")
        ),
        format!(
            "CREATE TRIGGER {} AFTER UPDATE ON {table} BEGIN \
             INSERT INTO _changes (time, collection, op, record_id, data) \
             VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), {name}, 'update', NEW.id, {image}); END",
            trig("update")
        ),
        format!(
            "CREATE TRIGGER {} AFTER DELETE ON {table} BEGIN \
             INSERT INTO _changes (time, collection, op, record_id, data) \
             VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), {name}, 'delete', OLD.id, NULL); END",
            trig("delete")
        ),
    ]);
    out
}
