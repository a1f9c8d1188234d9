//! Moderation of a petition's signatures by its organizers: searching them, invalidating them
//! with a reason (and undoing that), and resending a confirmation email.
//!
//! Every change is one write transaction that also adjusts the petition's confirmed counter
//! (only confirmed signatures count) and writes an audit-log row saying who did what and why.
//! Every query is scoped to one petition: an id of another petition's signature never matches.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::counting::{adjust_count, count_change, count_change_of_rows, Counter};
use super::queries::{self, SigningContext};
use crate::core::audit;
use crate::core::countries::COUNTRIES;
use crate::core::email::{EmailAddress, MAX_EMAIL_CHARS};
use crate::core::form::FormFields;
use crate::core::status::SignatureStatus;
use crate::db::schema::{outbox, signatures};
use crate::db::{write_transaction, AnyConnection, MultiBackend};
use crate::error::AppError;
use crate::petitions::Petition;
use crate::safety::encryption::{DataKey, Field};

/// Statuses an organizer can invalidate.
const INVALIDATABLE: &[&str] = &[
    SignatureStatus::Confirmed.as_str(),
    SignatureStatus::Pending.as_str(),
    SignatureStatus::Suspect.as_str(),
];

/// Rows per page of the moderation list.
pub const PAGE_SIZE: i64 = 50;
/// The highest page number accepted (keeps OFFSET arithmetic far from overflowing).
pub const MAX_PAGE: i64 = 1_000_000;
pub const MAX_REASON_CHARS: usize = 500;
/// The most signatures one request may invalidate or restore.
pub const MAX_IDS_PER_REQUEST: usize = 1_000;
const MAX_NAME_QUERY_CHARS: usize = 200;

/// An organizer may resend confirmation emails until a signature has been sent this many in
/// total. The signer's own re-signing stops at [`queries::MAX_CONFIRMATION_EMAILS`] (3), so an
/// organizer can always send at least two more, and a compromised organizer account cannot
/// flood a signer's inbox.
pub const MAX_EMAILS_WITH_RESENDS: i32 = 5;

/// The search of the moderation list, checked. Empty fields mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureFilter {
    /// A case-insensitive substring of the name.
    pub name: Option<String>,
    /// The normalised address (trimmed, lowercased): matched exactly.
    pub email: Option<String>,
    pub country: Option<&'static str>,
    /// Signed on or after this day (UTC).
    pub from: Option<NaiveDate>,
    /// Signed on or before this day (UTC).
    pub to: Option<NaiveDate>,
    pub status: Option<&'static str>,
}

