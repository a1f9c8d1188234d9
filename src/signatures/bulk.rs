//! Bulk invalidation by criteria: email domain, client network (that of a given signature),
//! signing time window, country and name pattern. A preview counts what matches and changes
//! nothing; applying invalidates every match in one transaction recorded as a
//! `moderation_batches` row (criteria, reason, who, how many) and in the audit log; a batch
//! can be reverted as a whole.

use chrono::{NaiveDateTime, NaiveTime};
use diesel::prelude::*;

use super::counting::{adjust_count, count_change_of_rows, Counter};
use super::moderation::{
    containing_name, parse_id, restored_change, status_before_invalidation, Reason, WAITING,
};
use crate::core::audit;
use crate::core::email::MAX_EMAIL_CHARS;
use crate::core::form::FormFields;
use crate::core::status::SignatureStatus;
use crate::db::schema::{moderation_batches, signatures};
use crate::db::{write_transaction, AnyConnection, MultiBackend};
use crate::error::AppError;
use crate::safety::client_keys::network_part;
use crate::safety::encryption::{DataKey, Field};

const MAX_NAME_PATTERN_CHARS: usize = 200;
/// How many matching signatures a preview shows.
pub const SAMPLE_SIZE: i64 = 20;

/// The criteria of a bulk invalidation, checked. Every criterion given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Criteria {
    /// The normalised email domain, matched exactly.
    pub domain: Option<String>,
    /// "Same client network as signature #id".
    pub network_of: Option<i64>,
    /// Signed at or after (UTC).
    pub from: Option<NaiveDateTime>,
    /// Signed before (UTC).
    pub to: Option<NaiveDateTime>,
    pub country: Option<&'static str>,
    /// A case-insensitive substring of the name.
    pub name: Option<String>,
}

fn parse_time(field: &str, raw: &str) -> Result<NaiveDateTime, String> {
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .map(|day| day.and_time(NaiveTime::MIN))
    })
    .ok_or_else(|| format!("Write \"{field}\" as YYYY-MM-DDTHH:MM (UTC), e.g. 2026-11-28T14:00."))
}

impl Criteria {
    /// Reads `domain`, `network_of`, `from`, `to`, `country` and `name`. At least one is
    /// required: invalidating a whole petition by accident must take more than one click.
    pub fn parse(fields: &FormFields) -> Result<Self, String> {
        let text = |name: &str| {
            fields
                .get(name)
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        let domain = match text("domain") {
            Some(domain) => {
                let domain = domain.trim_start_matches('@').to_lowercase();
                if domain.chars().count() > MAX_EMAIL_CHARS
                    || !domain.contains('.')
                    || domain
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
                {
                    return Err(format!(
                        "{domain:?} is not an email domain, e.g. example.org."
                    ));
                }
                // googlemail.com addresses are stored under gmail.com.
                Some(if domain == "googlemail.com" {
                    "gmail.com".to_owned()
                } else {
                    domain
                })
            }
            None => None,
        };
        let network_of = text("network_of")
            .map(|raw| parse_id(raw.trim_start_matches('#')))
            .transpose()?;
        let from = text("from")
            .map(|raw| parse_time("from", raw))
            .transpose()?;
        let to = text("to").map(|raw| parse_time("to", raw)).transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err("\"from\" must come before \"to\".".to_owned());
            }
        }
        let country = match text("country") {
            None => None,
            Some(raw) => Some(
                crate::core::countries::COUNTRIES
                    .iter()
                    .find(|(code, _)| code.eq_ignore_ascii_case(raw))
                    .map(|(code, _)| *code)
                    .ok_or_else(|| format!("{raw:?} is not a country code from the list."))?,
            ),
        };
        let name = match text("name") {
            Some(name) if name.chars().count() > MAX_NAME_PATTERN_CHARS => {
                return Err(format!(
                    "A name pattern has at most {MAX_NAME_PATTERN_CHARS} characters."
                ))
            }
            other => other.map(str::to_owned),
        };
        let criteria = Self {
            domain,
            network_of,
            from,
            to,
            country,
            name,
        };
        if criteria == Self::default() {
            return Err("Give at least one criterion.".to_owned());
        }
        Ok(criteria)
    }

    /// The criteria in words, as recorded with the batch.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(domain) = &self.domain {
            parts.push(format!("email domain {domain}"));
        }
        if let Some(id) = self.network_of {
            parts.push(format!("same client network as signature #{id}"));
        }
        if let Some(from) = self.from {
            parts.push(format!("signed from {}", from.format("%Y-%m-%d %H:%M")));
        }
        if let Some(to) = self.to {
            parts.push(format!("signed before {}", to.format("%Y-%m-%d %H:%M")));
        }
        if let Some(country) = self.country {
            parts.push(format!("country {country}"));
        }
        if let Some(name) = &self.name {
            parts.push(format!("name contains {name:?}"));
        }
        parts.join("; ")
    }
}

