//! The outbox worker: claims due emails, sends them concurrently, records the results, and
//! retries failures with exponential backoff. It runs in every instance; claims keep them
//! from sending the same email twice.
//!
//! Each email the SMTP server accepts is recorded as sent within milliseconds, by one recorder
//! task that commits whatever was accepted since its last commit (see [`RECORD_EVERY`]), not
//! when its whole batch is done: a process killed in the middle of a batch used to send every
//! email of the batches in flight a second time (192 of 708 signers got two confirmations).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lettre::message::Mailbox;
use rand::Rng;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use super::messages::{OutgoingEmail, SendTime};
use super::outbox::{self, Delivery, OutboxRow};
use super::transport::{Mailer, SendError};
use crate::config::OutboxSettings;
use crate::core::clock::now;
use crate::db::DbPool;
use crate::safety::encryption::DataKey;
use crate::secrets::Secrets;

pub struct OutboxWorker {
    pool: DbPool,
    mailer: Mailer,
    from: Mailbox,
    settings: OutboxSettings,
    wake: Arc<Notify>,
    /// Opens the encrypted recipients and payloads.
    data_key: Arc<DataKey>,
    /// The signature writer, which gets priority when saturated.
    signers_waiting: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    /// The instance secret and public origin, for signers' withdrawal links.
    links: Option<(Arc<Secrets>, String)>,
}

impl OutboxWorker {
    pub fn new(
        pool: DbPool,
        mailer: Mailer,
        from: Mailbox,
        settings: OutboxSettings,
        wake: Arc<Notify>,
        data_key: Arc<DataKey>,
    ) -> Self {
        Self {
            pool,
            mailer,
            from,
            settings,
            wake,
            data_key,
            signers_waiting: None,
            links: None,
        }
    }

    /// Gives way to the signature writer while `signers_waiting` says it is saturated (see
    /// `SATURATED_PAUSE`).
    pub fn yielding_to(
        mut self,
        signers_waiting: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.signers_waiting = Some(Box::new(signers_waiting));
        self
    }

    /// Whether signers wait for the writer.
    fn signing_is_saturated(&self) -> bool {
        self.signers_waiting
            .as_ref()
            .is_some_and(|waiting| waiting())
    }

    /// Gives every email to a signer its withdrawal link and its petition's discreet settings.
    pub fn with_signer_links(mut self, secrets: Arc<Secrets>, base_url: String) -> Self {
        self.links = Some((secrets, base_url));
        self
    }

