//! Storing signatures and confirming them. Each public action is one write transaction that
//! also writes its durable effects (confirmation emails in the outbox, the petition's counter).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::domain::NewSignature;
use super::tokens::ConfirmationToken;
use crate::config::AbuseSettings;
use crate::db::schema::{confirmation_tokens, petition_versions, petitions, signatures};
use crate::db::{is_lost_race, write_transaction, AnyConnection};
use crate::delivery::commitment::{self, CommittedSignature, Salt};
use crate::delivery::to_hex;
use crate::error::AppError;
use crate::mail::messages::{ConfirmationEmail, OutgoingEmail, ReceiptEmail};
use crate::mail::outbox;
use crate::petitions::{Petition, PetitionStatus};
use crate::safety::encryption::{DataKey, Field};
use crate::safety::{limits, reason};

/// A signer gets at most this many confirmation emails for one signature.
pub const MAX_CONFIRMATION_EMAILS: i32 = 3;

pub mod status {
    pub const PENDING: &str = "pending";
    pub const CONFIRMED: &str = "confirmed";
    /// Held back by an abuse check: confirmable as usual, but counted only once an organizer
    /// accepts it.
    pub const SUSPECT: &str = "suspect";
}

/// What the abuse checks decided or need inside the signing transaction.
#[derive(Debug, Default)]
pub struct Screening<'a> {
    /// `"<network hash>:<address hash>"` of the client (see `safety::client_keys`).
    pub client_hash: Option<String>,
    /// A reason found before the transaction (honeypot, timing, disposable domain).
    pub suspect: Option<&'static str>,
    /// The rate limits to count against, when the checks are on.
    pub limits: Option<&'a AbuseSettings>,
}

/// What signing did. Never shown to the client: every outcome gets the same response, so
/// nobody can learn whether an address had signed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOutcome {
    Created,
    ConfirmationResent,
    Unchanged,
}

/// Everything the signing transaction needs besides the signature itself.
pub struct SigningContext<'a> {
    pub petition: &'a Petition,
    pub version_id: i64,
    pub base_url: &'a str,
    pub token_ttl: chrono::Duration,
    pub now: NaiveDateTime,
    /// Seals the personal fields and hashes the address for duplicate detection.
    pub data_key: &'a DataKey,
}

/// Records a signature, or finds the one this address already made, and queues a
/// confirmation email when one is due.
pub fn record_signature(
    conn: &mut AnyConnection,
    context: &SigningContext<'_>,
    signature: &NewSignature,
    screening: &Screening<'_>,
) -> Result<SignOutcome, AppError> {
    // On PostgreSQL two first signings of one address can race past the lookup; the loser hits
    // the unique index (or, between two instances' batches, a deadlock) and, on the second
    // pass, finds the winner's row.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match write_transaction(conn, |conn| sign_once(conn, context, signature, screening)) {
            Err(error) if attempts < 3 && is_lost_race(&error) => continue,
            other => return other.map_err(AppError::from),
        }
    }
}