/// The criteria with the network resolved to the stored hash prefix.
struct Resolved<'a> {
    criteria: &'a Criteria,
    network: Option<String>,
}

fn resolve<'a>(
    conn: &mut AnyConnection,
    petition_id: i64,
    criteria: &'a Criteria,
) -> Result<Resolved<'a>, AppError> {
    let network = match criteria.network_of {
        None => None,
        Some(id) => {
            let hash: Option<Option<String>> = signatures::table
                .filter(signatures::petition_id.eq(petition_id))
                .filter(signatures::id.eq(id))
                .select(signatures::client_hash)
                .first(conn)
                .optional()?;
            match hash {
                None => {
                    return Err(AppError::BadRequest(format!(
                        "This petition has no signature #{id}."
                    )))
                }
                Some(None) => {
                    return Err(AppError::BadRequest(format!(
                        "Signature #{id} has no client network recorded (it is older than 7 \
                         days, or was made before networks were recorded)."
                    )))
                }
                Some(Some(hash)) => Some(network_part(&hash).to_owned()),
            }
        }
    };
    Ok(Resolved { criteria, network })
}

/// The petition's signatures that match and can be invalidated (confirmed, pending, suspect),
/// by every criterion except the name (names are encrypted: see [`matching_ids`]).
fn matching<'a>(
    petition_id: i64,
    key: &DataKey,
    resolved: &Resolved<'_>,
) -> signatures::BoxedQuery<'a, MultiBackend> {
    let criteria = resolved.criteria;
    let mut query = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::status.eq_any([
            SignatureStatus::Confirmed.as_str(),
            SignatureStatus::Pending.as_str(),
            SignatureStatus::Suspect.as_str(),
        ]))
        .into_boxed();
    if let Some(domain) = &criteria.domain {
        query = query.filter(signatures::email_domain.eq(key.domain_key(domain)));
    }
    if let Some(network) = &resolved.network {
        // Hashes are hex, so the prefix needs no escaping.
        query = query.filter(signatures::client_hash.like(format!("{network}:%")));
    }
    if let Some(from) = criteria.from {
        query = query.filter(signatures::created_at.ge(from));
    }
    if let Some(to) = criteria.to {
        query = query.filter(signatures::created_at.lt(to));
    }
    if let Some(country) = criteria.country {
        query = query.filter(signatures::country.eq(country));
    }
    query
}

/// The ids of every match, newest first.
fn matching_ids(
    conn: &mut AnyConnection,
    petition_id: i64,
    key: &DataKey,
    resolved: &Resolved<'_>,
) -> QueryResult<Vec<i64>> {
    match &resolved.criteria.name {
        Some(name) => {
            let query = || matching(petition_id, key, resolved);
            // In id order: reversed, newest first.
            Ok(containing_name(conn, key, query, name)?
                .into_iter()
                .rev()
                .map(|(id, _)| id)
                .collect())
        }
        None => matching(petition_id, key, resolved)
            .order(signatures::id.desc())
            .select(signatures::id)
            .load(conn),
    }
}

/// One matching signature, shown in a preview.
#[derive(Debug, Clone, Queryable)]
pub struct SampleRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub country: String,
    pub status: String,
    pub created_at: NaiveDateTime,
}

