//! Statements for one record, prepared on the async side so the thread that runs them (a
//! reader thread or the writer) only binds, steps and converts: point reads, and the INSERT or
//! UPDATE of a record with how its answer is made (the read of the row it wrote, or for an
//! unrestricted create its values). Also the checks a write makes inside its transaction (the
//! record as the rule lets the caller change it, `If-Match`, the rule on the written row).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::{RuleSql, etag_of_json, forbidden, select_list};
use crate::db::DbError;
use crate::error::AppError;
use crate::query;
use crate::schema::{self, Collection, quote_ident};
use crate::services::collections::Entry;

/// A read of at most one record: its SQL and the reader of its row. The reads of every column
/// are built once per version of a collection and rule (building a point read was a third of
/// its instructions on its reader thread).
pub(crate) struct OneRow {
    sql: String,
    reader: schema::RowReader,
}

impl OneRow {
    /// `columns` of the record `id` (the first parameter), if it satisfies `rule`.
    pub(super) fn point_read(c: &Collection, columns: &[String], rule: &RuleSql) -> Self {
        OneRow {
            sql: format!(
                "SELECT {} FROM {} WHERE id = ? AND ({})",
                select_list(columns),
                quote_ident(&c.name),
                rule.sql
            ),
            reader: schema::RowReader::new(c, columns),
        }
    }

    /// The point read of every column of `entry`'s collection, for callers whose rule is
    /// `rule`; shared by every read of this version of the collection under the same rule.
    pub(super) fn point_read_all(entry: &Entry, rule: &RuleSql) -> Arc<Self> {
        let c = &entry.collection;
        let build = || Self::point_read(c, &query::all_columns(c), rule);
        if rule.restricts() {
            return entry.rule_reads.get_or_build(Key::Id, rule, build);
        }
        entry.point_read.get_or_init(|| Arc::new(build())).clone()
    }

    /// Every column of the row of `c` whose rowid is the first parameter, if it satisfies
    /// `rule`. `_rowid_`, not `rowid`: a field may be called `rowid` or `oid`, but no field's
    /// name starts with `_`.
    fn by_rowid(c: &Collection, rule: &RuleSql) -> Self {
        let columns = query::all_columns(c);
        OneRow {
            sql: format!(
                "SELECT {} FROM {} WHERE _rowid_ = ? AND ({})",
                select_list(&columns),
                quote_ident(&c.name),
                rule.sql
            ),
            reader: schema::RowReader::new(c, &columns),
        }
    }

    /// The record `id` as JSON, if it exists and satisfies `rule`, the one this point read was
    /// built for.
    pub(super) fn read(
        &self,
        conn: &Connection,
        id: &str,
        rule: &RuleSql,
    ) -> Result<Option<Vec<u8>>, AppError> {
        self.read_keyed(conn, &id, rule)
    }

    /// The row whose key (the first parameter: an `id`, or a rowid) is `key`, as JSON, if it
    /// satisfies `rule`.
    fn read_keyed(
        &self,
        conn: &Connection,
        key: &dyn rusqlite::ToSql,
        rule: &RuleSql,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let params =
            std::iter::once(key).chain(rule.params.iter().map(|p| p as &dyn rusqlite::ToSql));
        let mut stmt = conn.prepare_cached(&self.sql).map_err(DbError::from)?;
        let found = stmt
            .query_row(params_from_iter(params), |row| {
                let mut out = Vec::with_capacity(256);
                self.reader.write_json(row, &mut out).map(|()| out)
            })
            .optional()
            .map_err(DbError::from)?;
        Ok(found)
    }
}

/// What a cached read of every column finds its row by.
#[derive(Clone, Copy)]
enum Key {
    Id,
    Rowid,
}

