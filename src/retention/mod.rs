//! Keep only what is needed: the retention rules, run daily by every server instance and by
//! hand with `undersign purge [--dry-run]`.
//!
//! 1. Unconfirmed signatures (pending, and suspect ones never confirmed) older than
//!    `UNDERSIGN_RETAIN_UNCONFIRMED_DAYS` are deleted with their confirmation links and emails.
//!    They never counted, so no counter changes.
//! 2. For petitions delivered or closed more than `UNDERSIGN_RETAIN_AFTER_CLOSE_DAYS` ago:
//!    email addresses are replaced by a placeholder `erased:<id>` (unique, so the unique index
//!    holds), except for signers who asked to hear about the outcome (`wants_updates`); and
//!    signatures whose signer chose "count only" lose their name, postal code and comment,
//!    which nothing ever shows.
//! 3. Client address hashes older than 7 days are erased, and the daily keys older than 7 days
//!    deleted (without its key a hash cannot be matched to anything).
//! 4. Sent (and finally failed) emails older than 30 days are deleted: their payloads hold
//!    names and links.
//!
//! Every rule runs in one write transaction; a dry run runs the same statements and rolls them
//! back, so its counts are exactly what a real run would remove. A run that changes anything
//! writes one audit entry with the counts (and nothing else).

use std::fmt;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::watch;

use crate::config::RetentionSettings;
use crate::core::audit;
use crate::core::status::PetitionStatus;
use crate::core::status::{Disclosure, SignatureStatus};
use crate::db::schema::{
    client_keys, confirmation_tokens, deliveries, outbox, petitions, signatures,
};
use crate::db::{write_transaction, AnyConnection, DbPool};

/// Client address hashes and their daily keys are kept this long.
pub const CLIENT_HASH_DAYS: i64 = 7;
/// Sent and failed emails are kept this long (for the dashboard's email health).
pub const SENT_EMAIL_DAYS: i64 = 30;
/// How often the server runs the rules.
pub const INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// What one run removed (or, in a dry run, would remove), per rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub unconfirmed_deleted: usize,
    pub emails_erased: usize,
    pub names_erased: usize,
    pub client_hashes_erased: usize,
    pub client_keys_deleted: usize,
    pub emails_sent_deleted: usize,
}

impl PurgeReport {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Counts only, for the audit log and the server log.
    pub fn summary(&self) -> String {
        format!(
            "unconfirmed signatures deleted {}; email addresses erased {}; count-only names erased {}; \
             client hashes erased {}; client keys deleted {}; old emails deleted {}",
            self.unconfirmed_deleted,
            self.emails_erased,
            self.names_erased,
            self.client_hashes_erased,
            self.client_keys_deleted,
            self.emails_sent_deleted,
        )
    }
}

impl fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = [
            (self.unconfirmed_deleted, "unconfirmed signatures deleted"),
            (
                self.emails_erased,
                "email addresses erased (petitions ended long ago)",
            ),
            (self.names_erased, "names of count-only signatures erased"),
            (self.client_hashes_erased, "client address hashes erased"),
            (self.client_keys_deleted, "daily client keys deleted"),
            (
                self.emails_sent_deleted,
                "old sent or failed emails deleted",
            ),
        ];
        for (count, what) in lines {
            writeln!(f, "{count:>8}  {what}")?;
        }
        Ok(())
    }
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

/// The petitions that ended (closed, by hand or by date, or delivered) before `cutoff`.
fn ended_before(conn: &mut AnyConnection, cutoff: NaiveDateTime) -> QueryResult<Vec<i64>> {
    let rows: Vec<(i64, String, Option<NaiveDateTime>)> = petitions::table
        .filter(petitions::status.ne(PetitionStatus::Draft.as_str()))
        .select((petitions::id, petitions::status, petitions::closes_at))
        .load(conn)?;
    let delivered: Vec<(i64, NaiveDateTime)> = deliveries::table
        .select((deliveries::petition_id, deliveries::created_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(id, state, closes_at)| {
            // `closes_at` is the first closed moment, whether set by date or by hand.
            let closed =
                closes_at.is_some_and(|at| at < cutoff) && state != PetitionStatus::Draft.as_str();
            let delivered = state == PetitionStatus::Delivered.as_str()
                && delivered
                    .iter()
                    .any(|(petition, at)| petition == id && *at < cutoff);
            closed || delivered
        })
        .map(|(id, _, _)| id)
        .collect())
}

