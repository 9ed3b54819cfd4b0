//! The TOTP second factor (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, ±1 step of clock
//! skew) and its recovery codes. Owns `_users.totp_pending` (a seed waiting for its first code),
//! `_users.totp_secret` and `_users.totp_last_step` (the last step accepted: a code is good
//! once only, and never one from an earlier step), and `_recovery_codes` (one-time codes, only
//! their SHA-256 stored). Decides with the `now` it is given; counting failed attempts is the
//! caller's job (`throttle`), and nothing here knows about HTTP.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use rusqlite::{Connection, OptionalExtension, params};
use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::AuthError;

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Steps accepted either side of the current one (RFC 6238 §5.2 recommends one).
pub const SKEW_STEPS: i64 = 1;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show beside the account.
pub const ISSUER: &str = "onebox";

/// Characters of a recovery code: 32 of them, without look-alikes (0/o, 1/l/i, u), so a byte
/// masked to 5 bits picks one uniformly.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstvwxyz0123456789";
/// Characters in a recovery code (50 bits), shown as two groups of five.
const RECOVERY_LEN: usize = 10;

/// A TOTP seed in base32 (RFC 4648, no padding). `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed(String);

impl Seed {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// 160 bits from the thread CSPRNG (the length RFC 4226 recommends).
pub fn generate_seed() -> Seed {
    Seed(Secret::generate().to_base32())
}

/// A TOTP for `seed` that accepts its own step only (the skew window is walked here, so each
/// step can be compared with the last one accepted).
fn totp(seed: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(seed).ok()?;
    // The otpauth label is `issuer:account`; a colon in the account would split it wrongly.
    let account: String = account.chars().filter(|c| *c != ':').collect();
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(0)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

/// The `otpauth://` URL an authenticator app reads from the QR code.
pub fn otpauth_url(seed: &Seed, account: &str) -> Option<String> {
    totp(seed.expose(), account)?.to_url().ok()
}

/// The time step `now` falls in.
pub fn step_at(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(STEP_SECONDS)
}

/// The code for `seed` at `step` (tests and tools; the server only checks codes).
pub fn code_at_step(seed: &Seed, step: i64) -> Option<String> {
    let t = totp(seed.expose(), "")?;
    let time = u64::try_from(step.checked_mul(STEP_SECONDS)?).ok()?;
    Some(t.generate(time).to_string())
}

/// The step whose code `code` is, if it is within `SKEW_STEPS` of `now` and later than
/// `last_step`. Spaces in the code are ignored (apps show `123 456`).
pub fn matching_step(
    seed: &Seed,
    code: &str,
    now: DateTime<Utc>,
    last_step: Option<i64>,
) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let t = totp(seed.expose(), "")?;
    let current = step_at(now);
    (current - SKEW_STEPS..=current + SKEW_STEPS)
        .filter(|step| last_step.is_none_or(|last| *step > last))
        .find(|step| {
            // `check` with no skew compares in constant time against this one step.
            step.checked_mul(STEP_SECONDS)
                .and_then(|time| u64::try_from(time).ok())
                .is_some_and(|time| t.check(&code, time).is_some())
        })
}

/// The enrolled factor of a user: their seed and the last step accepted.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub seed: Seed,
    pub last_step: Option<i64>,
}

/// Which second factor a code turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    Recovery,
}

impl Factor {
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Totp => "totp",
            Factor::Recovery => "recovery",
        }
    }
}

/// Keep `seed` as `user_id`'s enrolment in progress (replacing any earlier one).
pub fn set_pending(conn: &Connection, user_id: &str, seed: &Seed) -> Result<(), AuthError> {
    let n = conn
        .prepare_cached("UPDATE _users SET totp_pending = ?2 WHERE id = ?1")?
        .execute(params![user_id, seed.expose()])?;
    if n == 0 {
        return Err(AuthError::NotFound);
    }
    Ok(())
}

