//! The signature writers: threads that each own one database connection and write every public
//! signing and confirmation (group commit). SQLite has one; PostgreSQL has lanes for
//! confirmations and for signings (see [`POSTGRES_CONFIRMING_LANES`], [`POSTGRES_SIGNING_LANES`]).
//!
//! Why: when every request commits its own transaction, requests queue for the database's one
//! write lock and each pays for its own commit (an fsync on PostgreSQL, a WAL append on SQLite),
//! which caps signing far below what the machine serves otherwise (BENCHMARKS.md, "Design
//! measurements").
//! Here a handler hands its work over and waits. The writer takes whatever is queued (up to
//! `MAX_BATCH` jobs), runs it in ONE write transaction, each job in its own savepoint so that
//! one job's failure rolls back only its own part, commits, and only then answers each handler:
//! nothing is acknowledged before it is durable. Nothing waits on purpose to fill a batch:
//! under load, batches form by themselves while the previous one commits.
//!
//! A batch's first signings of a petition are recorded together, one statement per table
//! (`queries::record_new_signatures`). Everything else runs job by job in
//! `queries::record_signature` and `queries::confirm`, whose own `write_transaction` becomes a
//! savepoint inside the batch (see `db::write_transaction`).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::ManageConnection;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Notify};

use super::domain::NewSignature;
use super::queries::{
    self, FreshSigning, Screening, SignOutcome, SigningContext, TokenLookup, TokenState,
};
use crate::core::clock::now;
use crate::db::{
    write_transaction, AnyConnection, Backend, ConnectionManager, DatabaseUrl, SqliteCheckpointer,
};
use crate::error::{AppError, FieldErrors};
use crate::petitions::queries as petition_queries;
use crate::petitions::Petition;
use crate::safety::encryption::DataKey;
use crate::safety::events;
use crate::safety::Safety;

/// Jobs per transaction at most: bounds how long the write lock is held and how long the
/// first job of a batch waits for the last.
const MAX_BATCH: usize = 256;

/// How long the writer waits before trying again to open its connection after a failure.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// A signing as the handler prepared it: everything that needs no database.
pub struct SignJob {
    pub slug: String,
    /// The parsed signature, or its field errors (reported only once the petition is known to
    /// exist and be open, as before).
    pub signature: Result<NewSignature, FieldErrors>,
    /// The client's address, hashed by the writer with the day's key.
    pub client: String,
    /// A reason to hold the signature back, found before (form checks, disposable domain).
    pub suspect: Option<&'static str>,
}

enum Work {
    Sign(SignJob, oneshot::Sender<Result<SignOutcome, AppError>>),
    Confirm {
        token_hash: String,
        reply: oneshot::Sender<Result<TokenLookup, AppError>>,
    },
}

/// What the writer needs of the application to record signings and confirmations.
pub struct WriterContext {
    /// Public origin for the links in confirmation emails.
    pub base_url: String,
    pub token_ttl: chrono::Duration,
    pub data_key: Arc<DataKey>,
    pub safety: Arc<Safety>,
    /// Wakes the outbox worker once a batch has queued emails.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

struct Job {
    state: Arc<WriterContext>,
    work: Work,
}

enum Message {
    Job(Box<Job>),
    /// Finish what is queued, then end.
    Stop,
}

/// What the handlers hold: sends jobs to the writer thread and awaits their answers.
#[derive(Clone)]
pub struct Writer {
    /// Confirmations, by lane (see [`POSTGRES_CONFIRMING_LANES`]); on SQLite the one lane.
    confirming: Vec<mpsc::Sender<Message>>,
    /// Signings, by lane (see [`POSTGRES_SIGNING_LANES`]); on SQLite the one lane.
    signing: Vec<mpsc::Sender<Message>>,
    /// Every lane once, to measure the backlog.
    lanes: Vec<mpsc::Sender<Message>>,
    /// When a writer last took a full batch (see [`Writer::saturated`]).
    load: Arc<Load>,
    context: Arc<WriterContext>,
}

/// A writer that takes this many jobs at once found them queued while it committed the
/// batch before: requests arrive faster than it commits them.
const SATURATED_BATCH: usize = 16;

/// How long a full batch counts as a sign of saturation.
const SATURATION_MEMORY: Duration = Duration::from_secs(1);

/// When a writer last took a batch of at least `SATURATED_BATCH` jobs, in milliseconds
/// since `since` (0: never).
struct Load {
    since: Instant,
    last_full_batch_ms: AtomicU64,
}

impl Load {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            last_full_batch_ms: AtomicU64::new(0),
        }
    }

    fn took(&self, jobs: usize) {
        if jobs >= SATURATED_BATCH {
            let at = self.since.elapsed().as_millis().max(1) as u64;
            self.last_full_batch_ms.store(at, Ordering::Relaxed);
        }
    }

    fn saturated(&self) -> bool {
        match self.last_full_batch_ms.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let now = self.since.elapsed().as_millis() as u64;
                now.saturating_sub(at) < SATURATION_MEMORY.as_millis() as u64
            }
        }
    }
}

