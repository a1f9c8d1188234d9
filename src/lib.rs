//! undersign: petitions and open letters with email-confirmed signatures.
//!
//! [`Application::build`] wires configuration, the database pool, the outbox worker, the
//! maintenance task and the routes of each domain module; `main.rs` only parses the command
//! line ([`cli`]).

pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod error;
pub mod exports;
mod favicon;
pub mod hardening;
mod head;
pub mod http;
pub mod mail;
pub mod organizers;
pub mod petitions;
pub mod retention;
pub mod safety;
pub mod secrets;
pub mod signatures;
mod site;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use chrono::NaiveDateTime;
use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::db::DbPool;
use crate::mail::transport::Mailer;
use crate::mail::worker::OutboxWorker;
use crate::safety::encryption::DataKey;
use crate::secrets::Secrets;

/// How long shutdown waits for the outbox worker to finish sending its current batch (and
/// the maintenance task its current round).
const WORKER_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// What every request handler shares.
pub struct AppState {
    pub pool: DbPool,
    /// Public origin for links, without a trailing slash.
    pub base_url: String,
    pub token_ttl: chrono::Duration,
    /// Wakes the outbox worker as soon as a request has queued an email.
    pub outbox_wake: Arc<Notify>,
    pub secrets: Arc<Secrets>,
    /// Encrypts signers' personal fields at rest and hashes their addresses for lookups.
    pub data_key: Arc<DataKey>,
    /// Encrypts and signs the workspace's cookies.
    pub cookie_key: actix_web::cookie::Key,
    /// Cookies get the Secure flag when the public origin is https.
    pub secure_cookies: bool,
    pub session_idle: chrono::Duration,
    pub session_max: chrono::Duration,
    /// The Ed25519 key that signs delivery bundles, created on first use.
    pub signing_key_file: std::path::PathBuf,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Request-Id` are believed.
    pub trusted_proxies: http::TrustedProxies,
    /// The abuse checks: limits, lists, daily client-address keys.
    pub safety: safety::Safety,
    /// The public count and page of each petition, held for up to a second; writes that
    /// change them call `forget` once committed.
    pub public_views: petitions::cache::PublicViews,
    /// Writes public signings and confirmations, many per transaction.
    pub writer: signatures::writer::Writer,
}

/// The current time in UTC. Every timestamp is set from here, never by SQL defaults.
pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Makes every file this process creates from now on readable by its owner only (0600, folders
/// 0700): the database, its WAL and SHM hold signers' data, and mail files and exports their
/// addresses. SQLite creates its files 0644 less the umask.
pub fn keep_new_files_private() {
    // SAFETY: umask only replaces the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

pub struct Application {
    address: SocketAddr,
    base_url: String,
    pool: DbPool,
    server: actix_web::dev::Server,
    worker: tokio::task::JoinHandle<()>,
    maintenance: tokio::task::JoinHandle<()>,
    /// Stops the outbox worker and the maintenance task.
    stop_worker: tokio::sync::watch::Sender<bool>,
    writer: signatures::writer::WriterThread,
}

impl Application {
    /// Connects and migrates the database, binds the listener (port 0 picks a free port),
    /// starts the outbox worker and prepares the HTTP server. Must run inside a Tokio runtime.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        keep_new_files_private();
        let pool = {
            let url = settings.database_url.clone();
            let size = settings.db_pool_size;
            tokio::task::spawn_blocking(move || db::connect(&url, size)).await??
        };
        let data_key = {
            let pool = pool.clone();
            let file = settings.data_key_file.clone();
            tokio::task::spawn_blocking(move || open_data_key(&pool, &file)).await??
        };
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let address = listener.local_addr()?;
        let base_url = settings
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        // The command line writes this URL into bundles and dossiers (`db::instance`).
        {
            let (pool, url) = (pool.clone(), base_url.clone());
            let replaced = tokio::task::spawn_blocking(move || {
                let mut conn = pool.get()?;
                db::instance::record_base_url(&mut conn, &url, now()).map_err(anyhow::Error::from)
            })
            .await??;
            if let Some(replaced) = replaced {
                log::warn!(
                    "the public base URL is now {base_url}; it was {replaced}. Links already \
                     sent and bundles already delivered name the old one"
                );
            }
        }
        let mailer = Mailer::new(
            settings.smtp_url.as_deref(),
            &settings.mail_dir,
            settings.outbox.smtp_connections,
        )?;
        let from: Mailbox = settings.mail_from.parse().with_context(|| {
            format!(
                "UNDERSIGN_MAIL_FROM {:?} is not a valid sender, e.g. \"undersign <noreply@example.org>\"",
                settings.mail_from
            )
        })?;
        let secrets = Arc::new(Secrets::load_or_create(&settings.secret_key_file)?);
        let (writer, writer_thread) = signatures::writer::start(
            &settings.database_url,
            settings.write_queue,
            settings.signing_writers,
            settings.sqlite_wal_restart_pages,
        )?;
        let outbox_wake = Arc::new(Notify::new());
        let worker = OutboxWorker::new(
            pool.clone(),
            mailer,
            from,
            settings.outbox.clone(),
            outbox_wake.clone(),
            data_key.clone(),
        )
        .with_signer_links(secrets.clone(), base_url.clone())
        .yielding_to(writer.clone());
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        // The daily retention run shares the maintenance task's handle, so shutdown waits for
        // both the same way.
        let maintenance = tokio::spawn({
            let closing = petitions::maintenance::run(
                pool.clone(),
                settings.maintenance_interval,
                worker_stopped.clone(),
            );
            let purging = retention::run(pool.clone(), settings.retention, worker_stopped.clone());
            async move {
                tokio::join!(closing, purging);
            }
        });
        let worker = tokio::spawn(worker.run(worker_stopped));

        let safety = safety::Safety::new(&settings, &secrets)?;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            base_url: base_url.clone(),
            token_ttl: chrono::Duration::from_std(settings.token_ttl)?,
            outbox_wake,
            cookie_key: secrets.cookie_key(),
            secrets,
            data_key,
            secure_cookies: base_url.starts_with("https://"),
            session_idle: chrono::Duration::from_std(settings.session_idle)?,
            session_max: chrono::Duration::from_std(settings.session_max)?,
            signing_key_file: settings.signing_key_file.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            safety,
            public_views: petitions::cache::PublicViews::new(),
            writer,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(hardening::middleware))
                // Outermost: it changes the request's method, which needs the only handle on it.
                .wrap(from_fn(head::as_get))
                .configure(petitions::routes::configure)
                .configure(signatures::routes::configure)
                .configure(signatures::withdrawal::configure)
                .configure(petitions::admin::configure)
                .configure(organizers::configure)
                .configure(exports::routes::configure)
                .configure(delivery::routes::configure)
                .configure(favicon::configure)
                .configure(site::configure)
        })
        .listen(listener)?
        // Slow clients cannot hold connections open: the request head must arrive within
        // 5 s, an idle connection is closed after 15 s, and a closing one gets 2 s to go.
        // Bodies have their own deadline (`http::BODY_TIMEOUT`).
        .client_request_timeout(std::time::Duration::from_secs(5))
        .keep_alive(std::time::Duration::from_secs(15))
        .client_disconnect_timeout(std::time::Duration::from_secs(2))
        .shutdown_timeout(10);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            address,
            base_url,
            pool,
            server: server.run(),
            worker,
            maintenance,
            stop_worker,
            writer: writer_thread,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Stops the server from elsewhere (tests, signal handling in embedders).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the process is told to stop (Ctrl-C, SIGTERM), then lets the signature
    /// writer commit the jobs already queued, the outbox worker finish the batch it is sending
    /// and the maintenance task its current round.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.stop_worker.send(true);
        tokio::join!(
            self.writer.stop(WORKER_SHUTDOWN_GRACE),
            finish_within(
                self.worker,
                "outbox: the worker did not stop in time; its claimed emails will be retried",
            ),
            finish_within(
                self.maintenance,
                "maintenance: the task did not stop in time",
            ),
        );
        result
    }
}

/// Loads (or creates) the data key and checks it against the database; see
/// [`safety::encryption::prepare`]. The command-line tools that read signers' fields use it too.
pub fn open_data_key(pool: &DbPool, file: &std::path::Path) -> anyhow::Result<Arc<DataKey>> {
    let key = DataKey::load_or_create(file)?;
    let mut conn = pool.get().context("cannot connect to the database")?;
    match safety::encryption::prepare(&mut conn, &key, file, now())? {
        safety::encryption::Prepared::Recorded { rows_encrypted } if rows_encrypted > 0 => {
            log::warn!(
                "encrypted {rows_encrypted} signature and email rows that an older version had \
                 stored in the clear"
            )
        }
        _ => {}
    }
    Ok(Arc::new(key))
}

/// [`open_data_key`] for the commands other than `serve`: the key file must exist already, as
/// a new key would not read the signers' fields the server stored.
pub fn open_existing_data_key(
    pool: &DbPool,
    file: &std::path::Path,
) -> anyhow::Result<Arc<DataKey>> {
    if std::fs::metadata(file).is_err() {
        anyhow::bail!(
            "there is no data key at {}: run the command from the server's folder, or set \
             UNDERSIGN_DATA_KEY_FILE to the server's key file",
            std::path::absolute(file)
                .unwrap_or_else(|_| file.to_owned())
                .display()
        );
    }
    open_data_key(pool, file)
}

/// Waits for a background task that was told to stop; aborts it after the grace period.
async fn finish_within(mut task: tokio::task::JoinHandle<()>, late: &str) {
    if tokio::time::timeout(WORKER_SHUTDOWN_GRACE, &mut task)
        .await
        .is_err()
    {
        log::warn!("{late}");
        task.abort();
    }
}
