//! Records: list, view, create, update and delete, with the collection's rules compiled into
//! the SQL of every path (a record the caller may not see is simply not found), validation of
//! every field at once, relation checks inside the write transaction, and change counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use serde_json::{Map, Value};

use crate::app::App;
use crate::db::DbError;
use crate::error::AppError;
use crate::query::{self, Expr, Vars};
use crate::schema::{self, Collection, FieldKind, Operation, Rule, quote_ident};
use crate::services::identity::Caller;

mod list;
mod one_row;
pub use crate::schema::{JsonRows, ValueRows};
pub(crate) use list::ListPlans;
pub use list::{ListPage, ListParams, list};
pub(crate) use one_row::{OneRow, RuleReads, WriteOne};
use one_row::{check_writable, satisfies, write_checked};

/// A written record: its id and its JSON (`id`, `created`, `updated`, then its fields).
#[derive(Debug)]
pub struct Written {
    pub id: String,
    pub json: Vec<u8>,
}

/// How a rule applies to a caller.
enum Access<'c> {
    All,
    Filter(&'c Expr),
}

/// Resolve `op`'s rule for `caller`. Admins pass every rule. A refusal is 401 for anonymous
/// callers; otherwise `denied` (403 for list/create, 404 for record operations).
fn access<'c>(
    c: &'c Collection,
    op: Operation,
    caller: &Caller,
    denied: fn() -> AppError,
) -> Result<Access<'c>, AppError> {
    if caller.is_admin() {
        return Ok(Access::All);
    }
    match c.rules.get(op) {
        Rule::Anyone => Ok(Access::All),
        Rule::Filter(e) => Ok(Access::Filter(e)),
        Rule::AdminOnly if caller.user.is_none() => Err(AppError::Unauthorized(
            "this collection needs a signed-in user".into(),
        )),
        Rule::AdminOnly => Err(denied()),
    }
}

fn forbidden() -> AppError {
    AppError::Forbidden("your role may not do this in this collection".into())
}

fn vars(caller: &Caller) -> Vars {
    Vars {
        me: caller.user.as_ref().map(|u| u.id.clone()),
        now: crate::time::now(),
    }
}

/// `"id", "created", …` for the given columns (already checked against the schema).
fn select_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A rule compiled for one caller: an SQL condition and its parameters (`1` when unrestricted).
struct RuleSql {
    sql: String,
    params: Vec<SqlValue>,
}

impl RuleSql {
    /// Whether this rule can refuse a row (an unrestricted rule is just `1`).
    fn restricts(&self) -> bool {
        self.sql != "1"
    }

    fn none() -> Self {
        RuleSql {
            sql: "1".into(),
            params: Vec::new(),
        }
    }

    fn compile(c: &Collection, access: &Access<'_>, caller: &Caller) -> Result<Self, AppError> {
        match access {
            Access::All => Ok(Self::none()),
            Access::Filter(e) => {
                let mut params = Vec::new();
                let sql = query::compile(e, c, &vars(caller), &mut params).map_err(|e| {
                    AppError::Internal(format!("stored rule does not compile: {e}"))
                })?;
                Ok(RuleSql { sql, params })
            }
        }
    }
}

/// One record visible to `caller`, or 404.
pub async fn get(
    app: &App,
    name: &str,
    id: &str,
    caller: &Caller,
    fields: Option<&str>,
) -> Result<Vec<u8>, AppError> {
    get_as(app, name, id, caller, Operation::View, fields).await
}

/// One record (every column) as the rule of `op` lets `caller` reach it, or 404: `View` to
/// show it, `Update` for an edit form, `Delete` for a confirmation page.
pub async fn get_for(
    app: &App,
    name: &str,
    id: &str,
    caller: &Caller,
    op: Operation,
) -> Result<Vec<u8>, AppError> {
    get_as(app, name, id, caller, op, None).await
}

async fn get_as(
    app: &App,
    name: &str,
    id: &str,
    caller: &Caller,
    op: Operation,
    fields: Option<&str>,
) -> Result<Vec<u8>, AppError> {
    let entry = app.collections.get(name)?;
    let c = entry.collection.clone();
    let access = access(&c, op, caller, denial(op))?;
    let rule = RuleSql::compile(&c, &access, caller)?;
    let read = match fields.filter(|f| !f.is_empty()) {
        None => OneRow::point_read_all(&entry, &rule),
        Some(fields) => {
            let columns =
                query::parse_fields(fields, &c).map_err(|e| AppError::query("fields", e))?;
            Arc::new(OneRow::point_read(&c, &columns, &rule))
        }
    };
    let id = id.to_string();
    app.db
        .read(move |conn| read.read(conn, &id, &rule)?.ok_or(AppError::NotFound))
        .await
}

