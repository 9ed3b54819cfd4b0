//! Listing records: one page of the records a caller may see, by filter, sort, keyset cursor
//! (either way) or page number, collected straight from the rows in the form the caller wants
//! (`schema::PageRows`: JSON text for the API, values for the site).

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::params_from_iter;

use crate::app::App;
use crate::db::DbError;
use crate::error::AppError;
use crate::query;
use crate::schema::{self, JsonRows, Operation, PageRows};
use crate::services::identity::Caller;

use super::{Access, access, forbidden, vars};

/// What a list request asks for (raw, as sent).
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<u32>,
    pub after: Option<String>,
    /// The page before this cursor (the `prev` of a page), read backwards.
    pub before: Option<String>,
    pub page: Option<u32>,
    pub count: bool,
    pub fields: Option<String>,
}

/// One page of a list: the records, the cursors of the next and previous pages, the total.
#[derive(Debug)]
pub struct ListPage<R> {
    pub items: R,
    pub next: Option<String>,
    /// A `before` cursor for the page ahead of this one; `None` on the first page.
    pub prev: Option<String>,
    pub total: Option<u64>,
}

impl ListPage<JsonRows> {
    /// `{"items":[…],"next":…,"prev":…[,"total":n]}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.array_len() + 64);
        out.extend_from_slice(b"{\"items\":");
        self.items.write_array(&mut out);
        // Cursors are base64url: nothing in them needs escaping.
        for (key, cursor) in [
            (&b",\"next\":"[..], &self.next),
            (b",\"prev\":", &self.prev),
        ] {
            out.extend_from_slice(key);
            match cursor {
                Some(c) => out.extend_from_slice(format!("\"{c}\"").as_bytes()),
                None => out.extend_from_slice(b"null"),
            }
        }
        if let Some(t) = self.total {
            out.extend_from_slice(format!(",\"total\":{t}").as_bytes());
        }
        out.push(b'}');
        out
    }
}

/// Most list plans kept per collection version; the whole set is dropped when it is full.
const PLANS_KEPT: usize = 64;

/// Longest filter, sort and fields text (together, in bytes) whose plan is kept.
const PLAN_KEY_BYTES: usize = 1024;

/// The list plans of one collection version already built (parsing the filter, sort and
/// projection and building the SQL is about a tenth of a list request's work), by what the
/// request asked for. Only plans that do not depend on the caller or the clock are kept
/// (no `@me` or `@now` in the filter or the rule); a schema change replaces the collection's
/// entry and these with it.
#[derive(Debug, Default)]
pub(crate) struct ListPlans(std::sync::Mutex<HashMap<PlanKey, Arc<query::ListPlan>>>);

/// What a plan was built from: the request's filter, sort and fields as sent, the page size,
/// and whether the list rule applied (it does not for admins).
#[derive(Debug, PartialEq, Eq, Hash)]
struct PlanKey {
    filter: String,
    sort: String,
    fields: String,
    limit: u32,
    rule: bool,
}

impl ListPlans {
    fn get(&self, key: &PlanKey) -> Option<Arc<query::ListPlan>> {
        self.lock().get(key).cloned()
    }

