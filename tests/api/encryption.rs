//! Signers' personal fields at rest: a copy of the database alone (the SQLite file, a
//! PostgreSQL dump) names no signer, while everything that needs the fields (emails, the
//! organizer's search and exports) still has them; the wrong key is refused at start-up; rows an
//! older version stored in the clear are encrypted on the first start.

use std::process::Command;
use std::time::Duration;

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::{instance_checks, outbox, petitions, signatures};
use undersign::organizers::accounts::Role;
use undersign::safety::encryption::Field;

use crate::backend_tests;
use crate::helpers::{encode, test_settings, Backend, TestApp};

backend_tests!(
    a_copy_of_the_database_names_no_signer,
    organizers_find_signers_by_exact_email_and_by_part_of_the_name,
    another_data_key_is_refused_at_start_up,
    rows_stored_in_the_clear_by_an_older_version_are_encrypted_on_start,
);

const SLUG: &str = "free-them";
const NAME: &str = "Zmitser Unrepeatablename";
const EMAIL: &str = "zmitser.unrepeatable@example.org";
const POSTAL_CODE: &str = "PC-771943";
const COMMENT: &str = "a comment nobody else writes 5521";

async fn sign(app: &TestApp, name: &str, email: &str) {
    let response = app
        .post_json(
            &format!("/api/v1/petitions/{SLUG}/signatures"),
            &serde_json::json!({
                "name": name,
                "email": email,
                "country": "BY",
                "postal_code": POSTAL_CODE,
                "comment": COMMENT,
                "disclosure": "public",
                "consent": true,
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
}

/// Everything the database holds, as bytes: the SQLite files (main file and write-ahead log)
/// as they are on disk, or a `pg_dump` of the PostgreSQL database.
fn database_copy(app: &TestApp) -> Vec<u8> {
    let url = &app.database.url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        // Read by another process: closing a descriptor of the file in this one would drop
        // the in-process server's SQLite locks on it.
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-journal"] {
            let file = format!("{path}{suffix}");
            if std::path::Path::new(&file).exists() {
                let read = Command::new("cat").arg(&file).output().expect("cat runs");
                bytes.extend(read.stdout);
            }
        }
        assert!(bytes.len() > 4096, "the SQLite file was read");
        bytes
    } else {
        let dump = Command::new("pg_dump")
            .arg("--dbname")
            .arg(url)
            .output()
            .expect("pg_dump runs (package postgresql-client)");
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        dump.stdout
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn a_copy_of_the_database_names_no_signer(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    // One signer confirmed (receipt email sent too), one whose email waits in the outbox while
    // the mail server is down.
    sign(&app, NAME, EMAIL).await;
    let path = app.confirmation_path(EMAIL, 1).await;
    assert_eq!(app.post_form(&path, "").await.status, StatusCode::OK);
    let mails = app
        .smtp
        .wait_for_messages_to(EMAIL, 2, Duration::from_secs(10))
        .await;
    assert!(
        mails[0].text_body().contains(NAME),
        "the email still greets the signer by name"
    );
    app.smtp.stop().await;
    let waiting_name = "Alesia Waitingname";
    let waiting_email = "alesia.waiting@example.org";
    sign(&app, waiting_name, waiting_email).await;
    let queued: i64 = app
        .db(|conn| {
            outbox::table
                .filter(outbox::sent_at.is_null())
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert!(queued >= 1, "an email waits in the outbox");

    // The public page lists the public name: it is decrypted for display.
    let page = app.get(&format!("/p/{SLUG}")).await;
    assert!(page.body.contains(NAME), "{}", page.body);

    let copy = database_copy(&app);
    assert!(contains(&copy, SLUG), "the copy holds the petition");
    for secret in [
        NAME,
        "Unrepeatablename",
        EMAIL,
        "zmitser.unrepeatable",
        POSTAL_CODE,
        COMMENT,
        waiting_name,
        waiting_email,
    ] {
        assert!(
            !contains(&copy, secret),
            "{secret:?} is readable in the copy"
        );
    }
}

async fn organizers_find_signers_by_exact_email_and_by_part_of_the_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    sign(&app, "Élodie Ŭnderwood", "elodie@example.org").await;
    sign(&app, "Ivan Other", "ivan@example.org").await;
    let session = app.signed_in("admin@example.org", Role::Admin).await;
    let list = |query: &str| format!("/admin/petitions/{SLUG}/signatures?{query}");

    // Any part of the name, ignoring case, including letters beyond ASCII.
    let found = app.get_as(&session, &list("name=%C3%A9LODIE")).await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains("elodie@example.org"), "{}", found.body);
    assert!(!found.body.contains("ivan@example.org"));
    let found = app.get_as(&session, &list("name=%C5%ADnder")).await;
    assert!(found.body.contains("Élodie Ŭnderwood"), "{}", found.body);

    // The exact address, however it is capitalised; a part of it finds nothing.
    let found = app
        .get_as(
            &session,
            &list(&format!("email={}", encode(" ELODIE@example.org "))),
        )
        .await;
    assert!(found.body.contains("Élodie Ŭnderwood"), "{}", found.body);
    assert!(!found.body.contains("Ivan Other"));
    let partial = app.get_as(&session, &list("email=elodie")).await;
    assert_eq!(partial.status, StatusCode::OK);
    assert!(!partial.body.contains("Élodie"));

    // The organizer API shows the fields decrypted.
    let token = app.create_api_token("admin@example.org").await;
    let listed = app
        .api_get(
            &token,
            &format!("/api/v1/admin/petitions/{SLUG}/signatures"),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let names: Vec<String> = listed.json()["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"Élodie Ŭnderwood".to_owned()), "{names:?}");
}

async fn another_data_key_is_refused_at_start_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    sign(&app, NAME, EMAIL).await;
    let (smtp, database) = app.stop().await;

    let mut settings = test_settings(&database, &smtp.url());
    settings.data_key_file = database.dir.join("another-data.key");
    let refused = undersign::Application::build(settings).await;
    let message = format!("{:#}", refused.err().expect("another key is refused"));
    assert!(
        message.contains("does not match this database"),
        "{message}"
    );
    assert!(message.contains("another-data.key"), "{message}");

    // The right key still opens everything.
    let app = TestApp::start(test_settings(&database, &smtp.url()), smtp, database).await;
    let key = app.data_key();
    let name: String = app
        .db(|conn| {
            signatures::table
                .select(signatures::name)
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(key.open(Field::Name, &name).unwrap(), NAME);
}

async fn rows_stored_in_the_clear_by_an_older_version_are_encrypted_on_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    // What a version without encryption left behind: clear fields, the lowercased address as
    // the duplicate key, the plain domain, a queued email in the clear; and no key check.
    app.db(|conn| {
        let petition_id: i64 = petitions::table
            .filter(petitions::slug.eq(SLUG))
            .select(petitions::id)
            .first(conn)
            .unwrap();
        let version_id =
            undersign::petitions::queries::current_version_id(conn, petition_id).unwrap();
        let now = undersign::core::clock::now();
        let id: i64 = diesel::insert_into(signatures::table)
            .values((
                signatures::petition_id.eq(petition_id),
                signatures::version_id.eq(version_id),
                signatures::email_key.eq("old.signer@example.org"),
                signatures::email.eq("Old.Signer@example.org"),
                signatures::email_domain.eq("example.org"),
                signatures::name.eq("Old Clearname"),
                signatures::country.eq("NO"),
                signatures::postal_code.eq("0150"),
                signatures::comment.eq("old comment"),
                signatures::disclosure.eq("public"),
                signatures::status.eq("pending"),
                signatures::confirmation_emails.eq(1),
                signatures::created_at.eq(now),
                signatures::updated_at.eq(now),
            ))
            .returning(signatures::id)
            .get_result(conn)
            .unwrap();
        diesel::insert_into(outbox::table)
            .values((
                outbox::kind.eq("confirmation"),
                outbox::recipient.eq("Old.Signer@example.org"),
                outbox::payload.eq("{\"not\":\"sent\"}"),
                outbox::signature_id.eq(id),
                outbox::attempts.eq(0),
                outbox::next_attempt_at.eq(now + chrono::Duration::days(1)),
                outbox::created_at.eq(now),
            ))
            .execute(conn)
            .unwrap();
        diesel::delete(instance_checks::table)
            .execute(conn)
            .unwrap();
    })
    .await;
    let (smtp, database) = app.stop().await;
    let app = TestApp::start(test_settings(&database, &smtp.url()), smtp, database).await;

    let key = app.data_key();
    let (email, email_key, domain, name, postal_code, comment): (
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
    ) = app
        .db(|conn| {
            signatures::table
                .select((
                    signatures::email,
                    signatures::email_key,
                    signatures::email_domain,
                    signatures::name,
                    signatures::postal_code,
                    signatures::comment,
                ))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        key.open(Field::Email, &email).unwrap(),
        "Old.Signer@example.org"
    );
    assert_eq!(email_key, app.email_key("old.signer@example.org"));
    assert_eq!(domain, Some(key.domain_key("example.org")));
    assert_eq!(key.open(Field::Name, &name).unwrap(), "Old Clearname");
    assert_eq!(
        key.open_opt(Field::PostalCode, postal_code.as_deref())
            .unwrap()
            .as_deref(),
        Some("0150")
    );
    assert_eq!(
        key.open_opt(Field::Comment, comment.as_deref())
            .unwrap()
            .as_deref(),
        Some("old comment")
    );
    let (recipient, payload): (String, String) = app
        .db(|conn| {
            outbox::table
                .select((outbox::recipient, outbox::payload))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        key.open(Field::OutboxRecipient, &recipient).unwrap(),
        "Old.Signer@example.org"
    );
    assert_eq!(
        key.open(Field::OutboxPayload, &payload).unwrap(),
        "{\"not\":\"sent\"}"
    );
    // The old signer is still recognised: signing again is the same signature.
    sign(&app, "Old Clearname", "old.signer@EXAMPLE.org").await;
    assert_eq!(app.count_rows("signatures").await, 1);
}
