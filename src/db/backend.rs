//! The few statements that differ between SQLite and PostgreSQL.

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::schema::signatures;
use super::{AnyConnection, KeepPrepared, MultiBackend};

/// Inserts a `Vec` of rows with a query written once against the connection inside an
/// [`AnyConnection`]: diesel cannot build a batch insert on the multi-backend enum itself (see
/// STACK.md). The body is compiled once per backend; `$inner` names the backend's own
/// connection in it and `$chunk` the rows to insert in one statement.
///
/// PostgreSQL takes all rows in one statement: each statement is a round trip. SQLite takes
/// them in chunks of a few fixed sizes, in order: diesel prepares a batch insert of a `Vec`
/// anew each time (its SQL depends on the number of rows), and parsing was a visible share of
/// the signature writer's time (BENCHMARKS.md, "Design measurements"). An array's insert has
/// one SQL per size, which diesel prepares once per connection and keeps; in the process, a
/// few more statements cost next to nothing.
/// Evaluates to `QueryResult<Vec<_>>`: each statement's result, in order.
macro_rules! insert_in_chunks {
    ($conn:expr, $rows:expr, |$inner:ident, $chunk:ident| $body:expr) => {
        (|| -> diesel::QueryResult<Vec<_>> {
            let mut rows: Vec<_> = $rows;
            let mut results = Vec::new();
            match &mut *$conn {
                $crate::db::AnyConnection::Postgresql($inner) => {
                    let $chunk = rows;
                    results.push($body?);
                }
                $crate::db::AnyConnection::Sqlite($inner) => {
                    $crate::db::backend::insert_in_chunks!(
                        @sizes $inner, rows, results, $chunk, $body, [64, 16, 4, 1]
                    );
                }
            }
            Ok(results)
        })()
    };
    (@sizes $inner:ident, $rows:ident, $results:ident, $chunk:ident, $body:expr,
        [$($size:literal),*]) => {
        $(
            while $rows.len() >= $size {
                let rest = $rows.split_off($size);
                let $chunk: [_; $size] = std::mem::replace(&mut $rows, rest)
                    .try_into()
                    .map_err(|_| {
                        diesel::result::Error::QueryBuilderError("a chunk of rows lost its size".into())
                    })?;
                $results.push($body?);
            }
        )*
    };
}
pub(crate) use insert_in_chunks;

/// `column IN (keys)` with SQL that is the same for any number of keys: the keys go in one
/// bind, as a JSON array, which SQLite reads with `json_each` and PostgreSQL with
/// `json_array_elements_text` into an array. diesel prepares an `eq_any` anew at every run
/// (its SQL has one placeholder per key), as it does raw SQL (`dsl::sql`); on SQLite this one
/// it prepares once per connection and keeps. On PostgreSQL it stays unnamed, planned for its
/// keys at every run (see `walk_ast`). The signature writer looks up a batch's addresses and
/// tokens this way.
pub fn one_of<C>(column: C, keys: &[&str]) -> OneOf<C> {
    OneOf {
        column,
        keys: serde_json::to_string(keys).expect("a list of strings is valid JSON"),
    }
}

/// See [`one_of`].
#[derive(Debug, Clone)]
pub struct OneOf<C> {
    column: C,
    keys: String,
}

impl<C: Expression> Expression for OneOf<C> {
    type SqlType = Bool;
}

impl<C: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for OneOf<C> {}

impl<C: SelectableExpression<QS>, QS> SelectableExpression<QS> for OneOf<C> {}

impl<C: ValidGrouping<GB>, GB> ValidGrouping<GB> for OneOf<C> {
    type IsAggregate = C::IsAggregate;
}

impl<C: QueryId> QueryId for OneOf<C> {
    type QueryId = OneOf<C::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
}

impl<C: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for OneOf<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        // A connection speaks to one backend, so a prepared statement's SQL never changes.
        let (open, close) = match out.backend() {
            MultiBackend::Sqlite(_) => (" IN (SELECT value FROM json_each(", "))"),
            // An array, not a subquery: PostgreSQL plans `IN (SELECT …)` as a semi-join and,
            // with a growing table's statistics lagging, hashed every signature of the
            // petition instead of probing the unique index (BENCHMARKS.md, "Design measurements").
            MultiBackend::Postgresql(_) => (
                " = ANY(ARRAY(SELECT json_array_elements_text(CAST(",
                " AS json))))",
            ),
        };
        // PostgreSQL plans an unnamed statement for its values at each run. A kept one may
        // switch to a generic plan after five runs and keep it: made while a new petition's
        // table was nearly empty, it filtered every signature of the petition against the
        // batch's addresses instead of probing the unique index.
        if matches!(out.backend(), MultiBackend::Postgresql(_)) {
            out.unsafe_to_cache_prepared();
        }
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(open);
        out.push_bind_param::<Text, String>(&self.keys)?;
        out.push_sql(close);
        Ok(())
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary but fixed key: instances starting together on one PostgreSQL database take
/// turns migrating instead of racing.
const MIGRATION_LOCK_KEY: i64 = 0x756e_6465_7273;

/// How a database's schema compares with the migrations built into this binary.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    /// No undersign migration was ever applied.
    Empty,
    /// Older than this binary: `pending` migrations are missing.
    Behind {
        pending: usize,
    },
    /// Migrated by a newer undersign: the first migration this binary does not know.
    Ahead {
        unknown: String,
    },
}

