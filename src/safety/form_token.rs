//! The hidden `form_token` of the signing form: the time the form was rendered, signed with a
//! key derived from the instance secret. A form sent back sooner than a person can fill it
//! in, or with a token that is missing, forged or too old, is held back as suspect.
//!
//! The key is process-wide because the petition page builds its empty form without access to
//! the application state; it is derived from the instance secret, so every instance sharing
//! the secret file issues and accepts the same tokens.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::core::hex::to_hex;

/// Nobody reads a petition and types a name and an address in less.
pub const MIN_FILL_TIME_MS: i64 = 2_000;
/// A form left open longer is treated like one without a token.
pub const MAX_FORM_AGE_MS: i64 = 24 * 3600 * 1000;

static KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Sets the key once per process (the first application built wins; later ones derive the
/// same key when they share the secret file).
pub fn install_key(key: [u8; 32]) {
    let _ = KEY.set(key);
}

fn key() -> &'static [u8; 32] {
    KEY.get_or_init(|| {
        let mut key = [0_u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut key);
        key
    })
}

fn sign(millis: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key()).expect("HMAC takes any key");
    mac.update(b"undersign form token v1:");
    mac.update(millis.to_string().as_bytes());
    to_hex(&mac.finalize().into_bytes())
}

/// A token for a form rendered at `now`.
pub fn issue(now: DateTime<Utc>) -> String {
    let millis = now.timestamp_millis();
    format!("{millis}.{}", sign(millis))
}

/// True when the token is genuine and the form was rendered long enough ago, and not too long.
pub fn is_human(token: &str, now: DateTime<Utc>) -> bool {
    let Some((millis, signature)) = token.trim().split_once('.') else {
        return false;
    };
    let Ok(rendered) = millis.parse::<i64>() else {
        return false;
    };
    let expected = sign(rendered);
    let genuine = crate::core::tokens::tokens_match(&expected, signature);
    let age = now.timestamp_millis().saturating_sub(rendered);
    genuine && (MIN_FILL_TIME_MS..=MAX_FORM_AGE_MS).contains(&age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_genuine_tokens_of_the_right_age() {
        let rendered = Utc::now();
        let token = issue(rendered);
        assert!(!is_human(
            &token,
            rendered + chrono::Duration::milliseconds(500)
        ));
        assert!(is_human(&token, rendered + chrono::Duration::seconds(3)));
        assert!(!is_human(&token, rendered + chrono::Duration::hours(25)));
        let (millis, _) = token.split_once('.').unwrap();
        let forged = format!(
            "{}.{}",
            millis.parse::<i64>().unwrap() - 60_000,
            "0".repeat(64)
        );
        assert!(!is_human(&forged, rendered + chrono::Duration::seconds(3)));
        for bad in ["", "x", "1.2", "-5.", "99999999999999999999999.ab"] {
            assert!(!is_human(bad, rendered), "{bad:?}");
        }
    }
}
