//! The shape of every bearer secret onebox hands out (API and login tokens, session cookies,
//! CSRF and setup tokens): 32 bytes from the CSPRNG in base64url, stored only as SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

/// Length of `random_token()`: 43 base64url characters.
pub const TOKEN_LEN: usize = 43;

/// 32 bytes from the thread CSPRNG (ChaCha12, reseeded from the OS), base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `s` could be a `random_token()`: a cheap shape check, so junk never reaches SQL or
/// the hash.
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is stored instead of a secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
