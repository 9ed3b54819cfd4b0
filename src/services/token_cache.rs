//! A short-lived in-memory cache of bearer tokens → (token, user), so an authenticated request
//! does not cost a database read. Every identity change made through onebox clears it at once
//! (logout, token deletion, user changes); changes made outside the process (another onebox
//! command, a hand edit) and token expiry are seen within `ttl` — expiry is also checked on
//! every hit against the cached expiry time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::{TokenRow, User};

/// Entries kept at most; past that the cache starts afresh (tokens in use are few).
const MAX_ENTRIES: usize = 10_000;

pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Instant, TokenRow, User)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(secret: &str) -> [u8; 32] {
        Sha256::digest(secret.as_bytes()).into()
    }

    /// The cached token and user for `secret`, if fresh and not expired at `now_text`.
    pub fn get(&self, secret: &str, now_text: &str) -> Option<(TokenRow, User)> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.entries.lock().ok()?;
        let (at, token, user) = map.get(&Self::key(secret))?;
        let fresh = at.elapsed() < self.ttl;
        // Canonical times compare as text.
        let unexpired = token.expires.as_deref().is_none_or(|e| e > now_text);
        (fresh && unexpired).then(|| (token.clone(), user.clone()))
    }

    pub fn put(&self, secret: &str, token: TokenRow, user: User) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(Self::key(secret), (Instant::now(), token, user));
        }
    }

    /// Record a `last_used` write so cached copies don't ask for it again.
    pub fn touched(&self, token_id: &str, when: &str) {
        if let Ok(mut map) = self.entries.lock() {
            for (_, token, _) in map.values_mut() {
                if token.id == token_id {
                    token.last_used = Some(when.to_string());
                }
            }
        }
    }

    /// Forget everything (after any change to users or tokens).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, TokenKind};

    fn token(expires: Option<&str>) -> (TokenRow, User) {
        let token = TokenRow {
            id: "t1".into(),
            user_id: "u1".into(),
            kind: TokenKind::Api,
            name: "n".into(),
            created: "2024-01-01T00:00:00.000Z".into(),
            expires: expires.map(str::to_string),
            last_used: None,
        };
        let user = User {
            id: "u1".into(),
            email: "u@example.com".into(),
            role: Role::User,
            disabled: false,
            created: "2024-01-01T00:00:00.000Z".into(),
            updated: "2024-01-01T00:00:00.000Z".into(),
        };
        (token, user)
    }

    #[test]
    fn hits_until_cleared_and_never_past_expiry() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let (t, u) = token(Some("2024-06-01T00:00:00.000Z"));
        cache.put("obx_a", t, u);
        assert!(cache.get("obx_a", "2024-05-31T23:59:59.999Z").is_some());
        assert!(cache.get("obx_b", "2024-05-31T23:59:59.999Z").is_none());
        assert!(
            cache.get("obx_a", "2024-06-01T00:00:00.000Z").is_none(),
            "expired"
        );
        cache.clear();
        assert!(cache.get("obx_a", "2024-01-02T00:00:00.000Z").is_none());
    }

    #[test]
    fn zero_ttl_disables_the_cache() {
        let cache = TokenCache::new(Duration::ZERO);
        let (t, u) = token(None);
        cache.put("obx_a", t, u);
        assert!(cache.get("obx_a", "2024-01-02T00:00:00.000Z").is_none());
    }
}
