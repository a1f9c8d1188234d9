//! Bots and fraud: the automatic checks that hold a signature back as suspect (rate limits,
//! honeypot, form timing, disposable email domains), the daily keys of client address hashes,
//! bulk invalidation and the fraud report.
//!
//! A suspect signature is stored, answered and emailed exactly like any other: nothing in a
//! response tells an attacker which rule caught them. It counts only once an organizer
//! accepts it.

pub mod client_keys;
pub mod disposable;
pub mod encryption;
pub mod events;
pub mod form_token;
pub mod fraud;
pub mod limits;

use crate::config::{AbuseSettings, Settings};
use crate::secrets::Secrets;

/// Why a signature was held back (`signatures.suspect_reason`).
pub mod reason {
    pub const LIMITED: &str = "limited";
    pub const HONEYPOT: &str = "honeypot";
    pub const TOO_FAST: &str = "too_fast";
    pub const DISPOSABLE: &str = "disposable";
}

/// The name of the honeypot field of the signing form: people never see it, some bots fill it.
pub const HONEYPOT_FIELD: &str = "website";
/// The hidden field carrying the signed time the form was rendered.
pub const FORM_TOKEN_FIELD: &str = "form_token";

/// What the signing routes share for abuse checks.
pub struct Safety {
    /// `UNDERSIGN_ABUSE_CHECKS`: when off, nothing is held back automatically.
    pub checks: bool,
    pub limits: AbuseSettings,
    pub disposable: disposable::DisposableDomains,
    pub client_keys: client_keys::ClientKeys,
}

impl Safety {
    pub fn new(settings: &Settings, secrets: &Secrets) -> anyhow::Result<Self> {
        if !settings.abuse_checks {
            log::warn!(
                "UNDERSIGN_ABUSE_CHECKS=off: rate limits, honeypot, timing and disposable-domain \
                 checks are disabled; every signature counts once confirmed"
            );
        }
        form_token::install_key(secrets.derive("signing form token"));
        Ok(Self {
            checks: settings.abuse_checks,
            limits: settings.abuse.clone(),
            disposable: disposable::DisposableDomains::load(
                settings.abuse.disposable_domains_file.as_deref(),
            )?,
            client_keys: client_keys::ClientKeys::new(secrets.derive("client address hashes")),
        })
    }

    /// The verdict on the extra fields of a signing form (honeypot and timing), before the
    /// signature itself is looked at.
    pub fn screen_form(&self, honeypot: Option<&str>, token: Option<&str>) -> Option<&'static str> {
        if !self.checks {
            return None;
        }
        if honeypot.is_some_and(|value| !value.trim().is_empty()) {
            return Some(reason::HONEYPOT);
        }
        if !form_token::is_human(token.unwrap_or_default(), chrono::Utc::now()) {
            return Some(reason::TOO_FAST);
        }
        None
    }
}
