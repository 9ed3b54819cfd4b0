//! `GET /c/<name>`: the records table. The query parameters are the API's own (`filter`,
//! `sort`, `limit`, `after`, `before`, `count`); a filter or sort that does not parse is shown
//! with its message and position on a 200 page with an empty table.

use askama::Template;
use rocket::{State, get};
use serde_json::Value;

use crate::app::App;
use crate::error::AppError;
use crate::schema::{Collection, FieldKind, Operation};
use crate::services::records::{self, ListParams, ValueRows};

use super::super::page::{Answer, Layout, WebError, render};
use super::super::visitor::Visitor;
use super::cells::{Cell, cell};
use super::{collection, record_href};

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

/// The parameters of a listing: what it keeps from link to link (filter, sort, limit, count)
/// and the position of the page shown.
struct Query<'a> {
    name: &'a str,
    filter: &'a str,
    sort: &'a str,
    limit: &'a str,
    count: bool,
    after: Option<&'a str>,
    before: Option<&'a str>,
}

impl Query<'_> {
    /// What to ask the records service for.
    fn params(&self) -> Result<ListParams, AppError> {
        let limit = match self.limit {
            "" => None,
            l => Some(l.parse::<u32>().map_err(|_| {
                AppError::BadRequest("The limit must be a whole number of records.".into())
            })?),
        };
        Ok(ListParams {
            filter: Some(self.filter.to_owned()),
            sort: Some(self.sort.to_owned()),
            limit,
            after: self.after.map(str::to_owned),
            before: self.before.map(str::to_owned),
            page: None,
            count: self.count,
            fields: None,
        })
    }

    /// The page at `cursor` (`after` or `before`), if there is one.
    fn page_href(&self, key: &str, cursor: Option<&str>) -> Option<String> {
        cursor.map(|c| self.href(None, self.count, &[(key, c)]))
    }

    /// The first page, once a cursor is in use.
    fn first_href(&self) -> Option<String> {
        (self.after.is_some() || self.before.is_some()).then(|| self.href(None, self.count, &[]))
    }

    /// This page with the count switched on or off.
    fn count_href(&self) -> String {
        let position: Vec<(&str, &str)> = [("after", self.after), ("before", self.before)]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        self.href(None, !self.count, &position)
    }

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

fn rows(c: &Collection, items: &ValueRows) -> Vec<Row> {
    let id_at = items.column("id");
    let created_at = items.column("created");
    let field_at: Vec<Option<usize>> = c.fields.iter().map(|f| items.column(&f.name)).collect();
    items
        .rows
        .iter()
        .map(|values| {
            let value = |at: Option<usize>| at.and_then(|i| values.get(i)).unwrap_or(&Value::Null);
            let id = value(id_at).as_str().unwrap_or_default();
            let mut cells: Vec<Cell> = c
                .fields
                .iter()
                .zip(&field_at)
                .map(|(f, at)| cell(Some(f), value(*at), true))
                .collect();
            cells.push(cell(None, value(created_at), true));
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
        Err(e) => return Err(e.into()),
    }
    let q = Query {
        name,
        filter: filter.unwrap_or(""),
        sort: sort.unwrap_or(""),
        limit: limit.unwrap_or(""),
        count: matches!(count, Some("1" | "true")),
        after,
        before,
    };
    let listed = match q.params() {
        Ok(params) => records::list::<ValueRows>(app, name, &v.caller, params).await,
        Err(e) => Err(e),
    };
    let (page, problem) = match listed {
        Ok(page) => (Some(page), None),
        Err(e) => match problem(e, &q) {
            Ok(p) => (None, Some(p)),
            Err(e) => return Err(e.into()),
        },
    };
    let page = RecordsPage {
        layout: v.layout(name),
        name: name.to_owned(),
        filter: q.filter.to_owned(),
        sort: q.sort.to_owned(),
        limit: q.limit.to_owned(),
        count: q.count,
        columns: columns(&c, &q),
        rows: page
            .as_ref()
            .map(|p| rows(&c, &p.items))
            .unwrap_or_default(),
        problem,
        total: page.as_ref().and_then(|p| p.total),
        next_href: q.page_href("after", page.as_ref().and_then(|p| p.next.as_deref())),
        prev_href: q.page_href("before", page.as_ref().and_then(|p| p.prev.as_deref())),
        first_href: q.first_href(),
        count_href: q.count_href(),
        can_create: records::check_rule(app, name, &v.caller, Operation::Create).is_ok(),
    };
    Ok(render(&page)?.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn query<'a>(sort: &'a str, after: Option<&'a str>) -> Query<'a> {
        Query {
            name: "books",
            filter: "title ~ \"a&b\"",
            sort,
            limit: "",
            count: false,
            after,
            before: None,
        }
    }

    #[test]
    fn links_keep_the_listing_and_encode_every_value() {
        let q = query("-year", Some("CUR"));
        assert_eq!(
            q.page_href("after", Some("NEXT")).unwrap(),
            "/c/books?filter=title+%7E+%22a%26b%22&sort=-year&after=NEXT"
        );
        assert_eq!(
            q.count_href(),
            "/c/books?filter=title+%7E+%22a%26b%22&sort=-year&count=1&after=CUR"
        );
        assert_eq!(
            q.first_href().unwrap(),
            "/c/books?filter=title+%7E+%22a%26b%22&sort=-year"
        );
        assert_eq!(query("", None).first_href(), None);
        let params = q.params().unwrap();
        assert_eq!(params.after.as_deref(), Some("CUR"));
        assert_eq!(params.limit, None);
        let bad = Query { limit: "ten", ..q };
        assert!(matches!(bad.params(), Err(AppError::BadRequest(_))));
    }

    #[test]
    fn headers_toggle_the_first_sort_key() {
        let q = query("-year,title", None);
        let year = q.column("year", true);
        assert_eq!(year.aria_sort, Some("descending"));
        assert!(year.sort_href.unwrap().ends_with("&sort=year"));
        let title = q.column("title", true);
        assert_eq!(title.aria_sort, None);
        assert!(title.sort_href.unwrap().ends_with("&sort=title"));
        let q = query(" +title ", None);
        let title = q.column("title", true);
        assert_eq!(title.aria_sort, Some("ascending"));
        assert!(title.sort_href.unwrap().ends_with("&sort=-title"));
        assert_eq!(
            query("", None).column("id", true).aria_sort,
            Some("ascending")
        );
        assert_eq!(query("", None).column("meta", false).sort_href, None);
    }
}
