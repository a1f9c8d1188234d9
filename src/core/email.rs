//! Email addresses as signers and organizers type them, and the key that finds duplicates.

use std::str::FromStr;

use validator::ValidateEmail;

pub const MAX_EMAIL_CHARS: usize = 254;

/// An email address that can be delivered to, with the key that identifies its owner for
/// duplicate detection: trimmed and lowercased, and for Gmail (which ignores dots and
/// `+tags` in the local part, and answers at googlemail.com too) reduced to the one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    typed: String,
    key: String,
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim();
        if email.is_empty() {
            return Err("Please enter your email address: we send you a link to confirm.");
        }
        let invalid = "Please enter a valid email address, like name@example.org.";
        if email.chars().count() > MAX_EMAIL_CHARS || email.chars().any(char::is_control) {
            return Err(invalid);
        }
        let domain = email
            .rsplit_once('@')
            .map(|(_, domain)| domain)
            .unwrap_or("");
        // Mail to bare hosts or IP literals never reaches a real signer.
        let plausible_domain = domain.contains('.') && !domain.starts_with('[');
        if !email.validate_email() || !plausible_domain || lettre::Address::from_str(email).is_err()
        {
            return Err(invalid);
        }
        Ok(Self {
            typed: email.to_owned(),
            key: normalise(email),
        })
    }

    /// The domain of the normalised address (`gmail.com` for googlemail.com).
    pub fn domain(&self) -> &str {
        self.key.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// As typed (trimmed): where emails go.
    pub fn as_str(&self) -> &str {
        &self.typed
    }

    /// The normalised form: one signature per petition and key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The duplicate-detection key of a valid address.
fn normalise(email: &str) -> String {
    let lower = email.trim().to_lowercase();
    let Some((local, domain)) = lower.rsplit_once('@') else {
        return lower;
    };
    if domain == "gmail.com" || domain == "googlemail.com" {
        let local = local.split('+').next().unwrap_or_default().replace('.', "");
        // "+tag@gmail.com" has no mailbox left: keep it as typed rather than merge it.
        if !local.is_empty() {
            return format!("{local}@gmail.com");
        }
    }
    lower
}
