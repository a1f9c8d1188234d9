//! Withdrawal: every email to a signer carries a link to `/withdraw/{token}`
//! (`core::withdrawal_link`, `web::public::withdraw`), which withdraws in one transaction.
//!
//! Withdrawing keeps the row (counts, earlier bundles and receipts stay explainable) but erases
//! everything personal: the name becomes empty, the email address and its duplicate key a
//! placeholder `withdrawn:<id>` (unique, so the unique index holds and the same address can
//! sign again), postal code, comment, client hash, signing event and receipt salt are
//! cleared. The commitment
//! stays: without the salt it reveals nothing, and earlier bundles still verify.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::counting::{adjust_count, count_change, counts, Counter};
use crate::core::audit;
use crate::core::status::SignatureStatus;
use crate::db::schema::{confirmation_tokens, outbox, petitions, signatures};
use crate::db::{write_transaction, AnyConnection};

/// The placeholder that replaces an erased email address (and its duplicate key): unique per
/// signature and not personal.
pub fn erased_email(signature_id: i64) -> String {
    format!("withdrawn:{signature_id}")
}

/// What a withdrawal link finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The signature, not withdrawn yet: its petition and whether it counts now.
    Active {
        slug: String,
        title: String,
        counted: bool,
    },
    AlreadyWithdrawn {
        slug: String,
        title: String,
    },
}

pub fn look_up(conn: &mut AnyConnection, signature_id: i64) -> QueryResult<Option<Found>> {
    let row: Option<(String, String, String)> = signatures::table
        .inner_join(petitions::table)
        .filter(signatures::id.eq(signature_id))
        .select((signatures::status, petitions::slug, petitions::title))
        .first(conn)
        .optional()?;
    Ok(row.map(|(state, slug, title)| {
        if state == SignatureStatus::Withdrawn.as_str() {
            Found::AlreadyWithdrawn { slug, title }
        } else {
            Found::Active {
                slug,
                title,
                counted: SignatureStatus::parse(&state).is_some_and(counts),
            }
        }
    }))
}

/// Withdraws a signature in one write transaction: erases its personal fields, uncounts it if
/// it counted, drops its queued and sent emails (they hold the address, the name and links)
/// and its confirmation links, and writes an audit entry naming only the id. Returns what was
/// found before; withdrawing twice changes nothing the second time.
pub fn withdraw(
    conn: &mut AnyConnection,
    signature_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Option<Found>> {
    write_transaction(conn, |conn| {
        let Some(found) = look_up(conn, signature_id)? else {
            return Ok(None);
        };
        if matches!(found, Found::AlreadyWithdrawn { .. }) {
            return Ok(Some(found));
        }
        let (petition_id, state): (i64, String) = signatures::table
            .find(signature_id)
            .select((signatures::petition_id, signatures::status))
            .first(conn)?;
        let placeholder = erased_email(signature_id);
        // The status condition makes a concurrent second withdrawal (or a confirmation racing
        // this one on PostgreSQL) change nothing twice.
        let changed = diesel::update(
            signatures::table
                .find(signature_id)
                .filter(signatures::status.eq(&state)),
        )
        .set((
            signatures::status.eq(SignatureStatus::Withdrawn.as_str()),
            signatures::withdrawn_at.eq(now),
            signatures::updated_at.eq(now),
            signatures::name.eq(""),
            signatures::email.eq(&placeholder),
            signatures::email_key.eq(&placeholder),
            signatures::postal_code.eq(None::<String>),
            signatures::comment.eq(None::<String>),
            signatures::client_hash.eq(None::<String>),
            // Which event vouched for it says where its signer was, as the client hash does.
            signatures::signing_event_id.eq(None::<i64>),
            signatures::receipt_salt.eq(None::<String>),
            signatures::wants_updates.eq(false),
        ))
        .execute(conn)?;
        if changed != 1 {
            return Err(diesel::result::Error::RollbackTransaction);
        }
        let delta = SignatureStatus::parse(&state)
            .map_or(0, |from| count_change(from, SignatureStatus::Withdrawn));
        // Nothing to write for one that did not count.
        if delta != 0 {
            adjust_count(conn, petition_id, delta, now, Counter::Any)?;
        }
        // Its confirmation and receipt emails, queued or sent.
        diesel::delete(outbox::table.filter(outbox::signature_id.eq(signature_id)))
            .execute(conn)?;
        diesel::delete(
            confirmation_tokens::table.filter(confirmation_tokens::signature_id.eq(signature_id)),
        )
        .execute(conn)?;
        audit::record(
            conn,
            None,
            Some(petition_id),
            "signature.withdraw",
            &format!("signature {signature_id} withdrawn by its signer"),
            now,
        )?;
        Ok(Some(found))
    })
}
