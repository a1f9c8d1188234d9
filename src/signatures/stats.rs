//! Figures for the organizers' dashboard: confirmed signatures per day and per country, the
//! latest signatures, and the health of a petition's confirmation emails.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::moderation::SignatureRow;
use crate::core::status::SignatureStatus;
use crate::db::schema::{outbox, signatures};
use crate::db::{backend, AnyConnection};
use crate::safety::encryption::DataKey;

/// Confirmed signatures per day of confirmation (UTC), oldest day first; days without any are
/// left out.
pub fn confirmed_per_day(
    conn: &mut AnyConnection,
    petition_id: i64,
) -> QueryResult<Vec<(NaiveDate, i64)>> {
    let mut days = Vec::new();
    for (day, count) in backend::confirmed_per_day(conn, petition_id)? {
        let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|e| {
            diesel::result::Error::DeserializationError(
                format!("unexpected day {day:?} from the database: {e}").into(),
            )
        })?;
        days.push((day, count));
    }
    days.sort_unstable();
    Ok(days)
}

/// Confirmed signatures per country code, most first (ties by code).
pub fn confirmed_by_country(
    conn: &mut AnyConnection,
    petition_id: i64,
) -> QueryResult<Vec<(String, i64)>> {
    let mut countries: Vec<(String, i64)> = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::status.eq(SignatureStatus::Confirmed.as_str()))
        .group_by(signatures::country)
        .select((signatures::country, diesel::dsl::count_star()))
        .load(conn)?;
    countries.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(countries)
}

/// The newest signatures of a petition, whatever their status.
pub fn latest(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition_id: i64,
    limit: i64,
) -> QueryResult<Vec<SignatureRow>> {
    let rows = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .order((signatures::created_at.desc(), signatures::id.desc()))
        .limit(limit)
        .select(SignatureRow::as_select())
        .load(conn)?;
    super::moderation::opened(rows, key)
}

/// The state of a petition's emails in the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxHealth {
    /// Not sent yet (including those being retried).
    pub queued: i64,
    pub sent: i64,
    /// Given up on after the last retry.
    pub failed: i64,
    /// The error of the most recent email that has one (retrying or failed).
    pub last_error: Option<String>,
}

pub fn outbox_health(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<OutboxHealth> {
    let queued = outbox::table
        .inner_join(signatures::table)
        .filter(signatures::petition_id.eq(petition_id))
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result(conn)?;
    let sent = outbox::table
        .inner_join(signatures::table)
        .filter(signatures::petition_id.eq(petition_id))
        .filter(outbox::sent_at.is_not_null())
        .count()
        .get_result(conn)?;
    let failed = outbox::table
        .inner_join(signatures::table)
        .filter(signatures::petition_id.eq(petition_id))
        .filter(outbox::failed_at.is_not_null())
        .count()
        .get_result(conn)?;
    let last_error = outbox::table
        .inner_join(signatures::table)
        .filter(signatures::petition_id.eq(petition_id))
        .filter(outbox::last_error.is_not_null())
        .order(outbox::id.desc())
        .select(outbox::last_error)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    Ok(OutboxHealth {
        queued,
        sent,
        failed,
        last_error,
    })
}