/// How many signatures match, and the newest few.
pub fn preview(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition_id: i64,
    criteria: &Criteria,
) -> Result<(i64, Vec<SampleRow>), AppError> {
    let resolved = resolve(conn, petition_id, criteria)?;
    let ids = matching_ids(conn, petition_id, key, &resolved)?;
    let newest = &ids[..ids.len().min(SAMPLE_SIZE as usize)];
    let sample: Vec<SampleRow> = signatures::table
        .filter(signatures::id.eq_any(newest))
        .order(signatures::id.desc())
        .select((
            signatures::id,
            signatures::name,
            signatures::email,
            signatures::country,
            signatures::status,
            signatures::created_at,
        ))
        .load(conn)?;
    let sample = sample
        .into_iter()
        .map(|row| {
            Ok(SampleRow {
                name: key.open(Field::Name, &row.name)?,
                email: key.open(Field::Email, &row.email)?,
                ..row
            })
        })
        .collect::<QueryResult<_>>()?;
    Ok((ids.len() as i64, sample))
}

/// Invalidates every matching signature in one transaction, as one batch. Returns the batch id
/// and how many were invalidated.
pub fn apply(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition_id: i64,
    user_id: i64,
    criteria: &Criteria,
    reason: &Reason,
    now: NaiveDateTime,
) -> Result<(i64, i64), AppError> {
    write_transaction(conn, |conn| {
        let resolved = resolve(conn, petition_id, criteria)?;
        let described = criteria.describe();
        let batch_id: i64 = diesel::insert_into(moderation_batches::table)
            .values((
                moderation_batches::petition_id.eq(petition_id),
                moderation_batches::user_id.eq(user_id),
                moderation_batches::criteria.eq(&described),
                moderation_batches::reason.eq(reason.as_str()),
                moderation_batches::affected.eq(0_i64),
                moderation_batches::created_at.eq(now),
            ))
            .returning(moderation_batches::id)
            .get_result(conn)?;
        let ids = matching_ids(conn, petition_id, key, &resolved)?;
        let mut delta = 0_i64;
        let mut affected = 0_i64;
        // In chunks, so the statements stay within the backends' parameter limits.
        for chunk in ids.chunks(500) {
            let set = (
                signatures::status.eq(SignatureStatus::Invalidated.as_str()),
                signatures::invalidated_at.eq(now),
                signatures::invalidation_reason.eq(reason.as_str()),
                signatures::invalidated_by.eq(user_id),
                signatures::moderation_batch_id.eq(batch_id),
                signatures::updated_at.eq(now),
            );
            let confirmed = diesel::update(
                signatures::table
                    .filter(signatures::id.eq_any(chunk))
                    .filter(signatures::status.eq(SignatureStatus::Confirmed.as_str())),
            )
            .set(set)
            .execute(conn)?;
            let others = diesel::update(
                signatures::table
                    .filter(signatures::id.eq_any(chunk))
                    .filter(signatures::status.eq_any(WAITING.map(SignatureStatus::as_str))),
            )
            .set(set)
            .execute(conn)?;
            let invalidated = SignatureStatus::Invalidated;
            delta += count_change_of_rows(&[SignatureStatus::Confirmed], invalidated, confirmed)
                + count_change_of_rows(&WAITING, invalidated, others);
            affected += (confirmed + others) as i64;
        }
        adjust_count(conn, petition_id, delta, now, Counter::Any)?;
        diesel::update(moderation_batches::table.find(batch_id))
            .set(moderation_batches::affected.eq(affected))
            .execute(conn)?;
        let details = serde_json::json!({
            "batch": batch_id,
            "criteria": described,
            "reason": reason.as_str(),
            "affected": affected,
        });
        audit::record(
            conn,
            Some(user_id),
            Some(petition_id),
            "signatures.bulk_invalidate",
            &details.to_string(),
            now,
        )?;
        Ok((batch_id, affected))
    })
}

