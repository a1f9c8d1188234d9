//! Storing signatures and confirming them. Each public action is one write transaction that
//! also writes its durable effects (confirmation emails in the outbox, the petition's counter).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::domain::NewSignature;
use super::tokens::ConfirmationToken;
use crate::config::AbuseSettings;
use crate::core::hex::to_hex;
use crate::core::status::SignatureStatus;
use crate::db::backend::{self, insert_in_chunks};
use crate::db::schema::{confirmation_tokens, petition_versions, petitions, signatures};
use crate::db::{is_lost_race, write_transaction, AnyConnection};
use crate::error::AppError;
use crate::mail::messages::{ConfirmationEmail, OutgoingEmail, ReceiptEmail};
use crate::mail::outbox;
use crate::petitions::Petition;
use crate::safety::encryption::{DataKey, Field};
use crate::safety::events::Vouch;
use crate::safety::{limits, reason};
use crate::signatures::commitment;
use crate::signatures::counting::{adjust_count, count_change, Counter};

/// A signer gets at most this many confirmation emails for one signature.
pub const MAX_CONFIRMATION_EMAILS: i32 = 3;

/// What the abuse checks decided or need inside the signing transaction.
#[derive(Debug, Default)]
pub struct Screening<'a> {
    /// `"<network hash>:<address hash>"` of the client (see `safety::client_keys`).
    pub client_hash: Option<String>,
    /// A reason found before the transaction (honeypot, timing, disposable domain).
    pub suspect: Option<&'static str>,
    /// The rate limits to count against, when the checks are on.
    pub limits: Option<&'a AbuseSettings>,
    /// The signing events whose network and window the signing falls in (`safety::events`).
    pub vouch: Vec<Vouch>,
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
    let first = FreshSigning {
        signature,
        client_hash: screening.client_hash.as_deref(),
        suspect: screening.suspect,
        vouch: &screening.vouch,
    };
    if record_new_signatures(conn, context, screening.limits, &[first])?[0] {
        return Ok(SignOutcome::Created);
    }
    let signature_id: i64 = signatures::table
        .filter(signatures::petition_id.eq(context.petition.id))
        .filter(signatures::email_key.eq(context.data_key.email_key(&signature.email)))
        .select(signatures::id)
        .first(conn)?;
    // One statement checks and counts, so concurrent signings of one address (which wait for
    // each other's row lock on PostgreSQL) can never queue more than the maximum.
    let resend = diesel::update(
        signatures::table
            .find(signature_id)
            .filter(signatures::status.eq_any([
                SignatureStatus::Pending.as_str(),
                SignatureStatus::Suspect.as_str(),
            ]))
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
    let token = ConfirmationToken::generate(context.now);
    diesel::insert_into(confirmation_tokens::table)
        .values(token_row(context, &token, signature_id))
        .execute(conn)?;
    outbox::enqueue(
        conn,
        context.data_key,
        &confirmation_email(context, &token, signer_name),
        email_address,
        Some(signature_id),
        context.now,
    )
}

type TokenRow = (
    diesel::dsl::Eq<confirmation_tokens::token_hash, String>,
    diesel::dsl::Eq<confirmation_tokens::signature_id, i64>,
    diesel::dsl::Eq<confirmation_tokens::expires_at, NaiveDateTime>,
    diesel::dsl::Eq<confirmation_tokens::created_at, NaiveDateTime>,
);

fn token_row(
    context: &SigningContext<'_>,
    token: &ConfirmationToken,
    signature_id: i64,
) -> TokenRow {
    (
        confirmation_tokens::token_hash.eq(token.key()),
        confirmation_tokens::signature_id.eq(signature_id),
        confirmation_tokens::expires_at.eq(context.now + context.token_ttl),
        confirmation_tokens::created_at.eq(context.now),
    )
}

