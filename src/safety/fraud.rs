//! The fraud report of a petition: how many signatures each abuse check held back, how many
//! organizers invalidated by hand or in bulk, and the held-back ones per hour over the last
//! 48 hours.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;

use super::reason;
use crate::core::status::SignatureStatus;
use crate::db::schema::signatures;
use crate::db::AnyConnection;

pub const HOURS: i64 = 48;

/// Counts per reason. A held-back signature keeps its reason after it is accepted or
/// invalidated, so these count everything the checks caught.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReasonCounts {
    pub limited: i64,
    pub honeypot: i64,
    pub too_fast: i64,
    pub disposable: i64,
}

impl ReasonCounts {
    fn add(&mut self, found: &str, n: i64) {
        match found {
            reason::LIMITED => self.limited += n,
            reason::HONEYPOT => self.honeypot += n,
            reason::TOO_FAST => self.too_fast += n,
            reason::DISPOSABLE => self.disposable += n,
            _ => {}
        }
    }

    pub fn total(&self) -> i64 {
        self.limited + self.honeypot + self.too_fast + self.disposable
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FraudReport {
    pub held_back: ReasonCounts,
    /// Held back and still waiting for an organizer.
    pub still_suspect: i64,
    /// Those still waiting, by reason.
    pub waiting: ReasonCounts,
    pub invalidated_by_hand: i64,
    pub invalidated_in_bulk: i64,
    /// Hours (start, UTC) of the last 48 that had held-back signatures, oldest first.
    pub hours: Vec<(NaiveDateTime, ReasonCounts)>,
}

pub fn report(
    conn: &mut AnyConnection,
    petition_id: i64,
    now: NaiveDateTime,
) -> QueryResult<FraudReport> {
    let mut report = FraudReport::default();
    let by_reason: Vec<(Option<String>, i64)> = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::suspect_reason.is_not_null())
        .group_by(signatures::suspect_reason)
        .select((signatures::suspect_reason, diesel::dsl::count_star()))
        .load(conn)?;
    for (found, n) in by_reason {
        report
            .held_back
            .add(found.as_deref().unwrap_or_default(), n);
    }
    let waiting: Vec<(Option<String>, i64)> = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::status.eq(SignatureStatus::Suspect.as_str()))
        .group_by(signatures::suspect_reason)
        .select((signatures::suspect_reason, diesel::dsl::count_star()))
        .load(conn)?;
    for (found, n) in waiting {
        report.still_suspect += n;
        report.waiting.add(found.as_deref().unwrap_or_default(), n);
    }
    report.invalidated_by_hand = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::status.eq(SignatureStatus::Invalidated.as_str()))
        .filter(signatures::moderation_batch_id.is_null())
        .count()
        .get_result(conn)?;
    report.invalidated_in_bulk = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::status.eq(SignatureStatus::Invalidated.as_str()))
        .filter(signatures::moderation_batch_id.is_not_null())
        .count()
        .get_result(conn)?;
    // Bucketed here rather than in SQL: date functions differ between the backends, and 48
    // hours of held-back signatures are few enough to read.
    let since = now - chrono::Duration::hours(HOURS);
    let recent: Vec<(NaiveDateTime, Option<String>)> = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::suspect_reason.is_not_null())
        .filter(signatures::created_at.gt(since))
        .select((signatures::created_at, signatures::suspect_reason))
        .load(conn)?;
    let mut hours: BTreeMap<NaiveDateTime, ReasonCounts> = BTreeMap::new();
    for (at, found) in recent {
        let hour = at.date().and_hms_opt(at.hour(), 0, 0).unwrap_or(at);
        hours
            .entry(hour)
            .or_default()
            .add(found.as_deref().unwrap_or_default(), 1);
    }
    report.hours = hours.into_iter().collect();
    Ok(report)
}
