//! What every request handler shares.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::db::DbPool;
use crate::safety::encryption::DataKey;
use crate::secrets::Secrets;

/// Registered once as app data; handlers take `web::Data<AppState>`.
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
    pub trusted_proxies: crate::config::network::TrustedProxies,
    /// The abuse checks: limits, lists, daily client-address keys.
    pub safety: Arc<crate::safety::Safety>,
    /// The public count and page of each petition, held for up to a second; writes that
    /// change them call `forget` once committed.
    pub public_views: crate::petitions::cache::PublicViews,
    /// Writes public signings and confirmations, many per transaction.
    pub writer: crate::signatures::writer::Writer,
}

/// The key that encrypts and signs the workspace's cookies, derived from the instance secret.
pub fn cookie_key(secrets: &Secrets) -> actix_web::cookie::Key {
    actix_web::cookie::Key::derive_from(&secrets.derive("cookies"))
}
