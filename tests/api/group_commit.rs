//! The signature writer commits many concurrent signings and confirmations in one transaction:
//! every acknowledged one is stored exactly once, counts stay exact, one job's failure stays its
//! own, and a full queue is refused with a 503 instead of waiting forever.

use std::collections::BTreeMap;
use std::time::Duration;

use awc::http::StatusCode;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use undersign::core::status::PetitionStatus;
use undersign::db::schema::petitions;
use undersign::db::AnyConnection;

use crate::backend_tests;
use crate::helpers::{Backend, Response, TestApp};

backend_tests!(
    concurrent_signings_are_all_stored_once_with_their_emails,
    concurrent_confirmations_count_exactly,
    a_failing_job_gets_its_own_answer_and_the_batch_commits,
    a_full_queue_is_refused_with_retry_after,
    a_batch_counts_limits_and_repeats_as_if_one_by_one,
    a_batch_counts_the_domain_limit_as_if_one_by_one,
    marking_confirmed_changes_only_rows_still_waiting,
);

/// Holds the write lock of the database (SQLite) or of the signatures table (PostgreSQL) in a
/// transaction of its own, so that the writer's next transaction waits and jobs pile up
/// behind it; `meanwhile` runs inside that transaction.
struct WriteLock {
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WriteLock {
    async fn take(
        app: &TestApp,
        meanwhile: impl FnOnce(&mut AnyConnection) + Send + 'static,
    ) -> WriteLock {
        let pool = app.pool.clone();
        let (held, is_held) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            let begin = match &*conn {
                AnyConnection::Sqlite(_) => "BEGIN IMMEDIATE",
                AnyConnection::Postgresql(_) => "BEGIN; LOCK TABLE signatures IN EXCLUSIVE MODE",
            };
            conn.batch_execute(begin).unwrap();
            meanwhile(&mut conn);
            held.send(()).unwrap();
            let _ = released.recv();
            conn.batch_execute("COMMIT").unwrap();
        });
        is_held.await.unwrap();
        WriteLock { release, thread }
    }

    async fn release(self) {
        self.release.send(()).unwrap();
        actix_web::rt::task::spawn_blocking(move || self.thread.join().unwrap())
            .await
            .unwrap();
    }
}

/// Long enough for requests sent from this process to reach the writer's queue.
const ARRIVAL: Duration = Duration::from_millis(700);

fn address(n: usize) -> String {
    // Random-looking, not in index order.
    format!(
        "s{:08x}@example.org",
        (n as u32).wrapping_mul(2_654_435_761)
    )
}

async fn sign_to(app: &TestApp, slug: &str, email: impl Into<String>) -> Response {
    app.sign_json(slug, &email.into()).await
}

/// Starts a signing without waiting for its answer.
fn spawn_signing(
    app: &TestApp,
    slug: &str,
    email: &str,
) -> actix_web::rt::task::JoinHandle<StatusCode> {
    let request = app
        .client
        .post(app.url(&format!("/api/v1/petitions/{slug}/signatures")));
    let body = serde_json::json!({
        "name": "Ana Ivanova",
        "email": email,
        "country": "NO",
        "consent": true,
    });
    actix_web::rt::spawn(async move { request.send_json(&body).await.unwrap().status() })
}

async fn max_signature_id(app: &TestApp) -> i64 {
    app.db(|conn| {
        use undersign::db::schema::signatures;
        signatures::table
            .select(diesel::dsl::max(signatures::id))
            .first::<Option<i64>>(conn)
            .unwrap()
            .unwrap_or(0)
    })
    .await
}

async fn confirmed_count(app: &TestApp, slug: &'static str) -> i64 {
    app.db(move |conn| {
        petitions::table
            .filter(petitions::slug.eq(slug))
            .select(petitions::signature_count)
            .first::<i64>(conn)
            .unwrap()
    })
    .await
}