fn run_rules(
    conn: &mut AnyConnection,
    settings: &RetentionSettings,
    now: NaiveDateTime,
) -> QueryResult<PurgeReport> {
    let mut report = PurgeReport::default();

    // 1. Unconfirmed signatures.
    let stale = now - days(settings.unconfirmed_days);
    let unconfirmed = signatures::table
        .filter(signatures::status.eq_any([
            SignatureStatus::Pending.as_str(),
            SignatureStatus::Suspect.as_str(),
        ]))
        .filter(signatures::confirmed_at.is_null())
        .filter(signatures::created_at.lt(stale))
        .select(signatures::id);
    let ids: Vec<i64> = unconfirmed.load(conn)?;
    for chunk in ids.chunks(500) {
        diesel::delete(outbox::table.filter(outbox::signature_id.eq_any(chunk))).execute(conn)?;
        diesel::delete(
            confirmation_tokens::table.filter(confirmation_tokens::signature_id.eq_any(chunk)),
        )
        .execute(conn)?;
        report.unconfirmed_deleted +=
            diesel::delete(signatures::table.filter(signatures::id.eq_any(chunk))).execute(conn)?;
    }

    // 2. Petitions that ended long ago.
    for petition_id in ended_before(conn, now - days(settings.after_close_days))? {
        // The placeholder is built by the database: one statement for the whole petition.
        report.emails_erased += diesel::sql_query(
            "UPDATE signatures SET email = 'erased:' || CAST(id AS TEXT), \
             email_key = 'erased:' || CAST(id AS TEXT), updated_at = $1 \
             WHERE petition_id = $2 AND wants_updates = FALSE \
             AND email NOT LIKE 'erased:%' AND email NOT LIKE 'withdrawn:%'",
        )
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(petition_id)
        .execute(conn)?;
        report.names_erased += diesel::update(
            signatures::table
                .filter(signatures::petition_id.eq(petition_id))
                .filter(signatures::disclosure.eq(Disclosure::CountOnly.as_str()))
                .filter(
                    signatures::name
                        .ne("")
                        .or(signatures::postal_code.is_not_null())
                        .or(signatures::comment.is_not_null()),
                ),
        )
        .set((
            signatures::name.eq(""),
            signatures::postal_code.eq(None::<String>),
            signatures::comment.eq(None::<String>),
            signatures::updated_at.eq(now),
        ))
        .execute(conn)?;
    }

    // 3. Client address hashes and their keys. The signing event a signature was vouched by
    // says where its signer was just as much; its window (at most 7 days) has ended by then.
    let hash_cutoff = now - days(CLIENT_HASH_DAYS);
    report.client_hashes_erased = diesel::update(
        signatures::table
            .filter(
                signatures::client_hash
                    .is_not_null()
                    .or(signatures::signing_event_id.is_not_null()),
            )
            .filter(signatures::created_at.lt(hash_cutoff)),
    )
    .set((
        signatures::client_hash.eq(None::<String>),
        signatures::signing_event_id.eq(None::<i64>),
    ))
    .execute(conn)?;
    report.client_keys_deleted =
        diesel::delete(client_keys::table.filter(client_keys::created_at.lt(hash_cutoff)))
            .execute(conn)?;

    // 4. Old emails.
    let sent_cutoff = now - days(SENT_EMAIL_DAYS);
    report.emails_sent_deleted = diesel::delete(
        outbox::table.filter(
            outbox::sent_at
                .lt(sent_cutoff)
                .or(outbox::failed_at.lt(sent_cutoff)),
        ),
    )
    .execute(conn)?;

    if !report.is_empty() {
        audit::record(conn, None, None, "retention.purge", &report.summary(), now)?;
    }
    Ok(report)
}

/// Runs the rules. With `dry_run`, counts what they would remove and changes nothing.
pub fn purge(
    conn: &mut AnyConnection,
    settings: &RetentionSettings,
    now: NaiveDateTime,
    dry_run: bool,
) -> QueryResult<PurgeReport> {
    let mut counted = None;
    let result = write_transaction(conn, |conn| {
        let report = run_rules(conn, settings, now)?;
        if dry_run {
            counted = Some(report);
            return Err(diesel::result::Error::RollbackTransaction);
        }
        Ok(report)
    });
    match (result, counted) {
        (Err(diesel::result::Error::RollbackTransaction), Some(report)) => Ok(report),
        (result, _) => result,
    }
}

/// The server's daily run, until `stop` turns true. The first run is at start-up.
pub async fn run(pool: DbPool, settings: RetentionSettings, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let pool = pool.clone();
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<PurgeReport> {
            let mut conn = pool.get()?;
            Ok(purge(
                &mut conn,
                &settings,
                crate::core::clock::now(),
                false,
            )?)
        })
        .await;
        match result {
            Ok(Ok(report)) if report.is_empty() => {}
            Ok(Ok(report)) => log::info!("retention: {}", report.summary()),
            Ok(Err(error)) => log::warn!("retention: {error:#}"),
            Err(error) => log::warn!("retention: the task failed: {error}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// `undersign purge [--dry-run]`.
pub fn command(settings: &crate::config::Settings, dry_run: bool) -> anyhow::Result<()> {
    let pool = crate::db::open_existing(&settings.database_url, 1)?;
    let mut conn = pool.get()?;
    let report = purge(
        &mut conn,
        &settings.retention,
        crate::core::clock::now(),
        dry_run,
    )?;
    if dry_run {
        println!("Dry run: nothing was changed. A purge now would remove:");
    } else {
        println!("Removed:");
    }
    print!("{report}");
    Ok(())
}
