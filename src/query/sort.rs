//! Sort specs (`-created,title`): parsing against a collection, the ORDER BY they compile to,
//! and the fingerprint that ties a cursor to the sort it was made for. Every sort ends with
//! `id`, which is unique, so the order is total and keyset pagination is exact.

use std::fmt;

use sha2::{Digest, Sha256};

use super::column::{ColumnType, column_sql};
use super::{MAX_SORT_KEYS, QueryError, check_input_size};
use crate::schema::Collection;

/// A checked sort: one or more keys, always ending with `id` (unless `id` came earlier).
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    keys: Vec<SortKey>,
}

/// One column of a sort and its direction.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    field: String,
    descending: bool,
    pub(crate) column: ColumnType,
}

impl SortKey {
    /// The column name.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Whether this key sorts from high to low.
    pub fn descending(&self) -> bool {
        self.descending
    }

    fn id() -> SortKey {
        SortKey {
            field: "id".into(),
            descending: false,
            column: ColumnType::Text,
        }
    }
}

/// The default sort is `id` ascending: ids are ULIDs, so this is creation order, and it needs
/// no index beyond the primary key.
impl Default for Sort {
    fn default() -> Self {
        Sort {
            keys: vec![SortKey::id()],
        }
    }
}

impl Sort {
    /// The keys in order, the `id` tiebreaker included.
    pub fn keys(&self) -> &[SortKey] {
        &self.keys
    }

    /// The column names the sort reads (what a cursor is built from).
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.field.as_str())
    }

    /// The same keys with every direction flipped: exactly the reverse order, because SQLite's
    /// NULL placement flips with the direction too (first ascending, last descending) and
    /// the `id` tiebreaker keeps the order total. Reading "after" a cursor in this order reads
    /// the rows before it, nearest first.
    pub fn reversed(&self) -> Sort {
        Sort {
            keys: self
                .keys
                .iter()
                .map(|k| SortKey {
                    descending: !k.descending,
                    ..k.clone()
                })
                .collect(),
        }
    }

    /// A short hash of the canonical spec; a cursor carries it to detect a changed sort.
    pub(crate) fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.to_string().as_bytes());
        hex::encode(&digest[..6])
    }
}

/// The canonical spec, e.g. `-created,title,id`; parsing it gives the same `Sort`.
impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if key.descending {
                f.write_str("-")?;
            }
            f.write_str(&key.field)?;
        }
        Ok(())
    }
}

/// Parse a comma-separated sort spec: `-field` descending, `field` or `+field` ascending.
/// Empty input gives the default sort (`id`). Fields must be sortable columns (not json, not
/// multiple select), at most `MAX_SORT_KEYS`, no repeats; `id` is appended as a tiebreaker.
pub fn parse_sort(input: &str, collection: &Collection) -> Result<Sort, QueryError> {
    check_input_size(input)?;
    if input.trim().is_empty() {
        return Ok(Sort::default());
    }
    let mut keys: Vec<SortKey> = Vec::new();
    let mut offset = 0;
    for segment in input.split(',') {
        let leading = segment.chars().take_while(|c| c.is_whitespace()).count();
        let pos = offset + leading;
        offset += segment.chars().count() + 1;
        let entry = segment.trim();
        let (descending, name, name_pos) = match entry.strip_prefix('-') {
            Some(rest) => (true, rest, pos + 1),
            None => match entry.strip_prefix('+') {
                Some(rest) => (false, rest, pos + 1),
                None => (false, entry, pos),
            },
        };
        if name.is_empty() {
            return Err(QueryError::new(name_pos, "expected a field name in sort"));
        }
        let Some(column) = ColumnType::of(collection, name) else {
            return Err(QueryError::new(name_pos, format!("unknown field {name:?}")));
        };
        if !column.sortable() {
            return Err(QueryError::new(
                name_pos,
                format!("cannot sort by {} field {name:?}", column.describe()),
            ));
        }
        if keys.iter().any(|k| k.field == name) {
            return Err(QueryError::new(
                name_pos,
                format!("field {name:?} appears twice in sort"),
            ));
        }
        if keys.len() == MAX_SORT_KEYS {
            return Err(QueryError::new(
                pos,
                format!("sort has too many keys (at most {MAX_SORT_KEYS})"),
            ));
        }
        keys.push(SortKey {
            field: name.to_owned(),
            descending,
            column,
        });
    }
    if !keys.iter().any(|k| k.field == "id") {
        // The tiebreaker runs in the direction of the last key, so an index on
        // `(field, id)` serves `-field` by walking backwards, with no sort step.
        let descending = keys.last().is_some_and(|k| k.descending);
        keys.push(SortKey {
            descending,
            ..SortKey::id()
        });
    }
    Ok(Sort { keys })
}