/// The seed waiting for its first code, if any.
pub fn find_pending(conn: &Connection, user_id: &str) -> Result<Option<Seed>, AuthError> {
    let seed: Option<Option<String>> = conn
        .prepare_cached("SELECT totp_pending FROM _users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?;
    Ok(seed.flatten().map(Seed))
}

/// The user's enrolled factor, if TOTP is on.
pub fn find_enrolled(conn: &Connection, user_id: &str) -> Result<Option<Enrolled>, AuthError> {
    let row: Option<(Option<String>, Option<i64>)> = conn
        .prepare_cached("SELECT totp_secret, totp_last_step FROM _users WHERE id = ?1")?
        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(seed, last_step)| {
        seed.map(|s| Enrolled {
            seed: Seed(s),
            last_step,
        })
    }))
}

/// Finish enrolment if `code` is valid for the pending seed at `now`: the seed becomes the
/// user's factor (its step already spent) and fresh recovery codes replace any old ones.
/// Returns the recovery codes (their only plaintext copy), or `None` for a wrong code or no
/// enrolment in progress.
pub fn confirm(
    conn: &Connection,
    user_id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<Vec<String>>, AuthError> {
    let Some(seed) = find_pending(conn, user_id)? else {
        return Ok(None);
    };
    let Some(step) = matching_step(&seed, code, now, None) else {
        return Ok(None);
    };
    conn.prepare_cached(
        "UPDATE _users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?2
         WHERE id = ?1",
    )?
    .execute(params![user_id, step])?;
    Ok(Some(replace_recovery_codes(conn, user_id)?))
}

/// Spend a second-factor code of an enrolled user: a TOTP code of a step later than the last
/// one accepted (which it then becomes), or an unused recovery code (then marked used).
/// `None` for a wrong, replayed or used code, or a user without TOTP.
pub fn spend_code(
    conn: &Connection,
    user_id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<Factor>, AuthError> {
    let Some(enrolled) = find_enrolled(conn, user_id)? else {
        return Ok(None);
    };
    if let Some(step) = matching_step(&enrolled.seed, code, now, enrolled.last_step) {
        // The condition repeats the check in SQL, so two racing requests cannot both win.
        let n = conn
            .prepare_cached(
                "UPDATE _users SET totp_last_step = ?2
                 WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            )?
            .execute(params![user_id, step])?;
        return Ok((n > 0).then_some(Factor::Totp));
    }
    let Some(hash) = recovery_hash(code) else {
        return Ok(None);
    };
    let n = conn
        .prepare_cached(
            "UPDATE _recovery_codes SET used = ?3
             WHERE user_id = ?1 AND hash = ?2 AND used IS NULL",
        )?
        .execute(params![user_id, hash, crate::time::format(now)])?;
    Ok((n > 0).then_some(Factor::Recovery))
}

/// Turn TOTP off: the seed, the pending seed, the last step and the recovery codes go.
pub fn disable(conn: &Connection, user_id: &str) -> Result<(), AuthError> {
    conn.prepare_cached(
        "UPDATE _users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL
         WHERE id = ?1",
    )?
    .execute([user_id])?;
    conn.prepare_cached("DELETE FROM _recovery_codes WHERE user_id = ?1")?
        .execute([user_id])?;
    Ok(())
}

/// How many of the user's recovery codes are still unused.
pub fn unused_recovery_codes(conn: &Connection, user_id: &str) -> Result<u32, AuthError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM _recovery_codes WHERE user_id = ?1 AND used IS NULL")?
        .query_row([user_id], |r| r.get(0))?;
    // count(*) is never negative.
    Ok(u32::try_from(n).unwrap_or(0))
}

/// Make `RECOVERY_CODES` new codes for the user, dropping the old ones; returns the
/// plaintexts (stored only as SHA-256).
pub fn replace_recovery_codes(conn: &Connection, user_id: &str) -> Result<Vec<String>, AuthError> {
    conn.prepare_cached("DELETE FROM _recovery_codes WHERE user_id = ?1")?
        .execute([user_id])?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO _recovery_codes (user_id, hash, used) VALUES (?1, ?2, NULL)",
    )?;
    while codes.len() < RECOVERY_CODES {
        let code = generate_recovery_code();
        let Some(hash) = recovery_hash(&code) else {
            continue;
        };
        // A repeat among 2^50 is next to impossible; skipping it keeps the count exact.
        if insert.execute(params![user_id, hash])? == 1 {
            codes.push(code);
        }
    }
    Ok(codes)
}

