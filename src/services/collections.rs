//! Collections: the in-memory schema cache (one `Arc<Collection>` per collection, read without
//! touching SQLite), per-collection change counters for ETags, and create/alter/delete, each of
//! which updates `_collections`, the table and the change log in one transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::db::{Db, DbError};
use crate::error::AppError;
use crate::schema::{self, Collection, CollectionSpec, FieldKind};
use crate::services::identity::Actor;

/// A collection with its change counter.
pub struct Entry {
    pub collection: Arc<Collection>,
    /// Bumped before and after every committed write to the collection, so an ETag built from
    /// it can never label newer data with an older counter.
    pub version: Arc<AtomicU64>,
    /// The record INSERT of this version of the collection, built at its first create (see
    /// `records::create`). A schema change replaces the whole entry, and with it this.
    pub(crate) insert: std::sync::OnceLock<Arc<crate::services::records::WriteOne>>,
    /// The point read of every column with no rule to apply, built at its first use.
    pub(crate) point_read: std::sync::OnceLock<Arc<crate::services::records::OneRow>>,
    /// The reads of every column under rules that restrict the caller (see `RuleReads`).
    pub(crate) rule_reads: crate::services::records::RuleReads,
    /// List plans built for this version (see `records::ListPlans`).
    pub(crate) list_plans: crate::services::records::ListPlans,
}

/// The schema cache and the schema-changing operations.
pub struct Collections {
    db: Db,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// Schema changes run one at a time, so each validates against the definitions the one
    /// before it left (a PATCH reads, merges and writes; two at once would lose one).
    changing: tokio::sync::Mutex<()>,
}

impl Collections {
    /// Load every stored definition.
    pub async fn load(db: Db) -> Result<Self, AppError> {
        let specs: Vec<CollectionSpec> = db
            .read(|conn| {
                let mut stmt = conn
                    .prepare("SELECT definition FROM _collections ORDER BY name")
                    .map_err(DbError::from)?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(DbError::from)?;
                let mut out = Vec::new();
                for row in rows {
                    let text = row.map_err(DbError::from)?;
                    let spec = serde_json::from_str(&text).map_err(|e| {
                        AppError::Internal(format!("stored collection definition: {e}"))
                    })?;
                    out.push(spec);
                }
                Ok::<_, AppError>(out)
            })
            .await?;
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let mut entries = HashMap::new();
        for spec in specs {
            let name = spec.name.clone();
            let collection =
                schema::parse_collection(spec, &|n: &str| names.iter().any(|x| x == n))
                    .map_err(|e| AppError::Internal(format!("stored collection {name}: {e}")))?;
            entries.insert(
                name,
                Entry::new(Arc::new(collection), Arc::new(AtomicU64::new(1))),
            );
        }
        Ok(Collections {
            db,
            entries: RwLock::new(entries),
            changing: tokio::sync::Mutex::new(()),
        })
    }

    /// The collection called `name`, with its counter.
    pub fn entry(&self, name: &str) -> Option<Arc<Entry>> {
        self.entries.read().ok()?.get(name).cloned()
    }

    /// The collection called `name`, or 404.
    pub fn get(&self, name: &str) -> Result<Arc<Entry>, AppError> {
        self.entry(name).ok_or(AppError::NotFound)
    }

