//! The one timestamp format onebox stores and answers with: RFC 3339, UTC, millisecond
//! precision, `Z` suffix (`2024-05-01T12:00:00.000Z`). Fixed width, so text order is time order
//! and SQLite can compare and index datetimes as plain TEXT.

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, in the canonical format.
pub fn now() -> String {
    format(Utc::now())
}

/// Format a UTC time canonically.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse any RFC 3339 datetime (any offset) into the canonical UTC form.
pub fn canonical(input: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(input.trim())
        .ok()
        .map(|t| format(t.with_timezone(&Utc)))
}

/// Parse a canonical (or any RFC 3339) string back into a UTC time.
pub fn parse(input: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(input.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_converts_offsets_to_utc_with_millis() {
        assert_eq!(
            canonical("2024-05-01T14:00:00+02:00").as_deref(),
            Some("2024-05-01T12:00:00.000Z")
        );
        assert_eq!(canonical("2024-05-01"), None);
        assert_eq!(canonical("not a date"), None);
    }

    #[test]
    fn canonical_strings_sort_in_time_order() {
        let a = canonical("2024-05-01T12:00:00.5Z").unwrap();
        let b = canonical("2024-05-01T12:00:01Z").unwrap();
        assert!(a < b);
        assert_eq!(a.len(), b.len());
    }
}