async fn concurrent_signings_are_all_stored_once_with_their_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("surge").await;

    // 200 different signers and one signer trying 30 times, all at once.
    let mut emails: Vec<String> = (0..200).map(address).collect();
    emails.extend((0..30).map(|_| "again@example.org".to_owned()));
    let signings = emails.iter().map(|email| sign_to(&app, "surge", email));
    let responses = futures_util::future::join_all(signings).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
        assert_eq!(response.json()["status"], "pending_confirmation");
    }

    assert_eq!(app.count_rows("signatures").await, 201);
    // One email per signer, and the repeated signer gets the most any signer gets: three.
    assert_eq!(app.count_rows("outbox").await, 203);
    assert_eq!(app.count_rows("confirmation_tokens").await, 203);
    let mails = app
        .smtp
        .wait_for_messages(203, Duration::from_secs(30))
        .await;
    let mut per_address: BTreeMap<String, usize> = BTreeMap::new();
    for mail in &mails {
        let to = mail.header("To").unwrap_or_default();
        let address = to
            .rsplit('<')
            .next()
            .unwrap_or(&to)
            .trim_end_matches('>')
            .to_owned();
        *per_address.entry(address).or_default() += 1;
    }
    for n in 0..200 {
        assert_eq!(per_address.get(&address(n)), Some(&1), "{}", address(n));
    }
    assert_eq!(per_address.get("again@example.org"), Some(&3));
    assert_eq!(per_address.len(), 201, "{per_address:?}");
}

async fn concurrent_confirmations_count_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("surge").await;
    let emails: Vec<String> = (0..60).map(address).collect();
    // Signing twice brings a second link with a token of its own, which may go to another
    // confirming writer (PostgreSQL has two) than the first.
    for _ in 0..2 {
        for email in &emails {
            assert_eq!(
                sign_to(&app, "surge", email).await.status,
                StatusCode::ACCEPTED
            );
        }
    }
    let mut paths = Vec::new();
    for email in &emails {
        paths.push(app.confirmation_path(email, 1).await);
        paths.push(app.confirmation_path(email, 2).await);
    }

    // Both links of every signer twice, all at once: each signature counts once.
    let confirmations = paths
        .iter()
        .chain(paths.iter())
        .map(|path| app.post_form(path, ""));
    let responses = futures_util::future::join_all(confirmations).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
    let fresh = responses
        .iter()
        .filter(|response| response.body.contains("your signature is confirmed"))
        .count();
    assert_eq!(fresh, 60);
    // Each fresh confirmation shows the count as it stood after it, as if one by one.
    let mut shown: Vec<i64> = responses
        .iter()
        .filter(|response| response.body.contains("your signature is confirmed"))
        .map(|response| {
            let after = response
                .body
                .split("<p class=\"count\"><strong>")
                .nth(1)
                .unwrap();
            after.split('<').next().unwrap().parse().unwrap()
        })
        .collect();
    shown.sort_unstable();
    assert_eq!(shown, (1..=60).collect::<Vec<i64>>());
    assert_eq!(confirmed_count(&app, "surge").await, 60);
    assert_eq!(app.public_count("surge").await, 60);
    // One receipt per confirmed signature, besides the two confirmation emails of each.
    assert_eq!(app.count_rows("outbox").await, 180);
}

