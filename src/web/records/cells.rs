//! How a record value reads on a page: text per field type (bool ✓/—, json compact, multiple
//! select joined), and the only links a value may become: an http(s) URL, or a relation to the
//! target record's page. Everything stays text for askama to escape.

use serde_json::Value;

use crate::schema::{Field, FieldKind, is_valid_record_id};

/// Longest text a table cell shows before cutting it short.
const CELL_CHARS: usize = 80;

/// One value, ready to print.
#[derive(Debug, Default, PartialEq)]
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
    /// A link off this site (gets `rel="noopener noreferrer nofollow"`).
    pub external: bool,
    /// Right-aligned in tables.
    pub numeric: bool,
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Whether `s` is an absolute http or https URL (the only kind that becomes a link).
pub fn is_web_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// A number as people write it: a float with no fraction shows as a whole number (`145`,
/// not `145.0`); anything else as JSON writes it.
fn number_text(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

/// The cell for `value` of `field` (`None`: a system field such as `id` or `created`).
/// `short` cuts long text for a table.
pub fn cell(field: Option<&Field>, value: &Value, short: bool) -> Cell {
    let fit = |s: String| if short { shorten(&s, CELL_CHARS) } else { s };
    let plain = |text: String| Cell {
        text: fit(text),
        ..Cell::default()
    };
    let kind = field.map(|f| &f.kind);
    match (kind, value) {
        (_, Value::Null) => Cell::default(),
        (_, Value::Bool(b)) => plain(if *b { "✓" } else { "—" }.to_owned()),
        (_, Value::Number(n)) => Cell {
            numeric: true,
            ..plain(number_text(n))
        },
        (Some(FieldKind::Url), Value::String(s)) if is_web_url(s) => Cell {
            href: Some(s.clone()),
            external: true,
            ..plain(s.clone())
        },
        (Some(FieldKind::Relation { collection, .. }), Value::String(id))
            if collection != "users" && is_valid_record_id(id) =>
        {
            Cell {
                href: Some(format!("/c/{collection}/{id}")),
                ..plain(id.clone())
            }
        }
        (Some(FieldKind::Select { multiple: true, .. }), Value::Array(items)) => plain(
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (_, Value::String(s)) => plain(s.clone()),
        // json fields (and anything unexpected): compact JSON text.
        (_, v) => plain(v.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    #[test]
    fn whole_floats_show_without_a_fraction() {
        let text = |v: Value| cell(None, &v, true).text;
        assert_eq!(text(serde_json::json!(145.0)), "145");
        assert_eq!(text(serde_json::json!(-3.0)), "-3");
        assert_eq!(text(serde_json::json!(2.5)), "2.5");
        assert_eq!(text(serde_json::json!(7)), "7");
    }

    use super::*;
    use serde_json::json;

    fn field(spec: Value) -> Field {
        let mut spec = spec;
        spec["name"] = json!("f");
        let c = serde_json::from_value(json!({ "name": "t", "fields": [spec] })).unwrap();
        crate::schema::parse_collection(c, &|n: &str| n == "posts")
            .unwrap()
            .fields
            .remove(0)
    }

    fn text(spec: Value, value: Value) -> String {
        cell(Some(&field(spec)), &value, true).text
    }

    #[test]
    fn values_read_per_type() {
        assert_eq!(text(json!({"type": "bool"}), json!(true)), "✓");
        assert_eq!(text(json!({"type": "bool"}), json!(false)), "—");
        assert_eq!(text(json!({"type": "bool"}), Value::Null), "");
        assert_eq!(
            text(json!({"type": "json"}), json!({"a": [1, "x"]})),
            r#"{"a":[1,"x"]}"#
        );
        let multi = json!({"type": "select", "values": ["a", "b"], "multiple": true});
        assert_eq!(text(multi, json!(["a", "b"])), "a, b");
        let n = cell(Some(&field(json!({"type": "number"}))), &json!(2.5), true);
        assert_eq!((n.text.as_str(), n.numeric), ("2.5", true));
        assert_eq!(cell(None, &json!("01ABC"), true).text, "01ABC");
    }

    #[test]
    fn only_http_urls_and_relations_become_links() {
        let url = field(json!({"type": "url"}));
        let good = cell(Some(&url), &json!("https://example.com/a?b=1"), true);
        assert_eq!(good.href.as_deref(), Some("https://example.com/a?b=1"));
        assert!(good.external);
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "/local",
        ] {
            let c = cell(Some(&url), &json!(bad), true);
            assert_eq!((c.href, c.text.as_str()), (None, bad));
        }
        // A text field holding a URL stays text.
        let t = cell(
            Some(&field(json!({"type": "text"}))),
            &json!("https://x.io"),
            true,
        );
        assert_eq!(t.href, None);
        let rel = field(json!({"type": "relation", "collection": "posts"}));
        let linked = cell(Some(&rel), &json!("01ABC"), true);
        assert_eq!(linked.href.as_deref(), Some("/c/posts/01ABC"));
        assert!(!linked.external);
        assert_eq!(cell(Some(&rel), &json!("../x"), true).href, None);
        let user = field(json!({"type": "relation", "collection": "users"}));
        assert_eq!(cell(Some(&user), &json!("01ABC"), true).href, None);
    }

    #[test]
    fn long_text_is_cut_in_tables_only() {
        let long = "é".repeat(100);
        let t = field(json!({"type": "text"}));
        assert_eq!(cell(Some(&t), &json!(long), true).text.chars().count(), 81);
        assert_eq!(cell(Some(&t), &json!(long), false).text, long);
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
    }
}