    /// Every collection, by name.
    pub fn list(&self) -> Vec<Arc<Collection>> {
        let mut all: Vec<Arc<Collection>> = match self.entries.read() {
            Ok(map) => map.values().map(|e| e.collection.clone()).collect(),
            Err(_) => Vec::new(),
        };
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    fn exists(&self, name: &str) -> bool {
        self.entries
            .read()
            .map(|m| m.contains_key(name))
            .unwrap_or(false)
    }

    /// Counters of every collection whose records change when a record of `name` is deleted
    /// (relations with cascade or set-null, followed transitively), including `name` itself.
    pub fn affected_by_delete(&self, name: &str) -> Vec<Arc<AtomicU64>> {
        let Ok(map) = self.entries.read() else {
            return Vec::new();
        };
        let mut seen = vec![name.to_string()];
        let mut i = 0;
        while i < seen.len() {
            let target = seen[i].clone();
            for e in map.values() {
                let refers = e.collection.fields.iter().any(|f| {
                    matches!(&f.kind, FieldKind::Relation { collection, .. } if *collection == target)
                });
                if refers && !seen.contains(&e.collection.name) {
                    seen.push(e.collection.name.clone());
                }
            }
            i += 1;
        }
        seen.iter()
            .filter_map(|n| map.get(n).map(|e| e.version.clone()))
            .collect()
    }

    /// Create a collection: validate, create its table and indexes, store the definition.
    pub async fn create(
        &self,
        actor: Actor,
        spec: CollectionSpec,
    ) -> Result<Arc<Collection>, AppError> {
        let _one_at_a_time = self.changing.lock().await;
        let own = spec.name.clone();
        let collection = schema::parse_collection(spec, &|n: &str| n == own || self.exists(n))
            .map_err(definition_errors)?;
        if self.exists(&collection.name) {
            return Err(AppError::conflict(format!(
                "a collection named {} already exists",
                collection.name
            )));
        }
        let collection = Arc::new(collection);
        let c = collection.clone();
        self.db
            .write(move |conn| {
                insert_definition(conn, &c).map_err(|e| match e {
                    DbError::Unique { .. } => {
                        AppError::conflict(format!("a collection named {} already exists", c.name))
                    }
                    other => other.into(),
                })?;
                for sql in schema::create_table(&c) {
                    conn.execute_batch(&sql).map_err(DbError::from)?;
                }
                for sql in schema::change_triggers(&c) {
                    conn.execute_batch(&sql).map_err(DbError::from)?;
                }
                log_schema_change(conn, &c.name, Some(&c.spec))?;
                actor.record(
                    conn,
                    "collection.create",
                    serde_json::json!({ "collection": c.name }),
                )?;
                Ok::<_, AppError>(())
            })
            .await?;
        self.put(collection.clone(), None);
        tracing::info!(collection = %collection.name, "collection created");
        Ok(collection)
    }

    /// Apply a JSON merge patch (RFC 7396) to a collection's definition and alter its table.
    pub async fn update(
        &self,
        actor: Actor,
        name: &str,
        patch: Value,
    ) -> Result<Arc<Collection>, AppError> {
        self.update_with(actor, name, |_| Ok(patch)).await
    }

    /// Like `update`, with the patch built from the current definition while other schema
    /// changes wait: a patch that lists every field (merge patches replace lists whole) then
    /// cannot undo a change another admin made after the page was read.
    pub async fn update_with(
        &self,
        actor: Actor,
        name: &str,
        build: impl FnOnce(&CollectionSpec) -> Result<Value, AppError>,
    ) -> Result<Arc<Collection>, AppError> {
        let _one_at_a_time = self.changing.lock().await;
        let old = self.get(name)?;
        let patch = build(&old.collection.spec)?;
        let mut merged = serde_json::to_value(&old.collection.spec)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        merge_patch(&mut merged, &patch);
        let spec: CollectionSpec = serde_json::from_value(merged).map_err(|e| {
            AppError::field("body", format!("the patched definition is invalid: {e}"))
        })?;
        let renames = schema::field_renames(&spec);
        for (from, _) in &renames {
            if old.collection.field(from).is_none() {
                return Err(AppError::field(
                    "fields",
                    format!("rename_from names no field: {from}"),
                ));
            }
        }
        let new_name = spec.name.clone();
        if new_name != old.collection.name && self.exists(&new_name) {
            return Err(AppError::conflict(format!(
                "a collection named {new_name} already exists"
            )));
        }
        let collection = schema::parse_collection(spec, &|n: &str| {
            n == new_name || (n != old.collection.name && self.exists(n))
        })
        .map_err(definition_errors)?;
        let collection = Arc::new(collection);
        let old_c = old.collection.clone();
        let new_c = collection.clone();
        let referrers: Vec<Arc<Collection>> = self
            .list()
            .into_iter()
            .filter(|c| c.name != old_c.name)
            .filter(|c| {
                c.fields.iter().any(|f| {
                    matches!(&f.kind, FieldKind::Relation { collection, .. } if *collection == old_c.name)
                })
            })
            .collect();
        let renamed_referrers = self
            .db
            .write_exclusive(move |conn| {
                alter_in_transaction(conn, &old_c, &new_c, &renames, &referrers, &actor)
            })
            .await?;
        old.version.fetch_add(1, Ordering::SeqCst);
        self.put(collection.clone(), Some(name));
        for c in renamed_referrers {
            self.put(Arc::new(c), None);
        }
        tracing::info!(collection = %collection.name, "collection altered");
        Ok(collection)
    }

    /// Drop a collection and its records. Refused while other collections relate to it.
    pub async fn delete(&self, actor: Actor, name: &str) -> Result<(), AppError> {
        let _one_at_a_time = self.changing.lock().await;
        let entry = self.get(name)?;
        let referrers: Vec<String> = self
            .list()
            .iter()
            .filter(|c| c.name != name)
            .filter(|c| {
                c.fields.iter().any(|f| {
                    matches!(&f.kind, FieldKind::Relation { collection, .. } if collection == name)
                })
            })
            .map(|c| c.name.clone())
            .collect();
        if !referrers.is_empty() {
            return Err(AppError::conflict(format!(
                "collections {} have relations to {name}; remove those fields first",
                referrers.join(", ")
            )));
        }
        let c = entry.collection.clone();
        self.db
            .write(move |conn| {
                conn.execute(&format!("DROP TABLE {}", schema::quote_ident(&c.name)), [])
                    .map_err(DbError::from)?;
                conn.execute("DELETE FROM _collections WHERE name = ?1", [&c.name])
                    .map_err(DbError::from)?;
                log_schema_change(conn, &c.name, None)?;
                actor.record(
                    conn,
                    "collection.delete",
                    serde_json::json!({ "collection": c.name }),
                )?;
                Ok::<_, AppError>(())
            })
            .await?;
        if let Ok(mut map) = self.entries.write() {
            map.remove(name);
        }
        entry.version.fetch_add(1, Ordering::SeqCst);
        tracing::info!(collection = %name, "collection deleted");
        Ok(())
    }

    /// Replace (or insert) the cache entry, keeping the counter across alterations.
    fn put(&self, collection: Arc<Collection>, replacing: Option<&str>) {
        let Ok(mut map) = self.entries.write() else {
            return;
        };
        let previous = replacing
            .and_then(|n| map.remove(n))
            .or_else(|| map.get(&collection.name).cloned());
        let version = previous.map_or_else(|| Arc::new(AtomicU64::new(1)), |e| e.version.clone());
        version.fetch_add(1, Ordering::SeqCst);
        map.insert(collection.name.clone(), Entry::new(collection, version));
    }
}

impl Entry {
    /// A version of a collection, with none of its statements built yet.
    fn new(collection: Arc<Collection>, version: Arc<AtomicU64>) -> Arc<Self> {
        Arc::new(Entry {
            collection,
            version,
            insert: std::sync::OnceLock::new(),
            point_read: std::sync::OnceLock::new(),
            rule_reads: Default::default(),
            list_plans: Default::default(),
        })
    }
}

fn definition_errors(e: schema::DefinitionErrors) -> AppError {
    AppError::Validation {
        detail: "the collection definition is invalid".into(),
        errors: e.0,
    }
}

fn insert_definition(conn: &Connection, c: &Collection) -> Result<(), DbError> {
    let now = crate::time::now();
    let json = serde_json::to_string(&c.spec).map_err(|e| DbError::Commit(e.to_string()))?;
    conn.execute(
        "INSERT INTO _collections (name, definition, created, updated) VALUES (?1, ?2, ?3, ?3)",
        params![c.name, json, now],
    )?;
    Ok(())
}

/// Append a schema change to the change log (`data` = the new definition, NULL when dropped).
fn log_schema_change(
    conn: &Connection,
    name: &str,
    spec: Option<&CollectionSpec>,
) -> Result<(), AppError> {
    let data = spec
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    conn.execute(
        "INSERT INTO _changes (time, collection, op, record_id, data) VALUES (?1, ?2, 'schema', NULL, ?3)",
        params![crate::time::now(), name, data],
    )
    .map_err(DbError::from)?;
    Ok(())
}

/// The alteration as one transaction with foreign keys off (SQLite's rebuild procedure needs
/// that, and it must be set outside the transaction). Returns the referring collections whose
/// stored relation target was renamed.
fn alter_in_transaction(
    conn: &mut Connection,
    old: &Collection,
    new: &Collection,
    renames: &[(String, String)],
    referrers: &[Arc<Collection>],
    actor: &Actor,
) -> Result<Vec<Collection>, AppError> {
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(DbError::from)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(DbError::from)?;
    for sql in schema::drop_change_triggers(old) {
        tx.execute_batch(&sql).map_err(DbError::from)?;
    }
    schema::alter(&tx, old, new, renames).map_err(|e| {
        tracing::info!(error = ?e, "alteration refused");
        let key = e
            .field
            .as_ref()
            .map_or_else(|| "fields".to_string(), |f| format!("fields.{f}"));
        AppError::field(&key, e.message.clone())
    })?;
    for sql in schema::change_triggers(new) {
        tx.execute_batch(&sql).map_err(DbError::from)?;
    }
    let json = serde_json::to_string(&new.spec).map_err(|e| AppError::Internal(e.to_string()))?;
    tx.execute(
        "UPDATE _collections SET name = ?1, definition = ?2, updated = ?3 WHERE name = ?4",
        params![new.name, json, crate::time::now(), old.name],
    )
    .map_err(DbError::from)?;
    let mut renamed = Vec::new();
    if new.name != old.name {
        for r in referrers {
            let mut spec = r.spec.clone();
            schema::retarget_relations(&mut spec, &old.name, &new.name);
            let json =
                serde_json::to_string(&spec).map_err(|e| AppError::Internal(e.to_string()))?;
            tx.execute(
                "UPDATE _collections SET definition = ?1 WHERE name = ?2",
                params![json, r.name],
            )
            .map_err(DbError::from)?;
            let reparsed = schema::parse_collection(spec, &|_| true)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            renamed.push(reparsed);
        }
    }
    log_schema_change(&tx, &new.name, Some(&new.spec))?;
    actor.record(
        &tx,
        "collection.update",
        serde_json::json!({ "collection": old.name, "name": new.name }),
    )?;
    tx.commit().map_err(DbError::from)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(DbError::from)?;
    Ok(renamed)
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_objects_and_replaces_arrays() {
        let mut doc = json!({"name": "a", "fields": [1, 2], "rules": {"list": "", "view": ""}});
        merge_patch(&mut doc, &json!({"fields": [3], "rules": {"list": null}}));
        assert_eq!(
            doc,
            json!({"name": "a", "fields": [3], "rules": {"view": ""}})
        );
    }
}
