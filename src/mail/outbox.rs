//! The outbox table: emails queued in the same transaction as the change that causes them,
//! claimed by workers under a lease so that several workers or instances never send one
//! message twice, and marked sent, rescheduled or failed.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::messages::OutgoingEmail;
use crate::db::backend::insert_in_chunks;
use crate::db::schema::outbox;
use crate::db::{write_transaction, AnyConnection};
use crate::safety::encryption::{DataKey, Field};

/// A claimed email, its recipient and payload decrypted. Loaded from the claim's RETURNING
/// columns, which list these fields in this order.
#[derive(Debug, Clone, Queryable)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub payload: String,
    pub attempts: i32,
}

/// Queues an email; its recipient and payload (names, links) are stored encrypted.
pub fn enqueue(
    conn: &mut AnyConnection,
    key: &DataKey,
    email: &OutgoingEmail,
    recipient: &str,
    signature_id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(outbox::table)
        .values(new_row(key, email, recipient, signature_id, now))
        .execute(conn)?;
    Ok(())
}

type NewRow = (
    diesel::dsl::Eq<outbox::kind, &'static str>,
    diesel::dsl::Eq<outbox::recipient, String>,
    diesel::dsl::Eq<outbox::payload, String>,
    diesel::dsl::Eq<outbox::signature_id, Option<i64>>,
    diesel::dsl::Eq<outbox::attempts, i32>,
    diesel::dsl::Eq<outbox::next_attempt_at, NaiveDateTime>,
    diesel::dsl::Eq<outbox::created_at, NaiveDateTime>,
);

/// A queued email's row, its recipient and payload sealed.
fn new_row(
    key: &DataKey,
    email: &OutgoingEmail,
    recipient: &str,
    signature_id: Option<i64>,
    now: NaiveDateTime,
) -> NewRow {
    (
        outbox::kind.eq(email.kind()),
        outbox::recipient.eq(key.seal(Field::OutboxRecipient, recipient)),
        outbox::payload.eq(key.seal(Field::OutboxPayload, &email.payload())),
        outbox::signature_id.eq(signature_id),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(now),
        outbox::created_at.eq(now),
    )
}

/// An email to queue with [`enqueue_many`].
pub struct Queued<'a> {
    pub email: OutgoingEmail,
    pub recipient: &'a str,
    pub signature_id: Option<i64>,
}

/// Queues many emails with one statement (the signature writer's batches), each sealed as
/// [`enqueue`] does.
pub fn enqueue_many(
    conn: &mut AnyConnection,
    key: &DataKey,
    emails: &[Queued<'_>],
    now: NaiveDateTime,
) -> QueryResult<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewRow> = emails
        .iter()
        .map(|queued| {
            new_row(
                key,
                &queued.email,
                queued.recipient,
                queued.signature_id,
                now,
            )
        })
        .collect();
    insert_in_chunks!(conn, rows, |inner, chunk| diesel::insert_into(
        outbox::table
    )
    .values(chunk)
    .execute(inner))?;
    Ok(())
}

/// Reserves up to `limit` due emails for `claim_id` until `lease_until` and returns them,
/// decrypted. One that does not decrypt is marked failed at once rather than retried forever.
pub fn claim(
    conn: &mut AnyConnection,
    key: &DataKey,
    claim_id: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    // Unsent, not given up, due, and leased to no worker (or its lease ran out).
    let still_due = move || {
        outbox::sent_at
            .is_null()
            .and(outbox::failed_at.is_null())
            .and(outbox::next_attempt_at.le(now))
            .and(
                outbox::locked_until
                    .is_null()
                    .or(outbox::locked_until.lt(now)),
            )
    };
    write_transaction(conn, |conn| {
        let due: Vec<i64> = outbox::table
            .filter(still_due())
            .order(outbox::id.asc())
            .limit(limit)
            .select(outbox::id)
            .load(conn)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        // The due conditions are repeated in the UPDATE: on PostgreSQL a competing worker that
        // selected the same rows waits for our row locks, re-checks them and claims nothing.
        // RETURNING gives back exactly the rows this claim took, found by their ids; selecting
        // them by `claim_id` afterwards read the whole table once per claim (no index has that
        // column; BENCHMARKS.md, "Design measurements").
        // The order of RETURNING rows is not promised: sorted below, oldest first.
        let mut sealed: Vec<OutboxRow> = diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(&due))
                .filter(still_due()),
        )
        .set((
            outbox::locked_until.eq(lease_until),
            outbox::claim_id.eq(claim_id),
        ))
        .returning((
            outbox::id,
            outbox::kind,
            outbox::recipient,
            outbox::payload,
            outbox::attempts,
        ))
        .get_results(conn)?;
        sealed.sort_unstable_by_key(|row| row.id);
        let mut claimed = Vec::with_capacity(sealed.len());
        for mut row in sealed {
            match (
                key.open(Field::OutboxRecipient, &row.recipient),
                key.open(Field::OutboxPayload, &row.payload),
            ) {
                (Ok(recipient), Ok(payload)) => {
                    row.recipient = recipient;
                    row.payload = payload;
                    claimed.push(row);
                }
                (Err(error), _) | (_, Err(error)) => {
                    log::error!("outbox: email {} cannot be read: {error}", row.id);
                    diesel::update(outbox::table.find(row.id))
                        .set((
                            outbox::failed_at.eq(now),
                            outbox::locked_until.eq(None::<NaiveDateTime>),
                            outbox::last_error.eq(error.to_string()),
                        ))
                        .execute(conn)?;
                }
            }
        }
        Ok(claimed)
    })
}

