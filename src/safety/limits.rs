//! Rate limits per petition, counted in the database so that every instance agrees: the
//! petition's signatures from one client address, and from one email domain, within a sliding
//! window. Signatures over a limit are stored as suspect ('limited'), never refused.
//!
//! The big free-mail providers have no per-domain limit: during a viral surge thousands of
//! real signers arrive from gmail.com within minutes, and limiting them would hold back the
//! very signatures that matter. The per-client limit and the other checks still apply to them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::config::AbuseSettings;
use crate::db::schema::signatures;
use crate::db::AnyConnection;

/// Providers too large for a per-domain limit to mean anything.
pub const FREE_MAIL_DOMAINS: &[&str] = &[
    "aol.com",
    "gmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "hotmail.com",
    "icloud.com",
    "live.com",
    "mail.ru",
    "me.com",
    "msn.com",
    "outlook.com",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "t-online.de",
    "ukr.net",
    "web.de",
    "yahoo.com",
    "yandex.ru",
];

pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL_DOMAINS.contains(&domain)
}

/// True when the petition already has as many signatures as a limit allows from this client
/// address or this email domain within the window ending `now`. Run inside the signing
/// transaction, before the new row is inserted. `domain_key` is the domain's keyed hash, as
/// stored (see `safety::encryption`).
pub fn exceeded(
    conn: &mut AnyConnection,
    limits: &AbuseSettings,
    petition_id: i64,
    client_hash: Option<&str>,
    email_domain: &str,
    domain_key: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let since = now
        - chrono::Duration::from_std(limits.window).unwrap_or_else(|_| chrono::Duration::days(1));
    if let Some(client_hash) = client_hash {
        let from_client: i64 = signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::client_hash.eq(client_hash))
            .filter(signatures::created_at.gt(since))
            .count()
            .get_result(conn)?;
        if from_client >= limits.per_client {
            return Ok(true);
        }
    }
    if is_free_mail(email_domain) {
        return Ok(false);
    }
    let from_domain: i64 = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::email_domain.eq(domain_key))
        .filter(signatures::created_at.gt(since))
        .count()
        .get_result(conn)?;
    Ok(from_domain >= limits.per_domain)
}
