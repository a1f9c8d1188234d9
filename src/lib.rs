//! undersign: petitions and open letters with email-confirmed signatures.
//!
//! [`Application::build`] wires configuration, the database pool, the outbox worker, the
//! maintenance task and the routes of each domain module; `main.rs` only parses the command
//! line ([`cli`]).

pub mod cli;
pub mod config;
pub mod core;
pub mod db;
pub mod delivery;
pub mod error;
pub mod exports;
pub mod mail;
pub mod organizers;
pub mod petitions;
pub mod retention;
pub mod safety;
pub mod secrets;
pub mod signatures;
pub mod web;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use anyhow::Context;
use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::core::clock::now;

use crate::config::Settings;
use crate::db::DbPool;
use crate::mail::transport::Mailer;
use crate::mail::worker::OutboxWorker;
use crate::secrets::Secrets;

/// How long shutdown waits for the outbox worker to finish sending its current batch (and
/// the maintenance task its current round).
const WORKER_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

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
    server: web::Server,
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
            tokio::task::spawn_blocking(move || safety::encryption::open_data_key(&pool, &file))
                .await??
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
        let outbox_wake = Arc::new(Notify::new());
        let safety = Arc::new(safety::Safety::new(&settings, &secrets)?);
        let token_ttl = chrono::Duration::from_std(settings.token_ttl)?;
        let (writer, writer_thread) = signatures::writer::start(
            &settings.database_url,
            settings.write_queue,
            settings.signing_writers,
            settings.sqlite_wal_restart_pages,
            signatures::writer::WriterContext {
                base_url: base_url.clone(),
                token_ttl,
                data_key: data_key.clone(),
                safety: safety.clone(),
                outbox_wake: outbox_wake.clone(),
            },
        )?;
        let worker = OutboxWorker::new(
            pool.clone(),
            mailer,
            from,
            settings.outbox.clone(),
            outbox_wake.clone(),
            data_key.clone(),
        )
        .with_signer_links(secrets.clone(), base_url.clone())
        .yielding_to({
            let writer = writer.clone();
            move || writer.saturated()
        });
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

        let state = web::AppState {
            pool: pool.clone(),
            base_url: base_url.clone(),
            token_ttl,
            outbox_wake,
            cookie_key: web::state::cookie_key(&secrets),
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
        };
        let server = web::server(state, listener, settings.workers)?;
        Ok(Self {
            address,
            base_url,
            pool,
            server,
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
    pub fn server_handle(&self) -> web::ServerHandle {
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
