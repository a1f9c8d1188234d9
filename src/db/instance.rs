//! The `instance` table: facts that every process on one database must agree on. `serve`
//! records the public base URL it serves under; the command line puts that one into what it
//! writes for the outside world (bundles, dossiers, printed links), never a guess.

use anyhow::bail;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use super::schema::instance;
use super::AnyConnection;

const BASE_URL: &str = "base_url";

/// The flag that lets `UNDERSIGN_BASE_URL` win over the URL the server recorded.
pub const USE_ENV_BASE_URL_FLAG: &str = "--use-env-base-url";

/// The base URL the server last started under, if one has.
pub fn recorded_base_url(conn: &mut AnyConnection) -> QueryResult<Option<String>> {
    instance::table
        .find(BASE_URL)
        .select(instance::value)
        .first(conn)
        .optional()
}

/// Records the base URL the server serves under and returns the one it replaces, if another.
pub fn record_base_url(
    conn: &mut AnyConnection,
    base_url: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<String>> {
    super::write_transaction(conn, |conn| {
        let previous = recorded_base_url(conn)?;
        if previous.as_deref() == Some(base_url) {
            return Ok(None);
        }
        // The same upsert on both backends: instances starting together on one PostgreSQL
        // database would otherwise race between a look-up and an insert.
        diesel::sql_query(
            "INSERT INTO instance (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind::<Text, _>(BASE_URL)
        .bind::<Text, _>(base_url)
        .bind::<Timestamp, _>(now)
        .execute(conn)?;
        Ok(previous)
    })
}

/// The base URL a command writes into what leaves the instance: the one `serve` recorded, or
/// `UNDERSIGN_BASE_URL` (`configured`) where none was recorded or `use_configured` says so.
/// Refuses where it cannot be sure: a bundle signed with the wrong address cannot be redone.
pub fn base_url_for_command(
    conn: &mut AnyConnection,
    configured: Option<&str>,
    use_configured: bool,
) -> anyhow::Result<String> {
    let recorded = recorded_base_url(conn)?;
    match (configured, recorded) {
        (Some(configured), Some(recorded)) if configured != recorded && !use_configured => bail!(
            "UNDERSIGN_BASE_URL is {configured}, but the server on this database serves under \
             {recorded} (recorded when `undersign serve` last started). Unset UNDERSIGN_BASE_URL \
             to use {recorded}, or add {USE_ENV_BASE_URL_FLAG} to use {configured}."
        ),
        (Some(configured), _) => Ok(configured.to_owned()),
        (None, Some(recorded)) => Ok(recorded),
        (None, None) => bail!(
            "the instance's public address is unknown: no `undersign serve` has started on this \
             database yet (it records the address it serves under). Set UNDERSIGN_BASE_URL to \
             the address the public reaches the server at, e.g. UNDERSIGN_BASE_URL=https://sign.example.org"
        ),
    }
}
