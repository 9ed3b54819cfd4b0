//! `GET /c/<name>/<id>`: one record, every field with its value, and edit/delete links when
//! the update/delete rules allow them for this record (the writes check again).

use askama::Template;
use rocket::{State, get};
use serde_json::Value;

use crate::app::App;
use crate::schema::Operation;
use crate::services::records::{self, Allowed};

use super::super::page::{Answer, Layout, WebError, render};
use super::super::visitor::Visitor;
use super::cells::{Cell, cell};
use super::{collection, parse_record, record_href, record_label};

/// One line of the record: a field's name and its value.
struct Line {
    label: String,
    cell: Cell,
}

#[derive(Template)]
#[template(path = "records/record.html")]
struct RecordPage {
    layout: Layout,
    name: String,
    id: String,
    href: String,
    heading: String,
    lines: Vec<Line>,
    allowed: Allowed,
}

#[get("/c/<name>/<id>", rank = 2)]
pub async fn view_record_page(
    app: &State<App>,
    v: Visitor,
    name: &str,
    id: &str,
) -> Result<Answer, WebError> {
    let c = collection(app, name)?;
    let json = match records::get_for(app, name, id, &v.caller, Operation::View).await {
        Ok(json) => json,
        Err(e) => return Err(e.into()),
    };
    let record = parse_record(&json)?;
    let allowed = records::allowed(app, name, id, &v.caller).await?;
    let value = |key: &str| record.get(key).unwrap_or(&Value::Null).clone();
    let mut lines = vec![Line {
        label: "id".into(),
        cell: cell(None, &value("id"), false),
    }];
    for f in &c.fields {
        lines.push(Line {
            label: f.name.clone(),
            cell: cell(Some(f), &value(&f.name), false),
        });
    }
    for system in ["created", "updated"] {
        lines.push(Line {
            label: system.into(),
            cell: cell(None, &value(system), false),
        });
    }
    let heading = record_label(&c, &record, id);
    Ok(render(&RecordPage {
        layout: v.layout(format!("{heading} · {name}")),
        name: name.to_owned(),
        id: id.to_owned(),
        href: record_href(name, id),
        heading,
        lines,
        allowed,
    })?
    .into())
}