/// The reads of every column under rules that restrict the caller, per version of a
/// collection: by `id` (views, and the record an update or delete may change) and by rowid (a
/// create's read-back), each keyed by the rule's SQL. The caller's values are its parameters,
/// so one read serves every caller of a rule.
#[derive(Default)]
pub(crate) struct RuleReads(Mutex<[HashMap<String, Arc<OneRow>>; 2]>);

/// Rule texts kept per kind of read; past this the map starts over (a rule's SQL varies only
/// with the rule and with whether the caller is signed in).
const RULE_READS_KEPT: usize = 64;

impl RuleReads {
    fn get_or_build(
        &self,
        key: Key,
        rule: &RuleSql,
        build: impl FnOnce() -> OneRow,
    ) -> Arc<OneRow> {
        if let Some(read) = self.lock()[key as usize].get(rule.sql.as_str()) {
            return read.clone();
        }
        let read = Arc::new(build());
        let mut maps = self.lock();
        let map = &mut maps[key as usize];
        if map.len() >= RULE_READS_KEPT {
            map.clear();
        }
        map.insert(rule.sql.clone(), read.clone());
        read
    }

    fn lock(&self) -> MutexGuard<'_, [HashMap<String, Arc<OneRow>>; 2]> {
        // The maps hold finished reads only: a panic while they were held leaves nothing
        // half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Check that the record `id` exists as `rule` lets the caller change it, and `If-Match`.
pub(super) fn check_writable(
    conn: &Connection,
    current: &OneRow,
    id: &str,
    rule: &RuleSql,
    if_match: Option<&str>,
) -> Result<(), AppError> {
    let current = current.read(conn, id, rule)?.ok_or(AppError::NotFound)?;
    match if_match {
        Some(tag) if !crate::etag::list_contains(tag, &etag_of_json(&current), false) => {
            Err(AppError::PreconditionFailed)
        }
        _ => Ok(()),
    }
}

/// The INSERT or UPDATE of one record and how its answer, the record as written, is made;
/// prepared outside the writer. Not one statement with `RETURNING`: SQLite collects
/// `RETURNING`'s rows in a temporary b-tree that it creates, fills, reads and drops for every
/// statement (see `bench/FINDINGS.md`).
pub(crate) struct WriteOne {
    write: Arc<str>,
    answer: Answer,
}

/// How a write's answer is made.
enum Answer {
    /// From the values an INSERT of every column bound, in the reader's order, after the
    /// writer is done with the job: the table is `STRICT` and validation gives each value its
    /// column's storage class, so the row holds exactly those values (see
    /// `RowReader::write_stored`). Only for callers no rule restricts: nothing can refuse the
    /// row once it is written. Reading the row back was a tenth of the writer's instructions
    /// per create.
    Values(schema::RowReader),
    /// Read back by rowid after an INSERT, through the caller's rule: a row the rule refuses
    /// is not read, so the rule's check costs no statement of its own.
    Rowid(Arc<OneRow>),
    /// Read back by `id` after an UPDATE, through the caller's rule.
    Id(Arc<OneRow>),
}

impl WriteOne {
    /// An INSERT into `c` of `id`, `created`, `updated`, then every field's column in the
    /// collection's order (as `validate_create` gives them), answered from its values; for
    /// callers whose rule restricts them see `under`.
    pub(super) fn insert(c: &Collection) -> Self {
        let columns = query::all_columns(c);
        WriteOne {
            write: format!(
                "INSERT INTO {} ({}) VALUES ({})",
                quote_ident(&c.name),
                select_list(&columns),
                vec!["?"; columns.len()].join(", "),
            )
            .into(),
            answer: Answer::Values(schema::RowReader::new(c, &columns)),
        }
    }

    /// This INSERT for callers whose create rule is `rule`: the same statement, its row read
    /// back only if it satisfies the rule.
    pub(super) fn under(self: Arc<Self>, entry: &Entry, rule: &RuleSql) -> Arc<Self> {
        if !rule.restricts() {
            return self;
        }
        let c = &entry.collection;
        Arc::new(WriteOne {
            write: self.write.clone(),
            answer: Answer::Rowid(
                entry
                    .rule_reads
                    .get_or_build(Key::Rowid, rule, || OneRow::by_rowid(c, rule)),
            ),
        })
    }