impl SignatureFilter {
    /// Reads `name`, `email`, `country`, `from`, `to` and `status`; other fields are ignored.
    /// The error says which field is wrong and how to write it.
    pub fn parse(fields: &FormFields) -> Result<Self, String> {
        let text = |name: &str| {
            fields
                .get(name)
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        let name = match text("name") {
            Some(name) if name.chars().count() > MAX_NAME_QUERY_CHARS => {
                return Err(format!(
                    "Search for a name of at most {MAX_NAME_QUERY_CHARS} characters."
                ))
            }
            other => other.map(str::to_owned),
        };
        let email = match text("email") {
            Some(email) if email.chars().count() > MAX_EMAIL_CHARS => {
                return Err("That email address is too long to be one.".to_owned())
            }
            other => other.map(str::to_lowercase),
        };
        let country = match text("country") {
            None => None,
            Some(raw) => Some(country_code(raw).ok_or_else(|| {
                format!("{raw:?} is not a country code from the list, e.g. NO or BY.")
            })?),
        };
        let from = text("from").map(|raw| parse_day("from", raw)).transpose()?;
        let to = text("to").map(|raw| parse_day("to", raw)).transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err("The \"from\" day comes after the \"to\" day.".to_owned());
            }
        }
        let status = match text("status") {
            None => None,
            Some(raw) => Some(
                SignatureStatus::parse(raw)
                    .map(SignatureStatus::as_str)
                    .ok_or_else(|| {
                        let known: Vec<&str> =
                            SignatureStatus::ALL.map(SignatureStatus::as_str).to_vec();
                        format!("{raw:?} is not a status; use one of {}.", known.join(", "))
                    })?,
            ),
        };
        Ok(Self {
            name,
            email,
            country,
            from,
            to,
            status,
        })
    }

    /// The filter as a query string (without `?`), with `page` when it is not the first.
    pub fn to_query(&self, page: i64) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(name) = &self.name {
            pairs.push(("name", name.clone()));
        }
        if let Some(email) = &self.email {
            pairs.push(("email", email.clone()));
        }
        if let Some(country) = self.country {
            pairs.push(("country", country.to_owned()));
        }
        if let Some(from) = self.from {
            pairs.push(("from", from.to_string()));
        }
        if let Some(to) = self.to {
            pairs.push(("to", to.to_string()));
        }
        if let Some(status) = self.status {
            pairs.push(("status", status.to_owned()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        pairs
            .iter()
            .map(|(key, value)| format!("{key}={}", encode_query_value(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn country_code(raw: &str) -> Option<&'static str> {
    let code = raw.to_ascii_uppercase();
    COUNTRIES
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(known, _)| *known)
}

fn parse_day(field: &str, raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("Write the \"{field}\" day as YYYY-MM-DD, e.g. 2026-11-28."))
}

/// A page number: a whole number from 1 to [`MAX_PAGE`]; absent or empty means 1.
pub fn parse_page(raw: Option<&str>) -> Result<i64, String> {
    parse_bounded("page", raw, 1, 1, MAX_PAGE)
}

/// A whole number in `min..=max`, or `default` when absent or empty.
pub fn parse_bounded(
    field: &str,
    raw: Option<&str>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, String> {
    let raw = raw.map(str::trim).unwrap_or_default();
    if raw.is_empty() {
        return Ok(default);
    }
    match raw.parse::<i64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!(
            "\"{field}\" must be a whole number from {min} to {max}."
        )),
    }
}

/// Signature ids as sent by a form or a path: positive whole numbers, without repeats.
pub fn parse_ids<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<i64>, String> {
    let mut ids = Vec::new();
    for value in raw {
        let id = parse_id(value)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() > MAX_IDS_PER_REQUEST {
            return Err(format!(
                "Choose at most {MAX_IDS_PER_REQUEST} signatures at a time."
            ));
        }
    }
    Ok(ids)
}

pub fn parse_id(raw: &str) -> Result<i64, String> {
    match raw.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(format!("{raw:?} is not a signature number.")),
    }
}

/// Percent-encodes a query-string value (everything but unreserved characters).
fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Why signatures were invalidated: required, 1 to 500 characters, no invisible characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let reason = raw.trim();
        if reason.is_empty() {
            return Err("Give a reason: it is kept in the audit log.".to_owned());
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(format!(
                "The reason can be at most {MAX_REASON_CHARS} characters long."
            ));
        }
        if reason
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err("The reason contains invisible control characters.".to_owned());
        }
        Ok(Self(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A signature as organizers see it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signatures)]
pub struct SignatureRow {
    pub id: i64,
    pub version_id: i64,
    pub email: String,
    pub name: String,
    pub country: String,
    pub postal_code: Option<String>,
    pub comment: Option<String>,
    pub disclosure: String,
    pub status: String,
    pub confirmation_emails: i32,
    pub created_at: NaiveDateTime,
    pub confirmed_at: Option<NaiveDateTime>,
    pub invalidated_at: Option<NaiveDateTime>,
    pub invalidation_reason: Option<String>,
    pub invalidated_by: Option<i64>,
    /// Why an abuse check held it back (kept after it is accepted).
    pub suspect_reason: Option<String>,
}

impl SignatureRow {
    /// The row with its personal fields decrypted; rows are loaded sealed.
    pub fn opened(mut self, key: &DataKey) -> QueryResult<Self> {
        self.email = key.open(Field::Email, &self.email)?;
        self.name = key.open(Field::Name, &self.name)?;
        self.postal_code = key.open_opt(Field::PostalCode, self.postal_code.as_deref())?;
        self.comment = key.open_opt(Field::Comment, self.comment.as_deref())?;
        Ok(self)
    }
}

/// Decrypts loaded rows.
pub fn opened(rows: Vec<SignatureRow>, key: &DataKey) -> QueryResult<Vec<SignatureRow>> {
    rows.into_iter().map(|row| row.opened(key)).collect()
}

