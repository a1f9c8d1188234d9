//! The few statements that differ between SQLite and PostgreSQL.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::AnyConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary but fixed key: instances starting together on one PostgreSQL database take
/// turns migrating instead of racing.
const MIGRATION_LOCK_KEY: i64 = 0x756e_6465_7273;

/// Applies pending migrations and returns how many were applied.
pub fn run_migrations(conn: &mut AnyConnection) -> anyhow::Result<usize> {
    let applied = match conn {
        AnyConnection::Sqlite(inner) => inner
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!(e))?
            .len(),
        AnyConnection::Postgresql(inner) => {
            inner.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = inner
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.len())
                .map_err(|e| anyhow::anyhow!(e));
            inner.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result?
        }
    };
    Ok(applied)
}