/// Jobs queued behind a held lock form one batch once it is released. Some of them fail (a
/// petition closed while they waited, an unknown petition, invalid input): they get their own
/// 4xx and the others of the batch are committed.
async fn a_failing_job_gets_its_own_answer_and_the_batch_commits(backend: Backend) {
    // One signing writer, so that the jobs queued behind the lock form one batch.
    let app = TestApp::spawn_with(backend, |settings| settings.signing_writers = 1).await;
    app.create_petition("open-one").await;
    app.create_petition("closing-one").await;
    let open_signers: Vec<String> = (0..5).map(|n| format!("open{n}@example.org")).collect();
    let closing_signers: Vec<String> = (0..5).map(|n| format!("closing{n}@example.org")).collect();
    for email in &open_signers {
        sign_to(&app, "open-one", email).await;
    }
    for email in &closing_signers {
        sign_to(&app, "closing-one", email).await;
    }
    let mut open_links = Vec::new();
    for email in &open_signers {
        open_links.push(app.confirmation_path(email, 1).await);
    }
    let mut closing_links = Vec::new();
    for email in &closing_signers {
        closing_links.push(app.confirmation_path(email, 1).await);
    }

    // The petition closes while the jobs wait.
    let lock = WriteLock::take(&app, |conn| {
        diesel::update(petitions::table.filter(petitions::slug.eq("closing-one")))
            .set(petitions::status.eq(PetitionStatus::Closed.as_str()))
            .execute(conn)
            .unwrap();
    })
    .await;
    let before = max_signature_id(&app).await;
    // The first job occupies the writer; the others queue behind it and form the next batch.
    let first = spawn_signing(&app, "open-one", "first@example.org");
    actix_web::rt::time::sleep(ARRIVAL).await;

    let new_open: Vec<String> = (0..10).map(|n| format!("new{n}@example.org")).collect();
    let batch = async {
        let signings_open =
            futures_util::future::join_all(new_open.iter().map(|e| sign_to(&app, "open-one", e)));
        let signings_closed = futures_util::future::join_all(
            (0..3).map(|n| sign_to(&app, "closing-one", format!("late{n}@example.org"))),
        );
        let unknown = sign_to(&app, "no-such-petition", "lost@example.org");
        let invalid_body = serde_json::json!({
            "name": "",
            "email": "not-an-address",
            "country": "NO",
            "consent": true,
        });
        let invalid = app.post_json("/api/v1/petitions/open-one/signatures", &invalid_body);
        let confirm_open =
            futures_util::future::join_all(open_links.iter().map(|p| app.post_form(p, "")));
        let confirm_closed =
            futures_util::future::join_all(closing_links.iter().map(|p| app.post_form(p, "")));
        tokio::join!(
            signings_open,
            signings_closed,
            unknown,
            invalid,
            confirm_open,
            confirm_closed
        )
    };
    let release = async {
        actix_web::rt::time::sleep(ARRIVAL).await;
        lock.release().await;
    };
    let ((signed_open, signed_closed, unknown, invalid, confirmed_open, confirmed_closed), ()) =
        tokio::join!(batch, release);
    assert_eq!(first.await.unwrap(), StatusCode::ACCEPTED);

    for response in &signed_open {
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    }
    for response in &signed_closed {
        assert_eq!(response.status, StatusCode::CONFLICT, "{}", response.body);
        assert!(response.json()["error"]
            .as_str()
            .unwrap()
            .contains("closed"));
    }
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.json()["errors"]["email"].is_array());
    for response in &confirmed_open {
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        assert!(response.body.contains("your signature is confirmed"));
    }
    for response in &confirmed_closed {
        assert_eq!(response.status, StatusCode::CONFLICT, "{}", response.body);
        assert!(response.body.contains("This petition has closed"));
    }

    // 5 + 1 + 10 on the open petition, 5 on the closed one, nothing else.
    assert_eq!(app.count_rows("signatures").await, 21);
    assert_eq!(confirmed_count(&app, "open-one").await, 5);
    assert_eq!(confirmed_count(&app, "closing-one").await, 0);
    // Confirmation emails: 10 before, 1 + 10 now; receipts: 5.
    assert_eq!(app.count_rows("outbox").await, 26);

    // The first signing was one batch, the ten queued behind it another: the writer gives
    // each batch one time, so the new rows carry two.
    let batches = app
        .db(move |conn| {
            use undersign::db::schema::signatures;
            signatures::table
                .filter(signatures::id.gt(before))
                .select(signatures::created_at)
                .load::<chrono::NaiveDateTime>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(batches.len(), 11);
    let distinct: std::collections::BTreeSet<_> = batches.into_iter().collect();
    assert_eq!(distinct.len(), 2, "{distinct:?}");
}

async fn a_full_queue_is_refused_with_retry_after(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.write_queue = 2;
        settings.signing_writers = 1;
    })
    .await;
    app.create_petition("surge").await;

    let lock = WriteLock::take(&app, |_| {}).await;
    // One job occupies the writer; two more fit in the queue; the rest are refused.
    let first = spawn_signing(&app, "surge", "first@example.org");
    actix_web::rt::time::sleep(ARRIVAL).await;
    let waiting = async {
        futures_util::future::join_all((0..12).map(|n| sign_to(&app, "surge", address(n)))).await
    };
    let release = async {
        actix_web::rt::time::sleep(ARRIVAL).await;
        lock.release().await;
    };
    let (responses, ()) = tokio::join!(waiting, release);
    assert_eq!(first.await.unwrap(), StatusCode::ACCEPTED);

    let accepted = responses
        .iter()
        .filter(|response| response.status == StatusCode::ACCEPTED)
        .count();
    let refused: Vec<&Response> = responses
        .iter()
        .filter(|response| response.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!((accepted, refused.len()), (2, 10));
    for response in refused {
        assert_eq!(response.header("retry-after"), Some("1"));
        assert!(response.json()["error"]
            .as_str()
            .unwrap()
            .contains("try again"));
    }
    // Every acknowledged signing is stored; no refused one is.
    assert_eq!(app.count_rows("signatures").await, 3);
    assert_eq!(app.count_rows("outbox").await, 3);
}

