//! Storage: one connection type over SQLite and PostgreSQL, chosen at run time from `DATABASE_URL`.
//!
//! Queries elsewhere are written once against [`AnyConnection`]; the few statements that differ
//! between the backends live in [`backend`].

pub mod backend;
pub mod instance;
pub mod schema;
mod sqlite_files;
mod url;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use parking_lot::{FairMutex, Mutex};

use self::sqlite_files::SqliteFiles;
pub use self::url::{Backend, DatabaseUrl};

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// A statement whose SQL never changes from one run to the next, kept prepared on its
/// connection. diesel prepares every UPDATE and every raw SQL query anew at each run (an
/// UPDATE's changeset may skip `None` fields, so its SQL may vary); SQLite then parses it
/// again, which the signature writer's UPDATE per confirmed signature cannot afford under a
/// surge (BENCHMARKS.md, "Design measurements"). Wrap only statements whose SQL is fixed: no
/// `Option` in a changeset, no `eq_any`. diesel keys the kept statement by its SQL.
///
/// Run it with `get_result` or `load` (give an UPDATE a RETURNING clause): `execute` hands the
/// statement on by reference, and a reference's walk of it decides instead, which says no.
#[derive(Debug, Clone, Copy)]
pub struct KeepPrepared<Q>(pub Q);

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for KeepPrepared<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> diesel::query_builder::QueryId for KeepPrepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for KeepPrepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for KeepPrepared<Q> {}

pub type DbPool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// How long a SQLite connection waits for the write lock before giving up. Writers hold it
/// for milliseconds, so reaching this means the database is badly overloaded.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// The WAL size (in pages of 4 KiB) past which a connection checkpoints after its own commit.
/// SQLite's default is 1,000, and whichever connection commits then does it: under a surge
/// that was the signature writer, or the outbox inside its write transaction while the writer
/// waited for the write gate, fsync included (`sqlite3WalDefaultHook` under perf). A server
/// leaves checkpoints to its checkpointer thread ([`SqliteCheckpointer`]); this limit only
/// bounds the WAL should that thread fall behind. Short commands checkpoint as they close.
pub const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 65_536;

/// Opens connections for the backend named by the URL scheme and reports the backend's own
/// error (diesel's derived `establish` tries every backend and hides the real cause).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    /// Whether a SQLite file that does not exist is created (only `serve` and `migrate` do).
    create: bool,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url, create: true }
    }

    /// Connections to a database that exists already: a missing SQLite file is an error.
    pub fn existing(url: DatabaseUrl) -> Self {
        Self { url, create: false }
    }
}

/// Opens a SQLite database; without `create`, through a `mode=rw` URI, so that SQLite itself
/// refuses a file that is not there instead of creating it.
fn open_sqlite(path: &str, create: bool) -> ConnectionResult<SqliteConnection> {
    if create {
        return SqliteConnection::establish(path);
    }
    // In a URI filename `%`, `?` and `#` would be read as escapes, the query and a fragment.
    let mut uri = String::from("file:");
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3F"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=rw");
    SqliteConnection::establish(&uri)
}

