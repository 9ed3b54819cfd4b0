//! Sign-in throttling, persisted in `_login_attempts` so limits survive restarts and the count
//! is committed with the answer. Two counters see every failed attempt:
//!
//! - `ip:<addr>` — all failures from one client address (IPv6 grouped by /64, since one
//!   subscriber gets a whole /64). Default: 20 failures within 15 minutes block that address
//!   for 15 minutes. This is what stops one address from guessing across many accounts.
//! - `acct:<email>|<addr>` — failures for one account *from one address*. Default: 5 free
//!   failures, then each further one blocks that pair for 30 s, 1, 2, 4, 8 min, capped at
//!   15 min. A success clears it.
//!
//! Why an attacker cannot lock a real user out: no counter is keyed by the account alone. The
//! attacker's failures on account X from address A fill `acct:X|A` and `ip:A`; the real user
//! signing in from address B is checked against `acct:X|B` and `ip:B`, which the attacker
//! cannot touch without sending from B. (An attacker who shares the user's address — the same
//! NAT or /64 — is indistinguishable from them by design.) A success clears only its
//! `acct:` pair, never `ip:`, so signing in to one's own account cannot reset the address's
//! budget for guessing at others.
//!
//! A counter's run ends, and is forgotten, once a whole window has passed since both the run
//! began and its last block ended; failures while a run is still warm keep extending the
//! backoff. Usage: [`check`] (a read) before verifying the password; on a wrong password
//! [`record_failure`] (a write, committed before the response); on success [`record_success`].

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{AuthError, opt_time_column, time_column};

/// Emails are cut to this many characters in keys: longer ones cannot be accounts, and an
/// attacker should not be able to store megabytes of key.
const MAX_KEY_EMAIL_CHARS: usize = 320;

/// Limits for one kind of counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures allowed before the first block.
    pub max_failures: u32,
    /// How long a run of failures is remembered (see the module docs).
    pub window: TimeDelta,
    /// Block after the `max_failures`-th failure; doubles with each further failure.
    pub first_block: TimeDelta,
    /// Cap of the doubling.
    pub max_block: TimeDelta,
}

/// Thresholds of both counters. The defaults are meant for production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub per_ip: Limit,
    pub per_account: Limit,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            per_ip: Limit {
                max_failures: 20,
                window: TimeDelta::minutes(15),
                first_block: TimeDelta::minutes(15),
                max_block: TimeDelta::minutes(15),
            },
            per_account: Limit {
                max_failures: 5,
                window: TimeDelta::minutes(15),
                first_block: TimeDelta::seconds(30),
                max_block: TimeDelta::minutes(15),
            },
        }
    }
}

/// Seconds until another attempt will be considered, for a `Retry-After` header. Never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetryAfter(pub u64);

impl RetryAfter {
    fn until(blocked_until: DateTime<Utc>, now: DateTime<Utc>) -> Option<RetryAfter> {
        let millis = (blocked_until - now).num_milliseconds();
        // Rounded up, so a client that waits exactly this long is let through.
        u64::try_from(millis)
            .ok()
            .filter(|&ms| ms > 0)
            .map(|ms| RetryAfter(ms.div_ceil(1000)))
    }
}

/// The address part of a key: IPv4 (and IPv4-mapped IPv6) as is, other IPv6 as its /64.
fn addr_part(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn ip_key(ip: IpAddr) -> String {
    format!("ip:{}", addr_part(ip))
}

/// `acct:<email>|<addr>`; the address contains no `|`, so the key splits unambiguously at the
/// last one whatever the email holds.
fn account_key(email: &str, ip: IpAddr) -> String {
    let email: String = email
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_KEY_EMAIL_CHARS)
        .collect();
    format!("acct:{email}|{}", addr_part(ip))
}

/// One counter's row.
struct Counter {
    failures: u32,
    window_start: DateTime<Utc>,
    blocked_until: Option<DateTime<Utc>>,
}

impl Counter {
    /// Whether this run of failures is over: a full window since it began and since its last
    /// block ended.
    fn is_stale(&self, limit: &Limit, now: DateTime<Utc>) -> bool {
        let last = self
            .blocked_until
            .map_or(self.window_start, |b| b.max(self.window_start));
        now >= last + limit.window
    }

    fn retry_after(&self, limit: &Limit, now: DateTime<Utc>) -> Option<RetryAfter> {
        if self.is_stale(limit, now) {
            return None;
        }
        self.blocked_until.and_then(|b| RetryAfter::until(b, now))
    }
}