    fn keep(&self, key: PlanKey, plan: Arc<query::ListPlan>) {
        let mut plans = self.lock();
        if plans.len() >= PLANS_KEPT {
            plans.clear();
        }
        plans.insert(key, plan);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PlanKey, Arc<query::ListPlan>>> {
        // The map holds finished plans only: a panic while it was held leaves nothing
        // half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// List records visible to `caller`, collected as `R`.
pub async fn list<R: PageRows>(
    app: &App,
    name: &str,
    caller: &Caller,
    p: ListParams,
) -> Result<ListPage<R>, AppError> {
    let entry = app.collections.get(name)?;
    let c = entry.collection.clone();
    let rule = match access(&c, Operation::List, caller, forbidden)? {
        Access::All => None,
        Access::Filter(e) => Some(e),
    };
    let limit = p
        .limit
        .unwrap_or(app.settings.default_page_size)
        .clamp(1, app.settings.max_page_size);
    let positions = [p.after.is_some(), p.before.is_some(), p.page.is_some()];
    if positions.iter().filter(|given| **given).count() > 1 {
        return Err(AppError::BadRequest(
            "use only one of after, before and page".into(),
        ));
    }
    let filter = p.filter.as_deref().unwrap_or("");
    let (sort, fields) = (
        p.sort.as_deref().unwrap_or(""),
        p.fields.as_deref().unwrap_or(""),
    );
    // Without `@` in the filter it cannot mention `@me` or `@now`.
    let keep = !filter.contains('@')
        && !rule.is_some_and(query::Expr::uses_vars)
        && filter.len() + sort.len() + fields.len() <= PLAN_KEY_BYTES;
    let key = keep.then(|| PlanKey {
        filter: filter.to_owned(),
        sort: sort.to_owned(),
        fields: fields.to_owned(),
        limit,
        rule: rule.is_some(),
    });
    let plan = match key.as_ref().and_then(|k| entry.list_plans.get(k)) {
        Some(plan) => plan,
        None => {
            let plan = Arc::new(list_plan(&c, filter, rule, sort, fields, limit, caller)?);
            if let Some(key) = key {
                entry.list_plans.keep(key, plan.clone());
            }
            plan
        }
    };
    let sort = plan.sort();
    let after = match p.after.as_deref() {
        Some(a) => Some(query::Cursor::decode(a, sort).map_err(|e| AppError::query("after", e))?),
        None => None,
    };
    let before = match p.before.as_deref() {
        Some(b) => Some(query::Cursor::decode(b, sort).map_err(|e| AppError::query("before", e))?),
        None => None,
    };
    let offset = match p.page {
        Some(0) => return Err(AppError::BadRequest("page starts at 1".into())),
        Some(n) => Some(u64::from(n - 1) * u64::from(limit)),
        None => None,
    };
    let statements = plan
        .statements(after.as_ref(), before.as_ref(), offset)
        .map_err(|e| AppError::query("filter", e))?;
    let count = p.count.then(|| plan.count_sql());
    // Rows before a cursor come nearest first and are put back in order at the end.
    let backwards = before.is_some();
    // Whether a page lies ahead of this one (a forward page reached by cursor or number).
    let paged = after.is_some() || offset.is_some_and(|o| o > 0);
    let (items, next, prev, total) = app
        .db
        .read(move |conn| {
            let reader = schema::RowReader::new(&c, plan.columns());
            let mut items = R::new(&reader, limit as usize);
            let mut n = 0;
            let mut first_cursor = None;
            let mut last_cursor = None;
            let mut more = false;
            let sort = plan.sort();
            // The statements give the rows in order; stop once one more than the page is seen.
            'statements: for (sql, params) in statements {
                let mut stmt = conn.prepare_cached(&sql).map_err(DbError::from)?;
                let mut rows = stmt
                    .query(params_from_iter(params))
                    .map_err(DbError::from)?;
                while let Some(row) = rows.next().map_err(DbError::from)? {
                    if n == limit {
                        // The extra row only tells that another page exists.
                        more = true;
                        break 'statements;
                    }
                    items.add_row(&reader, row).map_err(DbError::from)?;
                    n += 1;
                    if n == 1 && (backwards || paged) {
                        first_cursor =
                            Some(query::cursor_after_row(sort, row).map_err(DbError::from)?);
                    }
                    if n == limit {
                        last_cursor =
                            Some(query::cursor_after_row(sort, row).map_err(DbError::from)?);
                    }
                }
            }
            if backwards {
                items.reverse_rows();
            }
            let beyond = if more { last_cursor } else { None };
            // Read backwards, the first row read is the page's last and the row past the
            // page lies before it; forwards the other way round.
            let (next, prev) = if backwards {
                (first_cursor, beyond)
            } else {
                (beyond, first_cursor)
            };
            let total = match count {
                Some((sql, params)) => Some(
                    conn.prepare_cached(&sql)
                        .and_then(|mut s| {
                            s.query_row(params_from_iter(params), |r| r.get::<_, i64>(0))
                        })
                        .map_err(DbError::from)? as u64,
                ),
                None => None,
            };
            Ok::<_, AppError>((
                items,
                next.map(|c| c.encode()),
                prev.map(|c| c.encode()),
                total,
            ))
        })
        .await?;
    Ok(ListPage {
        items,
        next,
        prev,
        total,
    })
}

/// Parse the request's filter, sort and projection against the collection and build the
/// listing's plan.
fn list_plan(
    c: &Arc<schema::Collection>,
    filter: &str,
    rule: Option<&query::Expr>,
    sort: &str,
    fields: &str,
    limit: u32,
    caller: &Caller,
) -> Result<query::ListPlan, AppError> {
    // Error positions count from the text as sent, so it is parsed untrimmed.
    let filter = match filter.trim() {
        "" => None,
        _ => Some(query::parse_filter(filter, c).map_err(|e| AppError::query("filter", e))?),
    };
    let sort = match sort.trim() {
        "" => query::Sort::default(),
        _ => query::parse_sort(sort, c).map_err(|e| AppError::query("sort", e))?,
    };
    let columns = query::parse_fields(fields, c).map_err(|e| AppError::query("fields", e))?;
    query::ListPlan::new(
        c,
        filter.as_ref(),
        rule,
        sort,
        columns,
        limit,
        &vars(caller),
    )
    .map_err(|e| AppError::query("filter", e))
}
