//! CSRF protection for the private workspace: a synchronizer token kept with the session (or,
//! before sign-in, in an encrypted cookie) and compared in constant time with the
//! `csrf_token` field of every state-changing form. SameSite cookies add a second layer.

use crate::core::tokens::tokens_match;
use crate::error::AppError;

pub fn check(expected: &str, submitted: Option<&str>) -> Result<(), AppError> {
    match submitted {
        Some(token) if !expected.is_empty() && tokens_match(expected, token) => Ok(()),
        _ => Err(AppError::Forbidden(
            "This form has expired or did not come from this site. Go back, reload the page and \
             try again."
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_identical_tokens() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(check("abc", Some("abc")).is_ok());
        assert!(check("abc", None).is_err());
        assert!(check("", Some("")).is_err());
    }
}