    /// An UPDATE of `entry`'s collection setting `sets`, whose last parameter is the record's
    /// `id`; `read` is the point read for the caller's update rule.
    pub(super) fn update(entry: &Entry, sets: &[String], read: Arc<OneRow>) -> Self {
        WriteOne {
            write: format!(
                "UPDATE {} SET {} WHERE id = ?",
                quote_ident(&entry.collection.name),
                sets.join(", ")
            )
            .into(),
            answer: Answer::Id(read),
        }
    }

    /// The JSON of the record that `write_checked` wrote from `params`: its read-back if it
    /// made one (`read_back`), else made from `params`.
    pub(super) fn answer<'v>(
        &self,
        read_back: Option<Vec<u8>>,
        params: impl Iterator<Item = &'v SqlValue>,
    ) -> Result<Vec<u8>, AppError> {
        match (&self.answer, read_back) {
            (_, Some(json)) => Ok(json),
            (Answer::Values(reader), None) => {
                let mut out = Vec::with_capacity(256);
                reader
                    .write_stored(params, &mut out)
                    .map_err(DbError::from)?;
                Ok(out)
            }
            (Answer::Rowid(_) | Answer::Id(_), None) => Err(AppError::Internal(
                "a write that reads its row back answered without it".into(),
            )),
        }
    }
}

/// Run the INSERT or UPDATE of record `id` with `params`: 404 if it wrote no row. A write that
/// reads its row back does so through `rule` and gives its JSON; 403 if the row it wrote does
/// not satisfy `rule` (rules hold for what was written; the caller's job then rolls the write
/// back). `None` for an INSERT answered from its values (`WriteOne::answer`, outside the
/// writer). If a relation's foreign key refuses the write, `relations` says which fields named
/// no record.
pub(super) fn write_checked(
    conn: &Connection,
    write: &WriteOne,
    params: impl rusqlite::Params,
    id: &str,
    rule: &RuleSql,
    relations: impl FnOnce() -> Result<(), AppError>,
) -> Result<Option<Vec<u8>>, AppError> {
    let mut stmt = conn.prepare_cached(&write.write).map_err(DbError::from)?;
    let changed = stmt.execute(params).map_err(|e| match DbError::from(e) {
        DbError::ForeignKey => relations()
            .err()
            .unwrap_or_else(|| DbError::ForeignKey.into()),
        other => other.into(),
    })?;
    if changed == 0 {
        return Err(AppError::NotFound);
    }
    let written = match &write.answer {
        Answer::Values(_) => return Ok(None),
        // The collection row's, not the change log's: a trigger's inserts do not change what
        // `last_insert_rowid` gives once the statement is done.
        Answer::Rowid(read) => read.read_keyed(conn, &conn.last_insert_rowid(), rule)?,
        Answer::Id(read) => read.read(conn, id, rule)?,
    };
    written.map(Some).ok_or_else(|| {
        if rule.restricts() {
            forbidden()
        } else {
            AppError::NotFound
        }
    })
}

/// Whether the record `id` satisfies `rule`.
pub(super) fn satisfies(
    conn: &Connection,
    c: &Collection,
    id: &str,
    rule: &RuleSql,
) -> Result<bool, AppError> {
    let sql = format!(
        "SELECT 1 FROM {} WHERE id = ? AND ({})",
        quote_ident(&c.name),
        rule.sql
    );
    let params = std::iter::once(SqlValue::Text(id.to_string())).chain(rule.params.iter().cloned());
    let mut stmt = conn.prepare_cached(&sql).map_err(DbError::from)?;
    Ok(stmt
        .exists(params_from_iter(params))
        .map_err(DbError::from)?)
}
