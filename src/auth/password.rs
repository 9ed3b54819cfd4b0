//! Password hashing (argon2id, PHC strings), verification, and the password policy. Owns no
//! storage; `users` keeps the hash. Hashing costs tens of milliseconds and ~19 MiB by design:
//! callers run it off the async threads.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, PasswordHasher, PasswordVerifier, Version};

use super::AuthError;

/// Shortest acceptable password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest acceptable password, in characters. Bounded so a request cannot make argon2 hash
/// megabytes; long enough that nothing is ever truncated.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Common passwords refused by the policy, one per line, lowercase.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Argon2id cost parameters. `Default` is production (the argon2 crate's defaults, which are
/// the OWASP minimum: m=19456 KiB, t=2, p=1); [`PasswordParams::insecure_fast`] is for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordParams {
    params: argon2::Params,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            params: argon2::Params::DEFAULT,
        }
    }
}

impl PasswordParams {
    /// Custom costs, refused below the production minimum (m=19456 KiB, t=2, p=1).
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, String> {
        if m_cost_kib < argon2::Params::DEFAULT_M_COST
            || t_cost < argon2::Params::DEFAULT_T_COST
            || p_cost < argon2::Params::DEFAULT_P_COST
        {
            return Err(format!(
                "argon2 costs must be at least m={} KiB, t={}, p={}",
                argon2::Params::DEFAULT_M_COST,
                argon2::Params::DEFAULT_T_COST,
                argon2::Params::DEFAULT_P_COST
            ));
        }
        let params = argon2::Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        Ok(PasswordParams { params })
    }

    /// The cheapest costs argon2 accepts (8 KiB, t=1). For tests only: never configure a
    /// server with these.
    pub fn insecure_fast() -> Self {
        // Evaluated at compile time: invalid constants would fail the build, not a test run.
        const FAST: argon2::Params =
            match argon2::Params::new(argon2::Params::MIN_M_COST, 1, 1, None) {
                Ok(params) => params,
                Err(_) => panic!("argon2 minimum costs rejected"),
            };
        PasswordParams { params: FAST }
    }

    fn hasher(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

/// Hash `password` with a fresh random salt; returns the argon2id PHC string.
pub fn hash_password(password: &str, params: &PasswordParams) -> Result<String, AuthError> {
    params
        .hasher()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(AuthError::Hash)
}

/// Whether `password` matches the PHC string `phc`. A malformed hash never matches. The costs
/// come from the PHC string itself, so hashes made with older parameters still verify.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spend the same time as a real verification when the account does not exist, so response
/// time does not reveal which emails have accounts. Always answers `false`.
pub fn dummy_verify(password: &str, params: &PasswordParams) -> bool {
    // A verification is one argon2 computation with the stored costs; computing one with the
    // configured costs and throwing it away takes the same time. The fixed salt is harmless:
    // the output is never stored or compared.
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    let result =
        params
            .hasher()
            .hash_password_into(password.as_bytes(), b"onebox-dummy-salt", &mut out);
    let _ = std::hint::black_box((result, out));
    false
}

/// Whether a stored hash should be replaced at the next successful sign-in because it was made
/// with other parameters (or another algorithm) than the configured ones.
pub fn needs_rehash(phc: &str, params: &PasswordParams) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(stored) = argon2::Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm != argon2::ARGON2ID_IDENT
        || stored.m_cost() != params.params.m_cost()
        || stored.t_cost() != params.params.t_cost()
        || stored.p_cost() != params.params.p_cost()
}

/// The password policy: 8–1024 characters (Unicode scalar values, not bytes), no composition
/// rules, and not one of the most common passwords (compared case-insensitively). The message
/// is safe to show to the user.
pub fn check_password_policy(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_CHARS} characters"
        ));
    }
    if is_common_password(password) {
        return Err("this password is too common; choose another".to_string());
    }
    Ok(())
}

fn is_common_password(password: &str) -> bool {
    // The list is far shorter than any password is long: a scan beats building a set.
    let lowered = password.to_lowercase();
    COMMON_PASSWORDS.lines().any(|line| line == lowered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_accepts_only_the_same_password() {
        let params = PasswordParams::insecure_fast();
        let phc = hash_password("correct horse battery", &params).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let params = PasswordParams::insecure_fast();
        let a = hash_password("same password", &params).unwrap();
        let b = hash_password("same password", &params).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn verify_rejects_malformed_and_non_argon2id_hashes() {
        assert!(!verify_password("whatever", ""));
        assert!(!verify_password("whatever", "not a phc string"));
        let params = PasswordParams::insecure_fast();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params.params.clone())
            .hash_password(b"whatever")
            .unwrap()
            .to_string();
        assert!(!verify_password("whatever", &argon2i));
    }

    #[test]
    fn default_params_are_the_owasp_minimum() {
        let phc = PasswordParams::default()
            .hasher()
            .hash_password(b"x")
            .unwrap();
        assert!(phc.to_string().contains("$m=19456,t=2,p=1$"));
    }

    #[test]
    fn custom_params_below_the_minimum_are_refused() {
        assert!(PasswordParams::new(8, 1, 1).is_err());
        assert!(PasswordParams::new(19456, 1, 1).is_err());
        assert_eq!(
            PasswordParams::new(19456, 2, 1).unwrap(),
            PasswordParams::default()
        );
    }

    #[test]
    fn needs_rehash_when_costs_differ() {
        let fast = PasswordParams::insecure_fast();
        let phc = hash_password("some password", &fast).unwrap();
        assert!(!needs_rehash(&phc, &fast));
        assert!(needs_rehash(&phc, &PasswordParams::default()));
        assert!(needs_rehash("garbage", &fast));
    }

    #[test]
    fn dummy_verify_never_matches() {
        assert!(!dummy_verify("anything", &PasswordParams::insecure_fast()));
    }

    #[test]
    fn policy_refuses_short_and_accepts_eight_chars() {
        assert!(check_password_policy("").is_err());
        assert!(check_password_policy("Zq7#kLp").is_err());
        assert!(check_password_policy("Zq7#kLp2").is_ok());
    }

    #[test]
    fn policy_counts_characters_not_bytes() {
        // 7 characters but 14 bytes: too short.
        assert!(check_password_policy("ééééééé").is_err());
        // 8 characters.
        assert!(check_password_policy("éééééééé").is_ok());
        // 1024 characters but 2048 bytes: still fine.
        assert!(check_password_policy(&"é".repeat(1024)).is_ok());
        assert!(check_password_policy(&"é".repeat(1025)).is_err());
    }

    #[test]
    fn policy_accepts_1024_and_refuses_1025_chars() {
        let ok = "ab".repeat(512);
        assert!(check_password_policy(&ok).is_ok());
        assert!(check_password_policy(&format!("{ok}x")).is_err());
    }

    #[test]
    fn policy_refuses_common_passwords_case_insensitively() {
        for common in ["password", "12345678", "qwertyui", "iloveyou", "password1"] {
            assert!(check_password_policy(common).is_err(), "{common}");
        }
        assert!(check_password_policy("PassWord1").is_err());
        assert!(check_password_policy("ILOVEYOU").is_err());
        assert!(check_password_policy("password1 but longer").is_ok());
    }

    #[test]
    fn common_password_list_is_lowercase_and_long_enough_to_matter() {
        let entries: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!(entries.len() >= 1000, "{}", entries.len());
        for entry in entries {
            assert_eq!(entry, entry.to_lowercase());
            assert!(entry.chars().count() >= MIN_PASSWORD_CHARS, "{entry}");
        }
    }
}
