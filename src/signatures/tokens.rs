//! Confirmation tokens: 256 random bits, sent once by email; only their SHA-256 is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Length of an encoded token: 32 bytes in unpadded base64url.
const TOKEN_CHARS: usize = 43;

pub struct ConfirmationToken(String);

impl ConfirmationToken {
    pub fn generate() -> Self {
        let mut bytes = [0_u8; 32];
        // ThreadRng is a CSPRNG seeded from the operating system.
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

pub fn hash_token(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Whether `raw` could be a token at all; anything else is unknown without a database lookup.
pub fn looks_like_token(raw: &str) -> bool {
    raw.len() == TOKEN_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = ConfirmationToken::generate();
        let b = ConfirmationToken::generate();
        assert_ne!(a.as_str(), b.as_str());
        assert!(looks_like_token(a.as_str()));
        assert_eq!(a.hash().len(), 64);
        assert_eq!(a.hash(), hash_token(a.as_str()));
        assert!(!looks_like_token("../../etc/passwd"));
    }
}
