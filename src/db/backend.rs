//! The few statements that differ between SQLite and PostgreSQL.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::AnyConnection;

/// Runs a query written once against the connection inside an [`AnyConnection`], for the
/// shapes diesel cannot build on the multi-backend enum itself: a batch insert of a `Vec` of
/// rows (see STACK.md). The body is compiled once per backend; `$inner` names the backend's
/// own connection in it.
macro_rules! on_inner_connection {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($inner) => $body,
            $crate::db::AnyConnection::Postgresql($inner) => $body,
        }
    };
}
pub(crate) use on_inner_connection;

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

/// Confirmed signatures of a petition per day of confirmation (UTC), as `(YYYY-MM-DD, count)`
/// in no particular order.
///
/// Grouping by day needs a date function, and diesel's DSL has no portable one (SQLite keeps
/// timestamps as text, PostgreSQL as `timestamp`). Grouping in the database keeps the answer
/// as small as the number of days however large the petition is, where loading every
/// `confirmed_at` and bucketing in Rust would move one row per signature. Both statements use
/// the `(petition_id, status)` index and return the day as text, so the callers are shared.
pub fn confirmed_per_day(
    conn: &mut AnyConnection,
    petition_id: i64,
) -> diesel::QueryResult<Vec<(String, i64)>> {
    use diesel::sql_types::{BigInt, Text};
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct DayCount {
        #[diesel(sql_type = Text)]
        day: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    let rows: Vec<DayCount> = match conn {
        AnyConnection::Sqlite(inner) => diesel::sql_query(
            "SELECT strftime('%Y-%m-%d', confirmed_at) AS day, COUNT(*) AS n FROM signatures \
             WHERE petition_id = $1 AND status = 'confirmed' AND confirmed_at IS NOT NULL \
             GROUP BY 1",
        )
        .bind::<BigInt, _>(petition_id)
        .load(inner)?,
        AnyConnection::Postgresql(inner) => diesel::sql_query(
            "SELECT to_char(confirmed_at, 'YYYY-MM-DD') AS day, COUNT(*) AS n FROM signatures \
             WHERE petition_id = $1 AND status = 'confirmed' AND confirmed_at IS NOT NULL \
             GROUP BY 1",
        )
        .bind::<BigInt, _>(petition_id)
        .load(inner)?,
    };
    Ok(rows.into_iter().map(|row| (row.day, row.n)).collect())
}