/// The signatures of one petition that match `filter` except for the name (names are
/// encrypted: see [`search`]), as a query to count or to page through.
fn filtered<'a>(
    petition_id: i64,
    key: &DataKey,
    filter: &SignatureFilter,
) -> signatures::BoxedQuery<'a, MultiBackend> {
    let mut query = signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .into_boxed();
    if let Some(email) = &filter.email {
        // Addresses are found through their keyed hash only; something that is not an address
        // matches nothing.
        let email_key = match EmailAddress::parse(email) {
            Ok(address) => key.email_key(&address),
            Err(_) => String::new(),
        };
        query = query.filter(signatures::email_key.eq(email_key));
    }
    if let Some(country) = filter.country {
        query = query.filter(signatures::country.eq(country));
    }
    if let Some(from) = filter.from {
        query = query.filter(signatures::created_at.ge(from.and_time(chrono::NaiveTime::MIN)));
    }
    if let Some(to) = filter.to.and_then(|to| to.succ_opt()) {
        query = query.filter(signatures::created_at.lt(to.and_time(chrono::NaiveTime::MIN)));
    }
    if let Some(wanted) = filter.status {
        query = query.filter(signatures::status.eq(wanted));
    }
    query
}

/// How many rows are decrypted per round trip when searching names.
const NAME_SCAN_CHUNK: i64 = 2_000;

/// The ids and signing times of the rows of `query` whose name contains `needle`, ignoring
/// case, in id order. Names are encrypted with a fresh nonce each, so no index can find them:
/// the rows that pass the other criteria are read in chunks and their names decrypted and
/// compared here (about a second per million signatures; memory holds only the matches).
pub(crate) fn containing_name<'a>(
    conn: &mut AnyConnection,
    key: &DataKey,
    query: impl Fn() -> signatures::BoxedQuery<'a, MultiBackend>,
    needle: &str,
) -> QueryResult<Vec<(i64, NaiveDateTime)>> {
    let needle = needle.to_lowercase();
    let mut found = Vec::new();
    let mut after = 0_i64;
    loop {
        let chunk: Vec<(i64, NaiveDateTime, String)> = query()
            .filter(signatures::id.gt(after))
            .order(signatures::id.asc())
            .limit(NAME_SCAN_CHUNK)
            .select((signatures::id, signatures::created_at, signatures::name))
            .load(conn)?;
        let Some(last) = chunk.last() else {
            break;
        };
        after = last.0;
        for (id, created_at, name) in chunk {
            if key
                .open(Field::Name, &name)?
                .to_lowercase()
                .contains(&needle)
            {
                found.push((id, created_at));
            }
        }
    }
    Ok(found)
}

/// One page of the matching signatures, newest first, and how many match in all.
pub fn search(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition_id: i64,
    filter: &SignatureFilter,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<SignatureRow>, i64)> {
    let offset = (page.max(1) - 1).saturating_mul(per_page);
    let Some(name) = &filter.name else {
        let total: i64 = filtered(petition_id, key, filter)
            .count()
            .get_result(conn)?;
        let rows = filtered(petition_id, key, filter)
            .order((signatures::created_at.desc(), signatures::id.desc()))
            .limit(per_page)
            .offset(offset)
            .select(SignatureRow::as_select())
            .load(conn)?;
        return Ok((opened(rows, key)?, total));
    };
    let mut matches = containing_name(conn, key, || filtered(petition_id, key, filter), name)?;
    // Newest first, as without a name.
    matches.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let page_ids: Vec<i64> = matches
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(per_page).unwrap_or(0))
        .map(|(id, _)| *id)
        .collect();
    let rows = signatures::table
        .filter(signatures::id.eq_any(&page_ids))
        .order((signatures::created_at.desc(), signatures::id.desc()))
        .select(SignatureRow::as_select())
        .load(conn)?;
    Ok((opened(rows, key)?, matches.len() as i64))
}

/// One signature of the petition.
pub fn find(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition_id: i64,
    signature_id: i64,
) -> QueryResult<Option<SignatureRow>> {
    signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::id.eq(signature_id))
        .select(SignatureRow::as_select())
        .first(conn)
        .optional()?
        .map(|row| row.opened(key))
        .transpose()
}

/// Where a signature's latest confirmation email stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailState {
    /// No email was ever queued (e.g. rows imported by hand).
    None,
    /// Waiting in the outbox; `last_error` is set while the worker retries.
    Queued {
        last_error: Option<String>,
    },
    Sent {
        at: NaiveDateTime,
    },
    Failed {
        error: String,
    },
}

