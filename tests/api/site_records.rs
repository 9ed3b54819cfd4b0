//! The data pages, read side: the collection table (values per type, sort, filter, paging both
//! ways, count), the record page, rules (rows and records a user may not reach), and stored
//! markup rendered inert. Helpers here are shared with `site_record_forms`.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, enc};
use crate::site_client::{Page, SiteClient};

/// `authors` (anyone lists and views) and `books`, with a field of every type; anyone may list
/// and view books, only admins write.
pub async fn library(app: &TestApp) {
    app.collection(json!({
        "name": "authors",
        "fields": [ { "name": "name", "type": "text", "required": true } ],
        "rules": { "list": "", "view": "" }
    }))
    .await;
    app.collection(json!({
        "name": "books",
        "fields": [
            { "name": "title", "type": "text", "required": true, "unique": true, "max": 100 },
            { "name": "year", "type": "number", "integer": true, "min": 0, "max": 3000 },
            { "name": "price", "type": "number" },
            { "name": "done", "type": "bool" },
            { "name": "due", "type": "datetime" },
            { "name": "contact", "type": "email" },
            { "name": "site", "type": "url" },
            { "name": "status", "type": "select", "values": ["draft", "live"] },
            { "name": "tags", "type": "select", "values": ["a", "b", "c"], "multiple": true },
            { "name": "meta", "type": "json" },
            { "name": "notes", "type": "text" },
            { "name": "author", "type": "relation", "collection": "authors" }
        ],
        "rules": { "list": "", "view": "" }
    }))
    .await;
}

/// `notes`: each user lists, views, changes and deletes only their own; anyone signed in
/// creates (as themselves).
pub async fn private_notes(app: &TestApp) {
    app.collection(json!({
        "name": "notes",
        "fields": [
            { "name": "text", "type": "text", "required": true },
            { "name": "owner", "type": "relation", "collection": "users", "required": true }
        ],
        "rules": {
            "list": "owner = @me", "view": "owner = @me", "create": "owner = @me",
            "update": "owner = @me", "delete": "owner = @me"
        }
    }))
    .await;
}

/// A signed-in admin's browser.
pub async fn admin_site(app: &TestApp) -> SiteClient<'_> {
    let site = SiteClient::new(app);
    site.sign_in(ADMIN_EMAIL, PASSWORD).await;
    site
}

/// A new plain user, signed in: (their id, their browser).
pub async fn user_site<'a>(app: &'a TestApp, email: &str) -> (String, SiteClient<'a>) {
    let (id, _) = app.user(email).await;
    let site = SiteClient::new(app);
    site.sign_in(email, PASSWORD).await;
    (id, site)
}

/// The record ids in the table, in order (the row headers link to the record pages).
pub fn table_ids(page: &Page) -> Vec<String> {
    let body = &page.body;
    let start = body.find("<tbody>").expect("a table body");
    let end = body[start..].find("</tbody>").unwrap() + start;
    let marker = "<th scope=\"row\"><a href=\"/c/";
    body[start..end]
        .match_indices(marker)
        .map(|(i, _)| {
            let rest = &body[start + i + marker.len()..];
            let path = &rest[..rest.find('"').unwrap()];
            path.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

/// The `href` of the link with id `id`, unescaped (askama writes `&` as `&#38;`).
pub fn href(page: &Page, id: &str) -> Option<String> {
    let at = page.body.find(&format!("id=\"{id}\""))?;
    let tag = page.body[..at].rfind("<a ")?;
    let attr = &page.body[tag..at];
    let start = attr.find("href=\"")? + 6;
    let end = attr[start..].find('"')? + start;
    Some(attr[start..end].replace("&#38;", "&"))
}

/// The `<th>` of column `label` in the table head.
fn header<'p>(page: &'p Page, label: &str) -> &'p str {
    let head_end = page.body.find("</thead>").unwrap();
    let head = &page.body[..head_end];
    let at = head
        .rfind(&format!(">{label}<"))
        .unwrap_or_else(|| panic!("no column {label}"));
    let start = head[..at].rfind("<th").unwrap();
    let end = head[at..].find("</th>").unwrap() + at;
    &head[start..end]
}

async fn book(app: &TestApp, body: Value) -> String {
    app.record("books", body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[rocket::async_test]
async fn the_table_has_a_column_per_field_and_shows_values_per_type() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let author = app.record("authors", json!({ "name": "Ann" })).await;
    let author_id = author["id"].as_str().unwrap();
    let id = book(
        &app,
        json!({
            "title": "Rust", "year": 2021, "price": 9.5, "done": true,
            "due": "2024-05-01T12:00:00Z", "contact": "a@b.io", "site": "https://rust-lang.org/",
            "status": "live", "tags": ["a", "c"], "meta": { "k": [1, 2] }, "author": author_id
        }),
    )
    .await;
    book(&app, json!({ "title": "Empty", "done": false })).await;
    // Anyone may list books: no sign-in needed.
    let site = SiteClient::new(&app);
    let page = site.get("/c/books").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<table id=\"records\""));
    for label in ["id", "title", "year", "tags", "meta", "author", "created"] {
        header(&page, label);
    }
    assert_eq!(table_ids(&page).len(), 2);
    let b = &page.body;
    assert!(b.contains(&format!("<a href=\"/c/books/{id}\">{id}</a>")));
    assert!(b.contains("<td>✓</td>") && b.contains("<td>—</td>"));
    assert!(b.contains("<td class=\"num\">2021</td>") && b.contains(">9.5</td>"));
    assert!(b.contains("<td>a, c</td>"), "multiple select joined");
    assert!(b.contains("{&#34;k&#34;:[1,2]}"), "json as compact text");
    assert!(b.contains("<a href=\"https://rust-lang.org/\" rel=\"noopener noreferrer nofollow\">"));
    assert!(b.contains(&format!(
        "<a href=\"/c/authors/{author_id}\">{author_id}</a>"
    )));
    assert!(b.contains("2024-05-01T12:00:00.000Z"));
    // The home page links the collection here.
    assert!(
        site.get("/")
            .await
            .body
            .contains("<a href=\"/c/books\">books</a>")
    );
    // Only admins may create books: no button for a visitor.
    assert!(!b.contains("id=\"new-record\""));
    let admin = admin_site(&app).await;
    assert!(
        admin
            .get("/c/books")
            .await
            .body
            .contains("href=\"/c/books/new\"")
    );
}

