//! `GET /c/<name>`: the records table. The query parameters are the API's own (`filter`,
//! `sort`, `limit`, `after`, `before`, `count`); a filter or sort that does not parse is shown
//! with its message and position on a 200 page with an empty table.

use askama::Template;
use rocket::http::uri::Origin;
use rocket::{State, get};
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::AppError;
use crate::schema::{Collection, FieldKind, Operation};
use crate::services::records::{self, ListParams};

use super::super::page::{Answer, Layout, WebError, render};
use super::super::visitor::Visitor;
use super::cells::{Cell, cell};
use super::{collection, record_href, refused};

/// A column heading: its sort link (when sortable) and `aria-sort` when sorted by it.
struct Column {
    label: String,
    sort_href: Option<String>,
    aria_sort: Option<&'static str>,
}

struct Row {
    id: String,
    href: String,
    cells: Vec<Cell>,
}

/// A filter, sort or paging parameter that did not work, shown above the table.
struct Problem {
    message: String,
    /// The offending text with a caret line under the position, when there is one.
    input: Option<String>,
    caret: Option<String>,
}

#[derive(Template)]
#[template(path = "records/list.html")]
struct RecordsPage {
    layout: Layout,
    name: String,
    filter: String,
    sort: String,
    limit: String,
    count: bool,
    columns: Vec<Column>,
    rows: Vec<Row>,
    problem: Option<Problem>,
    total: Option<u64>,
    next_href: Option<String>,
    prev_href: Option<String>,
    /// Back to the start, when the page shown was reached by a cursor.
    first_href: Option<String>,
    count_href: String,
    can_create: bool,
}

/// The parameters a listing keeps from link to link (paging, sorting, counting).
struct Query<'a> {
    name: &'a str,
    filter: &'a str,
    sort: &'a str,
    limit: &'a str,
    count: bool,
}

impl Query<'_> {
    /// `/c/<name>?…` with the kept parameters, `sort` replaced when given, and `extra` added.
    fn href(&self, sort: Option<&str>, count: bool, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("filter", self.filter),
            ("sort", sort.unwrap_or(self.sort)),
            ("limit", self.limit),
        ];
        if count {
            pairs.push(("count", "1"));
        }
        pairs.extend_from_slice(extra);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()))
            .finish();
        if query.is_empty() {
            format!("/c/{}", self.name)
        } else {
            format!("/c/{}?{query}", self.name)
        }
    }

    /// The first sort key and whether it is descending (`id` ascending by default).
    fn primary_sort(&self) -> (&str, bool) {
        let first = self.sort.split(',').next().unwrap_or("").trim();
        match first.strip_prefix('-') {
            Some(f) => (f.trim(), true),
            None => match first.trim_start_matches('+').trim() {
                "" => ("id", false),
                f => (f, false),
            },
        }
    }

    /// The heading of column `field`: a link toggling `field` / `-field` when sortable.
    fn column(&self, field: &str, sortable: bool) -> Column {
        let (primary, descending) = self.primary_sort();
        let sorted = primary == field;
        let next = if sorted && !descending {
            format!("-{field}")
        } else {
            field.to_owned()
        };
        Column {
            label: field.to_owned(),
            sort_href: sortable.then(|| self.href(Some(&next), self.count, &[])),
            aria_sort: sorted.then_some(if descending {
                "descending"
            } else {
                "ascending"
            }),
        }
    }
}

fn columns(c: &Collection, q: &Query<'_>) -> Vec<Column> {
    let mut out = vec![q.column("id", true)];
    for f in &c.fields {
        let sortable = !matches!(
            f.kind,
            FieldKind::Json | FieldKind::Select { multiple: true, .. }
        );
        out.push(q.column(&f.name, sortable));
    }
    out.push(q.column("created", true));
    out
}

fn rows(c: &Collection, items: &[Map<String, Value>]) -> Vec<Row> {
    items
        .iter()
        .map(|item| {
            let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
            let mut cells: Vec<Cell> = c
                .fields
                .iter()
                .map(|f| cell(Some(f), item.get(&f.name).unwrap_or(&Value::Null), true))
                .collect();
            cells.push(cell(
                None,
                item.get("created").unwrap_or(&Value::Null),
                true,
            ));
            Row {
                id: id.to_owned(),
                href: record_href(&c.name, id),
                cells,
            }
        })
        .collect()
}

