//! Rate limits per petition, counted in the database so that every instance agrees: the
//! petition's signatures from one client address, and from one email domain, within a sliding
//! window. Signatures over a limit are stored as suspect ('limited'), never refused.
//!
//! The big free-mail providers have no per-domain limit: during a viral surge thousands of
//! real signers arrive from gmail.com within minutes, and limiting them would hold back the
//! very signatures that matter. The per-client limit and the other checks still apply to them.

use std::collections::HashMap;

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

/// A signing about to be inserted, as [`exceeded_in_order`] counts it.
pub struct Counted<'a> {
    pub client_hash: Option<&'a str>,
    pub email_domain: &'a str,
    /// The domain's keyed hash, as stored.
    pub domain_key: &'a str,
}

/// For signings about to be inserted together in this order (the signature writer's batches):
/// whether each one finds a limit reached, by the petition's signatures from its client address
/// or its email domain within the window ending `now`, plus the signings ahead of it in the
/// batch. Run inside the signing transaction, before the rows are inserted. Two grouped counts
/// for the whole batch, where one by one it was up to two counts per signing.
pub fn exceeded_in_order(
    conn: &mut AnyConnection,
    limits: &AbuseSettings,
    petition_id: i64,
    signings: &[Counted<'_>],
    now: NaiveDateTime,
) -> QueryResult<Vec<bool>> {
    let since = now
        - chrono::Duration::from_std(limits.window).unwrap_or_else(|_| chrono::Duration::days(1));
    let clients: Vec<&str> = signings.iter().filter_map(|s| s.client_hash).collect();
    let mut from_client: HashMap<String, i64> = HashMap::new();
    if !clients.is_empty() {
        let counts: Vec<(Option<String>, i64)> = signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::client_hash.eq_any(&clients))
            .filter(signatures::created_at.gt(since))
            .group_by(signatures::client_hash)
            .select((signatures::client_hash, diesel::dsl::count_star()))
            .load(conn)?;
        from_client.extend(counts.into_iter().filter_map(|(k, n)| Some((k?, n))));
    }
    let domains: Vec<&str> = signings
        .iter()
        .filter(|s| !is_free_mail(s.email_domain))
        .map(|s| s.domain_key)
        .collect();
    let mut from_domain: HashMap<String, i64> = HashMap::new();
    if !domains.is_empty() {
        let counts: Vec<(Option<String>, i64)> = signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::email_domain.eq_any(&domains))
            .filter(signatures::created_at.gt(since))
            .group_by(signatures::email_domain)
            .select((signatures::email_domain, diesel::dsl::count_star()))
            .load(conn)?;
        from_domain.extend(counts.into_iter().filter_map(|(k, n)| Some((k?, n))));
    }
    Ok(signings
        .iter()
        .map(|signing| {
            let client_count = signing
                .client_hash
                .map(|client| from_client.entry(client.to_owned()).or_default());
            let over_client = match client_count {
                Some(count) => {
                    let over = *count >= limits.per_client;
                    *count += 1;
                    over
                }
                None => false,
            };
            let domain_count = from_domain
                .entry(signing.domain_key.to_owned())
                .or_default();
            let over_domain =
                !is_free_mail(signing.email_domain) && *domain_count >= limits.per_domain;
            *domain_count += 1;
            over_client || over_domain
        })
        .collect())
}