/// Signs `first` while the write lock is held, so that it occupies the writer, then `emails`
/// all at once behind it: they form the next batch. Every signing must be accepted.
async fn sign_in_one_batch(app: &TestApp, first: &str, emails: &[String]) {
    let lock = WriteLock::take(app, |_| {}).await;
    let first = spawn_signing(app, "surge", first);
    actix_web::rt::time::sleep(ARRIVAL).await;
    let batch = futures_util::future::join_all(emails.iter().map(|e| sign_to(app, "surge", e)));
    let release = async {
        actix_web::rt::time::sleep(ARRIVAL).await;
        lock.release().await;
    };
    let (responses, ()) = tokio::join!(batch, release);
    assert_eq!(first.await.unwrap(), StatusCode::ACCEPTED);
    for response in &responses {
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    }
}

/// The writer records a batch's first signings together (one look-up, one INSERT per table).
/// The outcome must be what signing one by one would give: the per-client limit counts the
/// rows ahead in the same batch, an address twice in one batch is one signature with a resent
/// email, and an address that signed before gets its email again.
async fn a_batch_counts_limits_and_repeats_as_if_one_by_one(backend: Backend) {
    use undersign::db::schema::signatures;
    let app = TestApp::spawn_with(backend, |settings| {
        settings.abuse_checks = true;
        settings.abuse.per_client = 3;
        settings.abuse.per_domain = 100;
        settings.signing_writers = 1;
    })
    .await;
    app.create_petition("surge").await;
    assert_eq!(
        sign_to(&app, "surge", "old@example.org").await.status,
        StatusCode::ACCEPTED
    );

    let before = max_signature_id(&app).await;
    let mut emails: Vec<String> = (0..5).map(address).collect();
    emails.extend(["twice@example.org", "twice@example.org", "old@example.org"].map(String::from));
    sign_in_one_batch(&app, "first@example.org", &emails).await;

    let rows: Vec<(String, Option<String>, i32, chrono::NaiveDateTime)> = app
        .db(move |conn| {
            signatures::table
                .filter(signatures::id.gt(before))
                .order(signatures::id)
                .select((
                    signatures::status,
                    signatures::suspect_reason,
                    signatures::confirmation_emails,
                    signatures::created_at,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    // "first" alone, then five new addresses and "twice" in one batch (one time).
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert_eq!(rows[0].0, "pending", "{rows:?}");
    let batch = &rows[1..];
    let times: std::collections::BTreeSet<_> = batch.iter().map(|row| row.3).collect();
    assert_eq!(times.len(), 1, "{rows:?}");
    assert!(!times.contains(&rows[0].3), "{rows:?}");
    // "old" and "first" came before: one more from this client is allowed, the rest are held.
    let pending = batch.iter().filter(|row| row.0 == "pending").count();
    assert_eq!(pending, 1, "{rows:?}");
    for row in batch.iter().filter(|row| row.0 != "pending") {
        assert_eq!(
            (row.0.as_str(), row.1.as_deref()),
            ("suspect", Some("limited"))
        );
    }
    // "twice" got its email twice; so did "old" (once before, once now).
    let emails_of = |email: &str| {
        let key = app.email_key(email);
        app.db(move |conn| {
            signatures::table
                .filter(signatures::email_key.eq(key))
                .select(signatures::confirmation_emails)
                .first::<i32>(conn)
                .unwrap()
        })
    };
    assert_eq!(emails_of("twice@example.org").await, 2);
    assert_eq!(emails_of("old@example.org").await, 2);
    assert_eq!(app.count_rows("signatures").await, 8);
    // old 2, first 1, five new 1 each, twice 2.
    assert_eq!(app.count_rows("outbox").await, 10);
    assert_eq!(app.count_rows("confirmation_tokens").await, 10);
}

/// As above for the per-domain limit: the batch's own rows from one domain count, and the big
/// free-mail providers have no domain limit.
async fn a_batch_counts_the_domain_limit_as_if_one_by_one(backend: Backend) {
    use undersign::db::schema::signatures;
    let app = TestApp::spawn_with(backend, |settings| {
        settings.abuse_checks = true;
        settings.abuse.per_client = 1000;
        settings.abuse.per_domain = 2;
        settings.signing_writers = 1;
    })
    .await;
    app.create_petition("surge").await;
    assert_eq!(
        sign_to(&app, "surge", "a@dom.example.org").await.status,
        StatusCode::ACCEPTED
    );

    let emails = [
        "b@dom.example.org",
        "c@dom.example.org",
        "d@dom.example.org",
        "x@gmail.com",
        "y@gmail.com",
        "z@gmail.com",
    ]
    .map(String::from);
    sign_in_one_batch(&app, "first@other.example.org", &emails).await;

    let state_of = |email: &str| {
        let key = app.email_key(email);
        app.db(move |conn| {
            signatures::table
                .filter(signatures::email_key.eq(key))
                .select((signatures::status, signatures::suspect_reason))
                .first::<(String, Option<String>)>(conn)
                .unwrap()
        })
    };
    // "a" came before; of b, c and d in one batch, one more fits under the limit of two.
    let mut held = 0;
    for email in [
        "b@dom.example.org",
        "c@dom.example.org",
        "d@dom.example.org",
    ] {
        match state_of(email).await {
            (status, None) if status == "pending" => {}
            (status, Some(reason)) if status == "suspect" && reason == "limited" => held += 1,
            other => panic!("{email}: {other:?}"),
        }
    }
    assert_eq!(held, 2);
    for email in ["x@gmail.com", "y@gmail.com", "z@gmail.com"] {
        assert_eq!(
            state_of(email).await,
            ("pending".to_owned(), None),
            "{email}"
        );
    }
}

/// The statement that marks a batch's signatures confirmed (one `UPDATE … FROM (VALUES …)` on
/// PostgreSQL) changes only rows that still have the status they were read with and no
/// confirmation time, stores each row's own time, salt and commitment, and reports exactly
/// the rows it changed.
async fn marking_confirmed_changes_only_rows_still_waiting(backend: Backend) {
    use undersign::db::backend::{mark_signatures_confirmed, ConfirmedRow};
    use undersign::db::schema::signatures;

    let app = TestApp::spawn(backend).await;
    app.create_petition("marking").await;
    for n in 0..3 {
        let response = sign_to(&app, "marking", format!("marking{n}@example.org")).await;
        assert_eq!(response.status, StatusCode::ACCEPTED);
    }
    let result = app
        .db(|conn| {
            let ids: Vec<i64> = signatures::table
                .select(signatures::id)
                .order(signatures::id)
                .load(conn)
                .unwrap();
            diesel::update(signatures::table.find(ids[2]))
                .set(signatures::status.eq("suspect"))
                .execute(conn)
                .unwrap();
            let first = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
                .unwrap()
                .and_hms_micro_opt(12, 0, 0, 123_456)
                .unwrap();
            let third = first + chrono::Duration::microseconds(7);
            let row = |id, from_status, to_status, confirmed_at, salt| ConfirmedRow {
                id,
                from_status,
                to_status,
                confirmed_at,
                salt,
                commitment: salt,
            };
            let rows = [
                row(ids[0], "pending", "confirmed", first, "aa01"),
                // Read as suspect, but it is pending: another change came first.
                row(ids[1], "suspect", "confirmed", first, "bb02"),
                row(ids[2], "suspect", "suspect", third, "cc03"),
            ];
            let mut changed = mark_signatures_confirmed(conn, &rows, first).unwrap();
            changed.sort_unstable();
            // A second confirmation of the first finds it confirmed already.
            let again = mark_signatures_confirmed(conn, &rows[..1], third).unwrap();
            let stored: Vec<(String, Option<chrono::NaiveDateTime>, Option<String>)> =
                signatures::table
                    .select((
                        signatures::status,
                        signatures::confirmed_at,
                        signatures::commitment,
                    ))
                    .order(signatures::id)
                    .load(conn)
                    .unwrap();
            (ids, changed, again, stored, first, third)
        })
        .await;
    let (ids, changed, again, stored, first, third) = result;
    assert_eq!(changed, vec![ids[0], ids[2]]);
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(
        stored,
        vec![
            ("confirmed".to_owned(), Some(first), Some("aa01".to_owned())),
            ("pending".to_owned(), None, None),
            ("suspect".to_owned(), Some(third), Some("cc03".to_owned())),
        ]
    );
}