/// The running writer threads, kept by the application to stop them.
pub struct WriterThread {
    lanes: Vec<(mpsc::Sender<Message>, std::thread::JoinHandle<()>)>,
    /// SQLite's checkpointer (see [`checkpoint_until_stopped`]); dropping the sender stops it.
    checkpointer: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// SQLite copies the WAL back into the database file (a checkpoint) from whichever connection
/// commits once the WAL passes 1,000 pages by default: that was the writer, after its commits,
/// while the other core had room (BENCHMARKS.md, "Design measurements"). So connections leave
/// checkpoints to this thread, on a connection of its own, which runs a passive checkpoint (it
/// never blocks the writer) every [`CHECKPOINT_INTERVAL`], and lets the WAL start over (see
/// [`SqliteCheckpointer`]).
/// Should it fall behind anyway, whichever connection commits checkpoints at
/// [`crate::db::SQLITE_AUTOCHECKPOINT_PAGES`], which bounds the WAL.
fn checkpoint_until_stopped(
    manager: ConnectionManager,
    restart_pages: i64,
    stop: std::sync::mpsc::Receiver<()>,
) {
    let mut checkpointer: Option<SqliteCheckpointer> = None;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_INTERVAL)
    {
        if checkpointer.is_none() {
            checkpointer = SqliteCheckpointer::open(&manager, restart_pages)
                .map_err(|error| log::warn!("checkpointer: {error:#}"))
                .ok();
        }
        let Some(connection) = checkpointer.as_mut() else {
            continue;
        };
        if let Err(error) = connection.checkpoint() {
            log::warn!("checkpointer: {error}");
            checkpointer = None;
        }
    }
}

/// On PostgreSQL a batch is a handful of sequential round trips that one thread spends
/// waiting, so signings are spread over this many writers, each committing its own batches.
/// A signer's address always goes to the same lane, so lanes never race for one address.
pub use crate::config::POSTGRES_SIGNING_LANES;

/// Confirmations on PostgreSQL are spread over this many writers too, a token always to the
/// same one: with one, the cores sat partly idle while that writer's backend worked through
/// the batches one after the other, and two did better than three (BENCHMARKS.md, "Design
/// measurements").
/// Every confirmation of a petition adds to its counter row, so `queries::confirm_many`
/// updates the counter last, just before the commit: the other writer waits for that row only
/// while this one commits. A signer's two links confirmed at the same instant may still meet
/// in two writers; PostgreSQL then ends one batch's statements with a deadlock error, and
/// those confirmations are done again one by one (see `confirm_together`).
pub const POSTGRES_CONFIRMING_LANES: usize = 2;