fn confirmation_email(
    context: &SigningContext<'_>,
    token: &ConfirmationToken,
    signer_name: &str,
) -> OutgoingEmail {
    OutgoingEmail::Confirmation(ConfirmationEmail {
        petition_title: context.petition.title.clone(),
        petition_url: format!("{}/p/{}", context.base_url, context.petition.slug),
        signer_name: signer_name.to_owned(),
        confirm_url: format!("{}/confirm/{}", context.base_url, token.as_str()),
        expires_at: context.now + context.token_ttl,
    })
}

/// A signing for [`record_new_signatures`].
pub struct FreshSigning<'a> {
    pub signature: &'a NewSignature,
    /// `"<network hash>:<address hash>"` of the client (see `safety::client_keys`).
    pub client_hash: Option<&'a str>,
    /// A reason to hold it back, found before (honeypot, timing, disposable domain).
    pub suspect: Option<&'static str>,
    /// The signing events whose network and window it falls in (`safety::events`).
    pub vouch: &'a [Vouch],
}

/// Records the first signings in a batch of signings of one petition, with one statement per
/// table: one look-up of the addresses that have signed already, then one INSERT each into
/// signatures, confirmation tokens and the outbox. One by one these were four statements and a
/// savepoint per signing, and under a surge the statements, not the rows, cost the writer
/// its time (BENCHMARKS.md, "Design measurements").
///
/// Returns, per signing, whether it was recorded here. The others (the address has signed this
/// petition already, or comes earlier in the batch) are for [`record_signature`], which knows
/// about resends: run them after this call, in order, and the outcome is the same as signing
/// one by one in order. The abuse limits count as one by one too: the rows in the database
/// plus the rows this batch adds ahead of each signing.
pub fn record_new_signatures(
    conn: &mut AnyConnection,
    context: &SigningContext<'_>,
    limits: Option<&AbuseSettings>,
    signings: &[FreshSigning<'_>],
) -> QueryResult<Vec<bool>> {
    let key = context.data_key;
    let email_keys: Vec<String> = signings
        .iter()
        .map(|signing| key.email_key(&signing.signature.email))
        .collect();
    let keys: Vec<&str> = email_keys.iter().map(String::as_str).collect();
    let signed_before: HashSet<String> = signatures::table
        .filter(signatures::petition_id.eq(context.petition.id))
        .filter(backend::one_of(signatures::email_key, &keys))
        .select(signatures::email_key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    let mut recorded = vec![false; signings.len()];
    let fresh: Vec<usize> = (0..signings.len())
        .filter(|&i| !signed_before.contains(&email_keys[i]) && seen.insert(&email_keys[i]))
        .collect();
    if fresh.is_empty() {
        return Ok(recorded);
    }
    let domain_keys: Vec<String> = fresh
        .iter()
        .map(|&i| key.domain_key(signings[i].signature.email.domain()))
        .collect();
    let over_limit = match limits {
        Some(settings) => {
            let counted: Vec<limits::Counted<'_>> = fresh
                .iter()
                .zip(&domain_keys)
                .map(|(&i, domain_key)| limits::Counted {
                    client_hash: signings[i].client_hash,
                    email_domain: signings[i].signature.email.domain(),
                    domain_key,
                    vouch: signings[i].vouch,
                })
                .collect();
            limits::exceeded_in_order(conn, settings, context.petition.id, &counted, context.now)?
        }
        None => vec![limits::Verdict::default(); fresh.len()],
    };
    let rows: Vec<_> = fresh
        .iter()
        .zip(&domain_keys)
        .zip(&over_limit)
        .map(|((&i, domain_key), verdict)| {
            let FreshSigning {
                signature,
                client_hash,
                suspect,
                ..
            } = &signings[i];
            let suspect_reason = suspect.or(verdict.over_limit.then_some(reason::LIMITED));
            let state = if suspect_reason.is_some() {
                SignatureStatus::Suspect.as_str()
            } else {
                SignatureStatus::Pending.as_str()
            };
            (
                signatures::petition_id.eq(context.petition.id),
                signatures::version_id.eq(context.version_id),
                signatures::email_key.eq(email_keys[i].clone()),
                signatures::email.eq(key.seal(Field::Email, signature.email.as_str())),
                signatures::name.eq(key.seal(Field::Name, signature.name.as_str())),
                signatures::country.eq(signature.country.code()),
                signatures::postal_code
                    .eq(key.seal_opt(Field::PostalCode, signature.postal_code.as_deref())),
                signatures::comment.eq(key.seal_opt(Field::Comment, signature.comment.as_deref())),
                signatures::disclosure.eq(signature.disclosure.as_str()),
                signatures::email_domain.eq(domain_key.clone()),
                signatures::client_hash.eq(client_hash.map(str::to_owned)),
                signatures::suspect_reason.eq(suspect_reason),
                signatures::status.eq(state),
                signatures::signing_event_id.eq(verdict.vouched_by),
                signatures::confirmation_emails.eq(1),
                signatures::created_at.eq(context.now),
                signatures::updated_at.eq(context.now),
            )
        })
        .collect();
    // The order of RETURNING rows is not promised: match them by address.
    let inserted: Vec<Vec<(i64, String)>> = insert_in_chunks!(conn, rows, |inner, chunk| {
        diesel::insert_into(signatures::table)
            .values(chunk)
            .returning((signatures::id, signatures::email_key))
            .get_results(inner)
    })?;
    let id_of: HashMap<String, i64> = inserted
        .into_iter()
        .flatten()
        .map(|(id, k)| (k, id))
        .collect();
    let mut tokens = Vec::with_capacity(fresh.len());
    let mut emails = Vec::with_capacity(fresh.len());
    for &i in &fresh {
        let signature_id = *id_of.get(&email_keys[i]).ok_or_else(|| {
            diesel::result::Error::QueryBuilderError("a new signature was not returned".into())
        })?;
        let signature = signings[i].signature;
        let token = ConfirmationToken::generate(context.now);
        tokens.push(token_row(context, &token, signature_id));
        emails.push(outbox::Queued {
            email: confirmation_email(context, &token, signature.name.as_str()),
            recipient: signature.email.as_str(),
            signature_id: Some(signature_id),
        });
        recorded[i] = true;
    }
    insert_in_chunks!(conn, tokens, |inner, chunk| {
        diesel::insert_into(confirmation_tokens::table)
            .values(chunk)
            .execute(inner)
    })?;
    outbox::enqueue_many(conn, key, &emails, context.now)?;
    Ok(recorded)
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
            let state = token_state(&current, confirmed_at, expires_at, &petition, now);
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

/// What a token leads to, from its signature's status and petition.
fn token_state(
    signature_status: &str,
    confirmed_at: Option<NaiveDateTime>,
    expires_at: NaiveDateTime,
    petition: &Petition,
    now: NaiveDateTime,
) -> TokenState {
    // A suspect signature confirmed by email looks confirmed to its signer.
    if signature_status == SignatureStatus::Confirmed.as_str()
        || (signature_status == SignatureStatus::Suspect.as_str() && confirmed_at.is_some())
    {
        TokenState::AlreadyConfirmed
    } else if signature_status != SignatureStatus::Pending.as_str()
        && signature_status != SignatureStatus::Suspect.as_str()
    {
        TokenState::Unknown
    } else if expires_at <= now {
        TokenState::Expired
    } else if !petition.accepts_signatures(now) {
        TokenState::PetitionClosed
    } else {
        TokenState::Confirmable
    }
}

/// Everything [`confirm_many`] reads about a token: its signature, the text version signed
/// and the petition.
type ConfirmationRow = (
    String,
    i64,
    NaiveDateTime,
    String,
    Option<NaiveDateTime>,
    Option<String>,
    (String, String, String, Option<String>),
    String,
    Petition,
);

/// A signer's sealed name, address, country (not sealed) and postal code, as stored.
type SealedSigner = (String, String, String, Option<String>);

/// A confirmation ready to be stored: the signer's address, opened, and the new receipt.
struct Marked {
    signature_id: i64,
    /// The status the row must still have, and the one it gets.
    from_status: SignatureStatus,
    to_status: SignatureStatus,
    /// The time the commitment covers; both databases store its microseconds exactly.
    confirmed_at: NaiveDateTime,
    salt: String,
    receipt: String,
    address: String,
}

impl Marked {
    fn row(&self) -> backend::ConfirmedRow<'_> {
        backend::ConfirmedRow {
            id: self.signature_id,
            from_status: self.from_status.as_str(),
            to_status: self.to_status.as_str(),
            confirmed_at: self.confirmed_at,
            salt: &self.salt,
            commitment: &self.receipt,
        }
    }
}

/// Gives a signature about to be confirmed its receipt: a fresh salt and the commitment to
/// what was signed (see `delivery::commitment`). Nothing is stored yet: see
/// [`apply_confirmations`].
fn prepare_confirmation(
    key: &DataKey,
    signature_id: i64,
    current_status: &str,
    sealed: SealedSigner,
    version_sha256: &str,
    petition: &Petition,
    now: NaiveDateTime,
) -> QueryResult<Marked> {
    let (name, address, country, postal_code) = sealed;
    let address = key.open(Field::Email, &address)?;
    let confirmed_at = commitment::confirmation_time(now);
    let (salt, commitment) = commitment::commit_sealed(
        key,
        &petition.slug,
        version_sha256,
        &name,
        &country,
        postal_code.as_deref(),
        confirmed_at,
    )?;
    let receipt = to_hex(&commitment);
    // A suspect one records its confirmation and stays suspect: it counts only once an
    // organizer accepts it, and its signer is told nothing different.
    let (from_status, to_status) = if current_status == SignatureStatus::Suspect.as_str() {
        (SignatureStatus::Suspect, SignatureStatus::Suspect)
    } else {
        (SignatureStatus::Pending, SignatureStatus::Confirmed)
    };
    Ok(Marked {
        signature_id,
        from_status,
        to_status,
        confirmed_at,
        salt: salt.to_hex(),
        receipt,
        address,
    })
}

/// A prepared confirmation, with the token's place in its batch and the signature's petition.
struct Confirmation {
    index: usize,
    marked: Marked,
    petition: Petition,
}

/// What confirming changes, for one confirmation ([`confirm`]) or a batch of them
/// ([`confirm_many`]), a statement per step for the whole batch: the signatures' status,
/// confirmation time and receipt (only rows still as they were read, so a concurrent second
/// confirmation changes nothing), the receipt emails, and last the petitions' counters (see
/// `writer::POSTGRES_CONFIRMING_LANES`). Returns the confirmations that took, each petition
/// with its count as it stood after that one. Fails with `RollbackTransaction` when a
/// petition that would count one is no longer open: the caller undoes all of it.
fn apply_confirmations(
    conn: &mut AnyConnection,
    key: &DataKey,
    prepared: Vec<Confirmation>,
    base_url: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<Confirmation>> {
    let rows: Vec<backend::ConfirmedRow<'_>> = prepared.iter().map(|c| c.marked.row()).collect();
    let changed: HashSet<i64> = backend::mark_signatures_confirmed(conn, &rows, now)?
        .into_iter()
        .collect();
    let mut confirmed: Vec<Confirmation> = prepared
        .into_iter()
        .filter(|c| changed.contains(&c.marked.signature_id))
        .collect();
    if confirmed.is_empty() {
        return Ok(confirmed);
    }
    let receipts: Vec<outbox::Queued<'_>> = confirmed
        .iter()
        .map(|c| outbox::Queued {
            email: receipt_email(&c.petition, base_url, &c.marked.receipt),
            recipient: &c.marked.address,
            signature_id: Some(c.marked.signature_id),
        })
        .collect();
    // Tied to its signature so that withdrawing and purging remove it with the signature's
    // other emails; the dashboard's email health and the resend rules look at confirmation
    // emails only.
    outbox::enqueue_many(conn, key, &receipts, now)?;
    count_confirmed(conn, &mut confirmed, now)?;
    Ok(confirmed)
}

/// Confirms the signatures behind many tokens at once (the signature writer's batches): one
/// look-up for all tokens, the signatures' UPDATE (one statement on PostgreSQL, see
/// `backend::mark_signatures_confirmed`), then one statement for the receipt emails and one
/// for each petition's counter. One by one, a confirmation was seven statements and a
/// savepoint.
///
/// Returns, per token, its answer as [`confirm`] would give it, or `None` for the tokens left
/// to [`confirm`]: a second token of a signature already handled in this batch, and a
/// signature another connection confirmed since the look-up. Run those after this call, in
/// order. Fails as a whole (undo it, then confirm one by one) when a petition stopped
/// accepting signatures meanwhile: one by one, each of its signers then learns so.
pub fn confirm_many(
    conn: &mut AnyConnection,
    key: &DataKey,
    token_hashes: &[&str],
    base_url: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<Option<TokenLookup>>> {
    let rows: Vec<ConfirmationRow> = confirmation_tokens::table
        .inner_join(signatures::table.inner_join(petitions::table).inner_join(
            petition_versions::table.on(petition_versions::id.eq(signatures::version_id)),
        ))
        .filter(backend::one_of(
            confirmation_tokens::token_hash,
            token_hashes,
        ))
        .select((
            confirmation_tokens::token_hash,
            signatures::id,
            confirmation_tokens::expires_at,
            signatures::status,
            signatures::confirmed_at,
            signatures::commitment,
            (
                signatures::name,
                signatures::email,
                signatures::country,
                signatures::postal_code,
            ),
            petition_versions::text_sha256,
            Petition::as_select(),
        ))
        .load(conn)?;
    let mut by_token: HashMap<String, ConfirmationRow> =
        rows.into_iter().map(|row| (row.0.clone(), row)).collect();
    let mut answers: Vec<Option<TokenLookup>> = Vec::with_capacity(token_hashes.len());
    let mut tokens_seen = HashSet::new();
    let mut handled = HashSet::new();
    // The confirmable ones, stored together after the loop.
    let mut prepared: Vec<Confirmation> = Vec::new();
    for (index, token_hash) in token_hashes.iter().enumerate() {
        if !tokens_seen.insert(*token_hash) {
            answers.push(None);
            continue;
        }
        let Some(row) = by_token.remove(*token_hash) else {
            answers.push(Some(TokenLookup {
                state: TokenState::Unknown,
                signature_id: None,
                petition: None,
                receipt: None,
            }));
            continue;
        };
        let (_, signature_id, expires_at, current, stored_at, commitment, personal, sha, petition) =
            row;
        if !handled.insert(signature_id) {
            answers.push(None);
            continue;
        }
        let state = token_state(&current, stored_at, expires_at, &petition, now);
        if state != TokenState::Confirmable {
            answers.push(Some(TokenLookup {
                receipt: commitment.filter(|_| state == TokenState::AlreadyConfirmed),
                state,
                signature_id: Some(signature_id),
                petition: Some(petition),
            }));
            continue;
        }
        let marked =
            prepare_confirmation(key, signature_id, &current, personal, &sha, &petition, now)?;
        // Answered below once counted; unchanged (confirmed meanwhile): left to `confirm`.
        answers.push(None);
        prepared.push(Confirmation {
            index,
            marked,
            petition,
        });
    }
    for c in apply_confirmations(conn, key, prepared, base_url, now)? {
        answers[c.index] = Some(TokenLookup {
            state: TokenState::Confirmable,
            signature_id: Some(c.marked.signature_id),
            petition: Some(c.petition),
            receipt: Some(c.marked.receipt),
        });
    }
    Ok(answers)
}

impl Marked {
    /// How far this confirmation moves its petition's count (a suspect one does not).
    fn count_change(&self) -> i64 {
        count_change(self.from_status, self.to_status)
    }
}

/// Adds the confirmations that count to each petition's counter, one statement per petition
/// in id order (two writers lock them in the same order), and gives each signer the count as
/// it stood after their own, as one by one. Fails when a petition is no longer open.
fn count_confirmed(
    conn: &mut AnyConnection,
    confirmed: &mut [Confirmation],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let mut petition_ids: Vec<i64> = confirmed
        .iter()
        .filter(|c| c.marked.count_change() != 0)
        .map(|c| c.petition.id)
        .collect();
    petition_ids.sort_unstable();
    petition_ids.dedup();
    for petition_id in petition_ids {
        let added: i64 = confirmed
            .iter()
            .filter(|c| c.petition.id == petition_id)
            .map(|c| c.marked.count_change())
            .sum();
        let count = adjust_count(conn, petition_id, added, now, Counter::WhileOpen)?;
        let mut running = count - added;
        for c in confirmed
            .iter_mut()
            .filter(|c| c.petition.id == petition_id)
        {
            running += c.marked.count_change();
            c.petition.signature_count = running;
        }
    }
    Ok(())
}

/// Confirms the signature behind a token and counts it, in one transaction that also gives
/// the signature its receipt (a fresh salt and the commitment, see `delivery::commitment`)
/// and queues the receipt email: the steps [`confirm_many`] takes for a batch
/// (`apply_confirmations`), for one. Returns the state found before confirming (`Confirmable`
/// means it was confirmed now) and the petition with its new count.
pub fn confirm(
    conn: &mut AnyConnection,
    key: &DataKey,
    token_hash: &str,
    base_url: &str,
    now: NaiveDateTime,
) -> QueryResult<TokenLookup> {
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
            let (sealed, version_sha256, current): (SealedSigner, String, String) =
                signatures::table
                    .inner_join(petition_versions::table)
                    .filter(signatures::id.eq(signature_id))
                    .select((
                        (
                            signatures::name,
                            signatures::email,
                            signatures::country,
                            signatures::postal_code,
                        ),
                        petition_versions::text_sha256,
                        signatures::status,
                    ))
                    .first(conn)?;
            let marked = prepare_confirmation(
                key,
                signature_id,
                &current,
                sealed,
                &version_sha256,
                petition,
                now,
            )?;
            let confirmation = Confirmation {
                index: 0,
                marked,
                petition: petition.clone(),
            };
            // The petition may have been closed or delivered since it was read above (a
            // delivery holds its row while it records which signatures it handed over); then
            // nothing of this confirmation is kept.
            let applied = match apply_confirmations(conn, key, vec![confirmation], base_url, now) {
                Err(diesel::result::Error::RollbackTransaction) => {
                    closed_meanwhile = Some(petition.clone());
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                other => other?.pop(),
            };
            let Some(applied) = applied else {
                lookup.state = TokenState::AlreadyConfirmed;
                lookup.receipt = stored_receipt(conn, signature_id)?;
                return Ok(lookup);
            };
            *petition = applied.petition;
            lookup.receipt = Some(applied.marked.receipt);
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

fn receipt_email(petition: &Petition, base_url: &str, receipt: &str) -> OutgoingEmail {
    let petition_url = format!("{base_url}/p/{}", petition.slug);
    OutgoingEmail::Receipt(ReceiptEmail {
        petition_title: petition.title.clone(),
        check_url: format!("{petition_url}/receipt?receipt={receipt}"),
        petition_url,
        receipt: receipt.to_owned(),
    })
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
        .filter(signatures::status.eq(SignatureStatus::Pending.as_str()))
        .count()
        .get_result(conn)
}