fn sign_once(
    conn: &mut AnyConnection,
    context: &SigningContext<'_>,
    signature: &NewSignature,
    screening: &Screening<'_>,
) -> QueryResult<SignOutcome> {
    let key = context.data_key;
    let email_key = key.email_key(&signature.email);
    let domain_key = key.domain_key(signature.email.domain());
    let existing: Option<i64> = signatures::table
        .filter(signatures::petition_id.eq(context.petition.id))
        .filter(signatures::email_key.eq(&email_key))
        .select(signatures::id)
        .first(conn)
        .optional()?;
    let Some(signature_id) = existing else {
        let suspect_reason = match (screening.suspect, screening.limits) {
            (Some(found), _) => Some(found),
            (None, Some(settings))
                if limits::exceeded(
                    conn,
                    settings,
                    context.petition.id,
                    screening.client_hash.as_deref(),
                    signature.email.domain(),
                    &domain_key,
                    context.now,
                )? =>
            {
                Some(reason::LIMITED)
            }
            _ => None,
        };
        let state = if suspect_reason.is_some() {
            status::SUSPECT
        } else {
            status::PENDING
        };
        let signature_id: i64 = diesel::insert_into(signatures::table)
            .values((
                signatures::petition_id.eq(context.petition.id),
                signatures::version_id.eq(context.version_id),
                signatures::email_key.eq(&email_key),
                signatures::email.eq(key.seal(Field::Email, signature.email.as_str())),
                signatures::name.eq(key.seal(Field::Name, signature.name.as_str())),
                signatures::country.eq(signature.country.code()),
                signatures::postal_code
                    .eq(key.seal_opt(Field::PostalCode, signature.postal_code.as_deref())),
                signatures::comment.eq(key.seal_opt(Field::Comment, signature.comment.as_deref())),
                signatures::disclosure.eq(signature.disclosure.as_str()),
                signatures::email_domain.eq(&domain_key),
                signatures::client_hash.eq(screening.client_hash.as_deref()),
                signatures::suspect_reason.eq(suspect_reason),
                signatures::status.eq(state),
                signatures::confirmation_emails.eq(1),
                signatures::created_at.eq(context.now),
                signatures::updated_at.eq(context.now),
            ))
            .returning(signatures::id)
            .get_result(conn)?;
        queue_confirmation(
            conn,
            context,
            signature_id,
            signature.name.as_str(),
            signature.email.as_str(),
        )?;
        return Ok(SignOutcome::Created);
    };
    // One statement checks and counts, so concurrent signings of one address (which wait for
    // each other's row lock on PostgreSQL) can never queue more than the maximum.
    let resend = diesel::update(
        signatures::table
            .find(signature_id)
            .filter(signatures::status.eq_any([status::PENDING, status::SUSPECT]))
            .filter(signatures::confirmed_at.is_null())
            .filter(signatures::confirmation_emails.lt(MAX_CONFIRMATION_EMAILS)),
    )
    .set((
        signatures::confirmation_emails.eq(signatures::confirmation_emails + 1),
        signatures::updated_at.eq(context.now),
    ))
    .execute(conn)?;
    if resend == 1 {
        queue_confirmation(
            conn,
            context,
            signature_id,
            signature.name.as_str(),
            signature.email.as_str(),
        )?;
        Ok(SignOutcome::ConfirmationResent)
    } else {
        Ok(SignOutcome::Unchanged)
    }
}

/// Stores a fresh confirmation token for the signature and queues the email carrying it.
/// Also used by organizers' resends (`signatures::moderation`).
pub(crate) fn queue_confirmation(
    conn: &mut AnyConnection,
    context: &SigningContext<'_>,
    signature_id: i64,
    signer_name: &str,
    email_address: &str,
) -> QueryResult<()> {
    let token = ConfirmationToken::generate();
    let expires_at = context.now + context.token_ttl;
    diesel::insert_into(confirmation_tokens::table)
        .values((
            confirmation_tokens::token_hash.eq(token.hash()),
            confirmation_tokens::signature_id.eq(signature_id),
            confirmation_tokens::expires_at.eq(expires_at),
            confirmation_tokens::created_at.eq(context.now),
        ))
        .execute(conn)?;
    let email = OutgoingEmail::Confirmation(ConfirmationEmail {
        petition_title: context.petition.title.clone(),
        petition_url: format!("{}/p/{}", context.base_url, context.petition.slug),
        signer_name: signer_name.to_owned(),
        confirm_url: format!("{}/confirm/{}", context.base_url, token.as_str()),
        expires_at,
    });
    outbox::enqueue(
        conn,
        context.data_key,
        &email,
        email_address,
        Some(signature_id),
        context.now,
    )
}

/// What a confirmation link leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// The signature waits for this confirmation.
    Confirmable,
    AlreadyConfirmed,
    Expired,
    /// The petition stopped accepting signatures before this one was confirmed.
    PetitionClosed,
    /// Unknown token, or a signature that can no longer be confirmed.
    Unknown,
}

/// A token looked up with its signature and petition.
pub struct TokenLookup {
    pub state: TokenState,
    pub signature_id: Option<i64>,
    pub petition: Option<Petition>,
    /// The signer's receipt, once the signature is confirmed.
    pub receipt: Option<String>,
}