fn load(conn: &Connection, key: &str) -> Result<Option<Counter>, AuthError> {
    Ok(conn
        .prepare_cached(
            "SELECT failures, window_start, blocked_until FROM _login_attempts WHERE key = ?1",
        )?
        .query_row([key], |row| {
            Ok(Counter {
                failures: row.get(0)?,
                window_start: time_column(row, 1)?,
                blocked_until: opt_time_column(row, 2)?,
            })
        })
        .optional()?)
}

/// Block length after the `failures`-th failure, if it earns one.
fn block_for(limit: &Limit, failures: u32) -> Option<TimeDelta> {
    let over = failures.checked_sub(limit.max_failures)?;
    // Past 2^20 × first_block the cap has long applied; stopping there avoids overflow.
    let factor = 1i32 << over.min(20);
    let block = limit
        .first_block
        .checked_mul(factor)
        .map_or(limit.max_block, |b| b.min(limit.max_block));
    Some(block)
}

/// Count one failure on `key` and return its block, if it is now blocked.
fn bump(
    conn: &Connection,
    key: &str,
    limit: &Limit,
    now: DateTime<Utc>,
) -> Result<Option<RetryAfter>, AuthError> {
    let counter = match load(conn, key)? {
        Some(c) if !c.is_stale(limit, now) => Counter {
            failures: c.failures.saturating_add(1),
            ..c
        },
        _ => Counter {
            failures: 1,
            window_start: now,
            blocked_until: None,
        },
    };
    let blocked_until = match block_for(limit, counter.failures) {
        Some(block) => Some(now + block),
        None => counter.blocked_until,
    };
    conn.prepare_cached(
        "INSERT INTO _login_attempts (key, failures, window_start, blocked_until)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
             window_start = excluded.window_start, blocked_until = excluded.blocked_until",
    )?
    .execute(params![
        key,
        counter.failures,
        crate::time::format(counter.window_start),
        blocked_until.map(crate::time::format)
    ])?;
    Ok(blocked_until.and_then(|b| RetryAfter::until(b, now)))
}

