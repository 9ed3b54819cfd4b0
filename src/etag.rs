//! Entity tags: matching `If-Match` / `If-None-Match` lists (RFC 9110 §13.1).

/// Whether `header` (a list of tags, or `*`) contains `etag`. `If-None-Match` uses the weak
/// comparison (`W/` ignored); `If-Match` the strong one (weak tags never match).
pub fn list_contains(header: &str, etag: &str, weak: bool) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header.split(',').any(|candidate| {
        let c = candidate.trim();
        if c == "*" {
            return true;
        }
        if weak {
            strip(c) == strip(etag)
        } else {
            !c.starts_with("W/") && !etag.starts_with("W/") && c == etag
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_strong_comparison() {
        assert!(list_contains("\"a\", W/\"b\"", "\"b\"", true));
        assert!(!list_contains("W/\"b\"", "\"b\"", false));
        assert!(list_contains("\"x\", \"b\"", "\"b\"", false));
        assert!(list_contains("*", "\"b\"", false));
        assert!(!list_contains("\"c\"", "\"b\"", true));
    }
}