/// The result of one delivery attempt.
#[derive(Debug)]
pub enum Delivery {
    Sent,
    /// Try again at the given time.
    Retry {
        at: NaiveDateTime,
        error: String,
    },
    Failed {
        error: String,
    },
    /// Not attempted: the lease was running out before a connection was free. Released for
    /// the next claim, without counting an attempt.
    Released,
}

/// Records the results of a claimed batch in one transaction: one UPDATE for all the emails
/// sent and one for all released (per-row UPDATEs made the worker wait on the database),
/// one per retry or failure, which are rare and carry their own error. Rows whose lease was
/// lost to another worker (their `claim_id` changed) are left alone.
pub fn record(
    conn: &mut AnyConnection,
    claim_id: &str,
    results: &[(OutboxRow, Delivery)],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let ids = |wanted: fn(&Delivery) -> bool| -> Vec<i64> {
        results
            .iter()
            .filter(|(_, delivery)| wanted(delivery))
            .map(|(row, _)| row.id)
            .collect()
    };
    let sent = ids(|d| matches!(d, Delivery::Sent));
    let released = ids(|d| matches!(d, Delivery::Released));
    write_transaction(conn, |conn| {
        let release = outbox::locked_until.eq(None::<NaiveDateTime>);
        let attempts = outbox::attempts.eq(outbox::attempts + 1);
        if !sent.is_empty() {
            diesel::update(
                outbox::table
                    .filter(outbox::id.eq_any(&sent))
                    .filter(outbox::claim_id.eq(claim_id)),
            )
            .set((
                attempts,
                release,
                outbox::sent_at.eq(now),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        }
        if !released.is_empty() {
            diesel::update(
                outbox::table
                    .filter(outbox::id.eq_any(&released))
                    .filter(outbox::claim_id.eq(claim_id)),
            )
            .set(release)
            .execute(conn)?;
        }
        for (row, delivery) in results {
            let ours = outbox::table
                .filter(outbox::id.eq(row.id))
                .filter(outbox::claim_id.eq(claim_id));
            match delivery {
                Delivery::Sent | Delivery::Released => {}
                Delivery::Retry { at, error } => {
                    diesel::update(ours)
                        .set((
                            attempts,
                            release,
                            outbox::next_attempt_at.eq(at),
                            outbox::last_error.eq(error),
                        ))
                        .execute(conn)?;
                }
                Delivery::Failed { error } => {
                    diesel::update(ours)
                        .set((
                            attempts,
                            release,
                            outbox::failed_at.eq(now),
                            outbox::last_error.eq(error),
                        ))
                        .execute(conn)?;
                }
            }
        }
        Ok(())
    })
}

/// Marks emails sent, each only while the claim that sent it still holds it (a row whose lease
/// was lost to another claim is left alone, as in [`record`]): one UPDATE per claim, all in one
/// transaction. The worker calls it within milliseconds of the SMTP server accepting each email
/// (see `worker::RECORD_EVERY`), so that a crash sends almost none of them again.
pub fn record_sent(
    conn: &mut AnyConnection,
    sent: &[(&str, &[i64])],
    now: NaiveDateTime,
) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        for (claim_id, ids) in sent {
            diesel::update(
                outbox::table
                    .filter(outbox::id.eq_any(*ids))
                    .filter(outbox::claim_id.eq(*claim_id)),
            )
            .set((
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::locked_until.eq(None::<NaiveDateTime>),
                outbox::sent_at.eq(now),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        }
        Ok(())
    })
}

/// Counts for health checks and the dashboard: (queued, sent, failed).
pub fn counts(conn: &mut AnyConnection) -> QueryResult<(i64, i64, i64)> {
    let queued = outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result(conn)?;
    let sent = outbox::table
        .filter(outbox::sent_at.is_not_null())
        .count()
        .get_result(conn)?;
    let failed = outbox::table
        .filter(outbox::failed_at.is_not_null())
        .count()
        .get_result(conn)?;
    Ok((queued, sent, failed))
}
