//! Confirmation tokens: sent once by email; only a key derived from each is stored (the
//! `token_hash` column), never the token.
//!
//! A token is 33 bytes in unpadded base64url (44 characters): the time it was issued
//! (microseconds since the Unix epoch, big-endian) in 8 bytes, then 200 random bits. Its key is
//! that time in hex followed by the token's SHA-256. Keys of new tokens therefore sort after
//! older ones, and a batch of signings appends to the tokens' index, where keys that were a
//! hash alone wrote one random page of it per signing (BENCHMARKS.md, "Design measurements").
//! The time in a link tells its reader only when they signed.
//!
//! Tokens issued before (43 characters: 256 random bits) are keyed by their SHA-256 alone and
//! keep working until they expire.

use crate::core::tokens::hash_token;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use rand::Rng;

/// Length of an encoded token: 33 bytes in unpadded base64url.
const TOKEN_CHARS: usize = 44;

/// Length of a token issued before keys began with the issue time: 32 bytes.
const UNTIMED_TOKEN_CHARS: usize = 43;

pub struct ConfirmationToken {
    token: String,
    issued_micros: u64,
}

impl ConfirmationToken {
    pub fn generate(issued_at: NaiveDateTime) -> Self {
        let issued_micros = issue_micros(issued_at);
        let mut bytes = [0_u8; 33];
        bytes[..8].copy_from_slice(&issued_micros.to_be_bytes());
        // ThreadRng is a CSPRNG seeded from the operating system.
        rand::rng().fill_bytes(&mut bytes[8..]);
        Self {
            token: URL_SAFE_NO_PAD.encode(bytes),
            issued_micros,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The key stored for this token.
    pub fn key(&self) -> String {
        timed_key(self.issued_micros, &self.token)
    }
}

/// The key of a token of the current form: its issue time, then its SHA-256.
fn timed_key(issued_micros: u64, token: &str) -> String {
    format!("{issued_micros:016x}{}", hash_token(token))
}

/// Microseconds since the Unix epoch (0 for earlier times, which no clock here reports).
fn issue_micros(at: NaiveDateTime) -> u64 {
    u64::try_from(at.and_utc().timestamp_micros()).unwrap_or(0)
}

/// The stored key of the confirmation token `raw`, or `None` when `raw` cannot be a token
/// (then it is unknown without a database lookup).
pub fn confirmation_key(raw: &str) -> Option<String> {
    let well_formed = raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return None;
    }
    match raw.len() {
        TOKEN_CHARS => {
            let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
            let issued: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
            Some(timed_key(u64::from_be_bytes(issued), raw))
        }
        UNTIMED_TOKEN_CHARS => Some(hash_token(raw)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn tokens_are_random_and_well_formed() {
        let now = at("2026-12-02 08:00:00");
        let a = ConfirmationToken::generate(now);
        let b = ConfirmationToken::generate(now);
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.as_str().len(), TOKEN_CHARS);
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key().len(), 16 + 64);
        assert!(a.key().ends_with(&hash_token(a.as_str())));
        assert_eq!(confirmation_key(a.as_str()), Some(a.key()));
    }

    #[test]
    fn keys_of_later_tokens_sort_after_earlier_ones() {
        let earlier = ConfirmationToken::generate(at("2026-12-02 08:00:00.000001"));
        let later = ConfirmationToken::generate(at("2026-12-02 08:00:00.000002"));
        assert!(earlier.key() < later.key());
        let much_later = ConfirmationToken::generate(at("2031-01-01 00:00:00"));
        assert!(later.key() < much_later.key());
    }

    #[test]
    fn tokens_of_the_first_format_keep_their_key() {
        let untimed = URL_SAFE_NO_PAD.encode([7_u8; 32]);
        assert_eq!(confirmation_key(&untimed), Some(hash_token(&untimed)));
    }

    #[test]
    fn anything_else_is_not_a_token() {
        for raw in [
            "",
            "../../etc/passwd",
            "not-a-token",
            &"A".repeat(42),
            &"A".repeat(45),
            &format!("{}%", "A".repeat(43)),
            &format!("{}é", "A".repeat(42)),
        ] {
            assert_eq!(confirmation_key(raw), None, "{raw:?}");
        }
    }
}