#[rocket::async_test]
async fn column_headers_toggle_the_sort_and_mark_it_with_aria_sort() {
    let app = TestApp::spawn().await;
    library(&app).await;
    for (title, year) in [("B", 2001), ("A", 2003), ("C", 2002)] {
        book(&app, json!({ "title": title, "year": year })).await;
    }
    let site = SiteClient::new(&app);
    let page = site.get("/c/books").await;
    // The default order is by id (creation), ascending.
    assert!(header(&page, "id").contains("aria-sort=\"ascending\""));
    assert!(!header(&page, "year").contains("aria-sort"));
    let year_link = header(&page, "year");
    assert!(
        year_link.contains("href=\"/c/books?sort=year\""),
        "{year_link}"
    );
    // json and multiple select columns cannot be sorted: no link.
    assert!(!header(&page, "meta").contains("href"));
    let asc = site.get("/c/books?sort=year").await;
    assert!(header(&asc, "year").contains("aria-sort=\"ascending\""));
    assert!(header(&asc, "year").contains("href=\"/c/books?sort=-year\""));
    let years = |p: &Page| -> Vec<String> {
        table_ids(p)
            .iter()
            .map(|id| {
                let r = p.body.find(&format!("/c/books/{id}\"")).unwrap();
                let cells = &p.body[r..];
                let at = cells.find("<td class=\"num\">").unwrap() + 16;
                cells[at..at + 4].to_string()
            })
            .collect()
    };
    assert_eq!(years(&asc), ["2001", "2002", "2003"]);
    let desc = site.get("/c/books?sort=-year").await;
    assert!(header(&desc, "year").contains("aria-sort=\"descending\""));
    assert!(header(&desc, "year").contains("href=\"/c/books?sort=year\""));
    assert_eq!(years(&desc), ["2003", "2002", "2001"]);
}