/// The confirmation emails of one signature: how many, and the latest one's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSummary {
    pub emails: i64,
    pub latest: EmailState,
}

impl Default for EmailSummary {
    fn default() -> Self {
        Self {
            emails: 0,
            latest: EmailState::None,
        }
    }
}

/// The confirmation emails of the given signatures, from their outbox rows.
pub fn email_summaries(
    conn: &mut AnyConnection,
    signature_ids: &[i64],
) -> QueryResult<HashMap<i64, EmailSummary>> {
    if signature_ids.is_empty() {
        return Ok(HashMap::new());
    }
    type Row = (
        Option<i64>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<String>,
    );
    let rows: Vec<Row> = outbox::table
        .filter(outbox::signature_id.eq_any(signature_ids))
        .filter(outbox::kind.eq("confirmation"))
        .order(outbox::id.asc())
        .select((
            outbox::signature_id,
            outbox::sent_at,
            outbox::failed_at,
            outbox::last_error,
        ))
        .load(conn)?;
    let mut summaries: HashMap<i64, EmailSummary> = HashMap::new();
    for (signature_id, sent_at, failed_at, last_error) in rows {
        let Some(signature_id) = signature_id else {
            continue;
        };
        let summary = summaries.entry(signature_id).or_default();
        summary.emails += 1;
        // Rows come oldest first: the last one seen is the latest email.
        summary.latest = match (sent_at, failed_at) {
            (Some(at), _) => EmailState::Sent { at },
            (None, Some(_)) => EmailState::Failed {
                error: last_error.unwrap_or_else(|| "unknown error".to_owned()),
            },
            (None, None) => EmailState::Queued { last_error },
        };
    }
    Ok(summaries)
}

/// What a moderation action changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The signatures whose status changed (ids that did not apply are left out).
    pub ids: Vec<i64>,
    /// The petition's confirmed count afterwards.
    pub signature_count: i64,
}

fn audit_details(ids: &[i64], reason: Option<&Reason>) -> String {
    let mut details = serde_json::json!({ "ids": ids });
    if let Some(reason) = reason {
        details["reason"] = serde_json::Value::from(reason.as_str());
    }
    details.to_string()
}

/// The statuses of signatures still waiting to count, which invalidating changes in one
/// statement apart from the confirmed ones.
pub(crate) const WAITING: [SignatureStatus; 2] =
    [SignatureStatus::Pending, SignatureStatus::Suspect];

/// Invalidates, inside the caller's transaction, those of `ids` that belong to the petition
/// and are confirmed, pending or suspect. Confirmed ones stop counting at once.
fn apply_invalidation(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    ids: &[i64],
    reason: &Reason,
    now: NaiveDateTime,
) -> QueryResult<Changed> {
    let set = (
        signatures::status.eq(SignatureStatus::Invalidated.as_str()),
        signatures::invalidated_at.eq(now),
        signatures::invalidation_reason.eq(reason.as_str()),
        signatures::invalidated_by.eq(user_id),
        signatures::updated_at.eq(now),
    );
    // Each UPDATE re-checks the status it changes, so a concurrent confirmation (which only
    // changes pending rows) and this can never both count or both uncount one signature.
    let confirmed: Vec<i64> = diesel::update(
        signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::id.eq_any(ids))
            .filter(signatures::status.eq(SignatureStatus::Confirmed.as_str())),
    )
    .set(set)
    .returning(signatures::id)
    .get_results(conn)?;
    let others: Vec<i64> = diesel::update(
        signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::id.eq_any(ids))
            .filter(signatures::status.eq_any(WAITING.map(SignatureStatus::as_str))),
    )
    .set(set)
    .returning(signatures::id)
    .get_results(conn)?;
    let invalidated = SignatureStatus::Invalidated;
    let delta = count_change_of_rows(&[SignatureStatus::Confirmed], invalidated, confirmed.len())
        + count_change_of_rows(&WAITING, invalidated, others.len());
    let signature_count = adjust_count(conn, petition_id, delta, now, Counter::Any)?;
    let mut changed: Vec<i64> = confirmed.into_iter().chain(others).collect();
    changed.sort_unstable();
    if !changed.is_empty() {
        audit::record(
            conn,
            Some(user_id),
            Some(petition_id),
            "signatures.invalidate",
            &audit_details(&changed, Some(reason)),
            now,
        )?;
    }
    Ok(Changed {
        ids: changed,
        signature_count,
    })
}