/// The terms after `ORDER BY`, e.g. `"posts"."created" DESC, "posts"."id" ASC`. SQLite puts
/// NULLs first in ascending order and last in descending order; the keyset cursor relies on
/// that.
pub fn order_by_sql(collection: &Collection, sort: &Sort) -> String {
    sort.keys
        .iter()
        .map(|k| {
            let dir = if k.descending { "DESC" } else { "ASC" };
            format!("{} {dir}", column_sql(collection, &k.field))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::query::test_support::posts;

    fn spec(input: &str) -> String {
        parse_sort(input, &posts()).unwrap().to_string()
    }

    fn err(input: &str) -> (usize, String) {
        let e = parse_sort(input, &posts()).unwrap_err();
        (e.position, e.message)
    }

    #[test]
    fn sort_keys_get_directions_and_an_id_tiebreaker() {
        assert_eq!(spec("-created,title"), "-created,title,id");
        assert_eq!(spec("-created"), "-created,-id");
        assert_eq!(spec(" +year , -score "), "year,-score,-id");
        assert_eq!(spec("-id,title"), "-id,title");
        assert_eq!(spec(""), "id");
        assert_eq!(spec("  "), "id");
        let sort = parse_sort("-year", &posts()).unwrap();
        assert_eq!(sort.keys()[0].field(), "year");
        assert!(sort.keys()[0].descending());
        assert_eq!(sort.columns().collect::<Vec<_>>(), ["year", "id"]);
        assert_eq!(Sort::default().to_string(), "id");
    }

    #[test]
    fn reversing_flips_every_key_and_twice_gives_the_sort_back() {
        let sort = parse_sort("-created,title", &posts()).unwrap();
        assert_eq!(sort.reversed().to_string(), "created,-title,-id");
        assert_eq!(sort.reversed().reversed(), sort);
        assert_ne!(sort.reversed().fingerprint(), sort.fingerprint());
        assert_eq!(Sort::default().reversed().to_string(), "-id");
    }

    #[test]
    fn order_by_quotes_and_qualifies_columns() {
        let sort = parse_sort("-created,title", &posts()).unwrap();
        assert_eq!(
            order_by_sql(&posts(), &sort),
            r#""posts"."created" DESC, "posts"."title" ASC, "posts"."id" ASC"#
        );
    }

    #[test]
    fn bad_sorts_are_rejected_with_positions() {
        assert_eq!(err("title,nope"), (6, "unknown field \"nope\"".into()));
        assert_eq!(err("-rowid").0, 1);
        assert_eq!(err("title,x\" --").0, 6);
        assert_eq!(err("name\n").0, 0);
        assert_eq!(
            err("title,,year"),
            (6, "expected a field name in sort".into())
        );
        assert_eq!(err("title,").0, 6);
        assert_eq!(err("-").0, 1);
        assert_eq!(err("- title").0, 1);
        assert_eq!(
            err("meta"),
            (0, "cannot sort by json field \"meta\"".into())
        );
        assert_eq!(err("tags").0, 0);
        assert_eq!(
            err("title,-title"),
            (7, "field \"title\" appears twice in sort".into())
        );
        assert_eq!(err("é,title").0, 0);
    }

    #[test]
    fn at_most_eight_keys() {
        let eight = "title,year,score,featured,published,email,site,owner";
        assert_eq!(spec(eight), format!("{eight},id"));
        let nine = format!("{eight},status");
        assert_eq!(err(&nine).0, eight.len() + 1);
        assert_eq!(err(&format!("{}x", ",".repeat(5000))).0, 4096);
    }

    #[test]
    fn fingerprints_differ_between_sorts() {
        let a = parse_sort("-created", &posts()).unwrap().fingerprint();
        let b = parse_sort("created", &posts()).unwrap().fingerprint();
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
        assert_eq!(
            a,
            parse_sort("-created,-id", &posts()).unwrap().fingerprint()
        );
    }
}
