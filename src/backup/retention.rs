//! Retention planning: given every verified backup on one target and a `Retention` policy,
//! decide which backups to delete, borg/restic style (keep the last N, plus the newest backup
//! of each of the N latest days, ISO weeks and months that have one), all in UTC. It is pure:
//! no I/O and no clock — the caller lists the backups and does the deleting, so tests can
//! simulate a whole year of nightly backups in milliseconds.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

/// How many backups a target keeps.
///
/// Each rule counts its own buckets, independently of the others (like restic, unlike borg,
/// whose later rules skip backups an earlier rule already kept): one backup may be at once
/// among the last N, the newest of its day, of its week and of its month, and then it counts
/// towards all four. A backup kept by any rule is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// The N newest backups are kept.
    pub keep_last: u32,
    /// The newest backup of each of the N most recent UTC days that have a backup is kept.
    pub keep_daily: u32,
    /// The newest backup of each of the N most recent ISO weeks (UTC) that have a backup is kept.
    pub keep_weekly: u32,
    /// The newest backup of each of the N most recent months (UTC) that have a backup is kept.
    pub keep_monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_last: 7,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 12,
        }
    }
}

impl Retention {
    /// Refuses a policy whose counts are all zero: only the newest backup would survive, which
    /// is almost certainly a mistake in the configuration rather than a wish.
    pub fn validate(&self) -> Result<(), String> {
        if self.keep_last == 0
            && self.keep_daily == 0
            && self.keep_weekly == 0
            && self.keep_monthly == 0
        {
            return Err(
                "retention keeps nothing: set keep_last, keep_daily, keep_weekly or \
                        keep_monthly above 0"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// One backup as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub created: DateTime<Utc>,
}

/// The ids to delete, given every verified backup on one target. Never includes the newest one.
///
/// - Backups are sorted newest first; equal times are ordered by id, descending, so the result
///   does not depend on the input's order.
/// - `keep_last` N: the N newest backups are kept.
/// - `keep_daily` N: for the N most recent UTC calendar days that have at least one backup, the
///   newest backup of each such day is kept. Only days with a backup count (as in borg), so if
///   backups stopped months ago the old ones are kept rather than all expiring.
/// - `keep_weekly` N and `keep_monthly` N: the same with ISO weeks (ISO year and week number)
///   and with calendar months (year and month).
/// - The rules are independent: each counts its own buckets, a backup kept by any rule is kept,
///   and one backup may satisfy several rules at once (see [`Retention`]).
/// - The newest backup is always kept, even if every count is 0.
/// - The returned ids are newest first.
pub fn plan<'a>(backups: &[Candidate<'a>], policy: &Retention) -> Vec<&'a str> {
    let mut sorted: Vec<&Candidate<'a>> = backups.iter().collect();
    sorted.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(a.id)));

    let mut keep = vec![false; sorted.len()];
    for kept in keep.iter_mut().take(policy.keep_last as usize) {
        *kept = true;
    }
    keep_newest_per_bucket(&sorted, &mut keep, policy.keep_daily, |t| t.date_naive());
    keep_newest_per_bucket(&sorted, &mut keep, policy.keep_weekly, |t| t.iso_week());
    keep_newest_per_bucket(&sorted, &mut keep, policy.keep_monthly, |t| {
        (t.year(), t.month())
    });
    // The newest backup is the only up-to-date copy; no policy may remove it.
    if let Some(newest) = keep.first_mut() {
        *newest = true;
    }

    sorted
        .iter()
        .zip(keep)
        .filter(|(_, kept)| !kept)
        .map(|(c, _)| c.id)
        .collect()
}