/// Reads the applied migrations without changing anything: diesel's own harness would
/// create its table first, and a command must never create tables.
pub fn schema_state(conn: &mut AnyConnection) -> anyhow::Result<SchemaState> {
    use diesel::migration::MigrationSource;
    use std::collections::BTreeSet;

    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    fn versions<DB: diesel::backend::Backend>(
        source: &impl MigrationSource<DB>,
    ) -> anyhow::Result<BTreeSet<String>> {
        Ok(source
            .migrations()
            .map_err(|e| anyhow::anyhow!(e))?
            .iter()
            .map(|migration| migration.name().version().to_string())
            .collect())
    }
    let (table_exists, known) = match conn {
        AnyConnection::Sqlite(_) => (
            "SELECT COUNT(*) AS n FROM sqlite_master \
             WHERE type = 'table' AND name = '__diesel_schema_migrations'",
            versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)?,
        ),
        AnyConnection::Postgresql(_) => (
            "SELECT COUNT(*) AS n FROM pg_catalog.pg_tables \
             WHERE tablename = '__diesel_schema_migrations' AND schemaname = current_schema()",
            versions::<Pg>(&POSTGRES_MIGRATIONS)?,
        ),
    };
    if diesel::sql_query(table_exists).get_result::<Found>(conn)?.n == 0 {
        return Ok(SchemaState::Empty);
    }
    let applied: BTreeSet<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|row| row.version)
            .collect();
    if applied.is_empty() {
        return Ok(SchemaState::Empty);
    }
    if let Some(unknown) = applied.difference(&known).next() {
        return Ok(SchemaState::Ahead {
            unknown: unknown.clone(),
        });
    }
    match known.difference(&applied).count() {
        0 => Ok(SchemaState::Current),
        pending => Ok(SchemaState::Behind { pending }),
    }
}

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

/// A signature to mark confirmed by [`mark_signatures_confirmed`]: its id, the status it must
/// still have, its new status, the confirmation time its commitment covers, its receipt salt
/// and its commitment (both hex).
pub struct ConfirmedRow<'a> {
    pub id: i64,
    pub from_status: &'a str,
    pub to_status: &'a str,
    pub confirmed_at: NaiveDateTime,
    pub salt: &'a str,
    pub commitment: &'a str,
}

/// Marks signatures confirmed with their receipts, each only while it still has the status it
/// was read with and no confirmation time; returns the ids that changed.
///
/// On PostgreSQL this is one `UPDATE … FROM (VALUES …)` for them all: one statement per
/// signature was a round trip each, and the confirming writer spent its batches waiting for
/// them (BENCHMARKS.md, "Design measurements"). SQLite runs in the
/// process, where one UPDATE per row, kept prepared, is cheap.
pub fn mark_signatures_confirmed(
    conn: &mut AnyConnection,
    rows: &[ConfirmedRow<'_>],
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if let AnyConnection::Postgresql(pg) = conn {
        return mark_confirmed_on_postgres(pg, rows, now);
    }
    let mut changed = Vec::with_capacity(rows.len());
    for row in rows {
        let updated: Option<i64> = KeepPrepared(
            diesel::update(
                signatures::table
                    .find(row.id)
                    .filter(signatures::status.eq(row.from_status))
                    .filter(signatures::confirmed_at.is_null()),
            )
            .set((
                signatures::status.eq(row.to_status),
                signatures::confirmed_at.eq(row.confirmed_at),
                signatures::updated_at.eq(now),
                signatures::receipt_salt.eq(row.salt),
                signatures::commitment.eq(row.commitment),
            ))
            .returning(signatures::id),
        )
        .get_result(conn)
        .optional()?;
        changed.extend(updated);
    }
    Ok(changed)
}

fn mark_confirmed_on_postgres(
    conn: &mut PgConnection,
    rows: &[ConfirmedRow<'_>],
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Changed {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    // $1 is the update time; each row takes the next six placeholders.
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let p = 2 + i * 6;
            format!(
                "(${}::bigint, ${}::text, ${}::text, ${}::timestamp, ${}::text, ${}::text)",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5
            )
        })
        .collect();
    let sql = format!(
        "UPDATE signatures AS s SET status = v.to_status, confirmed_at = v.confirmed_at, \
         updated_at = $1, receipt_salt = v.salt, commitment = v.commitment \
         FROM (VALUES {}) AS v (id, from_status, to_status, confirmed_at, salt, commitment) \
         WHERE s.id = v.id AND s.status = v.from_status AND s.confirmed_at IS NULL \
         RETURNING s.id",
        values.join(", ")
    );
    // Rows in id order, so that two writers confirming at once (two lanes, or two instances)
    // lock the signatures they share in the same order and do not deadlock on them.
    let mut in_order: Vec<&ConfirmedRow<'_>> = rows.iter().collect();
    in_order.sort_unstable_by_key(|row| row.id);
    let mut query = diesel::sql_query(sql)
        .into_boxed::<Pg>()
        .bind::<Timestamp, _>(now);
    for row in in_order {
        query = query
            .bind::<BigInt, _>(row.id)
            .bind::<Text, _>(row.from_status)
            .bind::<Text, _>(row.to_status)
            .bind::<Timestamp, _>(row.confirmed_at)
            .bind::<Text, _>(row.salt)
            .bind::<Text, _>(row.commitment);
    }
    Ok(query
        .load::<Changed>(conn)?
        .into_iter()
        .map(|changed| changed.id)
        .collect())
}
