//! Settings: one typed struct, read once from the environment, with defaults that work locally.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

pub mod network;

/// The environment variables, as shown by `undersign --help` and the README.
pub const ENVIRONMENT_HELP: &str = "\
Environment:
  DATABASE_URL                 sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB
                               [default: sqlite://undersign.db]
  UNDERSIGN_BIND               address to listen on [default: 127.0.0.1:8080]
  UNDERSIGN_BASE_URL           public origin used in links in emails
                               [default: http:// + the bound address]; `serve` records it,
                               and the other commands use the recorded one when it is unset
  UNDERSIGN_SMTP_URL           smtp://HOST:PORT, smtps://USER:PASS@HOST, smtp://HOST?tls=required;
                               unset: emails are written as .eml files to UNDERSIGN_MAIL_DIR
  UNDERSIGN_MAIL_DIR           folder for .eml files when no SMTP is set [default: ./mail-outbox]
  UNDERSIGN_SMTP_CONNECTIONS   SMTP connections kept open, and so emails sent at once [default: 48]
  UNDERSIGN_OUTBOX_BATCH       emails one outbox claim takes (at most 1000) [default: 200]
  UNDERSIGN_OUTBOX_LEASE_SECONDS  how long claimed emails stay reserved for the worker that
                               claimed them; after a crash they wait this long [default: 60]
  UNDERSIGN_MAIL_FROM          sender of emails [default: undersign <noreply@localhost>]
  UNDERSIGN_TOKEN_TTL_HOURS    how long a confirmation link stays valid [default: 168]
  UNDERSIGN_SECRET_KEY_FILE    file with the instance's secret key (cookies, keyed hashes);
                               created on first start; share it between instances
                               [default: ./undersign-secret.key]
  UNDERSIGN_DATA_KEY_FILE      the key that encrypts signers' personal fields in the database;
                               created on first start: BACK IT UP, without it the names and
                               addresses are lost; share it between instances
                               [default: ./undersign-data.key]
  UNDERSIGN_SIGNING_KEY_FILE   the Ed25519 key that signs delivery bundles; created on first use
                               [default: ./undersign-signing.key]
  UNDERSIGN_SESSION_IDLE_MINUTES  sign-in sessions end after this much inactivity [default: 60]
  UNDERSIGN_SESSION_MAX_HOURS  sign-in sessions end this long after sign-in [default: 12]
  UNDERSIGN_DB_POOL_SIZE       database connections per process [default: 8]
  UNDERSIGN_WORKERS            HTTP worker threads [default: one per core]
  UNDERSIGN_WRITE_QUEUE        signings and confirmations waiting to be written; beyond that,
                               503 with Retry-After [default: 4096]
  UNDERSIGN_SIGNING_WRITERS    writer threads (and connections) for signings on PostgreSQL;
                               SQLite always has one [default: 2]
  UNDERSIGN_TRUSTED_PROXIES    comma-separated addresses or networks (10.0.0.0/8, ::1) of reverse
                               proxies whose X-Forwarded-For names the client [default: none]
  UNDERSIGN_ABUSE_CHECKS       on|off: rate limits, honeypot, timing and disposable-domain checks
                               that hold signatures back as suspect [default: on]
  UNDERSIGN_LIMIT_PER_CLIENT   signatures per petition from one client address per window [default: 5]
  UNDERSIGN_LIMIT_PER_DOMAIN   signatures per petition from one email domain per window (big
                               free-mail providers are exempt) [default: 200]
  UNDERSIGN_LIMIT_WINDOW_MINUTES  the sliding window of both limits [default: 10]
  UNDERSIGN_DISPOSABLE_DOMAINS_FILE  more disposable email domains, one a line, # comments
  UNDERSIGN_RETAIN_UNCONFIRMED_DAYS  unconfirmed signatures are deleted after this many days
                               [default: 14]
  UNDERSIGN_RETAIN_AFTER_CLOSE_DAYS  email addresses (except of signers who asked for news) and
                               count-only names are erased this many days after a petition was
                               delivered or closed [default: 90]
  RUST_LOG                     log filter [default: info]";

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: String,
    /// Public origin without a trailing slash; `None` means "derive it from the bound address".
    pub base_url: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub token_ttl: Duration,
    pub secret_key_file: PathBuf,
    /// The key that encrypts signers' personal fields at rest.
    pub data_key_file: PathBuf,
    /// The Ed25519 key that signs delivery bundles.
    pub signing_key_file: PathBuf,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub db_pool_size: u32,
    /// Signings and confirmations waiting for the signature writer at most; beyond that the
    /// server answers 503 with `Retry-After` (see `signatures::writer`).
    pub write_queue: usize,
    /// Writer threads for signings on PostgreSQL (SQLite has one write lock: one writer).
    pub signing_writers: usize,
    /// The WAL size (in pages of 4 KiB) past which SQLite's checkpointer lets the WAL start
    /// over (see `db::SqliteCheckpointer`). Not read from the environment: tests lower it.
    pub sqlite_wal_restart_pages: i64,
    pub workers: Option<usize>,
    pub outbox: OutboxSettings,
    /// How often the maintenance task runs (closing petitions whose closing date has passed).
    pub maintenance_interval: Duration,
    /// How long personal data is kept (see `retention`).
    pub retention: RetentionSettings,
    /// Reverse proxies whose `X-Forwarded-For` is believed; nobody's by default.
    pub trusted_proxies: network::TrustedProxies,
    /// The automatic abuse checks (limits, honeypot, timing, disposable domains).
    pub abuse_checks: bool,
    pub abuse: AbuseSettings,
}

/// Rate limits and lists of the automatic abuse checks.
#[derive(Debug, Clone)]
pub struct AbuseSettings {
    /// Signatures per petition from one client address within `window`.
    pub per_client: i64,
    /// Signatures per petition from one email domain within `window`.
    pub per_domain: i64,
    pub window: Duration,
    /// Disposable domains added to the bundled list.
    pub disposable_domains_file: Option<PathBuf>,
}

impl Default for AbuseSettings {
    fn default() -> Self {
        Self {
            per_client: 5,
            per_domain: 200,
            window: Duration::from_secs(10 * 60),
            disposable_domains_file: None,
        }
    }
}

/// How the email outbox worker paces itself.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// How often to look for due emails when nothing wakes the worker (other instances, retries).
    pub poll_interval: Duration,
    /// First retry delay; doubled after every failed attempt up to `retry_max_delay`.
    pub retry_base: Duration,
    pub retry_max_delay: Duration,
    /// After this many failed attempts an email is given up and shown as failed.
    pub max_attempts: i32,
    /// How long a claimed email is reserved for the worker that claimed it.
    pub lease: Duration,
    /// Emails claimed at once; the worker keeps a few batches in flight.
    pub batch_size: i64,
    /// SMTP connections kept open: how many emails are sent at once.
    pub smtp_connections: usize,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(15 * 60),
            // With the delays above: retries for about a day before giving up.
            max_attempts: 100,
            lease: Duration::from_secs(60),
            batch_size: 200,
            // Each connection carries one email at a time and waits for the receiver's delayed
            // ACK, so throughput grows with connections (BENCHMARKS.md, "Outbox throughput").
            // 48 stays under Postfix's default limit of 50 connections per client; raise it for
            // relays that allow more.
            smtp_connections: 48,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://undersign.db".to_owned(),
            bind: "127.0.0.1:8080".to_owned(),
            base_url: None,
            smtp_url: None,
            mail_dir: PathBuf::from("mail-outbox"),
            mail_from: "undersign <noreply@localhost>".to_owned(),
            token_ttl: Duration::from_secs(7 * 24 * 3600),
            secret_key_file: PathBuf::from("undersign-secret.key"),
            data_key_file: PathBuf::from("undersign-data.key"),
            signing_key_file: PathBuf::from("undersign-signing.key"),
            session_idle: Duration::from_secs(60 * 60),
            session_max: Duration::from_secs(12 * 3600),
            db_pool_size: 8,
            write_queue: 4096,
            signing_writers: POSTGRES_SIGNING_LANES,
            sqlite_wal_restart_pages: crate::db::SQLITE_WAL_RESTART_PAGES,
            workers: None,
            outbox: OutboxSettings::default(),
            maintenance_interval: Duration::from_secs(60),
            retention: RetentionSettings::default(),
            trusted_proxies: network::TrustedProxies::default(),
            abuse_checks: true,
            abuse: AbuseSettings::default(),
        }
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so parsing can be tested without touching the process
    /// environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let mut settings = Settings::default();
        if let Some(url) = get("DATABASE_URL") {
            settings.database_url = url;
        }
        if let Some(bind) = get("UNDERSIGN_BIND") {
            settings.bind = bind;
        }
        if let Some(base) = get("UNDERSIGN_BASE_URL") {
            settings.base_url = Some(parse_base_url(&base)?);
        }
        settings.smtp_url = get("UNDERSIGN_SMTP_URL");
        if let Some(dir) = get("UNDERSIGN_MAIL_DIR") {
            settings.mail_dir = PathBuf::from(dir);
        }
        if let Some(connections) = get("UNDERSIGN_SMTP_CONNECTIONS") {
            let connections: usize = parse_number("UNDERSIGN_SMTP_CONNECTIONS", &connections)?;
            if !(1..=1000).contains(&connections) {
                bail!("UNDERSIGN_SMTP_CONNECTIONS must be between 1 and 1000");
            }
            settings.outbox.smtp_connections = connections;
        }
        if let Some(batch) = get("UNDERSIGN_OUTBOX_BATCH") {
            let batch: i64 = parse_number("UNDERSIGN_OUTBOX_BATCH", &batch)?;
            if !(1..=1000).contains(&batch) {
                bail!("UNDERSIGN_OUTBOX_BATCH must be between 1 and 1000");
            }
            settings.outbox.batch_size = batch;
        }
        if let Some(seconds) = get("UNDERSIGN_OUTBOX_LEASE_SECONDS") {
            let seconds: u64 = parse_number("UNDERSIGN_OUTBOX_LEASE_SECONDS", &seconds)?;
            if seconds == 0 {
                bail!("UNDERSIGN_OUTBOX_LEASE_SECONDS must be at least 1");
            }
            settings.outbox.lease = Duration::from_secs(seconds);
        }
        if let Some(from) = get("UNDERSIGN_MAIL_FROM") {
            settings.mail_from = from;
        }
        if let Some(hours) = get("UNDERSIGN_TOKEN_TTL_HOURS") {
            let hours: u64 = parse_number("UNDERSIGN_TOKEN_TTL_HOURS", &hours)?;
            if hours == 0 {
                bail!("UNDERSIGN_TOKEN_TTL_HOURS must be at least 1");
            }
            settings.token_ttl = Duration::from_secs(hours * 3600);
        }
        if let Some(file) = get("UNDERSIGN_SECRET_KEY_FILE") {
            settings.secret_key_file = PathBuf::from(file);
        }
        if let Some(file) = get("UNDERSIGN_DATA_KEY_FILE") {
            settings.data_key_file = PathBuf::from(file);
        }
        if let Some(file) = get("UNDERSIGN_SIGNING_KEY_FILE") {
            settings.signing_key_file = PathBuf::from(file);
        }
        if let Some(minutes) = get("UNDERSIGN_SESSION_IDLE_MINUTES") {
            let minutes: u64 = parse_number("UNDERSIGN_SESSION_IDLE_MINUTES", &minutes)?;
            settings.session_idle = Duration::from_secs(minutes.max(1) * 60);
        }
        if let Some(hours) = get("UNDERSIGN_SESSION_MAX_HOURS") {
            let hours: u64 = parse_number("UNDERSIGN_SESSION_MAX_HOURS", &hours)?;
            settings.session_max = Duration::from_secs(hours.max(1) * 3600);
        }
        if let Some(size) = get("UNDERSIGN_DB_POOL_SIZE") {
            settings.db_pool_size = parse_number("UNDERSIGN_DB_POOL_SIZE", &size)?;
            if settings.db_pool_size == 0 {
                bail!("UNDERSIGN_DB_POOL_SIZE must be at least 1");
            }
        }
        if let Some(size) = get("UNDERSIGN_WRITE_QUEUE") {
            settings.write_queue = parse_number("UNDERSIGN_WRITE_QUEUE", &size)?;
            if settings.write_queue == 0 {
                bail!("UNDERSIGN_WRITE_QUEUE must be at least 1");
            }
        }
        if let Some(writers) = get("UNDERSIGN_SIGNING_WRITERS") {
            let writers: usize = parse_number("UNDERSIGN_SIGNING_WRITERS", &writers)?;
            if !(1..=32).contains(&writers) {
                bail!("UNDERSIGN_SIGNING_WRITERS must be from 1 to 32");
            }
            settings.signing_writers = writers;
        }
        if let Some(workers) = get("UNDERSIGN_WORKERS") {
            let workers: usize = parse_number("UNDERSIGN_WORKERS", &workers)?;
            settings.workers = Some(workers.max(1));
        }
        if let Some(value) = get("UNDERSIGN_ABUSE_CHECKS") {
            settings.abuse_checks = match value.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "yes" => true,
                "off" | "false" | "0" | "no" => false,
                _ => bail!("UNDERSIGN_ABUSE_CHECKS must be on or off, not {value:?}"),
            };
        }
        if let Some(limit) = get("UNDERSIGN_LIMIT_PER_CLIENT") {
            settings.abuse.per_client = parse_number("UNDERSIGN_LIMIT_PER_CLIENT", &limit)?;
        }
        if let Some(limit) = get("UNDERSIGN_LIMIT_PER_DOMAIN") {
            settings.abuse.per_domain = parse_number("UNDERSIGN_LIMIT_PER_DOMAIN", &limit)?;
        }
        if let Some(minutes) = get("UNDERSIGN_LIMIT_WINDOW_MINUTES") {
            let minutes: u64 = parse_number("UNDERSIGN_LIMIT_WINDOW_MINUTES", &minutes)?;
            settings.abuse.window = Duration::from_secs(minutes.max(1) * 60);
        }
        if settings.abuse.per_client < 1 || settings.abuse.per_domain < 1 {
            bail!("UNDERSIGN_LIMIT_PER_CLIENT and UNDERSIGN_LIMIT_PER_DOMAIN must be at least 1");
        }
        if let Some(file) = get("UNDERSIGN_DISPOSABLE_DOMAINS_FILE") {
            settings.abuse.disposable_domains_file = Some(PathBuf::from(file));
        }
        if let Some(list) = get("UNDERSIGN_TRUSTED_PROXIES") {
            settings.trusted_proxies = network::TrustedProxies::parse(&list)
                .map_err(|problem| anyhow::anyhow!("UNDERSIGN_TRUSTED_PROXIES: {problem}"))?;
        }
        if let Some(days) = get("UNDERSIGN_RETAIN_UNCONFIRMED_DAYS") {
            let days: u32 = parse_number("UNDERSIGN_RETAIN_UNCONFIRMED_DAYS", &days)?;
            settings.retention.unconfirmed_days = i64::from(days.max(1));
        }
        if let Some(days) = get("UNDERSIGN_RETAIN_AFTER_CLOSE_DAYS") {
            let days: u32 = parse_number("UNDERSIGN_RETAIN_AFTER_CLOSE_DAYS", &days)?;
            settings.retention.after_close_days = i64::from(days);
        }
        Ok(settings)
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value
        .trim()
        .parse()
        .ok()
        .with_context(|| format!("{name} must be a whole number, not {value:?}"))
}