/// Starts the writer threads for the database at `url` (`signing_lanes` of them for signings
/// on PostgreSQL), with room for `capacity` waiting jobs each, and on SQLite the checkpointer,
/// which lets the WAL start over past `wal_restart_pages`. They open their own connections
/// (not the pool's, so the pool keeps its full size).
pub fn start(
    url: &str,
    capacity: usize,
    signing_lanes: usize,
    wal_restart_pages: i64,
    context: WriterContext,
) -> anyhow::Result<(Writer, WriterThread)> {
    let url = DatabaseUrl::parse(url)?;
    let (confirming_lanes, signing_lanes) = match url.backend() {
        Backend::Sqlite => (1, 0),
        Backend::Postgres => (POSTGRES_CONFIRMING_LANES, signing_lanes.max(1)),
    };
    let load = Arc::new(Load::new());
    let mut lanes = Vec::new();
    for lane in 0..confirming_lanes + signing_lanes {
        let manager = ConnectionManager::new(url.clone());
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let lane_load = load.clone();
        let thread = std::thread::Builder::new()
            .name(format!("signature-writer-{lane}"))
            .spawn(move || run(manager, receiver, &lane_load))?;
        lanes.push((sender, thread));
    }
    let checkpointer = match url.backend() {
        Backend::Sqlite => {
            let manager = ConnectionManager::new(url.clone());
            let (stop, stopped) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("sqlite-checkpointer".to_owned())
                .spawn(move || checkpoint_until_stopped(manager, wal_restart_pages, stopped))?;
            Some((stop, thread))
        }
        Backend::Postgres => None,
    };
    let senders: Vec<mpsc::Sender<Message>> =
        lanes.iter().map(|(sender, _)| sender.clone()).collect();
    let confirming = senders[..confirming_lanes].to_vec();
    let signing = if signing_lanes == 0 {
        confirming.clone()
    } else {
        senders[confirming_lanes..].to_vec()
    };
    Ok((
        Writer {
            confirming,
            signing,
            lanes: senders,
            load,
            context: Arc::new(context),
        },
        WriterThread {
            lanes,
            checkpointer,
        },
    ))
}

impl Writer {
    /// Records a signing (see `queries::record_signature`), committed before this returns.
    pub async fn sign(&self, job: SignJob) -> Result<SignOutcome, AppError> {
        let lane = match &job.signature {
            Ok(signature) => lane_of(signature.email.key(), self.signing.len()),
            Err(_) => 0,
        };
        let (reply, answer) = oneshot::channel();
        self.send(&self.signing[lane], Work::Sign(job, reply))?;
        answer.await.unwrap_or_else(|_| Err(dropped()))
    }

    /// Confirms the signature behind a token (see `queries::confirm`), committed before this
    /// returns.
    pub async fn confirm(&self, token_hash: String) -> Result<TokenLookup, AppError> {
        let lane = lane_of(&token_hash, self.confirming.len());
        let (reply, answer) = oneshot::channel();
        self.send(&self.confirming[lane], Work::Confirm { token_hash, reply })?;
        answer.await.unwrap_or_else(|_| Err(dropped()))
    }

    /// Whether requests arrive faster than the writers commit them: right now (at least
    /// `SATURATED_BATCH` jobs wait) or within the last second (a writer took a batch that
    /// large). The queue alone, sampled at one instant, often looks short between two batches
    /// of a surge, and the outbox would then send at full speed.
    pub fn saturated(&self) -> bool {
        self.backlog() >= SATURATED_BATCH || self.load.saturated()
    }

    /// How many jobs wait for the writers.
    fn backlog(&self) -> usize {
        self.lanes
            .iter()
            .map(|sender| sender.max_capacity() - sender.capacity())
            .sum()
    }

    /// Queues a job, or refuses at once when the queue is full: a client told to retry in a
    /// second is better off than one whose request waits behind thousands.
    fn send(&self, lane: &mpsc::Sender<Message>, work: Work) -> Result<(), AppError> {
        let job = Box::new(Job {
            state: self.context.clone(),
            work,
        });
        match lane.try_send(Message::Job(job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(AppError::Overloaded(
                "Too many signatures are arriving at once. Please try again in a moment."
                    .to_owned(),
            )),
            Err(TrySendError::Closed(_)) => Err(AppError::Unavailable(anyhow!(
                "the signature writer has stopped (the server is shutting down)"
            ))),
        }
    }
}

/// The writer ended without answering (it stopped, or a bug made it panic): nothing of the
/// job was committed.
fn dropped() -> AppError {
    AppError::Unavailable(anyhow!("the signature writer ended before answering"))
}

/// The lane of a key (an address's duplicate key, or a token's hash): a stable hash (FNV-1a).
fn lane_of(key: &str, lanes: usize) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % lanes.max(1) as u64) as usize
}