pub fn look_up_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<TokenLookup> {
    type Row = (
        i64,
        NaiveDateTime,
        String,
        Option<NaiveDateTime>,
        Option<String>,
        Petition,
    );
    let row: Option<Row> = confirmation_tokens::table
        .inner_join(signatures::table.inner_join(petitions::table))
        .filter(confirmation_tokens::token_hash.eq(token_hash))
        .select((
            signatures::id,
            confirmation_tokens::expires_at,
            signatures::status,
            signatures::confirmed_at,
            signatures::commitment,
            Petition::as_select(),
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => TokenLookup {
            state: TokenState::Unknown,
            signature_id: None,
            petition: None,
            receipt: None,
        },
        Some((signature_id, expires_at, current, confirmed_at, commitment, petition)) => {
            // A suspect signature confirmed by email looks confirmed to its signer.
            let state = if current == status::CONFIRMED
                || (current == status::SUSPECT && confirmed_at.is_some())
            {
                TokenState::AlreadyConfirmed
            } else if current != status::PENDING && current != status::SUSPECT {
                TokenState::Unknown
            } else if expires_at <= now {
                TokenState::Expired
            } else if !petition.accepts_signatures(now) {
                TokenState::PetitionClosed
            } else {
                TokenState::Confirmable
            };
            TokenLookup {
                // A personal link may show its signature's receipt again.
                receipt: commitment.filter(|_| state == TokenState::AlreadyConfirmed),
                state,
                signature_id: Some(signature_id),
                petition: Some(petition),
            }
        }
    })
}

/// Confirms the signature behind a token and counts it, in one transaction that also gives
/// the signature its receipt (a fresh salt and the commitment, see `delivery::commitment`)
/// and queues the receipt email. Returns the state found before confirming (`Confirmable`
/// means it was confirmed now) and the petition with its new count.
pub fn confirm(
    conn: &mut AnyConnection,
    key: &DataKey,
    token_hash: &str,
    base_url: &str,
    now: NaiveDateTime,
) -> QueryResult<TokenLookup> {
    // Both databases store microseconds exactly: the committed time is the stored one.
    let confirmed_at = commitment::confirmation_time(now);
    // Two instances confirming in batches can deadlock on PostgreSQL; the loser tries again
    // and then finds the signature as the winner left it.
    let mut attempts = 0;
    let mut closed_meanwhile = None;
    let result = loop {
        attempts += 1;
        let attempt = write_transaction(conn, |conn| {
            let mut lookup = look_up_token(conn, token_hash, now)?;
            if lookup.state != TokenState::Confirmable {
                return Ok(lookup);
            }
            let (Some(signature_id), Some(petition)) =
                (lookup.signature_id, lookup.petition.as_mut())
            else {
                return Ok(lookup);
            };
            let (name, address, country, postal_code, version_sha256, current): (
                String,
                String,
                String,
                Option<String>,
                String,
                String,
            ) = signatures::table
                .inner_join(petition_versions::table)
                .filter(signatures::id.eq(signature_id))
                .select((
                    signatures::name,
                    signatures::email,
                    signatures::country,
                    signatures::postal_code,
                    petition_versions::text_sha256,
                    signatures::status,
                ))
                .first(conn)?;
            let name = key.open(Field::Name, &name)?;
            let address = key.open(Field::Email, &address)?;
            let postal_code = key.open_opt(Field::PostalCode, postal_code.as_deref())?;
            let suspect = current == status::SUSPECT;
            let salt = Salt::generate();
            let receipt = to_hex(&commitment::compute(
                &salt,
                &CommittedSignature {
                    petition_slug: &petition.slug,
                    version_sha256: &version_sha256,
                    name: &name,
                    country: &country,
                    postal_code: postal_code.as_deref(),
                    confirmed_at,
                },
            ));
            // Only a pending row changes, so a concurrent second confirmation counts nothing. A
            // suspect one records its confirmation and stays suspect: it counts only once an
            // organizer accepts it, and its signer is told nothing different.
            let (from, to) = if suspect {
                (status::SUSPECT, status::SUSPECT)
            } else {
                (status::PENDING, status::CONFIRMED)
            };
            let changed = diesel::update(
                signatures::table
                    .find(signature_id)
                    .filter(signatures::status.eq(from))
                    .filter(signatures::confirmed_at.is_null()),
            )
            .set((
                signatures::status.eq(to),
                signatures::confirmed_at.eq(confirmed_at),
                signatures::updated_at.eq(now),
                signatures::receipt_salt.eq(salt.to_hex()),
                signatures::commitment.eq(&receipt),
            ))
            .execute(conn)?;
            diesel::update(confirmation_tokens::table.find(token_hash))
                .set(confirmation_tokens::used_at.eq(now))
                .execute(conn)?;
            if changed != 1 {
                lookup.state = TokenState::AlreadyConfirmed;
                lookup.receipt = stored_receipt(conn, signature_id)?;
                return Ok(lookup);
            }
            if suspect {
                let email = ReceiptTo {
                    signature_id,
                    address: &address,
                    receipt: &receipt,
                };
                queue_receipt(conn, key, petition, base_url, &email, now)?;
                lookup.receipt = Some(receipt);
                return Ok(lookup);
            }
            // The counter only moves while the petition is open. The petition may have been closed
            // or delivered since it was read above (a delivery holds this row while it records
            // which signatures it handed over); then nothing of this confirmation is kept.
            let counted: Option<i64> = diesel::update(
                petitions::table
                    .find(petition.id)
                    .filter(petitions::status.eq(PetitionStatus::Open.as_str())),
            )
            .set((
                petitions::signature_count.eq(petitions::signature_count + 1),
                petitions::updated_at.eq(now),
            ))
            .returning(petitions::signature_count)
            .get_result(conn)
            .optional()?;
            let Some(count) = counted else {
                closed_meanwhile = Some(petition.clone());
                return Err(diesel::result::Error::RollbackTransaction);
            };
            petition.signature_count = count;
            let email = ReceiptTo {
                signature_id,
                address: &address,
                receipt: &receipt,
            };
            queue_receipt(conn, key, petition, base_url, &email, now)?;
            lookup.receipt = Some(receipt);
            Ok(lookup)
        });
        match attempt {
            Err(error) if attempts < 3 && is_lost_race(&error) => continue,
            other => break other,
        }
    };
    match (result, closed_meanwhile) {
        (Err(diesel::result::Error::RollbackTransaction), Some(petition)) => Ok(TokenLookup {
            state: TokenState::PetitionClosed,
            signature_id: None,
            petition: Some(petition),
            receipt: None,
        }),
        (result, _) => result,
    }
}