#[rocket::async_test]
async fn next_then_previous_walks_the_same_pages_both_ways() {
    let app = TestApp::spawn().await;
    library(&app).await;
    for i in 0..8 {
        book(
            &app,
            json!({ "title": format!("t{i}"), "year": 2000 + (i % 3) }),
        )
        .await;
    }
    let site = SiteClient::new(&app);
    let first = site
        .get(&format!(
            "/c/books?sort=-year&limit=3&filter={}",
            enc("year >= 2000")
        ))
        .await;
    assert_eq!(first.status, 200);
    assert!(href(&first, "prev-page").is_none(), "no previous page");
    let mut pages = vec![table_ids(&first)];
    let mut page = first;
    while let Some(next) = href(&page, "next-page") {
        assert!(next.contains("after=") && next.contains("sort=-year") && next.contains("limit=3"));
        assert!(next.contains("filter="), "the filter is kept: {next}");
        page = site.get(&next).await;
        assert_eq!(page.status, 200);
        pages.push(table_ids(&page));
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
    let first = href(&page, "first-page").unwrap();
    assert!(
        !first.contains("after=") && first.contains("sort=-year"),
        "{first}"
    );
    assert_eq!(table_ids(&site.get(&first).await), pages[0]);
    let mut back = vec![table_ids(&page)];
    while let Some(prev) = href(&page, "prev-page") {
        assert!(prev.contains("before="), "{prev}");
        page = site.get(&prev).await;
        back.push(table_ids(&page));
        assert!(href(&page, "next-page").is_some());
    }
    back.reverse();
    assert_eq!(
        back, pages,
        "Previous returns exactly the pages Next showed"
    );
}

#[rocket::async_test]
async fn a_bad_filter_shows_its_message_and_position_with_status_200() {
    let app = TestApp::spawn().await;
    library(&app).await;
    book(&app, json!({ "title": "x" })).await;
    let site = SiteClient::new(&app);
    let filter = "year >= 2000 && nope = 1";
    let page = site.get(&format!("/c/books?filter={}", enc(filter))).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"filter-problem\""));
    assert!(page.body.contains("position 16"), "{}", page.body);
    assert!(page.body.contains("unknown field"));
    // The filter with a caret under the position.
    // askama escapes with numeric references: `>` is `&#62;`, `&` is `&#38;`.
    let escaped = "year &#62;= 2000 &#38;&#38; nope = 1";
    let caret = format!("{escaped}\n{}^", " ".repeat(16));
    assert!(page.body.contains(&caret), "{}", page.body);
    assert!(table_ids(&page).is_empty());
    // The text box keeps the filter to fix, marked invalid.
    assert!(page.body.contains(&format!("value=\"{escaped}\"")));
    assert!(page.body.contains("aria-invalid=\"true\""));
    // Garbage elsewhere is no crash either.
    for query in [
        "sort=meta",
        "after=garbage",
        "before=garbage",
        "limit=abc",
        "filter=%28",
    ] {
        let p = site.get(&format!("/c/books?{query}")).await;
        assert_eq!(p.status, 200, "{query}");
        assert!(p.body.contains("id=\"filter-problem\""), "{query}");
    }
}

#[rocket::async_test]
async fn count_shows_the_number_of_records_and_a_link_toggles_it() {
    let app = TestApp::spawn().await;
    library(&app).await;
    for i in 0..3 {
        book(&app, json!({ "title": format!("t{i}"), "done": i == 0 })).await;
    }
    let site = SiteClient::new(&app);
    let page = site.get("/c/books?filter=done%20%3D%20false").await;
    assert!(!page.body.contains("id=\"count\""));
    let toggle = href(&page, "count-toggle").unwrap();
    assert!(
        toggle.contains("count=1") && toggle.contains("filter="),
        "{toggle}"
    );
    let counted = site.get(&toggle).await;
    assert!(counted.body.contains("<p id=\"count\">2 records</p>"));
    let off = href(&counted, "count-toggle").unwrap();
    assert!(!off.contains("count="));
    assert!(!site.get(&off).await.body.contains("id=\"count\""));
}

#[rocket::async_test]
async fn the_record_page_shows_every_field_and_edit_delete_for_admins_only() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let id = book(
        &app,
        json!({ "title": "Dune", "year": 1965, "tags": ["b"] }),
    )
    .await;
    let site = SiteClient::new(&app);
    let page = site.get(&format!("/c/books/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<h1>Dune</h1>"));
    assert!(page.body.contains("<table id=\"record\">"));
    for field in [
        "id", "title", "year", "tags", "author", "created", "updated",
    ] {
        assert!(
            page.body.contains(&format!("<tr id=\"value-{field}\">")),
            "{field}"
        );
    }
    assert!(
        !page.body.contains("id=\"edit-record\"") && !page.body.contains("id=\"delete-record\"")
    );
    let admin = admin_site(&app).await;
    let page = admin.get(&format!("/c/books/{id}")).await;
    assert_eq!(
        href(&page, "edit-record").unwrap(),
        format!("/c/books/{id}/edit")
    );
    assert_eq!(
        href(&page, "delete-record").unwrap(),
        format!("/c/books/{id}/delete")
    );
    assert_eq!(site.get("/c/books/01NOSUCHRECORD").await.status, 404);
    assert_eq!(site.get("/c/nope").await.status, 404);
}

