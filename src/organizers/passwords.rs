//! Passwords: argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1). Hashing and
//! verifying are deliberately slow, so callers run them off the async executor.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 1024;

/// A password that meets the length policy. Its `Debug` output never shows it.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            return Err(format!(
                "Use a password of at least {MIN_CHARS} characters."
            ));
        }
        if chars > MAX_CHARS {
            return Err(format!("Use a password of at most {MAX_CHARS} characters."));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

pub fn hash(password: &Password) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.0.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// A hash of a password nobody knows, verified when an account does not exist so that the
/// response takes as long as for a real account.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash(&Password("not a real password, only for timing".to_owned()))
        .expect("hashing a fixed password works")
});

/// Checks `candidate` against `stored`, or against a dummy hash when there is no account.
/// Over-long candidates are refused before hashing, so nobody can make us hash megabytes.
pub fn verify(candidate: &str, stored: Option<&str>) -> bool {
    let too_long = candidate.chars().count() > MAX_CHARS;
    let candidate = if too_long { "" } else { candidate };
    let matches = Argon2::default()
        .verify_password(candidate.as_bytes(), stored.unwrap_or(DUMMY_HASH.as_str()))
        .is_ok();
    matches && stored.is_some() && !too_long
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let password = Password::parse("correct horse battery staple").unwrap();
        let stored = hash(&password).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery staple", Some(&stored)));
        assert!(!verify("wrong horse battery staple", Some(&stored)));
        assert!(!verify("correct horse battery staple", None));
    }

    #[test]
    fn enforces_the_length_policy() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert!(Password::parse(&"x".repeat(12)).is_ok());
        assert_eq!(
            format!("{:?}", Password::parse(&"y".repeat(12)).unwrap()),
            "Password(…)"
        );
    }
}