impl ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        match self.url.backend() {
            Backend::Sqlite => {
                let mut conn = open_sqlite(self.url.sqlite_path(), self.create)?;
                // The busy timeout comes first: setting the journal mode needs a lock, which
                // another connection may hold for a moment (e.g. the last connection of a
                // stopping instance checkpointing the WAL). WAL lets readers run beside the
                // single writer; NORMAL sync is durable across process crashes in WAL mode;
                // foreign keys are off by default in SQLite; secure_delete overwrites freed
                // pages, so erased signers' (encrypted) fields do not linger in the file.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA secure_delete = ON; \
                     PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES};"
                ))
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(conn))
            }
            Backend::Postgres => Ok(AnyConnection::Postgresql(PgConnection::establish(
                self.url.as_str(),
            )?)),
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionError> {
        conn.ping()
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Connects to the database named by `url`, runs pending migrations and returns a pool.
/// Errors name the URL with its password redacted.
pub fn connect(url: &str, pool_size: u32) -> anyhow::Result<DbPool> {
    let url = DatabaseUrl::parse(url)?;
    let manager = ConnectionManager::new(url.clone());
    // One direct connection first: r2d2 would only report a time-out, not the cause.
    let mut first = manager
        .connect()
        .with_context(|| format!("cannot connect to database {}", url.redacted()))?;
    backend::run_migrations(&mut first)
        .with_context(|| format!("cannot migrate database {}", url.redacted()))?;
    drop(first);
    if url.backend() == Backend::Sqlite {
        keep_sqlite_files_private(url.sqlite_path());
    }
    r2d2::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .with_context(|| format!("cannot open a connection pool to {}", url.redacted()))
}

/// Makes the database file, its WAL and SHM readable by their owner only, as new files are
/// (see `keep_new_files_private`): an earlier version created them 0644. A change of mode
/// works on the path (chmod), so no descriptor of ours is opened behind SQLite.
fn keep_sqlite_files_private(main: &str) {
    use std::os::unix::fs::PermissionsExt;
    for path in [
        main.to_owned(),
        format!("{main}-wal"),
        format!("{main}-shm"),
    ] {
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        let private = std::fs::Permissions::from_mode(mode & 0o700);
        match std::fs::set_permissions(&path, private) {
            Ok(()) => log::info!("{path} is now readable by its owner only (it was {mode:o})"),
            Err(error) => log::warn!("cannot make {path} readable by its owner only: {error}"),
        }
    }
}

/// Opens the database of an instance that `serve` or `migrate` has set up, for the other
/// commands: it never creates a SQLite file or a table, and refuses, saying why and what to do,
/// when the file is missing or the schema is not this version's.
pub fn open_existing(url: &str, pool_size: u32) -> anyhow::Result<DbPool> {
    let url = DatabaseUrl::parse(url)?;
    if url.backend() == Backend::Sqlite {
        check_sqlite_file(&url)?;
    }
    let manager = ConnectionManager::existing(url.clone());
    {
        // A bare connection first: the pool's sets pragmas, and on a file with no database in
        // it yet, setting the journal mode would write one.
        let mut first = match url.backend() {
            Backend::Sqlite => open_sqlite(url.sqlite_path(), false).map(AnyConnection::Sqlite),
            Backend::Postgres => manager.connect(),
        }
        .with_context(|| format!("cannot connect to database {}", url.redacted()))?;
        if let AnyConnection::Sqlite(inner) = &mut first {
            inner.batch_execute(&format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))?;
        }
        let state = backend::schema_state(&mut first)
            .with_context(|| format!("cannot read the schema of {}", url.redacted()))?;
        let place = describe(&url);
        match state {
            backend::SchemaState::Current => {}
            backend::SchemaState::Empty => anyhow::bail!(
                "{place} has no undersign tables. Point DATABASE_URL at the server's database, \
                 or create the tables with `undersign migrate` (`undersign serve` does it too)."
            ),
            backend::SchemaState::Behind { pending } => anyhow::bail!(
                "{place} is older than this undersign: {pending} migration(s) are not applied. \
                 Run `undersign migrate` (`undersign serve` does it when it starts)."
            ),
            backend::SchemaState::Ahead { unknown } => anyhow::bail!(
                "{place} was migrated by a newer undersign (migration {unknown} is unknown to \
                 this one): run the same version as the server."
            ),
        }
    }
    r2d2::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .with_context(|| format!("cannot open a connection pool to {}", url.redacted()))
}

/// The database as an error message names it: a SQLite file by its absolute path.
fn describe(url: &DatabaseUrl) -> String {
    match url.backend() {
        Backend::Sqlite => format!("the database {}", sqlite_absolute_path(url).display()),
        Backend::Postgres => format!("the database {}", url.redacted()),
    }
}

fn sqlite_absolute_path(url: &DatabaseUrl) -> std::path::PathBuf {
    let path = std::path::Path::new(url.sqlite_path());
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// A missing SQLite file is named with its absolute path and what to do. Only the path is
/// looked at (no file is opened here: closing a descriptor of a database file drops SQLite's
/// locks on it); `open_sqlite` makes SQLite refuse it too, should it vanish meanwhile.
fn check_sqlite_file(url: &DatabaseUrl) -> anyhow::Result<()> {
    let path = sqlite_absolute_path(url);
    match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => Ok(()),
        Ok(_) => anyhow::bail!("{} is not a database file", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "there is no database at {} (DATABASE_URL is {}{}). Run the command from the \
             server's folder, set DATABASE_URL to the server's database, or create a new one \
             with `undersign migrate`.",
            path.display(),
            url.as_str(),
            if std::path::Path::new(url.sqlite_path()).is_relative() {
                ", relative to the current folder"
            } else {
                ""
            }
        ),
        Err(error) => Err(anyhow::Error::new(error)
            .context(format!("cannot look at the database {}", path.display()))),
    }
}

