//! Rate limits per petition, counted in the database so that every instance agrees: the
//! petition's signatures from one client address, and from one email domain, within a sliding
//! window. Signatures over a limit are stored as suspect ('limited'), never refused.
//!
//! The big free-mail providers have no per-domain limit: during a viral surge thousands of
//! real signers arrive from gmail.com within minutes, and limiting them would hold back the
//! very signatures that matter. The per-client limit and the other checks still apply to them.
//!
//! A signing event an organizer vouched for (see [`super::events`]) replaces the per-client
//! limit for signings from its network within its window by its own cap on the whole event.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::events::Vouch;
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
    /// The signing events whose network and window it falls in, oldest first.
    pub vouch: &'a [Vouch],
}

/// What [`exceeded_in_order`] decided for one signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Hold it back as 'limited'.
    pub over_limit: bool,
    /// The signing event that let it past the per-client limit (stored with the signature,
    /// which is how the event's cap is counted).
    pub vouched_by: Option<i64>,
}

/// For signings about to be inserted together in this order (the signature writer's batches):
/// whether each one finds a limit reached, by the petition's signatures from its client address
/// or its email domain within the window ending `now`, plus the signings ahead of it in the
/// batch. Run inside the signing transaction, before the rows are inserted. Two grouped counts
/// for the whole batch, where one by one it was up to two counts per signing, and a third
/// only when some signing falls under a signing event.
///
/// A signing under an event whose cap is not reached yet is vouched for: the per-client limit
/// does not hold it back (it still counts towards its address, so once the cap is reached the
/// per-client limit applies again). The per-domain limit applies to every signing.
pub fn exceeded_in_order(
    conn: &mut AnyConnection,
    limits: &AbuseSettings,
    petition_id: i64,
    signings: &[Counted<'_>],
    now: NaiveDateTime,
) -> QueryResult<Vec<Verdict>> {
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
    let mut event_ids: Vec<i64> = signings
        .iter()
        .flat_map(|s| s.vouch.iter().map(|vouch| vouch.event_id))
        .collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    let mut from_event = super::events::vouched_counts(conn, &event_ids)?;
    Ok(signings
        .iter()
        .map(|signing| {
            // The first of its events with room left vouches for it.
            let vouched_by = signing.vouch.iter().find_map(|vouch| {
                let count = from_event.entry(vouch.event_id).or_default();
                (*count < vouch.max_signatures).then(|| {
                    *count += 1;
                    vouch.event_id
                })
            });
            let client_count = signing
                .client_hash
                .map(|client| from_client.entry(client.to_owned()).or_default());
            let over_client = match client_count {
                Some(count) => {
                    let over = vouched_by.is_none() && *count >= limits.per_client;
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
            Verdict {
                over_limit: over_client || over_domain,
                vouched_by,
            }
        })
        .collect())
}
