//! The manifest written beside every backup: what it holds and how to check it. A backup exists
//! on a target only once its manifest does; the manifest is written last.

use serde::{Deserialize, Serialize};

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// Everything needed to find, verify and restore one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Sortable and readable: `20261126T031500Z-3f9a`.
    pub id: String,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created: String,
    pub app_version: String,
    /// The system-table migration level of the snapshot (`PRAGMA user_version`).
    pub schema_version: i64,
    /// The last change-log sequence number inside the snapshot.
    pub change_seq: i64,
    /// The snapshot database file: its size and SHA-256 before compression.
    pub db_bytes: u64,
    pub db_sha256: String,
    /// The stored artifact (compressed, maybe encrypted): its name, size and SHA-256.
    pub file: String,
    pub file_bytes: u64,
    pub file_sha256: String,
    pub compression: String,
    pub encrypted: bool,
}

impl Manifest {
    /// The manifest's object name for a backup id.
    pub fn name_for(id: &str) -> String {
        format!("{id}.json")
    }

    /// The artifact's object name for a backup id.
    pub fn file_for(id: &str, encrypted: bool) -> String {
        if encrypted {
            format!("{id}.db.zst.age")
        } else {
            format!("{id}.db.zst")
        }
    }

    /// The id a stored object belongs to (`<id>.json`, `<id>.db.zst…`), if it looks like ours.
    pub fn id_of(object_name: &str) -> Option<&str> {
        let id = object_name.split('.').next()?;
        is_id(id).then_some(id)
    }

    /// When the snapshot was taken.
    pub fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.created)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// Newest first: by snapshot time (milliseconds), then id. Ids alone order only to the
    /// second; within one second their random suffix decides.
    pub fn newest_first(a: &Manifest, b: &Manifest) -> std::cmp::Ordering {
        b.created_at()
            .cmp(&a.created_at())
            .then_with(|| b.id.cmp(&a.id))
    }
}

/// A new backup id for a snapshot taken at `now`.
pub fn new_id(now: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u16>()
    )
}

/// Whether `s` has the shape of a backup id (so names from a request or a bucket listing are
/// never used as paths unchecked).
pub fn is_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 21
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_sort_by_time_and_are_recognised() {
        let a = new_id(chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        let b = new_id(chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 6).unwrap());
        assert!(a.starts_with("20260102T030405Z-"), "{a}");
        assert!(a < b);
        assert!(is_id(&a) && is_id(&b));
        assert_eq!(
            Manifest::id_of(&Manifest::file_for(&a, true)),
            Some(a.as_str())
        );
        assert_eq!(Manifest::id_of(&Manifest::name_for(&a)), Some(a.as_str()));
    }

    /// A manifest with only its id and time filled in.
    pub(crate) fn taken(id: &str, created: &str) -> Manifest {
        Manifest {
            format: FORMAT,
            id: id.into(),
            created: created.into(),
            app_version: "test".into(),
            schema_version: 1,
            change_seq: 0,
            db_bytes: 0,
            db_sha256: String::new(),
            file: Manifest::file_for(id, false),
            file_bytes: 0,
            file_sha256: String::new(),
            compression: "zstd".into(),
            encrypted: false,
        }
    }

    #[test]
    fn backups_of_the_same_second_sort_by_their_time_not_their_random_suffix() {
        let earlier = taken("20260102T030405Z-ffff", "2026-01-02T03:04:05.100Z");
        let later = taken("20260102T030405Z-0000", "2026-01-02T03:04:05.900Z");
        let older = taken("20260102T030404Z-8888", "2026-01-02T03:04:04.500Z");
        let mut all = vec![earlier.clone(), older.clone(), later.clone()];
        all.sort_by(Manifest::newest_first);
        assert_eq!(all, [later, earlier, older]);
    }

    #[test]
    fn names_that_are_not_ids_are_refused() {
        for bad in [
            "",
            "../../etc/passwd",
            "20260102T030405Z-zzzz",
            "20260102T030405Z-3f9a/x",
            "20260102T030405Z-3f9",
            "x0260102T030405Z-3f9a",
        ] {
            assert!(!is_id(bad), "{bad}");
        }
        assert_eq!(Manifest::id_of("notes.txt"), None);
    }
}