/// Marks the first (newest) backup of each of the `count` newest buckets in `sorted`.
///
/// `sorted` is newest first and every bucket key is monotone in time, so each bucket's backups
/// are contiguous: a new bucket starts exactly where the key changes.
fn keep_newest_per_bucket<K: PartialEq>(
    sorted: &[&Candidate<'_>],
    keep: &mut [bool],
    count: u32,
    bucket: impl Fn(&DateTime<Utc>) -> K,
) {
    let mut buckets_seen = 0;
    let mut current: Option<K> = None;
    for (candidate, kept) in sorted.iter().zip(keep.iter_mut()) {
        let key = bucket(&candidate.created);
        if current.as_ref() == Some(&key) {
            continue;
        }
        if buckets_seen == count {
            break;
        }
        *kept = true;
        buckets_seen += 1;
        current = Some(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    /// Backups named by their time, so expectations read as dates.
    fn named(times: &[DateTime<Utc>]) -> Vec<(String, DateTime<Utc>)> {
        let name = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H").to_string();
        times.iter().map(|t| (name(t), *t)).collect()
    }

    /// `count` backups, `every` apart, the first at `start`.
    fn series(start: DateTime<Utc>, count: i32, every: Duration) -> Vec<(String, DateTime<Utc>)> {
        named(&(0..count).map(|i| start + every * i).collect::<Vec<_>>())
    }

    fn candidates(backups: &[(String, DateTime<Utc>)]) -> Vec<Candidate<'_>> {
        backups
            .iter()
            .map(|(id, t)| Candidate { id, created: *t })
            .collect()
    }

    fn policy(keep_last: u32, keep_daily: u32, keep_weekly: u32, keep_monthly: u32) -> Retention {
        Retention {
            keep_last,
            keep_daily,
            keep_weekly,
            keep_monthly,
        }
    }

    #[test]
    fn a_year_of_nightly_backups_pruned_every_night_leaves_the_default_policy_set() {
        let policy = Retention::default();
        let bound =
            (policy.keep_last + policy.keep_daily + policy.keep_weekly + policy.keep_monthly)
                as usize;
        let all = series(at(2026, 1, 1, 2), 365, Duration::days(1));

        let mut alive = Vec::new();
        // The simulated day is the clock: each night one backup lands, then the planner runs.
        for tonight in &all {
            alive.push(tonight.clone());
            let doomed: Vec<String> = plan(&candidates(&alive), &policy)
                .into_iter()
                .map(str::to_owned)
                .collect();
            assert!(
                !doomed.contains(&tonight.0),
                "deleted the newest on {}",
                tonight.0
            );
            alive.retain(|(id, _)| !doomed.contains(id));
            assert!(
                alive.len() <= bound,
                "{} kept on {}",
                alive.len(),
                tonight.0
            );
        }

        // Worked out by hand from a 2026 calendar. keep_monthly: the last day of each month.
        // keep_weekly: 12-31 is a Thursday in ISO week 53 (Mon 12-28 .. Sun 01-03), so the
        // newest of weeks 53, 52, 51, 50 are 12-31, 12-27, 12-20, 12-13. keep_last and
        // keep_daily: 12-25 .. 12-31. `alive` is still in the order the backups were made.
        let expected = [
            "01-31", "02-28", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30",
            "10-31", "11-30", "12-13", "12-20", "12-25", "12-26", "12-27", "12-28", "12-29",
            "12-30", "12-31",
        ]
        .map(|md| format!("2026-{md}T02"));
        let remaining: Vec<&str> = alive.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(remaining, expected);
        assert_eq!(remaining.len(), 20);
        assert_eq!(remaining.last(), Some(&"2026-12-31T02"));
    }

    #[test]
    fn with_several_backups_a_day_the_newest_of_each_recent_day_is_kept() {
        let all = series(at(2026, 3, 1, 0), 40, Duration::hours(6));
        let doomed = plan(&candidates(&all), &policy(2, 5, 0, 0));

        let kept: Vec<&str> = all
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| !doomed.contains(id))
            .collect();
        let expected = [
            "2026-03-06T18", // newest of day 6
            "2026-03-07T18",
            "2026-03-08T18",
            "2026-03-09T18",
            "2026-03-10T12", // second newest overall (keep_last)
            "2026-03-10T18", // newest overall: keep_last and newest of day 10
        ];
        assert_eq!(kept, expected);
        assert_eq!(doomed.len(), 34);
    }

    #[test]
    fn backups_that_stopped_long_ago_keep_their_latest_days() {
        let all = series(at(2025, 6, 1, 2), 30, Duration::days(1));
        let doomed = plan(&candidates(&all), &policy(0, 7, 0, 0));

        // Days are counted among days that have a backup, not back from "now".
        let expected: Vec<&str> = all[..23].iter().rev().map(|(id, _)| id.as_str()).collect();
        assert_eq!(doomed, expected);
        assert_eq!(doomed.first(), Some(&"2025-06-23T02"));

        // Nor back from the newest backup: with a backup every other day, 7 days still keep 7.
        let sparse = series(at(2025, 6, 1, 2), 30, Duration::days(2));
        assert_eq!(plan(&candidates(&sparse), &policy(0, 7, 0, 0)).len(), 23);
    }

    #[test]
    fn an_all_zero_policy_is_refused_but_plan_still_keeps_the_newest() {
        let zero = policy(0, 0, 0, 0);
        assert_eq!(
            zero.validate().unwrap_err(),
            "retention keeps nothing: set keep_last, keep_daily, keep_weekly or keep_monthly above 0"
        );
        assert_eq!(Retention::default().validate(), Ok(()));
        assert_eq!(policy(0, 0, 0, 1).validate(), Ok(()));

        let all = named(&[at(2026, 1, 1, 2), at(2026, 1, 3, 2), at(2026, 1, 2, 2)]);
        assert_eq!(
            plan(&candidates(&all), &zero),
            ["2026-01-02T02", "2026-01-01T02"]
        );
    }

    #[test]
    fn rules_count_their_buckets_independently_so_one_backup_can_satisfy_several() {
        // 01-04 is the Sunday ending ISO week 1; 01-05 and 01-11 are the Monday and Sunday of
        // week 2. The newest backup is at once the newest of its day and of its week, so
        // keep_weekly 1 adds nothing; borg, whose weekly rule skips what the daily rule kept,
        // would have kept 01-05 as well.
        let all = named(&[at(2026, 1, 4, 2), at(2026, 1, 5, 2), at(2026, 1, 11, 2)]);
        assert_eq!(
            plan(&candidates(&all), &policy(0, 1, 1, 0)),
            ["2026-01-05T02", "2026-01-04T02"]
        );
        assert_eq!(
            plan(&candidates(&all), &policy(0, 1, 2, 0)),
            ["2026-01-05T02"]
        );
    }

    #[test]
    fn input_order_does_not_matter() {
        // Every 13 hours for 20 days: several backups on some days, one on others.
        let all = series(at(2026, 2, 1, 0), 40, Duration::hours(13));
        let sorted = candidates(&all);
        // 17 is coprime with 40, so stepping by it visits every index once, well mixed.
        let shuffled: Vec<Candidate<'_>> = (0..40).map(|i| sorted[(i * 17) % 40]).collect();
        let reversed: Vec<Candidate<'_>> = sorted.iter().rev().copied().collect();
        let mixed = policy(3, 4, 2, 1);
        let expected = plan(&sorted, &mixed);
        assert!(!expected.is_empty());
        assert_eq!(plan(&shuffled, &mixed), expected);
        assert_eq!(plan(&reversed, &mixed), expected);

        // Equal times: the greater id counts as newer, whichever comes first.
        let t = at(2026, 1, 1, 2);
        let [a, b] = ["a", "b"].map(|id| Candidate { id, created: t });
        assert_eq!(plan(&[a, b], &policy(1, 0, 0, 0)), ["a"]);
        assert_eq!(plan(&[b, a], &policy(1, 0, 0, 0)), ["a"]);
    }

    #[test]
    fn an_empty_input_returns_nothing() {
        assert!(plan(&[], &Retention::default()).is_empty());
    }

    #[test]
    fn a_policy_reads_from_toml_with_defaults_and_refuses_unknown_keys() {
        let partial: Retention = toml::from_str("keep_daily = 30").unwrap();
        assert_eq!(partial, policy(7, 30, 4, 12));
        assert!(toml::from_str::<Retention>("keep_yearly = 2").is_err());
    }
}