fn not_found() -> AppError {
    AppError::NotFound
}

/// How `op` refuses a signed-in caller its rule shuts out: operations on one record answer
/// 404 (a forbidden record looks absent), list and create 403.
fn denial(op: Operation) -> fn() -> AppError {
    match op {
        Operation::List | Operation::Create => forbidden,
        Operation::View | Operation::Update | Operation::Delete => not_found,
    }
}

/// Whether `caller` may attempt `op` in collection `name` at all, failing as the operation
/// itself would when the rule shuts the caller out (401 anonymous; 403 or 404 signed in). A
/// filter rule passes here: the record decides.
pub fn check_rule(app: &App, name: &str, caller: &Caller, op: Operation) -> Result<(), AppError> {
    let entry = app.collections.get(name)?;
    access(&entry.collection, op, caller, denial(op)).map(|_| ())
}

/// What `caller` may do with one record: for showing or hiding buttons. The writes check again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowed {
    pub update: bool,
    pub delete: bool,
}

/// Whether the update and delete rules let `caller` change the record `id` as it is now.
pub async fn allowed(
    app: &App,
    name: &str,
    id: &str,
    caller: &Caller,
) -> Result<Allowed, AppError> {
    let entry = app.collections.get(name)?;
    let c = entry.collection.clone();
    let mut rules = Vec::with_capacity(2);
    for op in [Operation::Update, Operation::Delete] {
        rules.push(match access(&c, op, caller, not_found) {
            Ok(a) => Some(RuleSql::compile(&c, &a, caller)?),
            Err(_) => None,
        });
    }
    let id = id.to_string();
    app.db
        .read(move |conn| {
            let mut out = [false, false];
            for (slot, rule) in out.iter_mut().zip(&rules) {
                if let Some(rule) = rule {
                    *slot = satisfies(conn, &c, &id, rule)?;
                }
            }
            Ok(Allowed {
                update: out[0],
                delete: out[1],
            })
        })
        .await
}

/// Every problem `input` has as a new record (`create`) or as changes, without writing: lets a
/// form show the service's messages beside fields whose inputs did convert while others did
/// not. Relation targets and unique values are only checked by the write itself.
pub fn validation_errors(
    app: &App,
    name: &str,
    input: &Map<String, Value>,
    create: bool,
) -> Result<std::collections::BTreeMap<String, String>, AppError> {
    let entry = app.collections.get(name)?;
    let c = &entry.collection;
    let checked = if create {
        schema::validate_create(c, input)
    } else {
        schema::validate_update(c, input)
    };
    Ok(checked.err().map(|e| e.0).unwrap_or_default())
}

/// The strong ETag of a record: a hash of its JSON (all columns, as `get` answers it).
pub fn etag_of_json(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..12]))
}

/// Check every relation value names an existing record (inside the write transaction): the
/// field errors of those that do not. A write does not call this first: the relation's foreign
/// key makes SQLite look the record up anyway, and only when it refuses the write does the
/// answer need to say which field named nothing.
fn check_relations(
    conn: &Connection,
    c: &Collection,
    values: &[(String, SqlValue)],
) -> Result<(), AppError> {
    let mut errors = std::collections::BTreeMap::new();
    for (column, value) in values {
        let Some(field) = c.field(column) else {
            continue;
        };
        let FieldKind::Relation { collection, .. } = &field.kind else {
            continue;
        };
        let SqlValue::Text(id) = value else { continue };
        let table = quote_ident(schema::ddl::relation_table(collection));
        let exists = conn
            .prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))
            .and_then(|mut s| s.exists([id]))
            .map_err(DbError::from)?;
        if !exists {
            errors.insert(
                column.clone(),
                format!("no {collection} record has this id"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::fields(errors))
    }
}

fn bump(versions: &[Arc<AtomicU64>]) {
    for v in versions {
        v.fetch_add(1, Ordering::SeqCst);
    }
}

/// Run a record write and bump the change counters of `versions` inside the transaction and
/// again after the commit (see `collections::Entry::version`), so no list ETag ever labels
/// newer data with an older counter.
async fn write_counted<T, F>(app: &App, versions: Vec<Arc<AtomicU64>>, f: F) -> Result<T, AppError>
where
    F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let inside = versions.clone();
    let out = app
        .db
        .write(move |conn| {
            let out = f(conn)?;
            bump(&inside);
            Ok::<_, AppError>(out)
        })
        .await?;
    bump(&versions);
    Ok(out)
}