impl WriterThread {
    /// Lets the writers finish the jobs already queued (new ones are refused with a 503), then
    /// waits for the threads to end, at most `grace`.
    pub async fn stop(self, grace: Duration) {
        let finished = async move {
            for (sender, _) in &self.lanes {
                let _ = sender.send(Message::Stop).await;
            }
            for (_, thread) in self.lanes {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            if let Some((stop, thread)) = self.checkpointer {
                drop(stop);
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        };
        if tokio::time::timeout(grace, finished).await.is_err() {
            log::warn!("signature writer: did not stop in time; unanswered requests got a 503");
        }
    }
}

/// Takes the next batch: waits for one job, then takes whatever else is queued. `None` once
/// the queue is closed and empty.
fn next_batch(receiver: &mut mpsc::Receiver<Message>) -> Option<Vec<Job>> {
    let mut batch = Vec::new();
    match receiver.blocking_recv() {
        Some(Message::Job(job)) => batch.push(*job),
        // Closing keeps what is queued for the next receives and refuses new jobs.
        Some(Message::Stop) => receiver.close(),
        // Every sender is gone (the application was dropped) and nothing is queued.
        None => return None,
    }
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(Message::Job(job)) => batch.push(*job),
            Ok(Message::Stop) => receiver.close(),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn run(manager: ConnectionManager, mut receiver: mpsc::Receiver<Message>, load: &Load) {
    let mut conn: Option<AnyConnection> = None;
    while let Some(batch) = next_batch(&mut receiver) {
        if batch.is_empty() {
            continue;
        }
        load.took(batch.len());
        if conn.is_none() {
            match manager.connect() {
                Ok(opened) => conn = Some(prepare_connection(opened)),
                Err(error) => {
                    let cause = anyhow!("the signature writer cannot connect: {error}");
                    log::error!("signature writer: {cause}");
                    answer_all_unavailable(batch, &cause);
                    std::thread::sleep(RECONNECT_PAUSE);
                    continue;
                }
            }
        }
        let Some(connection) = conn.as_mut() else {
            continue;
        };
        // A panic in one batch must not stop the writer for good: its handlers see their
        // answer dropped (a 503), and the connection, in an unknown state, is replaced.
        let healthy = std::panic::catch_unwind(AssertUnwindSafe(|| write_batch(connection, batch)))
            .unwrap_or_else(|_| {
                log::error!("signature writer: a batch panicked; reconnecting");
                false
            });
        if !healthy {
            conn = None;
        }
    }
}

/// What one job produced.
enum Answer {
    Signed(SignOutcome),
    Confirmed(Box<TokenLookup>),
}

impl Answer {
    /// Whether the job queued an email (a confirmation link, or a receipt).
    fn queued_email(&self) -> bool {
        match self {
            Answer::Signed(outcome) => *outcome != SignOutcome::Unchanged,
            Answer::Confirmed(lookup) => lookup.state == TokenState::Confirmable,
        }
    }
}

/// Runs one batch in one transaction and answers every job. Returns false when the connection
/// should be replaced.
fn write_batch(conn: &mut AnyConnection, batch: Vec<Job>) -> bool {
    let outbox_wake: Arc<Notify> = batch[0].state.outbox_wake.clone();
    // One time for the whole batch, as for one transaction: its rows say they were written
    // together.
    let now = now();
    // The client-address key of the day may have to be created, which must happen outside a
    // write transaction (see `safety::client_keys`); it is cached, so this rarely queries.
    let client_hashes: Vec<Option<Result<String, AppError>>> = batch
        .iter()
        .map(|job| match &job.work {
            Work::Sign(sign, _) => Some(
                job.state
                    .safety
                    .client_keys
                    .hash(conn, &sign.client, now)
                    .map_err(AppError::from),
            ),
            Work::Confirm { .. } => None,
        })
        .collect();
    let mut answers: Vec<Option<Result<Answer, AppError>>> =
        std::iter::repeat_with(|| None).take(batch.len()).collect();
    let mut petitions = PetitionCache::default();
    let committed = write_transaction(conn, |conn| {
        // What each signing needs before it can be recorded; a 404, 409 or 422 is answered
        // here.
        let mut ready: Vec<Option<ReadySigning<'_>>> = Vec::with_capacity(batch.len());
        for ((job, client_hash), answer) in batch.iter().zip(client_hashes).zip(&mut answers) {
            let prepared = match (&job.work, client_hash) {
                (Work::Sign(_, _), Some(Err(error))) => Err(error),
                (Work::Sign(sign, _), client_hash) => {
                    prepare_signing(conn, &mut petitions, &job.state, sign, client_hash, now)
                        .map(Some)
                }
                (Work::Confirm { .. }, _) => Ok(None),
            };
            match prepared {
                Ok(signing) => ready.push(signing),
                Err(error) => {
                    *answer = Some(Err(error));
                    ready.push(None);
                }
            }
        }
        // A petition read failed outside any savepoint: on PostgreSQL that aborts the whole
        // transaction, and COMMIT would then quietly roll back. Roll back openly instead.
        // (Petitions are read only while preparing.)
        if petitions.failed {
            return Err(diesel::result::Error::RollbackTransaction);
        }
        record_first_signings(conn, &batch[0].state, &ready, &mut answers, now);
        confirm_together(conn, &batch, &mut answers, now);
        // Everything else one by one, in order: signings of addresses seen before (resends),
        // confirmations, and the signings of a group whose batched insert failed. Each job
        // writes in its own savepoint (`record_signature` and `confirm` open one: their
        // `write_transaction` nests), so a job's failure undoes only its own writes.
        for ((job, signing), answer) in batch.iter().zip(&ready).zip(&mut answers) {
            if answer.is_some() {
                continue;
            }
            *answer = Some(match (&job.work, signing) {
                (Work::Sign(_, _), Some(signing)) => queries::record_signature(
                    conn,
                    &signing.context(&job.state, now),
                    signing.signature,
                    &signing.screening,
                )
                .map(Answer::Signed),
                (Work::Sign(_, _), None) => Err(AppError::Unavailable(anyhow!(
                    "a signing was neither prepared nor refused"
                ))),
                (Work::Confirm { token_hash, .. }, _) => queries::confirm(
                    conn,
                    &job.state.data_key,
                    token_hash,
                    &job.state.base_url,
                    now,
                )
                .map(|lookup| Answer::Confirmed(Box::new(lookup)))
                .map_err(AppError::from),
            });
        }
        Ok::<(), diesel::result::Error>(())
    });
    let mut answers: Vec<Result<Answer, AppError>> = answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| Err(AppError::Unavailable(anyhow!("the batch did not start"))))
        })
        .collect();
    let healthy = match committed {
        Ok(()) => {
            if answers
                .iter()
                .any(|answer| matches!(answer, Ok(a) if a.queued_email()))
            {
                outbox_wake.notify_one();
            }
            true
        }
        Err(error) => {
            // Nothing of this batch is stored: whatever a job did, it gets an error (its own
            // 4xx when it failed anyway, otherwise a 503), never an acknowledgement.
            log::error!(
                "signature writer: a batch of {} failed: {error}",
                batch.len()
            );
            let cause = anyhow!("the batch's transaction failed: {error}");
            answers = answers
                .into_iter()
                .map(|answer| answer.and_then(|_| Err(AppError::Unavailable(anyhow!("{cause:#}")))))
                .collect();
            false
        }
    };
    let mut answers = answers.into_iter();
    for job in batch {
        let answer = answers
            .next()
            .unwrap_or_else(|| Err(AppError::Unavailable(anyhow!("the batch did not start"))));
        // A handler that went away (client disconnected) no longer waits: ignore.
        match (job.work, answer) {
            (Work::Sign(_, reply), answer) => {
                let _ = reply.send(answer.map(|answer| match answer {
                    Answer::Signed(outcome) => outcome,
                    Answer::Confirmed(_) => unreachable!("a signing job answers a signing"),
                }));
            }
            (Work::Confirm { reply, .. }, answer) => {
                let _ = reply.send(answer.map(|answer| match answer {
                    Answer::Confirmed(lookup) => *lookup,
                    Answer::Signed(_) => unreachable!("a confirming job answers a confirmation"),
                }));
            }
        }
    }
    healthy
}

