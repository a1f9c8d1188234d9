//! Secret tokens: how they are stored (hashed) and compared (in constant time).

use sha2::{Digest, Sha256};

/// The SHA-256 of a secret token, in hex: what is stored of organizers' session and API
/// tokens, and of confirmation tokens of the first format.
pub fn hash_token(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Compares two strings in time that depends only on their lengths.
pub fn tokens_match(expected: &str, submitted: &str) -> bool {
    let (a, b) = (expected.as_bytes(), submitted.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