/// Undoes invalidations, inside the caller's transaction: a signature that had been confirmed
/// counts again, one that had not goes back to pending (its emailed links work again). One
/// that an abuse check had held back goes back to suspect, to be accepted (again) by hand:
/// undoing never makes a signature count that nobody accepted.
/// The status an invalidated signature goes back to when its invalidation is undone: held
/// back when it was suspect, counted when it had been confirmed, otherwise waiting for its
/// confirmation.
pub fn status_before_invalidation(
) -> Box<dyn BoxableExpression<signatures::table, MultiBackend, SqlType = Text>> {
    Box::new(
        case_when(
            signatures::suspect_reason.is_not_null(),
            SignatureStatus::Suspect.as_str().into_sql::<Text>(),
        )
        .when(
            signatures::confirmed_at.is_not_null(),
            SignatureStatus::Confirmed.as_str().into_sql::<Text>(),
        )
        .otherwise(SignatureStatus::Pending.as_str().into_sql::<Text>()),
    )
}

/// How far signatures brought back from invalidated to these statuses (as the UPDATE returned
/// them) move the count.
pub(crate) fn restored_change<'a>(restored_to: impl IntoIterator<Item = &'a str>) -> i64 {
    restored_to
        .into_iter()
        .filter_map(SignatureStatus::parse)
        .map(|to| count_change(SignatureStatus::Invalidated, to))
        .sum()
}

fn apply_restore(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    ids: &[i64],
    now: NaiveDateTime,
) -> QueryResult<Changed> {
    let cleared = (
        signatures::invalidated_at.eq(None::<NaiveDateTime>),
        signatures::invalidation_reason.eq(None::<String>),
        signatures::invalidated_by.eq(None::<i64>),
        signatures::updated_at.eq(now),
    );
    let restored: Vec<(i64, String)> = diesel::update(
        signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::id.eq_any(ids))
            .filter(signatures::status.eq(SignatureStatus::Invalidated.as_str())),
    )
    .set((signatures::status.eq(status_before_invalidation()), cleared))
    .returning((signatures::id, signatures::status))
    .get_results(conn)?;
    let delta = restored_change(restored.iter().map(|(_, restored_to)| restored_to.as_str()));
    let signature_count = adjust_count(conn, petition_id, delta, now, Counter::Any)?;
    let mut changed: Vec<i64> = restored.into_iter().map(|(id, _)| id).collect();
    changed.sort_unstable();
    if !changed.is_empty() {
        audit::record(
            conn,
            Some(user_id),
            Some(petition_id),
            "signatures.restore",
            &audit_details(&changed, None),
            now,
        )?;
    }
    Ok(Changed {
        ids: changed,
        signature_count,
    })
}

/// Invalidates several signatures of a petition in one transaction. Ids of other petitions'
/// signatures, and signatures already invalidated or withdrawn, are left alone.
pub fn invalidate(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    ids: &[i64],
    reason: &Reason,
    now: NaiveDateTime,
) -> QueryResult<Changed> {
    write_transaction(conn, |conn| {
        apply_invalidation(conn, petition_id, user_id, ids, reason, now)
    })
}

/// Undoes the invalidation of several signatures of a petition in one transaction. Signatures
/// that are not invalidated are left alone.
pub fn restore(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    ids: &[i64],
    now: NaiveDateTime,
) -> QueryResult<Changed> {
    write_transaction(conn, |conn| {
        apply_restore(conn, petition_id, user_id, ids, now)
    })
}