/// SQLite has one write lock per database, and a connection that finds it taken sleeps and
/// tries again, in steps of up to 100 ms (its busy handler). Under a surge the signature
/// writer lost whole batches' worth of time that way to the outbox's short transactions
/// (BENCHMARKS.md, "Design measurements").
/// So this process's writers to one database file queue for its gate first and are handed the
/// lock in turn, at once, and in arrival order. Other processes on the same file still meet at
/// SQLite's own lock. Taken only for the outermost transaction.
fn sqlite_write_gate(conn: &mut SqliteConnection) -> QueryResult<Arc<FairMutex<()>>> {
    Ok(write_gate_of(sqlite_main_file(conn)?))
}

/// The write gate of the database file at `main` (see [`sqlite_write_gate`]).
fn write_gate_of(main: String) -> Arc<FairMutex<()>> {
    static GATES: Mutex<BTreeMap<String, Arc<FairMutex<()>>>> = Mutex::new(BTreeMap::new());
    GATES.lock().entry(main).or_default().clone()
}

/// The path of the connection's database file.
fn sqlite_main_file(conn: &mut SqliteConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct MainFile {
        #[diesel(sql_type = diesel::sql_types::Text)]
        file: String,
    }
    let main: MainFile = KeepPrepared(diesel::sql_query(
        "SELECT file FROM pragma_database_list WHERE name = 'main'",
    ))
    .get_result(conn)?;
    Ok(main.file)
}

/// The WAL size (in pages of 4 KiB) past which the checkpointer makes the WAL start over, by
/// default (`Settings::sqlite_wal_restart_pages`; tests lower it).
pub const SQLITE_WAL_RESTART_PAGES: i64 = 16_384;

/// A checkpoint that finds at most this many new pages in the WAL is short enough to run while
/// this process's writers wait.
const SQLITE_CHECKPOINT_TAIL_PAGES: i64 = 256;

/// The checkpointer's connection to a SQLite database (see `signatures::writer`): it copies
/// the WAL back into the database file without holding up writers, and lets the WAL start
/// over from its beginning before it grows large.
///
/// A passive checkpoint copies the frames that were in the WAL when it began, beside the
/// writers. The WAL starts over only when a write transaction begins while every frame has
/// been copied, and under a steady stream of commits that never happened: the WAL grew until
/// commits checkpointed themselves at [`SQLITE_AUTOCHECKPOINT_PAGES`], fsync included, at
/// every commit from then on (BENCHMARKS.md, "Design measurements"). So once the WAL is past
/// the restart limit, passive checkpoints repeat until one finds only a short tail of new
/// frames, and a last one copies what came meanwhile while this process's writers wait at the
/// gate; the next write
/// transaction then starts the WAL over. Finishing the checkpoint of a large WAL behind the
/// gate held writers too long. A passive checkpoint that falls short of the WAL's
/// end, as under a surge, does not sync the database file (with `synchronous=NORMAL` only the
/// checkpoint that completes does, with every page copied since the WAL last started over).
/// So after each of the passive rounds the database file and the WAL are written out to disk
/// through SQLite's own descriptors (`SqliteFiles`, never by opening the files ourselves),
/// and the one behind the gate syncs only its tail, which holds writers for less time than
/// syncing everything the passive ones had copied. Writers of other
/// processes are not held, which only delays the restart.
pub struct SqliteCheckpointer {
    conn: SqliteConnection,
    files: SqliteFiles,
    main: String,
    restart_pages: i64,
}