fn parse_base_url(value: &str) -> anyhow::Result<String> {
    let value = value.trim().trim_end_matches('/');
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        bail!("UNDERSIGN_BASE_URL must start with http:// or https://, not {value:?}");
    }
    Ok(value.to_owned())
}

/// How long signers' data is kept (`retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Unconfirmed signatures are deleted after this many days.
    pub unconfirmed_days: i64,
    /// Email addresses (and count-only names) are erased this many days after a petition was
    /// delivered or closed.
    pub after_close_days: i64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            unconfirmed_days: 14,
            after_close_days: 90,
        }
    }
}

/// The default of `UNDERSIGN_SIGNING_WRITERS` on PostgreSQL: more writers make smaller
/// batches (BENCHMARKS.md, "Design measurements"). SQLite has one writer.
pub const POSTGRES_SIGNING_LANES: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_work_locally() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.database_url, "sqlite://undersign.db");
        assert_eq!(settings.bind, "127.0.0.1:8080");
        assert!(settings.smtp_url.is_none());
        assert_eq!(settings.token_ttl, Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn reads_and_checks_values() {
        let settings = settings(&[
            ("UNDERSIGN_BASE_URL", "https://sign.example.org/"),
            ("UNDERSIGN_TOKEN_TTL_HOURS", "24"),
        ])
        .unwrap();
        assert_eq!(
            settings.base_url.as_deref(),
            Some("https://sign.example.org")
        );
        assert_eq!(settings.token_ttl, Duration::from_secs(24 * 3600));
        assert!(self::settings(&[("UNDERSIGN_BASE_URL", "sign.example.org")]).is_err());
        assert!(self::settings(&[("UNDERSIGN_TOKEN_TTL_HOURS", "a week")]).is_err());
        assert!(self::settings(&[("UNDERSIGN_DB_POOL_SIZE", "0")]).is_err());
        let proxies = self::settings(&[("UNDERSIGN_TRUSTED_PROXIES", " 10.0.0.0/8, ::1 ")])
            .unwrap()
            .trusted_proxies;
        assert!(proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(proxies.contains("::1".parse().unwrap()));
        let error = self::settings(&[("UNDERSIGN_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("UNDERSIGN_TRUSTED_PROXIES") && error.contains("proxy.local"));
    }

    #[test]
    fn reads_the_abuse_checks_and_limits() {
        let defaults = settings(&[]).unwrap();
        assert!(defaults.abuse_checks);
        assert_eq!(defaults.abuse.per_client, 5);
        assert_eq!(defaults.abuse.per_domain, 200);
        assert_eq!(defaults.abuse.window, Duration::from_secs(600));
        let custom = settings(&[
            ("UNDERSIGN_ABUSE_CHECKS", "OFF"),
            ("UNDERSIGN_LIMIT_PER_CLIENT", "20"),
            ("UNDERSIGN_LIMIT_PER_DOMAIN", "1000"),
            ("UNDERSIGN_LIMIT_WINDOW_MINUTES", "60"),
            (
                "UNDERSIGN_DISPOSABLE_DOMAINS_FILE",
                "/etc/undersign/disposable.txt",
            ),
        ])
        .unwrap();
        assert!(!custom.abuse_checks);
        assert_eq!(custom.abuse.per_client, 20);
        assert_eq!(custom.abuse.per_domain, 1000);
        assert_eq!(custom.abuse.window, Duration::from_secs(3600));
        assert!(custom.abuse.disposable_domains_file.is_some());
        for bad in [
            ("UNDERSIGN_ABUSE_CHECKS", "maybe"),
            ("UNDERSIGN_LIMIT_PER_CLIENT", "0"),
            ("UNDERSIGN_LIMIT_PER_DOMAIN", "-3"),
            ("UNDERSIGN_LIMIT_WINDOW_MINUTES", "ten"),
        ] {
            assert!(self::settings(&[bad]).is_err(), "{bad:?}");
        }
    }
}