/// Create a record. The create rule, if a filter, must hold for the new record.
pub async fn create(
    app: &App,
    name: &str,
    caller: &Caller,
    input: Map<String, Value>,
) -> Result<Written, AppError> {
    let entry = app.collections.get(name)?;
    let c = entry.collection.clone();
    let access = access(&c, Operation::Create, caller, forbidden)?;
    let values = schema::validate_create(&c, &input).map_err(|e| AppError::fields(e.0))?;
    let rule = RuleSql::compile(&c, &access, caller)?;
    // `validate_create` gives every field, in the collection's order, so one INSERT serves
    // every create of this version of the collection; it is built once, on the async side
    // (the writer is the one serial stage of every write, so it only runs it).
    let in_order = values
        .iter()
        .map(|(col, _)| col)
        .eq(c.fields.iter().map(|f| &f.name));
    if !in_order {
        return Err(AppError::Internal(
            "validation gave the fields out of the collection's order".into(),
        ));
    }
    let insert = entry
        .insert
        .get_or_init(|| Arc::new(WriteOne::insert(&c)))
        .clone()
        .under(&entry, &rule);
    let write = insert.clone();
    let (id, head, values, read_back) =
        write_counted(app, vec![entry.version.clone()], move |conn| {
            // Id and time are taken in the writer, so both follow the order of commits.
            let id = crate::ids::new_id();
            let now = crate::time::now();
            let head = [
                SqlValue::Text(id.clone()),
                SqlValue::Text(now.clone()),
                SqlValue::Text(now),
            ];
            let params = head.iter().chain(values.iter().map(|(_, val)| val));
            let read_back =
                write_checked(conn, &write, params_from_iter(params), &id, &rule, || {
                    check_relations(conn, &c, &values)
                })?;
            Ok((id, head, values, read_back))
        })
        .await?;
    // Made here, not in the writer, the one serial stage of every write.
    let json = insert.answer(read_back, head.iter().chain(values.iter().map(|(_, v)| v)))?;
    Ok(Written { id, json })
}

/// Update a record the update rule lets `caller` see; the rule must still hold afterwards.
/// `if_match` is checked against the record's current ETag inside the transaction.
pub async fn update(
    app: &App,
    name: &str,
    id: &str,
    caller: &Caller,
    input: Map<String, Value>,
    if_match: Option<String>,
) -> Result<Written, AppError> {
    let entry = app.collections.get(name)?;
    let c = entry.collection.clone();
    let access = access(&c, Operation::Update, caller, not_found)?;
    let values = schema::validate_update(&c, &input).map_err(|e| AppError::fields(e.0))?;
    let rule = RuleSql::compile(&c, &access, caller)?;
    let current = OneRow::point_read_all(&entry, &rule);
    let id = id.to_string();
    let sets: Vec<String> = std::iter::once("\"updated\" = ?".to_string())
        .chain(
            values
                .iter()
                .map(|(col, _)| format!("{} = ?", quote_ident(col))),
        )
        .collect();
    let update = WriteOne::update(&entry, &sets, current.clone());
    write_counted(app, vec![entry.version.clone()], move |conn| {
        check_writable(conn, &current, &id, &rule, if_match.as_deref())?;
        let head = [SqlValue::Text(crate::time::now())];
        let key = [SqlValue::Text(id.clone())];
        let params = head
            .iter()
            .chain(values.iter().map(|(_, val)| val))
            .chain(key.iter());
        let read_back = write_checked(conn, &update, params_from_iter(params), &id, &rule, || {
            check_relations(conn, &c, &values)
        })?;
        let json = update.answer(read_back, std::iter::empty())?;
        Ok(Written { id, json })
    })
    .await
}

/// Delete a record the delete rule lets `caller` see. Relations decide what happens to
/// records pointing at it (restrict → 409, cascade, set null).
pub async fn delete(
    app: &App,
    name: &str,
    id: &str,
    caller: &Caller,
    if_match: Option<String>,
) -> Result<(), AppError> {
    let entry = app.collections.get(name)?;
    let c = entry.collection.clone();
    let access = access(&c, Operation::Delete, caller, not_found)?;
    let rule = RuleSql::compile(&c, &access, caller)?;
    let current = OneRow::point_read_all(&entry, &rule);
    let versions = app.collections.affected_by_delete(name);
    let id = id.to_string();
    // Formatted here, not in the writer, the one serial stage of every write.
    let sql = format!("DELETE FROM {} WHERE id = ?", quote_ident(&c.name));
    write_counted(app, versions, move |conn| {
        check_writable(conn, &current, &id, &rule, if_match.as_deref())?;
        conn.prepare_cached(&sql)
            .and_then(|mut s| s.execute([&id]))
            .map_err(|e| match DbError::from(e) {
                DbError::ForeignKey => AppError::conflict(
                    "other records refer to this record; delete or change them first",
                ),
                other => other.into(),
            })?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests;