    /// Runs until `stop` turns true. Woken at once when a request queues an email; otherwise
    /// looks for due emails (retries, other instances' leftovers) every poll interval.
    ///
    /// Up to [`BATCHES_IN_FLIGHT`] batches are in flight: the next batch is claimed while
    /// earlier ones are still sending or recording their results, so the SMTP connections
    /// never wait for the database. Claims are made one after another by this loop, and a
    /// claimed email is leased, so no two batches hold the same email. Batches in progress
    /// are finished before stopping, so their claims are not left to expire.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        // Shared by all batches: how many emails are being sent at once.
        let connections = Arc::new(Semaphore::new(worker.settings.smtp_connections.max(1)));
        let (accepted, to_record) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record_accepted(worker.pool.clone(), to_record));
        let mut batches = JoinSet::new();
        while !*stop.borrow() {
            // Signers waiting for their answer come first: while the writer is saturated, one
            // batch at a time, each after a pause (see `SATURATED_PAUSE`).
            let saturated = worker.signing_is_saturated();
            let in_flight = if saturated { 1 } else { BATCHES_IN_FLIGHT };
            if batches.len() >= in_flight {
                tokio::select! {
                    Some(done) = batches.join_next() => log_batch(done),
                    _ = stop.changed() => {}
                }
                continue;
            }
            let pause = match worker.claim_batch().await {
                Ok(batch) if batch.rows.is_empty() => worker.settings.poll_interval,
                Ok(batch) => {
                    let (worker, connections) = (worker.clone(), connections.clone());
                    let accepted = accepted.clone();
                    batches.spawn(async move {
                        worker.send_and_record(batch, connections, accepted).await
                    });
                    if saturated {
                        tokio::select! {
                            _ = tokio::time::sleep(SATURATED_PAUSE) => {}
                            _ = stop.changed() => {}
                        }
                    }
                    continue;
                }
                Err(error) => {
                    log::warn!("outbox: {error:#}");
                    worker.settings.poll_interval
                }
            };
            tokio::select! {
                _ = worker.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
                Some(done) = batches.join_next(), if !batches.is_empty() => log_batch(done),
            }
        }
        while let Some(done) = batches.join_next().await {
            log_batch(done);
        }
        // Every batch is done: the recorder commits what is left and stops.
        drop(accepted);
        if let Err(error) = recorder.await {
            log::error!("outbox: the recorder failed: {error}");
        }
    }

    /// Claims up to `batch_size` due emails and looks up what is decided at send time.
    async fn claim_batch(&self) -> anyhow::Result<Batch> {
        let claim_id = new_claim_id();
        let started = now();
        let lease_until = started + chrono::Duration::from_std(self.settings.lease)?;
        let limit = self.settings.batch_size;
        let pool = self.pool.clone();
        let links = self.links.clone();
        let key = self.data_key.clone();
        let id = claim_id.clone();
        let rows = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut conn = pool.get()?;
            let rows = outbox::claim(&mut conn, &key, &id, started, lease_until, limit)?;
            // An unreadable payload is reported when the email is built.
            let emails: Vec<_> = rows
                .iter()
                .map(|row| OutgoingEmail::from_stored(&row.kind, &row.payload).ok())
                .collect();
            let send_times = match &links {
                Some((secrets, base_url)) => {
                    let readable: Vec<(i64, &OutgoingEmail)> = rows
                        .iter()
                        .zip(&emails)
                        .filter_map(|(row, email)| Some((row.id, email.as_ref()?)))
                        .collect();
                    let mut found =
                        SendTime::look_up_batch(&mut conn, &readable, secrets, base_url)?
                            .into_iter();
                    emails
                        .iter()
                        .map(|email| match email {
                            Some(_) => found.next().unwrap_or_default(),
                            None => SendTime::default(),
                        })
                        .collect()
                }
                None => vec![SendTime::default(); rows.len()],
            };
            Ok(rows.into_iter().zip(send_times).collect())
        })
        .await??;
        Ok(Batch {
            claim_id,
            lease_until,
            rows,
        })
    }

    /// Sends a claimed batch, `connections` limiting the emails sent at once across all
    /// batches. Each email accepted by the SMTP server goes to the recorder (`accepted`) at
    /// once; the other results (retries, failures, releases) are recorded in one transaction
    /// when the batch is done.
    async fn send_and_record(
        &self,
        batch: Batch,
        connections: Arc<Semaphore>,
        accepted: mpsc::UnboundedSender<Accepted>,
    ) -> anyhow::Result<usize> {
        let handled = batch.rows.len();
        // An email not started by then is released rather than sent: a send must never begin
        // so late that the lease could run out before its result is recorded, or another
        // claim could take the email and send it a second time.
        let start_by = batch.lease_until - chrono::Duration::from_std(self.settings.lease / 2)?;
        let claim_id: Arc<str> = batch.claim_id.into();
        let mut sends = JoinSet::new();
        for (row, send_time) in batch.rows {
            let mailer = self.mailer.clone();
            let from = self.from.clone();
            let connections = connections.clone();
            let settings = self.settings.clone();
            let (accepted, claim_id) = (accepted.clone(), claim_id.clone());
            sends.spawn(async move {
                let _connection = connections.acquire_owned().await;
                let delivery = if now() > start_by {
                    Delivery::Released
                } else {
                    deliver(&mailer, &from, &row, &send_time, &settings).await
                };
                if matches!(delivery, Delivery::Sent) {
                    // The recorder outlives every batch, so this cannot fail.
                    let _ = accepted.send((claim_id, row.id));
                }
                (row, delivery)
            });
        }
        let mut results = Vec::with_capacity(handled);
        while let Some(joined) = sends.join_next().await {
            let (row, delivery) = joined?;
            if !matches!(delivery, Delivery::Sent) {
                results.push((row, delivery));
            }
        }
        if results.is_empty() {
            return Ok(handled);
        }
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut conn = pool.get()?;
            Ok(outbox::record(&mut conn, &claim_id, &results, now())?)
        })
        .await??;
        Ok(handled)
    }
}

/// Batches claimed and not yet done at once.
pub const BATCHES_IN_FLIGHT: usize = 3;

/// The recorder commits at most once per this interval: emails accepted meanwhile are recorded
/// together, so sending thousands a second costs a few hundred small commits a second at most,
/// not one each, and a crash can repeat only the emails accepted in the last few milliseconds.
pub const RECORD_EVERY: Duration = Duration::from_millis(2);

/// How long the recorder waits before trying again after the database refused a commit.
const RECORD_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// An email the SMTP server accepted: the claim that sent it and its id.
type Accepted = (Arc<str>, i64);

