//! The outbox: no confirmation email is lost when SMTP is down or the server restarts.

use std::time::Duration;

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::outbox;
use undersign::mail::messages::{ConfirmationEmail, OutgoingEmail};
use undersign::mail::outbox::{claim, enqueue, record, Delivery};

use crate::backend_tests;
use crate::helpers::{test_settings, Backend, TestApp};

backend_tests!(
    emails_wait_while_smtp_is_down_and_arrive_when_it_returns,
    a_restarted_server_sends_what_was_queued_before,
    without_smtp_emails_are_written_to_files,
    a_claim_takes_due_emails_once_and_never_one_already_sent,
);

async fn attempts_so_far(app: &TestApp) -> i32 {
    app.db(|conn| {
        outbox::table
            .select(outbox::attempts)
            .load::<i32>(conn)
            .unwrap()
            .into_iter()
            .sum()
    })
    .await
}

async fn emails_wait_while_smtp_is_down_and_arrive_when_it_returns(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.smtp.stop().await;

    let response = app.sign_json("free-them", "ana@example.org").await;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    // The worker tries, fails, and keeps the email queued.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while attempts_so_far(&app).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.smtp.messages().is_empty());
    let (sent, last_error): (Option<chrono::NaiveDateTime>, Option<String>) = app
        .db(|conn| {
            outbox::table
                .select((outbox::sent_at, outbox::last_error))
                .first(conn)
                .unwrap()
        })
        .await;
    assert!(sent.is_none());
    assert!(last_error.is_some());

    app.smtp.restart().await;
    let path = app.confirmation_path("ana@example.org", 1).await;
    assert_eq!(app.post_form(&path, "").await.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let confirmations = app
        .smtp
        .messages()
        .iter()
        .filter(|m| m.subject().starts_with("Please confirm"))
        .count();
    assert_eq!(confirmations, 1, "sent exactly once");
}

async fn a_restarted_server_sends_what_was_queued_before(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.smtp.stop().await;
    for email in ["a@example.org", "b@example.org", "c@example.org"] {
        assert_eq!(
            app.sign_json("free-them", email).await.status,
            StatusCode::ACCEPTED
        );
    }
    let (mut smtp, database) = app.stop().await;
    smtp.restart().await;

    let settings = test_settings(&database, &smtp.url());
    let app = TestApp::start(settings, smtp, database).await;
    app.smtp.wait_for_messages(3, Duration::from_secs(10)).await;
    for email in ["a@example.org", "b@example.org", "c@example.org"] {
        assert_eq!(app.smtp.messages_to(email).len(), 1);
    }
    // The worker records the batch as sent right after delivering it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let unsent: i64 = app
            .db(|conn| {
                outbox::table
                    .filter(outbox::sent_at.is_null())
                    .count()
                    .get_result(conn)
                    .unwrap()
            })
            .await;
        if unsent == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{unsent} emails never marked sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn without_smtp_emails_are_written_to_files(backend: Backend) {
    let mail_dir = std::env::temp_dir().join(format!(
        "undersign-mail-{}-{:?}",
        std::process::id(),
        backend
    ));
    let _ = std::fs::remove_dir_all(&mail_dir);
    let dir = mail_dir.clone();
    let app = TestApp::spawn_with(backend, move |settings| {
        settings.smtp_url = None;
        settings.mail_dir = dir;
    })
    .await;
    app.create_petition("free-them").await;
    app.sign_json("free-them", "ana@example.org").await;

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let file = loop {
        let found = std::fs::read_dir(&mail_dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "eml"));
        if let Some(file) = found {
            break file;
        }
        assert!(std::time::Instant::now() < deadline, "no .eml file written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let message = std::fs::read_to_string(&file).unwrap();
    assert!(message.contains("To: ana@example.org"));
    assert!(message.contains("/confirm/"));
    let _ = std::fs::remove_dir_all(&mail_dir);
}

/// Claims run against the database directly, at times a day ahead: the app's own worker,
/// which claims at the real time, never finds these emails due.
async fn a_claim_takes_due_emails_once_and_never_one_already_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.data_key();
    let at = chrono::Utc::now().naive_utc() + chrono::Duration::days(1);
    let later = move |seconds: i64| at + chrono::Duration::seconds(seconds);
    let claimed = app
        .db(move |conn| {
            for n in 1..=3 {
                let email = OutgoingEmail::Confirmation(ConfirmationEmail {
                    petition_title: "Free them".to_owned(),
                    petition_url: "http://localhost/p/free-them".to_owned(),
                    signer_name: format!("Signer {n}"),
                    confirm_url: format!("http://localhost/confirm/{n}"),
                    expires_at: later(86_400),
                });
                enqueue(conn, &key, &email, &format!("s{n}@example.org"), None, at).unwrap();
            }
            let first = claim(conn, &key, "first", later(1), later(61), 2).unwrap();
            let second = claim(conn, &key, "second", later(2), later(62), 10).unwrap();
            let results = vec![
                (first[0].clone(), Delivery::Sent),
                (first[1].clone(), Delivery::Released),
            ];
            record(conn, "first", &results, later(3)).unwrap();
            // After every lease has run out.
            let third = claim(conn, &key, "third", later(120), later(180), 10).unwrap();
            [first, second, third].map(|rows| {
                rows.into_iter()
                    .map(|row| row.recipient)
                    .collect::<Vec<_>>()
            })
        })
        .await;
    let [first, second, third] = claimed;
    assert_eq!(first, ["s1@example.org", "s2@example.org"], "oldest first");
    assert_eq!(
        second,
        ["s3@example.org"],
        "leased emails are not claimed again"
    );
    assert_eq!(
        third,
        ["s2@example.org", "s3@example.org"],
        "the released one and the one whose lease ran out; never the sent one"
    );
}