impl SqliteCheckpointer {
    /// Connects to the SQLite database of `manager`; the WAL starts over once it holds
    /// `restart_pages` pages.
    pub fn open(manager: &ConnectionManager, restart_pages: i64) -> anyhow::Result<Self> {
        let AnyConnection::Sqlite(mut conn) = manager.connect()? else {
            anyhow::bail!("the checkpointer is for SQLite databases only");
        };
        let main = sqlite_main_file(&mut conn)?;
        let files = SqliteFiles::open(&main, SQLITE_BUSY_TIMEOUT_MS).map_err(anyhow::Error::msg)?;
        Ok(Self {
            conn,
            files,
            main,
            restart_pages,
        })
    }

    /// One round: a passive checkpoint, and past the restart limit the WAL's start over.
    pub fn checkpoint(&mut self) -> QueryResult<()> {
        self.checkpoint_counting().map(|_| ())
    }

    /// Returns the number of frames the WAL held when this began.
    fn checkpoint_counting(&mut self) -> QueryResult<i64> {
        let found = passive_checkpoint(&mut self.conn)?;
        if found < self.restart_pages {
            return Ok(found);
        }
        let mut frames = found;
        for _ in 0..8 {
            let before = frames;
            frames = passive_checkpoint(&mut self.conn)?;
            // A failure here costs only the time of syncing those pages behind the gate.
            if let Err(error) = self.files.sync() {
                log::warn!("checkpointer: {error}");
            }
            if frames - before <= SQLITE_CHECKPOINT_TAIL_PAGES {
                break;
            }
        }
        // The file was looked up at the start: its gate needs no query.
        let gate = write_gate_of(self.main.clone());
        let _turn = gate.lock();
        passive_checkpoint(&mut self.conn).map(|_| found)
    }
}

/// Runs a passive checkpoint; returns the number of frames the WAL held when it began.
fn passive_checkpoint(conn: &mut SqliteConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Checkpointed {
        /// Frames in the WAL when the checkpoint began (−1 when it could not run).
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        log: i64,
    }
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
        .get_result::<Checkpointed>(conn)
        .map(|done| done.log)
}

/// Runs `f` in a write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, taking the
/// write lock up front: a deferred transaction that reads and then writes can fail with
/// SQLITE_BUSY under concurrency, whatever the busy timeout.
///
/// Inside a transaction already open (the signature writer's batch, see
/// `signatures::writer`) it becomes a savepoint on both backends, so a failure rolls back
/// only this part and the enclosing transaction goes on.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let gate = match conn {
        AnyConnection::Sqlite(inner) => {
            let depth = AnsiTransactionManager::transaction_manager_status_mut(inner)
                .transaction_depth()?;
            match depth {
                None => Some(sqlite_write_gate(inner)?),
                Some(_) => None,
            }
        }
        AnyConnection::Postgresql(_) => None,
    };
    // Held until this function returns: after the commit or the rollback.
    let _turn = gate.as_ref().map(|gate| gate.lock());
    match conn {
        // A savepoint inside the transaction already open.
        AnyConnection::Sqlite(inner) if gate.is_none() => {
            AnsiTransactionManager::begin_transaction(inner)?
        }
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
        AnyConnection::Postgresql(inner) => AnsiTransactionManager::begin_transaction(inner)?,
    }
    match f(conn) {
        Ok(value) => {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                Err(rollback_error) => Err(rollback_error.into()),
            }
        }
    }
}

/// True when `error` is a unique-constraint violation (both backends report it the same way).
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// True when `error` means another transaction got there first and running the same work
/// again will see its result: a unique violation, or on PostgreSQL a serialization failure or
/// a deadlock (40P01, which diesel does not name; two instances' group commits touching the
/// same rows in opposite orders). The loser's savepoint is rolled back either way.
pub fn is_lost_race(error: &diesel::result::Error) -> bool {
    use diesel::result::DatabaseErrorKind;
    match error {
        diesel::result::Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        diesel::result::Error::DatabaseError(_, info) => {
            info.message().starts_with("deadlock detected")
        }
        _ => false,
    }
}