/// Records accepted emails as sent until every sender is gone, committing all that arrived
/// since the previous commit at once. If a commit fails, its emails are kept and tried again;
/// at worst (the database down until the process stops) their leases run out and they are
/// sent again, never lost.
async fn record_accepted(pool: DbPool, mut accepted: mpsc::UnboundedReceiver<Accepted>) {
    let mut pending: HashMap<Arc<str>, Vec<i64>> = HashMap::new();
    let mut open = true;
    loop {
        if pending.is_empty() {
            match accepted.recv().await {
                Some((claim_id, id)) => pending.entry(claim_id).or_default().push(id),
                None => return,
            }
        }
        loop {
            match accepted.try_recv() {
                Ok((claim_id, id)) => pending.entry(claim_id).or_default().push(id),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let started = tokio::time::Instant::now();
        let claims = std::mem::take(&mut pending);
        let pool = pool.clone();
        let (claims, result) = tokio::task::spawn_blocking(move || {
            let result = pool
                .get()
                .map_err(anyhow::Error::from)
                .and_then(|mut conn| {
                    let sent: Vec<(&str, &[i64])> = claims
                        .iter()
                        .map(|(claim_id, ids)| (&**claim_id, ids.as_slice()))
                        .collect();
                    Ok(outbox::record_sent(&mut conn, &sent, now())?)
                });
            (claims, result)
        })
        .await
        .unwrap_or_else(|error| (HashMap::new(), Err(anyhow::anyhow!("{error}"))));
        if let Err(error) = result {
            let count: usize = claims.values().map(Vec::len).sum();
            log::warn!("outbox: {count} sent emails not recorded yet: {error:#}");
            if !open {
                // Stopping: their leases will run out and they will be sent again.
                return;
            }
            pending = claims;
            tokio::time::sleep(RECORD_RETRY_PAUSE).await;
            continue;
        }
        if !open && pending.is_empty() {
            return;
        }
        tokio::time::sleep_until(started + RECORD_EVERY).await;
    }
}

/// While the signature writer is saturated (`Writer::saturated`) the outbox sends one batch
/// per this pause at most: sending at full speed takes the CPU signing needs, and a signer
/// waits for the answer while an email can wait a few seconds. So emails keep flowing (a batch
/// of 200 a second by default) rather than waiting for the surge to end, and go at full speed
/// as soon as the writer keeps up; a shorter pause slowed signing (BENCHMARKS.md, "Design
/// measurements").
const SATURATED_PAUSE: Duration = Duration::from_millis(1000);

/// Claimed emails with what was decided at send time, reserved for `claim_id` until
/// `lease_until`.
struct Batch {
    claim_id: String,
    lease_until: chrono::NaiveDateTime,
    rows: Vec<(OutboxRow, SendTime)>,
}

fn log_batch(done: Result<anyhow::Result<usize>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => log::warn!("outbox: {error:#}"),
        Err(error) => log::error!("outbox: a batch failed: {error}"),
    }
}

async fn deliver(
    mailer: &Mailer,
    from: &Mailbox,
    row: &OutboxRow,
    send_time: &SendTime,
    settings: &OutboxSettings,
) -> Delivery {
    let email = match OutgoingEmail::from_stored(&row.kind, &row.payload) {
        Ok(email) => email,
        Err(error) => {
            log::error!("outbox: email {} cannot be read: {error:#}", row.id);
            return Delivery::Failed {
                error: format!("unreadable payload: {error}"),
            };
        }
    };
    let message = match email.build_with(from, &row.recipient, send_time) {
        Ok(message) => message,
        Err(error) => {
            log::warn!("outbox: email {} cannot be built: {error:#}", row.id);
            return Delivery::Failed {
                error: format!("cannot build the message: {error}"),
            };
        }
    };
    match mailer.send(message, row.id).await {
        Ok(()) => {
            if mailer.writes_files() {
                // No mail server is configured: make the loop usable from the terminal.
                log::info!(
                    "email {} written to the mail folder; its link: {}",
                    row.id,
                    email.action_link()
                );
            }
            Delivery::Sent
        }
        Err(SendError::Permanent(error)) => {
            log::warn!("outbox: email {} refused permanently: {error}", row.id);
            Delivery::Failed { error }
        }
        Err(SendError::Transient(error)) => {
            let attempts = row.attempts + 1;
            if attempts >= settings.max_attempts {
                log::warn!(
                    "outbox: email {} given up after {attempts} attempts: {error}",
                    row.id
                );
                return Delivery::Failed { error };
            }
            let delay = retry_delay(settings, attempts);
            log::info!(
                "outbox: email {} not sent (attempt {attempts}): {error}; retrying in {}s",
                row.id,
                delay.as_secs_f32()
            );
            let at = now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            Delivery::Retry { at, error }
        }
    }
}

/// `retry_base` doubled per failed attempt, capped at `retry_max_delay`.
pub fn retry_delay(settings: &OutboxSettings, attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    settings
        .retry_base
        .saturating_mul(1_u32 << doublings)
        .min(settings.retry_max_delay)
}

fn new_claim_id() -> String {
    let mut bytes = [0_u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let settings = OutboxSettings {
            retry_base: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(60),
            ..OutboxSettings::default()
        };
        assert_eq!(retry_delay(&settings, 1), Duration::from_secs(5));
        assert_eq!(retry_delay(&settings, 2), Duration::from_secs(10));
        assert_eq!(retry_delay(&settings, 4), Duration::from_secs(40));
        assert_eq!(retry_delay(&settings, 5), Duration::from_secs(60));
        assert_eq!(retry_delay(&settings, 500), Duration::from_secs(60));
    }
}