/// Whether a sign-in for `email` from `ip` may be attempted now. `Some` means refuse with 429
/// and this `Retry-After`, without checking the password. Read-only.
pub fn check(
    conn: &Connection,
    settings: &ThrottleSettings,
    email: &str,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<Option<RetryAfter>, AuthError> {
    let by_ip = load(conn, &ip_key(ip))?.and_then(|c| c.retry_after(&settings.per_ip, now));
    let by_account = load(conn, &account_key(email, ip))?
        .and_then(|c| c.retry_after(&settings.per_account, now));
    Ok(by_ip.max(by_account))
}

/// Count a failed sign-in (wrong password, unknown or disabled account, bad second factor).
/// Returns the block the attempt earned, if any. Commit it before answering.
pub fn record_failure(
    conn: &Connection,
    settings: &ThrottleSettings,
    email: &str,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<Option<RetryAfter>, AuthError> {
    let by_ip = bump(conn, &ip_key(ip), &settings.per_ip, now)?;
    let by_account = bump(conn, &account_key(email, ip), &settings.per_account, now)?;
    Ok(by_ip.max(by_account))
}

/// Forget the failures of `email` from `ip` after a successful sign-in. The address's own
/// counter is kept on purpose (see the module docs).
pub fn record_success(conn: &Connection, email: &str, ip: IpAddr) -> Result<(), AuthError> {
    conn.prepare_cached("DELETE FROM _login_attempts WHERE key = ?1")?
        .execute([account_key(email, ip)])?;
    Ok(())
}

/// Delete counters whose runs are over; returns how many. For the periodic prune job.
pub fn prune(
    conn: &Connection,
    settings: &ThrottleSettings,
    now: DateTime<Utc>,
) -> Result<usize, AuthError> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM _login_attempts
         WHERE substr(key, 1, length(?1)) = ?1
           AND max(window_start, coalesce(blocked_until, window_start)) <= ?2",
    )?;
    let mut n = 0;
    for (prefix, limit) in [("ip:", &settings.per_ip), ("acct:", &settings.per_account)] {
        n += stmt.execute(params![prefix, crate::time::format(now - limit.window)])?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::{at, open_db};

    const X: &str = "x@example.com";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn secs(n: i64) -> TimeDelta {
        TimeDelta::seconds(n)
    }

    fn mins(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    /// Fail `n` times from `addr`, one second apart, starting at `t`; returns the last verdict.
    fn fail_n(
        conn: &Connection,
        s: &ThrottleSettings,
        email: &str,
        addr: IpAddr,
        t: DateTime<Utc>,
        n: i64,
    ) -> Option<RetryAfter> {
        let mut last = None;
        for i in 0..n {
            last = record_failure(conn, s, email, addr, t + secs(i)).unwrap();
        }
        last
    }

    #[test]
    fn keys_normalise_email_and_group_ipv6_by_64() {
        assert_eq!(
            account_key(" X@Example.com", ip("10.0.0.1")),
            "acct:x@example.com|10.0.0.1"
        );
        assert_eq!(ip_key(ip("2001:db8:1:2:3:4:5:6")), "ip:2001:db8:1:2::/64");
        assert_eq!(ip_key(ip("2001:db8:1:2:ffff::1")), "ip:2001:db8:1:2::/64");
        assert_eq!(ip_key(ip("::ffff:192.0.2.7")), "ip:192.0.2.7");
        let long = "a".repeat(5000);
        assert!(account_key(&long, ip("10.0.0.1")).len() < 400);
    }

    #[test]
    fn account_pair_allows_five_failures_then_blocks_for_30_seconds() {
        let (_dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let a = ip("198.51.100.1");
        let t0 = at("2030-01-01T00:00:00Z");
        assert_eq!(fail_n(&conn, &s, X, a, t0, 4), None);
        assert_eq!(check(&conn, &s, X, a, t0 + secs(4)).unwrap(), None);
        assert_eq!(
            record_failure(&conn, &s, X, a, t0 + secs(4)).unwrap(),
            Some(RetryAfter(30))
        );
        assert_eq!(
            check(&conn, &s, X, a, t0 + secs(4)).unwrap(),
            Some(RetryAfter(30))
        );
        assert_eq!(
            check(&conn, &s, X, a, t0 + secs(33)).unwrap(),
            Some(RetryAfter(1))
        );
        assert_eq!(check(&conn, &s, X, a, t0 + secs(34)).unwrap(), None);
    }

    #[test]
    fn attacker_on_one_address_does_not_block_the_account_from_another() {
        let (_dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let attacker = ip("203.0.113.66");
        let user = ip("198.51.100.1");
        let t0 = at("2030-01-01T00:00:00Z");
        fail_n(&conn, &s, X, attacker, t0, 50);
        let later = t0 + secs(60);
        assert!(check(&conn, &s, X, attacker, later).unwrap().is_some());
        assert_eq!(check(&conn, &s, X, user, later).unwrap(), None);
        // Same for another /64 of IPv6, while the attacker's own /64 is blocked as a whole.
        let attacker6 = ip("2001:db8:aaaa:1::1");
        fail_n(&conn, &s, X, attacker6, t0, 50);
        assert!(
            check(&conn, &s, X, ip("2001:db8:aaaa:1::99"), later)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            check(&conn, &s, X, ip("2001:db8:bbbb:1::1"), later).unwrap(),
            None
        );
    }

    #[test]
    fn one_address_is_blocked_after_20_failures_across_many_accounts() {
        let (_dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let a = ip("203.0.113.66");
        let t0 = at("2030-01-01T00:00:00Z");
        for i in 0..19 {
            let email = format!("victim{i}@example.com");
            assert_eq!(
                record_failure(&conn, &s, &email, a, t0 + secs(i)).unwrap(),
                None
            );
        }
        let t = t0 + secs(19);
        assert_eq!(
            record_failure(&conn, &s, "victim19@example.com", a, t).unwrap(),
            Some(RetryAfter(900))
        );
        // Every account, even one never tried, is refused from that address…
        assert_eq!(
            check(&conn, &s, "fresh@example.com", a, t + secs(1)).unwrap(),
            Some(RetryAfter(899))
        );
        // …and not from another.
        assert_eq!(
            check(&conn, &s, "fresh@example.com", ip("203.0.113.67"), t).unwrap(),
            None
        );
        assert_eq!(
            check(&conn, &s, "fresh@example.com", a, t + mins(15)).unwrap(),
            None
        );
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_add_up() {
        let (_dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let a = ip("198.51.100.1");
        let mut t = at("2030-01-01T00:00:00Z");
        // 4 failures per 15-minute window, forever: never blocked, on either counter.
        for _ in 0..10 {
            assert_eq!(fail_n(&conn, &s, X, a, t, 4), None);
            t += mins(15);
        }
        // 19 failures from one address within a window, then a quiet window: a fresh start.
        let b = ip("198.51.100.2");
        for i in 0..19 {
            record_failure(&conn, &s, &format!("u{i}@example.com"), b, t + secs(i)).unwrap();
        }
        t += mins(15);
        assert_eq!(
            record_failure(&conn, &s, "z@example.com", b, t).unwrap(),
            None
        );
    }

    #[test]
    fn backoff_doubles_up_to_15_minutes_and_success_resets_it() {
        let (_dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let a = ip("198.51.100.1");
        let mut t = at("2030-01-01T00:00:00Z");
        fail_n(&conn, &s, X, a, t, 4);
        t += secs(4);
        let mut blocks = Vec::new();
        for _ in 0..8 {
            // The attacker retries the moment each block ends.
            assert_eq!(check(&conn, &s, X, a, t).unwrap(), None);
            let RetryAfter(secs_blocked) = record_failure(&conn, &s, X, a, t).unwrap().unwrap();
            blocks.push(secs_blocked);
            t += secs(i64::try_from(secs_blocked).unwrap());
        }
        // The address counter never reaches 20 here: its window ends before that.
        assert_eq!(blocks, vec![30, 60, 120, 240, 480, 900, 900, 900]);

        record_success(&conn, X, a).unwrap();
        assert_eq!(check(&conn, &s, X, a, t).unwrap(), None);
        // After success the next failure starts a new run: 4 more are free.
        assert_eq!(fail_n(&conn, &s, X, a, t, 4), None);
    }

    #[test]
    fn success_does_not_clear_the_address_counter() {
        let (_dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let a = ip("203.0.113.66");
        let t0 = at("2030-01-01T00:00:00Z");
        for i in 0..19 {
            record_failure(&conn, &s, &format!("v{i}@example.com"), a, t0 + secs(i)).unwrap();
        }
        // The attacker signs in to their own account from the same address…
        record_success(&conn, "attacker@example.com", a).unwrap();
        // …and the next guess still exhausts the address.
        let t = t0 + secs(19);
        assert!(
            record_failure(&conn, &s, "v19@example.com", a, t)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_run_ends_a_window_after_its_last_block() {
        let (_dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let a = ip("198.51.100.1");
        let t0 = at("2030-01-01T00:00:00Z");
        fail_n(&conn, &s, X, a, t0, 5); // blocked until t0+4s+30s
        let block_end = t0 + secs(34);
        // Within a window of the block's end, the next failure earns 60 s.
        assert_eq!(
            record_failure(&conn, &s, X, a, block_end + mins(14)).unwrap(),
            Some(RetryAfter(60))
        );
        // A full quiet window after that block: forgotten, so the next failure is free.
        let t = block_end + mins(14) + secs(60) + mins(15);
        assert_eq!(check(&conn, &s, X, a, t).unwrap(), None);
        assert_eq!(record_failure(&conn, &s, X, a, t).unwrap(), None);
    }

    #[test]
    fn counts_are_persisted_and_prune_drops_finished_runs() {
        let (dir, conn) = open_db();
        let s = ThrottleSettings::default();
        let a = ip("198.51.100.1");
        let t0 = at("2030-01-01T00:00:00Z");
        fail_n(&conn, &s, X, a, t0, 5);
        drop(conn);
        let conn = Connection::open(dir.path().join("test.db")).unwrap();
        assert!(check(&conn, &s, X, a, t0 + secs(5)).unwrap().is_some());

        assert_eq!(prune(&conn, &s, t0 + mins(10)).unwrap(), 0);
        // The ip run started at t0 and was never blocked; the account pair was blocked until
        // t0+34s: each is forgotten a window after that.
        assert_eq!(prune(&conn, &s, t0 + mins(15)).unwrap(), 1);
        assert_eq!(prune(&conn, &s, t0 + mins(15) + secs(34)).unwrap(), 1);
        let left: i64 = conn
            .query_row("SELECT count(*) FROM _login_attempts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn block_lengths_never_overflow() {
        let limit = ThrottleSettings::default().per_account;
        assert_eq!(block_for(&limit, 4), None);
        assert_eq!(block_for(&limit, 5), Some(secs(30)));
        assert_eq!(block_for(&limit, u32::MAX), Some(mins(15)));
    }
}