/// Who gets a receipt, and which.
struct ReceiptTo<'a> {
    signature_id: i64,
    address: &'a str,
    receipt: &'a str,
}

fn queue_receipt(
    conn: &mut AnyConnection,
    key: &DataKey,
    petition: &Petition,
    base_url: &str,
    to: &ReceiptTo<'_>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let petition_url = format!("{base_url}/p/{}", petition.slug);
    let receipt_email = OutgoingEmail::Receipt(ReceiptEmail {
        petition_title: petition.title.clone(),
        check_url: format!("{petition_url}/receipt?receipt={}", to.receipt),
        petition_url,
        receipt: to.receipt.to_owned(),
    });
    // Tied to its signature so that withdrawing and purging remove it with the signature's
    // other emails; the dashboard's email health and the resend rules look at confirmation
    // emails only.
    outbox::enqueue(
        conn,
        key,
        &receipt_email,
        to.address,
        Some(to.signature_id),
        now,
    )
}

/// The receipt of a confirmed signature (none for those confirmed before receipts existed,
/// until their petition is delivered).
fn stored_receipt(conn: &mut AnyConnection, signature_id: i64) -> QueryResult<Option<String>> {
    signatures::table
        .find(signature_id)
        .select(signatures::commitment)
        .first(conn)
}

/// Signatures of a petition still waiting for confirmation.
pub fn pending_count(conn: &mut AnyConnection, petition_id: i64) -> QueryResult<i64> {
    signatures::table
        .filter(signatures::petition_id.eq(petition_id))
        .filter(signatures::status.eq(status::PENDING))
        .count()
        .get_result(conn)
}