/// Accepts suspect signatures of a petition in one transaction: one already confirmed by email
/// becomes confirmed and counts at once, one not yet confirmed becomes pending (its emailed
/// link then confirms and counts it). Other signatures are left alone.
pub fn accept(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    ids: &[i64],
    now: NaiveDateTime,
) -> QueryResult<Changed> {
    write_transaction(conn, |conn| {
        let confirmed: Vec<i64> = diesel::update(
            signatures::table
                .filter(signatures::petition_id.eq(petition_id))
                .filter(signatures::id.eq_any(ids))
                .filter(signatures::status.eq(SignatureStatus::Suspect.as_str()))
                .filter(signatures::confirmed_at.is_not_null()),
        )
        .set((
            signatures::status.eq(SignatureStatus::Confirmed.as_str()),
            signatures::updated_at.eq(now),
        ))
        .returning(signatures::id)
        .get_results(conn)?;
        let pending: Vec<i64> = diesel::update(
            signatures::table
                .filter(signatures::petition_id.eq(petition_id))
                .filter(signatures::id.eq_any(ids))
                .filter(signatures::status.eq(SignatureStatus::Suspect.as_str()))
                .filter(signatures::confirmed_at.is_null()),
        )
        .set((
            signatures::status.eq(SignatureStatus::Pending.as_str()),
            signatures::updated_at.eq(now),
        ))
        .returning(signatures::id)
        .get_results(conn)?;
        let suspect = [SignatureStatus::Suspect];
        let delta = count_change_of_rows(&suspect, SignatureStatus::Confirmed, confirmed.len())
            + count_change_of_rows(&suspect, SignatureStatus::Pending, pending.len());
        let signature_count = adjust_count(conn, petition_id, delta, now, Counter::Any)?;
        let mut changed: Vec<i64> = confirmed.into_iter().chain(pending).collect();
        changed.sort_unstable();
        if !changed.is_empty() {
            audit::record(
                conn,
                Some(user_id),
                Some(petition_id),
                "signatures.accept",
                &audit_details(&changed, None),
                now,
            )?;
        }
        Ok(Changed {
            ids: changed,
            signature_count,
        })
    })
}

fn no_such_signature() -> AppError {
    AppError::NotFound("This petition has no signature with that number.".to_owned())
}

/// Invalidates one signature: 404 when the petition has no such signature, 409 when its
/// status cannot be invalidated. Returns the signature afterwards and the new count.
pub fn invalidate_one(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    signature_id: i64,
    reason: &Reason,
    now: NaiveDateTime,
    key: &DataKey,
) -> Result<(SignatureRow, i64), AppError> {
    write_transaction(conn, |conn| {
        let before = find(conn, key, petition_id, signature_id)?.ok_or_else(no_such_signature)?;
        if !INVALIDATABLE.contains(&before.status.as_str()) {
            return Err(AppError::Conflict(format!(
                "This signature is {}; only confirmed, pending or suspect signatures can be \
                 invalidated.",
                before.status
            )));
        }
        let changed = apply_invalidation(conn, petition_id, user_id, &[signature_id], reason, now)?;
        let after = find(conn, key, petition_id, signature_id)?.ok_or_else(no_such_signature)?;
        Ok((after, changed.signature_count))
    })
}

/// Undoes the invalidation of one signature: 404 when the petition has no such signature,
/// 409 when it is not invalidated.
pub fn restore_one(
    conn: &mut AnyConnection,
    petition_id: i64,
    user_id: i64,
    signature_id: i64,
    now: NaiveDateTime,
    key: &DataKey,
) -> Result<(SignatureRow, i64), AppError> {
    write_transaction(conn, |conn| {
        let before = find(conn, key, petition_id, signature_id)?.ok_or_else(no_such_signature)?;
        if before.status != SignatureStatus::Invalidated.as_str() {
            return Err(AppError::Conflict(format!(
                "This signature is {}, not invalidated: there is nothing to undo.",
                before.status
            )));
        }
        let changed = apply_restore(conn, petition_id, user_id, &[signature_id], now)?;
        let after = find(conn, key, petition_id, signature_id)?.ok_or_else(no_such_signature)?;
        Ok((after, changed.signature_count))
    })
}

/// What a resend needs besides the signature.
pub struct ResendContext<'a> {
    pub petition: &'a Petition,
    pub user_id: i64,
    pub base_url: &'a str,
    pub token_ttl: chrono::Duration,
    pub now: NaiveDateTime,
    pub data_key: &'a DataKey,
}