/// The problem a bad parameter causes, with a caret under the position in its text.
fn problem(err: AppError, q: &Query<'_>) -> Result<Problem, AppError> {
    match err {
        AppError::Query { param, error } => {
            let input = match param {
                "filter" => Some(q.filter),
                "sort" => Some(q.sort),
                _ => None,
            };
            let message = match input {
                Some(_) => format!(
                    "The {param} has a problem at position {}: {}.",
                    error.position, error.message
                ),
                None => format!(
                    "This page link no longer fits the listing ({param}: {}). Start again from the first page.",
                    error.message
                ),
            };
            Ok(Problem {
                message,
                caret: input.map(|_| format!("{}^", " ".repeat(error.position))),
                input: input.map(str::to_owned),
            })
        }
        AppError::BadRequest(message) => Ok(Problem {
            message,
            input: None,
            caret: None,
        }),
        other => Err(other),
    }
}

#[allow(clippy::too_many_arguments)]
#[get("/c/<name>?<filter>&<sort>&<limit>&<after>&<before>&<count>")]
pub async fn records_page(
    app: &State<App>,
    v: Visitor,
    uri: &Origin<'_>,
    name: &str,
    filter: Option<&str>,
    sort: Option<&str>,
    limit: Option<&str>,
    after: Option<&str>,
    before: Option<&str>,
    count: Option<&str>,
) -> Result<Answer, WebError> {
    let c = collection(app, name)?;
    match records::check_rule(app, name, &v.caller, Operation::List) {
        Ok(()) => {}
        // A collection only admins may list does not exist for anyone else.
        Err(AppError::Forbidden(_)) => return Err(AppError::NotFound.into()),
        Err(e) => return refused(e, uri),
    }
    let q = Query {
        name,
        filter: filter.unwrap_or(""),
        sort: sort.unwrap_or(""),
        limit: limit.unwrap_or(""),
        count: matches!(count, Some("1" | "true")),
    };
    let listed = match q.limit {
        "" => Ok(None),
        l => l.parse::<u32>().map(Some).map_err(|_| {
            AppError::BadRequest("The limit must be a whole number of records.".into())
        }),
    }
    .map(|limit| ListParams {
        filter: filter.map(str::to_owned),
        sort: sort.map(str::to_owned),
        limit,
        after: after.map(str::to_owned),
        before: before.map(str::to_owned),
        page: None,
        count: q.count,
        fields: None,
    });
    let listed = match listed {
        Ok(params) => records::list(app, name, &v.caller, params).await,
        Err(e) => Err(e),
    };
    let (page, problem) = match listed {
        Ok(page) => (Some(page), None),
        Err(e) => match problem(e, &q) {
            Ok(p) => (None, Some(p)),
            Err(e) => return refused(e, uri),
        },
    };
    let items: Vec<Map<String, Value>> = match &page {
        Some(p) => serde_json::from_slice(&p.items)
            .map_err(|e| WebError(AppError::Internal(format!("list JSON: {e}"))))?,
        None => Vec::new(),
    };
    let page_href = |key: &str, cursor: &Option<String>| {
        cursor
            .as_deref()
            .map(|c| q.href(None, q.count, &[(key, c)]))
    };
    let (next_href, prev_href, total) = match &page {
        Some(p) => (
            page_href("after", &p.next),
            page_href("before", &p.prev),
            p.total,
        ),
        None => (None, None, None),
    };
    let can_create = records::check_rule(app, name, &v.caller, Operation::Create).is_ok();
    let page = RecordsPage {
        layout: v.layout(name),
        name: name.to_owned(),
        filter: q.filter.to_owned(),
        sort: q.sort.to_owned(),
        limit: q.limit.to_owned(),
        count: q.count,
        columns: columns(&c, &q),
        rows: rows(&c, &items),
        problem,
        total,
        next_href,
        prev_href,
        first_href: (after.is_some() || before.is_some()).then(|| q.href(None, q.count, &[])),
        // Counting or not keeps the visitor on the page they are on.
        count_href: {
            let position: Vec<(&str, &str)> = [("after", after), ("before", before)]
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect();
            q.href(None, !q.count, &position)
        },
        can_create,
    };
    Ok(render(&page)?.into())
}