/// Sets up the writer's own connection.
///
/// SQLite keeps a savepoint's journal in a temporary file by default, which costs a write per
/// job's savepoint; a batch's journals are a few pages each, so memory is the better place
/// (BENCHMARKS.md, "Design measurements"). And the writer checkpoints only as a last
/// resort (see [`checkpoint_until_stopped`]).
///
/// PostgreSQL needs nothing: the one statement of a batch whose best plan depends on its
/// values, the look-up of the batch's keys, is planned for them at every run (see
/// `db::backend::one_of`), and the rest keep the plans PostgreSQL caches. Planning every
/// statement on the writers' connections (`plan_cache_mode = force_custom_plan`, before)
/// also planned the foreign-key checks of every inserted row, at a high cost under a surge.
fn prepare_connection(mut conn: AnyConnection) -> AnyConnection {
    if let AnyConnection::Sqlite(_) = conn {
        if let Err(error) = conn.batch_execute("PRAGMA temp_store = MEMORY") {
            log::warn!("signature writer: cannot set up its connection: {error}");
        }
    }
    conn
}

fn answer_all_unavailable(batch: Vec<Job>, cause: &anyhow::Error) {
    for job in batch {
        let error = AppError::Unavailable(anyhow!("{cause:#}"));
        match job.work {
            Work::Sign(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Work::Confirm { reply, .. } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// The petitions a batch's signings name, each read once per batch: under a surge every
/// signing names the same one, so reading it per signing repeats one read. A
/// petition changed meanwhile by another connection is seen by the next batch, milliseconds
/// later; before the writer, the petition was read before the signing's transaction began,
/// which left the same window.
///
/// The signing events vouching now (`safety::events`) are read the same way: once per batch
/// for each petition it signs, and only while the abuse checks are on.
#[derive(Default)]
struct PetitionCache {
    by_slug: HashMap<String, Option<Rc<(Petition, i64)>>>,
    events: HashMap<i64, Rc<Vec<events::ActiveEvent>>>,
    /// A read failed: the batch's transaction cannot be trusted (see `write_batch`).
    failed: bool,
}

impl PetitionCache {
    /// The public petition named `slug` with its current version, `None` when there is no such
    /// petition (or only a draft).
    fn find(
        &mut self,
        conn: &mut AnyConnection,
        slug: &str,
    ) -> Result<Option<Rc<(Petition, i64)>>, AppError> {
        if let Some(found) = self.by_slug.get(slug) {
            return Ok(found.clone());
        }
        let read = |conn: &mut AnyConnection| -> QueryResult<Option<Rc<(Petition, i64)>>> {
            Ok(match petition_queries::find_public(conn, slug)? {
                Some(petition) => {
                    let version_id = petition_queries::current_version_id(conn, petition.id)?;
                    Some(Rc::new((petition, version_id)))
                }
                None => None,
            })
        };
        match read(conn) {
            Ok(found) => {
                self.by_slug.insert(slug.to_owned(), found.clone());
                Ok(found)
            }
            Err(error) => {
                self.failed = true;
                Err(error.into())
            }
        }
    }

    /// The signing events of the petition vouching at `now`.
    fn events(
        &mut self,
        conn: &mut AnyConnection,
        petition_id: i64,
        now: NaiveDateTime,
    ) -> Result<Rc<Vec<events::ActiveEvent>>, AppError> {
        if let Some(found) = self.events.get(&petition_id) {
            return Ok(found.clone());
        }
        match events::active(conn, petition_id, now) {
            Ok(found) => {
                let found = Rc::new(found);
                self.events.insert(petition_id, found.clone());
                Ok(found)
            }
            Err(error) => {
                self.failed = true;
                Err(error.into())
            }
        }
    }
}

/// Confirms the batch's confirmations together (see `queries::confirm_many`) and answers
/// them. What it leaves unanswered is confirmed one by one afterwards; when the batched
/// statements fail (a petition closed meanwhile), they are undone and every confirmation goes
/// one by one.
fn confirm_together(
    conn: &mut AnyConnection,
    batch: &[Job],
    answers: &mut [Option<Result<Answer, AppError>>],
    now: NaiveDateTime,
) {
    let (indexes, token_hashes): (Vec<usize>, Vec<&str>) = batch
        .iter()
        .enumerate()
        .filter_map(|(index, job)| match &job.work {
            Work::Confirm { token_hash, .. } => Some((index, token_hash.as_str())),
            Work::Sign(_, _) => None,
        })
        .unzip();
    if token_hashes.is_empty() {
        return;
    }
    // One writer serves one application, so the first job's state holds for all.
    let state = &batch[0].state;
    let confirmed = write_transaction(conn, |conn| {
        queries::confirm_many(conn, &state.data_key, &token_hashes, &state.base_url, now)
    });
    match confirmed {
        Ok(lookups) => {
            for (index, lookup) in indexes.into_iter().zip(lookups) {
                if let Some(lookup) = lookup {
                    answers[index] = Some(Ok(Answer::Confirmed(Box::new(lookup))));
                }
            }
        }
        Err(error) => {
            log::info!(
                "signature writer: confirming {} one by one: {error}",
                token_hashes.len()
            );
        }
    }
}

/// A signing that may be recorded: its petition exists and is open, its input is valid.
struct ReadySigning<'a> {
    petition: Rc<(Petition, i64)>,
    signature: &'a NewSignature,
    screening: Screening<'a>,
}

impl ReadySigning<'_> {
    fn context<'s>(&'s self, state: &'s WriterContext, now: NaiveDateTime) -> SigningContext<'s> {
        SigningContext {
            petition: &self.petition.0,
            version_id: self.petition.1,
            base_url: &state.base_url,
            token_ttl: state.token_ttl,
            now,
            data_key: &state.data_key,
        }
    }
}

/// Checks a signing against its petition: unknown petition 404, closed 409, invalid input 422.
fn prepare_signing<'a>(
    conn: &mut AnyConnection,
    petitions: &mut PetitionCache,
    state: &'a WriterContext,
    job: &'a SignJob,
    client_hash: Option<Result<String, AppError>>,
    now: NaiveDateTime,
) -> Result<ReadySigning<'a>, AppError> {
    let petition = petitions
        .find(conn, &job.slug)?
        .ok_or_else(crate::petitions::not_found)?;
    if !petition.0.accepts_signatures(now) {
        return Err(AppError::Conflict(
            "This petition is closed and no longer accepts signatures.".to_owned(),
        ));
    }
    let signature = job
        .signature
        .as_ref()
        .map_err(|errors| AppError::Validation(errors.clone()))?;
    let safety = &state.safety;
    let vouch = if safety.checks {
        events::vouching(&petitions.events(conn, petition.0.id, now)?, &job.client)
    } else {
        Vec::new()
    };
    Ok(ReadySigning {
        petition,
        signature,
        screening: Screening {
            client_hash: client_hash.transpose()?,
            suspect: job.suspect,
            limits: safety.checks.then_some(&safety.limits),
            vouch,
        },
    })
}