#[rocket::async_test]
async fn a_user_sees_only_their_rows_and_another_users_record_is_a_404() {
    let app = TestApp::spawn().await;
    private_notes(&app).await;
    let (ann, ann_site) = user_site(&app, "ann@example.com").await;
    let (bob, bob_site) = user_site(&app, "bob@example.com").await;
    let ann_note = app
        .record("notes", json!({ "text": "ann's", "owner": ann }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.record("notes", json!({ "text": "bob's", "owner": bob }))
        .await;
    let page = ann_site.get("/c/notes?count=1").await;
    assert_eq!(page.status, 200);
    assert_eq!(table_ids(&page), std::slice::from_ref(&ann_note));
    assert!(
        page.body.contains("<p id=\"count\">1 record</p>"),
        "counts never leak"
    );
    assert!(!page.body.contains("bob&#39;s") && !page.body.contains("bob's"));
    // The owner sees edit and delete; for Bob the record does not exist, on every page.
    let own = ann_site.get(&format!("/c/notes/{ann_note}")).await;
    assert!(own.body.contains("id=\"edit-record\"") && own.body.contains("id=\"delete-record\""));
    for path in ["", "/edit", "/delete"] {
        let p = bob_site.get(&format!("/c/notes/{ann_note}{path}")).await;
        assert_eq!(p.status, 404, "GET {path}");
    }
    bob_site.get("/c/notes").await;
    let edit = bob_site
        .post(
            &format!("/c/notes/{ann_note}/edit"),
            &[("text", "mine now"), ("owner", &bob)],
        )
        .await;
    assert_eq!(edit.status, 404);
    let delete = bob_site
        .post(&format!("/c/notes/{ann_note}/delete"), &[])
        .await;
    assert_eq!(delete.status, 404);
    let text: String = app
        .sqlite()
        .query_row("SELECT text FROM notes WHERE id = ?1", [&ann_note], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(text, "ann's");
}

#[rocket::async_test]
async fn admin_only_collections_send_visitors_to_sign_in_and_are_404_for_users() {
    let app = TestApp::spawn().await;
    app.collection(json!({ "name": "secret", "fields": [ { "name": "v", "type": "text" } ] }))
        .await;
    let id = app.record("secret", json!({ "v": "s" })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let anonymous = SiteClient::new(&app);
    for path in [
        "/c/secret".to_string(),
        "/c/secret/new".into(),
        format!("/c/secret/{id}"),
        format!("/c/secret/{id}/edit"),
        format!("/c/secret/{id}/delete"),
    ] {
        let p = anonymous.get(&path).await;
        assert_eq!(p.status, 303, "{path}");
        assert_eq!(p.location(), format!("/sign-in?next={}", enc(&path)));
    }
    let (_, user) = user_site(&app, "u@example.com").await;
    assert_eq!(user.get("/c/secret").await.status, 404);
    assert_eq!(user.get(&format!("/c/secret/{id}")).await.status, 404);
    assert_eq!(user.get("/c/secret/new").await.status, 403);
    let admin = admin_site(&app).await;
    let page = admin.get("/c/secret").await;
    assert_eq!(table_ids(&page), [id]);
}

#[rocket::async_test]
async fn stored_markup_and_javascript_urls_render_inert() {
    let app = TestApp::spawn().await;
    library(&app).await;
    let payload = "\"><svg onload=alert(1)>";
    let id = book(&app, json!({ "title": payload, "notes": payload })).await;
    // The url field only stores http(s); sneak a javascript: URL in below the service.
    app.collection(json!({
        "name": "links",
        "fields": [ { "name": "site", "type": "url" }, { "name": "label", "type": "text" } ],
        "rules": { "list": "", "view": "" }
    }))
    .await;
    let link = app.record("links", json!({ "label": payload })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    {
        let db = rusqlite::Connection::open(app.dir.path().join("onebox.db")).unwrap();
        db.execute(
            "UPDATE links SET site = 'javascript:alert(1)' WHERE id = ?1",
            [&link],
        )
        .unwrap();
    }
    let site = SiteClient::new(&app);
    for path in [
        "/c/books".to_string(),
        format!("/c/books/{id}"),
        "/c/links".into(),
        format!("/c/links/{link}"),
    ] {
        let page = site.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains("<svg"), "{path}");
        // askama escapes with numeric references: `"` `>` `<` are `&#34;` `&#62;` `&#60;`.
        assert!(
            page.body
                .contains("&#34;&#62;&#60;svg onload=alert(1)&#62;"),
            "{path}"
        );
        assert!(!page.body.contains("href=\"javascript:"), "{path}");
    }
    let page = site.get(&format!("/c/links/{link}")).await;
    assert!(
        page.body.contains("<td>javascript:alert(1)</td>"),
        "shown as text"
    );
}
