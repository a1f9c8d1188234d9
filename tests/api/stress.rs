//! Stress: the outbox loses no email when the server is killed in the middle of a signing load
//! or when the SMTP server goes away in the middle of a backlog. Run by CI in a reduced size.

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::{outbox, signatures};
use undersign::safety::encryption::{DataKey, Field};

use crate::backend_tests;
use crate::helpers::{Backend, SmtpReceiver, TestApp, TestDatabase};

backend_tests!(
    a_killed_server_loses_no_acknowledged_signature_and_no_email,
    an_smtp_outage_in_the_middle_of_a_backlog_loses_and_repeats_nothing,
);

const DEMO: &str = "belarus-political-prisoners";
const CLIENTS: usize = 16;
/// The kill comes once this many signatures were acknowledged and this many emails sent, so
/// that a share of duplicates under 1 % means something: the email on each SMTP connection
/// that the receiver had taken but not yet answered when the process died always goes out
/// twice (about one per connection, 15–16 of 2,000 here).
const KILL_AFTER_SIGNATURES: usize = 1500;
const KILL_AFTER_EMAILS: usize = 4000;

/// `undersign serve --demo` as a child process, killed when dropped.
struct Server {
    child: Child,
    base_url: String,
}

impl Server {
    async fn start(database: &TestDatabase, smtp: &SmtpReceiver, run: u32) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(database.dir.join(format!("server-{run}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_undersign"))
            .args(["serve", "--demo"])
            .env("DATABASE_URL", &database.url)
            .env("UNDERSIGN_BIND", format!("127.0.0.1:{port}"))
            .env("UNDERSIGN_SMTP_URL", smtp.url())
            .env("UNDERSIGN_SECRET_KEY_FILE", database.dir.join("secret.key"))
            .env("UNDERSIGN_DATA_KEY_FILE", database.dir.join("data.key"))
            .env(
                "UNDERSIGN_SIGNING_KEY_FILE",
                database.dir.join("signing.key"),
            )
            .env("UNDERSIGN_MAIL_DIR", database.dir.join("mail"))
            .env("UNDERSIGN_ABUSE_CHECKS", "off")
            // The default claim size (200): with results recorded per batch, a crash sent
            // up to three claims' worth again.
            .env("UNDERSIGN_SMTP_CONNECTIONS", "16")
            // Emails claimed by the killed process are sent again once their lease has passed.
            .env("UNDERSIGN_OUTBOX_LEASE_SECONDS", "2")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary runs");
        let server = Server {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let client = awc::Client::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/readyz", server.base_url))
                .send()
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK);
            if ready {
                return server;
            }
            assert!(Instant::now() < deadline, "the server never became ready");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown, no batch finished, whatever was in flight is cut off.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every recipient of a confirmation email, with how many they got.
fn confirmations_per_recipient(smtp: &SmtpReceiver) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for mail in smtp.messages() {
        for to in &mail.envelope_to {
            *counts.entry(to.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

async fn a_killed_server_loses_no_acknowledged_signature_and_no_email(backend: Backend) {
    let database = TestDatabase::create(backend);
    let smtp = SmtpReceiver::start().await;
    let mut server = Server::start(&database, &smtp, 1).await;

    // Concurrent signers with distinct addresses, until the server dies under them.
    let acknowledged = Rc::new(RefCell::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for client_id in 0..CLIENTS {
        let url = format!("{}/api/v1/petitions/{DEMO}/signatures", server.base_url);
        let acknowledged = acknowledged.clone();
        clients.push(actix_web::rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish();
            for n in 0.. {
                let email = format!("s{client_id}x{n}@example.org");
                let body = serde_json::json!({
                    "name": "Ana Ivanova", "email": email, "country": "NO", "consent": true,
                });
                let Ok(response) = client.post(&url).send_json(&body).await else {
                    return; // the server was killed
                };
                assert_eq!(response.status(), StatusCode::ACCEPTED);
                acknowledged.borrow_mut().push(email);
            }
        }));
    }
    // Kill it once signatures are pouring in and the outbox is busy sending.
    // Generous: on a shared two-core machine the same load takes from 20 s to minutes.
    let deadline = Instant::now() + Duration::from_secs(300);
    while acknowledged.borrow().len() < KILL_AFTER_SIGNATURES || smtp.count() < KILL_AFTER_EMAILS {
        assert!(
            Instant::now() < deadline,
            "the load never got going: {} signatures acknowledged and {} emails sent in 300 s",
            acknowledged.borrow().len(),
            smtp.count()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.borrow().clone();
    let sent_before_the_kill = smtp.count();

    let server = Server::start(&database, &smtp, 2).await;
    let pool = undersign::db::connect(&database.url, 2).unwrap();
    let db = |f: fn(&mut undersign::db::AnyConnection) -> QueryResult<Vec<String>>| {
        let pool = pool.clone();
        async move {
            actix_web::rt::task::spawn_blocking(move || f(&mut pool.get().unwrap()).unwrap())
                .await
                .unwrap()
        }
    };
    let key = DataKey::load_or_create(&database.dir.join("data.key")).unwrap();
    let stored: Vec<String> = db(|conn| signatures::table.select(signatures::email).load(conn))
        .await
        .into_iter()
        .map(|email| key.open(Field::Email, &email).unwrap().to_lowercase())
        .collect();
    for email in &acknowledged {
        assert!(
            stored.contains(email),
            "acknowledged {email} was not stored"
        );
    }

    // Every stored signature (acknowledged or cut off after its commit) gets its email. The
    // receiver shares this thread: look at the messages themselves only once there are enough
    // of them, since copying thousands every few milliseconds slowed it down.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let missing = if smtp.count() >= stored.len() {
            let received = confirmations_per_recipient(&smtp);
            stored
                .iter()
                .filter(|email| !received.contains_key(*email))
                .count()
        } else {
            stored.len() - smtp.count()
        };
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} signatures never got their email",
            stored.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the worker record what it sent, then compare.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !db(|conn| {
        outbox::table
            .filter(outbox::sent_at.is_null())
            .select(outbox::kind)
            .load(conn)
    })
    .await
    .is_empty()
    {
        assert!(Instant::now() < deadline, "emails never marked sent");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let received = confirmations_per_recipient(&smtp);
    let total: usize = received.values().sum();
    let duplicates = total - received.len();
    // Only emails accepted by the SMTP server but not yet recorded when the process died can
    // go out twice: each is recorded within milliseconds of its acceptance. The share is of
    // the emails the killed process sent, the only ones that can be repeated.
    let share = duplicates as f64 / sent_before_the_kill as f64;
    eprintln!(
        "{} acknowledged, {} stored, {sent_before_the_kill} emails before the kill, \
         {duplicates} duplicates ({:.2} % of those before the kill), {total} emails in all",
        acknowledged.len(),
        stored.len(),
        share * 100.0
    );
    assert!(
        share < 0.01,
        "{duplicates} duplicates of {sent_before_the_kill} emails ({:.2} %), 1 % or more",
        share * 100.0
    );
    assert!(
        received.values().all(|&n| n <= 2),
        "an email went out 3 times"
    );
    assert_eq!(received.len(), stored.len(), "emails to unknown recipients");
    assert!(
        sent_before_the_kill >= KILL_AFTER_EMAILS && acknowledged.len() >= KILL_AFTER_SIGNATURES,
        "the kill came in the middle of the load"
    );
    drop(server);
}

/// Signs `free-them` as o{from}@example.org … o{to - 1}@example.org, 16 at a time.
async fn sign_all(app: &TestApp, from: usize, to: usize) {
    let signers = (0..CLIENTS).map(|client| async move {
        for n in (from + client..to).step_by(CLIENTS) {
            let response = app
                .sign_json("free-them", &format!("o{n}@example.org"))
                .await;
            assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
        }
    });
    futures_util::future::join_all(signers).await;
}

async fn an_smtp_outage_in_the_middle_of_a_backlog_loses_and_repeats_nothing(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, |settings| {
        settings.outbox.batch_size = 10;
        settings.outbox.smtp_connections = 4;
    })
    .await;
    app.create_petition("free-them").await;

    // Down while the first signatures arrive: they wait, with attempts recorded.
    app.smtp.stop().await;
    sign_all(&app, 0, 150).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tried: i64 = app
            .db(|conn| {
                outbox::table
                    .filter(outbox::attempts.gt(0))
                    .count()
                    .get_result(conn)
                    .unwrap()
            })
            .await;
        if tried > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never tried");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.smtp.messages().is_empty());

    // Back while more arrive, then down again in the middle of the backlog, then back.
    app.smtp.restart().await;
    sign_all(&app, 150, 300).await;
    app.smtp
        .wait_for_messages(20, Duration::from_secs(10))
        .await;
    app.smtp.stop().await;
    let before_the_second_outage = app.smtp.messages().len();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    app.smtp.restart().await;

    app.smtp
        .wait_for_messages(300, Duration::from_secs(20))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (queued, sent, failed) = app
            .db(|conn| undersign::mail::outbox::counts(conn).unwrap())
            .await;
        assert_eq!(failed, 0, "emails given up");
        if queued == 0 {
            assert_eq!(sent, 300);
            break;
        }
        assert!(Instant::now() < deadline, "{queued} emails still queued");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let received = confirmations_per_recipient(&app.smtp);
    for n in 0..300 {
        let email = format!("o{n}@example.org");
        assert_eq!(
            received.get(&email),
            Some(&1),
            "{email}: not exactly one email"
        );
    }
    assert_eq!(
        app.smtp.messages().len(),
        300,
        "exactly one email per signature"
    );
    assert!(
        before_the_second_outage < 300,
        "the second outage came in the middle of the backlog"
    );
}