/// Records the batch's first signings of each petition together (see
/// `queries::record_new_signatures`) and answers them. What it leaves unanswered is recorded one
/// by one afterwards; when the batched statements fail (on PostgreSQL, another instance
/// inserting the same address a moment earlier), they are undone and the whole group goes one
/// by one.
///
/// One writer serves one application, so the batch's first job's state holds for all.
fn record_first_signings(
    conn: &mut AnyConnection,
    state: &WriterContext,
    ready: &[Option<ReadySigning<'_>>],
    answers: &mut [Option<Result<Answer, AppError>>],
    now: NaiveDateTime,
) {
    let mut by_petition: Vec<(i64, Vec<usize>)> = Vec::new();
    for (index, signing) in ready.iter().enumerate() {
        let Some(signing) = signing else { continue };
        let petition_id = signing.petition.0.id;
        match by_petition.iter_mut().find(|(id, _)| *id == petition_id) {
            Some((_, group)) => group.push(index),
            None => by_petition.push((petition_id, vec![index])),
        }
    }
    let limits = state.safety.checks.then_some(&state.safety.limits);
    for (_, group) in by_petition {
        let Some(first) = ready[group[0]].as_ref() else {
            continue;
        };
        let signings: Vec<FreshSigning<'_>> = group
            .iter()
            .filter_map(|&index| ready[index].as_ref())
            .map(|signing| FreshSigning {
                signature: signing.signature,
                client_hash: signing.screening.client_hash.as_deref(),
                suspect: signing.screening.suspect,
                vouch: &signing.screening.vouch,
            })
            .collect();
        let context = first.context(state, now);
        let recorded = write_transaction(conn, |conn| {
            queries::record_new_signatures(conn, &context, limits, &signings)
        });
        match recorded {
            Ok(recorded) => {
                for (&index, recorded) in group.iter().zip(recorded) {
                    if recorded {
                        answers[index] = Some(Ok(Answer::Signed(SignOutcome::Created)));
                    }
                }
            }
            Err(error) => {
                log::info!(
                    "signature writer: recording {} signings one by one: {error}",
                    group.len()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_marks_the_writer_saturated_for_a_second() {
        let load = Load::new();
        assert!(!load.saturated(), "no batch yet");
        load.took(SATURATED_BATCH - 1);
        assert!(!load.saturated(), "a batch below the mark");
        load.took(SATURATED_BATCH);
        assert!(load.saturated());

        let earlier = Load {
            since: Instant::now() - SATURATION_MEMORY * 3,
            last_full_batch_ms: AtomicU64::new(1),
        };
        assert!(!earlier.saturated(), "a full batch long ago");
    }
}