/// `abcde-fghjk`: ten characters from the CSPRNG.
fn generate_recovery_code() -> String {
    let mut bytes = [0u8; RECOVERY_LEN];
    rand::rng().fill_bytes(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The stored form of a recovery code as typed: case, spaces and dashes do not matter.
/// `None` when it cannot be a recovery code.
fn recovery_hash(input: &str) -> Option<Vec<u8>> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    let valid = code.len() == RECOVERY_LEN && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    valid.then(|| super::secret::hash(&code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::auth::test_support::{add_user, at, open_db};

    /// RFC 6238 appendix B's SHA-1 seed: "12345678901234567890".
    fn rfc_seed() -> Seed {
        Seed(Secret::from(b"12345678901234567890".to_vec()).to_base32())
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        // Appendix B lists 8 digits; 6-digit codes are their last six.
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let now = DateTime::from_timestamp(time, 0).unwrap();
            assert_eq!(
                code_at_step(&rfc_seed(), step_at(now)).as_deref(),
                Some(code)
            );
            assert_eq!(
                matching_step(&rfc_seed(), code, now, None),
                Some(step_at(now))
            );
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_of_now_and_no_further() {
        let seed = generate_seed();
        let now = at("2030-01-01T00:00:15Z");
        let s = step_at(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at_step(&seed, s + offset).unwrap();
            assert_eq!(
                matching_step(&seed, &code, now, None).is_some(),
                accepted,
                "offset {offset}"
            );
        }
        let spaced = code_at_step(&seed, s).unwrap();
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(matching_step(&seed, &spaced, now, None), Some(s));
        for junk in ["", "12345", "1234567", "abcdef", "+12345"] {
            assert_eq!(matching_step(&seed, junk, now, None), None, "{junk:?}");
        }
    }

    #[test]
    fn a_step_at_or_before_the_last_accepted_one_is_refused() {
        let seed = generate_seed();
        let now = at("2030-01-01T00:00:15Z");
        let s = step_at(now);
        let code = code_at_step(&seed, s).unwrap();
        assert_eq!(matching_step(&seed, &code, now, Some(s - 1)), Some(s));
        assert_eq!(matching_step(&seed, &code, now, Some(s)), None);
        let earlier = code_at_step(&seed, s - 1).unwrap();
        assert_eq!(matching_step(&seed, &earlier, now, Some(s)), None);
    }

    #[test]
    fn enrolment_needs_a_code_of_the_pending_seed_and_spends_its_step() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let now = at("2030-01-01T00:00:15Z");
        assert_eq!(confirm(&conn, &ann.id, "123456", now).unwrap(), None);
        let seed = generate_seed();
        set_pending(&conn, &ann.id, &seed).unwrap();
        assert!(find_enrolled(&conn, &ann.id).unwrap().is_none());
        let wrong = generate_seed();
        let code = code_at_step(&wrong, step_at(now)).unwrap();
        assert_eq!(confirm(&conn, &ann.id, &code, now).unwrap(), None);
        let code = code_at_step(&seed, step_at(now)).unwrap();
        let recovery = confirm(&conn, &ann.id, &code, now).unwrap().unwrap();
        assert_eq!(recovery.len(), RECOVERY_CODES);
        assert_eq!(unused_recovery_codes(&conn, &ann.id).unwrap(), 10);
        assert!(find_pending(&conn, &ann.id).unwrap().is_none());
        let enrolled = find_enrolled(&conn, &ann.id).unwrap().unwrap();
        assert_eq!(enrolled.seed, seed);
        assert_eq!(enrolled.last_step, Some(step_at(now)));
        // The code that confirmed enrolment cannot sign in afterwards.
        assert_eq!(spend_code(&conn, &ann.id, &code, now).unwrap(), None);
        // Only hashes are stored.
        let stored: String = conn
            .query_row(
                "SELECT group_concat(hex(hash)) FROM _recovery_codes",
                [],
                |r| r.get(0),
            )
            .unwrap();
        for code in &recovery {
            assert!(!stored.to_lowercase().contains(&hex::encode(code)));
        }
    }

    #[test]
    fn a_totp_code_is_spent_once_and_later_steps_still_work() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let seed = generate_seed();
        set_pending(&conn, &ann.id, &seed).unwrap();
        let t0 = at("2030-01-01T00:00:15Z");
        let s = step_at(t0);
        confirm(&conn, &ann.id, &code_at_step(&seed, s).unwrap(), t0)
            .unwrap()
            .unwrap();
        let next = code_at_step(&seed, s + 1).unwrap();
        assert_eq!(
            spend_code(&conn, &ann.id, &next, t0).unwrap(),
            Some(Factor::Totp)
        );
        assert_eq!(spend_code(&conn, &ann.id, &next, t0).unwrap(), None);
        // Thirty seconds on, the same code is still inside the window but already spent.
        let t1 = t0 + chrono::TimeDelta::seconds(30);
        assert_eq!(spend_code(&conn, &ann.id, &next, t1).unwrap(), None);
        let after = code_at_step(&seed, s + 2).unwrap();
        assert_eq!(
            spend_code(&conn, &ann.id, &after, t1).unwrap(),
            Some(Factor::Totp)
        );
    }

    #[test]
    fn a_recovery_code_works_once_in_any_case_and_spacing() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let bob = add_user(&conn, "bob@example.com", Role::User);
        let now = at("2030-01-01T00:00:15Z");
        let seed = generate_seed();
        set_pending(&conn, &ann.id, &seed).unwrap();
        let codes = confirm(
            &conn,
            &ann.id,
            &code_at_step(&seed, step_at(now)).unwrap(),
            now,
        )
        .unwrap()
        .unwrap();
        let code = &codes[3];
        assert_eq!(code.len(), 11);
        // Someone else's recovery code is no use.
        assert_eq!(spend_code(&conn, &bob.id, code, now).unwrap(), None);
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(
            spend_code(&conn, &ann.id, &typed, now).unwrap(),
            Some(Factor::Recovery)
        );
        assert_eq!(spend_code(&conn, &ann.id, code, now).unwrap(), None);
        assert_eq!(unused_recovery_codes(&conn, &ann.id).unwrap(), 9);
        assert_eq!(
            spend_code(&conn, &ann.id, &codes[4], now).unwrap(),
            Some(Factor::Recovery)
        );
    }

    #[test]
    fn disabling_forgets_the_seed_and_the_recovery_codes() {
        let (_dir, conn) = open_db();
        let ann = add_user(&conn, "ann@example.com", Role::User);
        let now = at("2030-01-01T00:00:15Z");
        let seed = generate_seed();
        set_pending(&conn, &ann.id, &seed).unwrap();
        let codes = confirm(
            &conn,
            &ann.id,
            &code_at_step(&seed, step_at(now)).unwrap(),
            now,
        )
        .unwrap()
        .unwrap();
        assert!(crate::auth::users::has_totp(&conn, &ann.id).unwrap());
        disable(&conn, &ann.id).unwrap();
        assert!(!crate::auth::users::has_totp(&conn, &ann.id).unwrap());
        assert_eq!(unused_recovery_codes(&conn, &ann.id).unwrap(), 0);
        assert_eq!(spend_code(&conn, &ann.id, &codes[0], now).unwrap(), None);
    }

    #[test]
    fn seeds_are_160_random_bits_and_the_url_names_issuer_and_account() {
        let a = generate_seed();
        assert_ne!(a, generate_seed());
        assert_eq!(a.expose().len(), 32);
        assert_eq!(format!("{a:?}"), "Seed(<redacted>)");
        let url = otpauth_url(&a, "ann@example.com").unwrap();
        assert!(
            url.starts_with("otpauth://totp/onebox:ann%40example.com?"),
            "{url}"
        );
        assert!(url.contains(&format!("secret={}", a.expose())), "{url}");
        assert!(otpauth_url(&a, "we:ird@example.com").is_some());
    }
}
