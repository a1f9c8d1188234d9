//! The outbox worker: claims due emails, sends them concurrently, records the results, and
//! retries failures with exponential backoff. It runs in every instance; claims keep them
//! from sending the same email twice.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lettre::message::Mailbox;
use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use super::messages::{OutgoingEmail, SendTime};
use super::outbox::{self, Delivery, OutboxRow};
use super::transport::{Mailer, SendError, SMTP_POOL_SIZE};
use crate::config::OutboxSettings;
use crate::db::DbPool;
use crate::now;
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
            links: None,
        }
    }

    /// Gives every email to a signer its withdrawal link and its petition's discreet settings.
    pub fn with_signer_links(mut self, secrets: Arc<Secrets>, base_url: String) -> Self {
        self.links = Some((secrets, base_url));
        self
    }

    /// Runs until `stop` turns true. Woken at once when a request queues an email; otherwise
    /// looks for due emails (retries, other instances' leftovers) every poll interval.
    /// A batch in progress is finished before stopping, so its claims are not left to expire.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let pause = match self.run_once().await {
                Ok(0) => self.settings.poll_interval,
                Ok(_) => continue,
                Err(error) => {
                    log::warn!("outbox: {error:#}");
                    self.settings.poll_interval
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Claims one batch, sends it and records the results. Returns how many were handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let claim_id = new_claim_id();
        let started = now();
        let lease_until = started + chrono::Duration::from_std(self.settings.lease)?;
        let limit = self.settings.batch_size;
        let rows = {
            let pool = self.pool.clone();
            let claim_id = claim_id.clone();
            let links = self.links.clone();
            let key = self.data_key.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(OutboxRow, SendTime)>> {
                let mut conn = pool.get()?;
                let rows = outbox::claim(&mut conn, &key, &claim_id, started, lease_until, limit)?;
                let mut prepared = Vec::with_capacity(rows.len());
                for row in rows {
                    // An unreadable payload is reported when the email is built.
                    let send_time =
                        match (&links, OutgoingEmail::from_stored(&row.kind, &row.payload)) {
                            (Some((secrets, base_url)), Ok(email)) => {
                                SendTime::look_up(&mut conn, row.id, &email, secrets, base_url)?
                            }
                            _ => SendTime::default(),
                        };
                    prepared.push((row, send_time));
                }
                Ok(prepared)
            })
            .await??
        };
        if rows.is_empty() {
            return Ok(0);
        }
        let handled = rows.len();
        let permits = Arc::new(Semaphore::new(SMTP_POOL_SIZE as usize));
        let mut sends = JoinSet::new();
        for (row, send_time) in rows {
            let mailer = self.mailer.clone();
            let from = self.from.clone();
            let permits = permits.clone();
            let settings = self.settings.clone();
            sends.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let delivery = deliver(&mailer, &from, &row, &send_time, &settings).await;
                (row, delivery)
            });
        }
        let mut results = Vec::with_capacity(handled);
        while let Some(joined) = sends.join_next().await {
            results.push(joined?);
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