/// Queues a fresh confirmation email (with a new link; earlier links stay valid) for a pending
/// signature, at an organizer's request. Refused with 409 when the signature is not pending,
/// the petition no longer accepts signatures, an earlier email is still waiting in the outbox,
/// or the signature has had [`MAX_EMAILS_WITH_RESENDS`] emails already.
pub fn resend_confirmation(
    conn: &mut AnyConnection,
    context: &ResendContext<'_>,
    signature_id: i64,
) -> Result<(), AppError> {
    let petition = context.petition;
    let now = context.now;
    write_transaction(conn, |conn| {
        let signature = find(conn, context.data_key, petition.id, signature_id)?
            .ok_or_else(no_such_signature)?;
        if signature.status != SignatureStatus::Pending.as_str() {
            return Err(AppError::Conflict(format!(
                "This signature is {}: only pending signatures are sent confirmation emails.",
                signature.status
            )));
        }
        if !petition.accepts_signatures(now) {
            return Err(AppError::Conflict(
                "This petition no longer accepts signatures, so a confirmation would be refused."
                    .to_owned(),
            ));
        }
        let waiting: bool = diesel::select(diesel::dsl::exists(
            outbox::table
                .filter(outbox::signature_id.eq(signature_id))
                .filter(outbox::sent_at.is_null())
                .filter(outbox::failed_at.is_null()),
        ))
        .get_result(conn)?;
        if waiting {
            return Err(AppError::Conflict(
                "A confirmation email for this signature is still waiting to be sent.".to_owned(),
            ));
        }
        // One statement checks and counts, as for a signer's own re-signing.
        let allowed = diesel::update(
            signatures::table
                .find(signature_id)
                .filter(signatures::status.eq(SignatureStatus::Pending.as_str()))
                .filter(signatures::confirmation_emails.lt(MAX_EMAILS_WITH_RESENDS)),
        )
        .set((
            signatures::confirmation_emails.eq(signatures::confirmation_emails + 1),
            signatures::updated_at.eq(now),
        ))
        .execute(conn)?;
        if allowed != 1 {
            return Err(AppError::Conflict(format!(
                "This signer has been sent {} confirmation emails, the most we send.",
                signature.confirmation_emails
            )));
        }
        let signing = SigningContext {
            petition,
            version_id: signature.version_id,
            base_url: context.base_url,
            token_ttl: context.token_ttl,
            now,
            data_key: context.data_key,
        };
        queries::queue_confirmation(
            conn,
            &signing,
            signature_id,
            &signature.name,
            &signature.email,
        )?;
        audit::record(
            conn,
            Some(context.user_id),
            Some(petition.id),
            "signature.resend_confirmation",
            &audit_details(&[signature_id], None),
            now,
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::form::parse_urlencoded;

    fn filter(query: &str) -> Result<SignatureFilter, String> {
        SignatureFilter::parse(&parse_urlencoded(query.as_bytes()).unwrap())
    }

    #[test]
    fn parses_filters_and_writes_them_back() {
        let parsed = filter(
            "name=+Ana+&email=Ana%40Example.org&country=no&from=2026-11-01&to=2026-11-30&status=pending&x=y",
        )
        .unwrap();
        assert_eq!(parsed.name.as_deref(), Some("Ana"));
        assert_eq!(parsed.email.as_deref(), Some("ana@example.org"));
        assert_eq!(parsed.country, Some("NO"));
        assert_eq!(parsed.status, Some(SignatureStatus::Pending.as_str()));
        assert_eq!(
            parsed.to_query(2),
            "name=Ana&email=ana%40example.org&country=NO&from=2026-11-01&to=2026-11-30\
             &status=pending&page=2"
        );
        assert_eq!(filter(&parsed.to_query(1)).unwrap(), parsed);
        assert_eq!(
            filter("name=&country=").unwrap(),
            SignatureFilter::default()
        );
    }

    #[test]
    fn refuses_bad_filters() {
        for bad in [
            "country=XX",
            "from=2026-13-01",
            "to=yesterday",
            "from=2026-11-02&to=2026-11-01",
            "status=deleted",
        ] {
            assert!(filter(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn checks_pages_ids_and_reasons() {
        assert_eq!(parse_page(None), Ok(1));
        assert_eq!(parse_page(Some("3")), Ok(3));
        for bad in ["0", "-1", "x", "1.5", "99999999999999999999"] {
            assert!(parse_page(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(parse_ids(["3", "1", "3"]), Ok(vec![3, 1]));
        assert!(parse_ids(["1", "abc"]).is_err());
        assert!(parse_ids(["0"]).is_err());
        assert!(Reason::parse("  ").is_err());
        assert!(Reason::parse(&"x".repeat(501)).is_err());
        assert!(Reason::parse("bad\u{7}").is_err());
        assert_eq!(Reason::parse(" duplicate ").unwrap().as_str(), "duplicate");
    }
}