/// Runs `f` with a pooled connection on the blocking thread pool, off the async executor.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, crate::error::AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, crate::error::AppError> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A writer that commits without pause never finds the WAL fully copied back by a passive
    /// checkpoint alone, so the WAL only grows until the writer's own commit checkpoints at
    /// [`SQLITE_AUTOCHECKPOINT_PAGES`]; the checkpointer's turn at the gate lets it start over
    /// long before.
    #[test]
    fn the_wal_starts_over_while_a_writer_commits_without_pause() {
        const RESTART_PAGES: i64 = 64;
        let dir = std::env::temp_dir().join(format!("undersign-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wal.db");
        let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
        let manager = ConnectionManager::new(url);
        let mut writer = manager.connect().unwrap();
        writer
            .batch_execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, key BLOB UNIQUE)")
            .unwrap();
        let mut checkpointer = SqliteCheckpointer::open(&manager, RESTART_PAGES).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let restarts = Arc::new(AtomicUsize::new(0));
        let checkpoints = {
            let (done, restarts) = (done.clone(), restarts.clone());
            std::thread::spawn(move || {
                // The most frames the WAL held before it started over.
                let (mut last, mut most) = (0, 0);
                while !done.load(Ordering::SeqCst) {
                    let frames = checkpointer.checkpoint_counting().unwrap();
                    if frames < last {
                        restarts.fetch_add(1, Ordering::SeqCst);
                    }
                    (last, most) = (frames, most.max(frames));
                    std::thread::sleep(Duration::from_millis(5));
                }
                most
            })
        };
        // How long this takes depends on the disk: each turn first writes the copied pages out.
        let started = std::time::Instant::now();
        let mut commits = 0_u32;
        while restarts.load(Ordering::SeqCst) < 3 && started.elapsed() < Duration::from_secs(60) {
            write_transaction(&mut writer, |conn| {
                diesel::sql_query("INSERT INTO rows (key) VALUES (randomblob(64))")
                    .execute(conn)
                    .map(|_| ())
            })
            .unwrap_or_else(|error: diesel::result::Error| panic!("commit {commits}: {error}"));
            commits += 1;
        }
        done.store(true, Ordering::SeqCst);
        let most_frames = checkpoints.join().unwrap();
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            restarts.load(Ordering::SeqCst) >= 3,
            "the WAL started over {} times in {commits} commits",
            restarts.load(Ordering::SeqCst)
        );
        assert!(
            most_frames < i64::from(SQLITE_AUTOCHECKPOINT_PAGES) / 2,
            "the WAL held {most_frames} frames before it started over"
        );
    }
}

#[cfg(test)]
mod keep_prepared_tests {
    use super::*;
    use crate::db::schema::petitions;
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the statements a connection prepares to keep.
    struct CountingKept(Arc<AtomicUsize>);

    impl Instrumentation for CountingKept {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn a_kept_update_is_prepared_once_on_the_multi_backend_connection() {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        conn.batch_execute(
            "CREATE TABLE petitions (id INTEGER PRIMARY KEY, signature_count BIGINT NOT NULL, \
             status TEXT NOT NULL); INSERT INTO petitions VALUES (1, 0, 'open')",
        )
        .unwrap();
        let kept = Arc::new(AtomicUsize::new(0));
        conn.set_instrumentation(CountingKept(kept.clone()));
        for _ in 0..5 {
            let count: Option<i64> = KeepPrepared(
                diesel::update(
                    petitions::table
                        .find(1)
                        .filter(petitions::status.eq("open")),
                )
                .set(petitions::signature_count.eq(petitions::signature_count + 1))
                .returning(petitions::signature_count),
            )
            .get_result(&mut conn)
            .optional()
            .unwrap();
            assert!(count.is_some());
        }
        assert_eq!(kept.load(Ordering::SeqCst), 1, "prepared once, then kept");
        // Without the wrapper diesel prepares an UPDATE at every run and keeps none.
        diesel::update(petitions::table.find(1))
            .set(petitions::signature_count.eq(0))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(kept.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_batch_key_lookup_is_kept_on_sqlite_and_planned_for_its_keys_on_postgresql() {
        use crate::db::schema::signatures;
        use diesel::query_builder::QueryFragment;
        let lookup = backend::one_of(signatures::email_key, &["a", "b"]);
        let kept = |backend: MultiBackend| {
            QueryFragment::<MultiBackend>::is_safe_to_cache_prepared(&lookup, &backend).unwrap()
        };
        assert!(kept(MultiBackend::Sqlite(diesel::sqlite::Sqlite)));
        assert!(!kept(MultiBackend::Postgresql(diesel::pg::Pg)));
    }
}