/// Reverts a batch: its signatures that are still invalidated by it come back as they were
/// (confirmed and counted, pending, or suspect). 404 for another petition's batch, 409 when
/// already reverted. Returns how many came back.
pub fn revert(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    batch_id: i64,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    write_transaction(conn, |conn| {
        let reverted_at: Option<Option<NaiveDateTime>> = moderation_batches::table
            .filter(moderation_batches::petition_id.eq(petition_id))
            .filter(moderation_batches::id.eq(batch_id))
            .select(moderation_batches::reverted_at)
            .first(conn)
            .optional()?;
        match reverted_at {
            None => {
                return Err(AppError::NotFound(
                    "This petition has no such batch.".to_owned(),
                ))
            }
            Some(Some(_)) => {
                return Err(AppError::Conflict(
                    "This batch has been reverted already.".to_owned(),
                ))
            }
            Some(None) => {}
        }
        let cleared = (
            signatures::invalidated_at.eq(None::<NaiveDateTime>),
            signatures::invalidation_reason.eq(None::<String>),
            signatures::invalidated_by.eq(None::<i64>),
            signatures::moderation_batch_id.eq(None::<i64>),
            signatures::updated_at.eq(now),
        );
        let restored_to: Vec<String> = diesel::update(
            signatures::table
                .filter(signatures::petition_id.eq(petition_id))
                .filter(signatures::moderation_batch_id.eq(batch_id))
                .filter(signatures::status.eq(SignatureStatus::Invalidated.as_str())),
        )
        .set((signatures::status.eq(status_before_invalidation()), cleared))
        .returning(signatures::status)
        .get_results(conn)?;
        let delta = restored_change(restored_to.iter().map(String::as_str));
        adjust_count(conn, petition_id, delta, now, Counter::Any)?;
        diesel::update(moderation_batches::table.find(batch_id))
            .set(moderation_batches::reverted_at.eq(now))
            .execute(conn)?;
        let restored = restored_to.len() as i64;
        let details = serde_json::json!({ "batch": batch_id, "restored": restored });
        audit::record(
            conn,
            Some(user_id),
            Some(petition_id),
            "signatures.bulk_revert",
            &details.to_string(),
            now,
        )?;
        Ok(restored)
    })
}

/// A past batch, for the list on the bulk page.
#[derive(Debug, Clone, Queryable)]
pub struct BatchRow {
    pub id: i64,
    pub criteria: String,
    pub reason: String,
    pub affected: i64,
    pub created_at: NaiveDateTime,
    pub reverted_at: Option<NaiveDateTime>,
    pub user_email: Option<String>,
}

pub fn batches(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<Vec<BatchRow>> {
    use crate::db::schema::users;
    moderation_batches::table
        .left_join(users::table.on(users::id.nullable().eq(moderation_batches::user_id)))
        .filter(moderation_batches::petition_id.eq(petition_id))
        .order(moderation_batches::id.desc())
        .limit(100)
        .select((
            moderation_batches::id,
            moderation_batches::criteria,
            moderation_batches::reason,
            moderation_batches::affected,
            moderation_batches::created_at,
            moderation_batches::reverted_at,
            users::email.nullable(),
        ))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::form::parse_urlencoded;

    fn criteria(query: &str) -> Result<Criteria, String> {
        Criteria::parse(&parse_urlencoded(query.as_bytes()).unwrap())
    }

    #[test]
    fn parses_and_describes_criteria() {
        let parsed = criteria(
            "domain=%40GoogleMail.com&network_of=%2312&from=2026-11-28T10%3A00&to=2026-11-28T11%3A00&country=by&name=bot",
        )
        .unwrap();
        assert_eq!(parsed.domain.as_deref(), Some("gmail.com"));
        assert_eq!(parsed.network_of, Some(12));
        assert_eq!(parsed.country, Some("BY"));
        assert_eq!(
            parsed.describe(),
            "email domain gmail.com; same client network as signature #12; signed from \
             2026-11-28 10:00; signed before 2026-11-28 11:00; country BY; name contains \"bot\""
        );
        for bad in [
            "",
            "domain=",
            "domain=a%20b.org",
            "domain=nodot",
            "network_of=x",
            "from=yesterday",
            "from=2026-11-28T11%3A00&to=2026-11-28T10%3A00",
            "country=XX",
        ] {
            assert!(criteria(bad).is_err(), "{bad} was accepted");
        }
    }
}
