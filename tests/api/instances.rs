//! Two instances on one PostgreSQL database, both serving and both running the outbox worker,
//! with one SMTP receiver: signatures and confirmations spread over both keep the counts exact,
//! every instance shows the others' confirmations within a second, and no email goes out twice.

use std::collections::HashMap;
use std::time::Duration;

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::config::Settings;
use undersign::db::schema::{outbox, petitions, signatures};

use crate::helpers::{test_settings, Backend, SmtpReceiver, TestDatabase};

/// How many people sign; each instance takes every other one.
const SIGNERS: usize = 200;

/// One running instance (the test keeps the database and the SMTP receiver, which are shared).
struct Instance {
    base_url: String,
    pool: undersign::db::DbPool,
    server: actix_web::dev::ServerHandle,
}

impl Instance {
    async fn start(settings: Settings) -> Instance {
        let app = undersign::Application::build(settings)
            .await
            .expect("the instance starts");
        let instance = Instance {
            base_url: app.base_url().to_owned(),
            pool: app.pool().clone(),
            server: app.server_handle(),
        };
        actix_web::rt::spawn(app.run_until_stopped());
        instance
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

/// Runs `f` against the shared database off the executor, which also runs both outbox workers.
async fn db<T: Send + 'static>(
    instance: &Instance,
    f: impl FnOnce(&mut undersign::db::AnyConnection) -> T + Send + 'static,
) -> T {
    let pool = instance.pool.clone();
    actix_web::rt::task::spawn_blocking(move || f(&mut pool.get().unwrap()))
        .await
        .unwrap()
}

fn client() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(60))
        .finish()
}

async fn get(url: String) -> (StatusCode, String) {
    let mut response = client().get(url).send().await.expect("GET");
    let body = response.body().limit(1 << 20).await.expect("body");
    (
        response.status(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn count_of(instance: &Instance, slug: &str) -> i64 {
    let (status, body) = get(instance.url(&format!("/api/v1/petitions/{slug}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["signature_count"].as_i64().unwrap()
}

async fn page_of(instance: &Instance, slug: &str) -> String {
    let (status, body) = get(instance.url(&format!("/p/{slug}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn address(n: usize) -> String {
    format!("signer-{n:03}@example.org")
}

/// The confirmation path (`/confirm/TOKEN`) in a received email, if it has one.
fn confirmation_path(mail: &crate::helpers::smtp::ReceivedMail) -> Option<String> {
    let link = mail
        .links()
        .into_iter()
        .find(|link| link.contains("/confirm/"))?;
    let start = link.find("/confirm/")?;
    Some(link[start..].to_owned())
}

/// PostgreSQL only (only there may several instances share a database), so it is skipped
/// with the PostgreSQL tests.
#[actix_web::test]
#[cfg_attr(undersign_skip_postgres, ignore = "UNDERSIGN_TEST_POSTGRES=skip")]
async fn two_instances_keep_counts_exact_and_send_each_email_once() {
    let database = TestDatabase::create(Backend::Postgres);
    let smtp = SmtpReceiver::start().await;
    // The same settings for both, so the same secret, signing and data key files; only the
    // port (0: each picks its own) differs. Small batches make the two workers compete for
    // the outbox's rows many times.
    let mut settings = test_settings(&database, &smtp.url());
    settings.workers = Some(2);
    settings.outbox.batch_size = 8;
    let first = Instance::start(settings.clone()).await;
    let second = Instance::start(settings).await;
    let instances = [&first, &second];

    let slug = "two-instances";
    db(&first, move |conn| {
        use undersign::core::status::PetitionStatus;
        use undersign::petitions::model::NewPetition;
        let petition = NewPetition {
            slug: slug.to_owned(),
            title: "Two instances".to_owned(),
            summary: "One database.".to_owned(),
            body: "Count us exactly.".to_owned(),
            targets: Vec::new(),
            goal: Some(1000),
            closes_at: None,
            status: PetitionStatus::Open,
            organizer_ids: Vec::new(),
        };
        undersign::petitions::queries::create(conn, &petition, undersign::core::clock::now())
            .unwrap();
    })
    .await;
    // Both instances hold the count and the page in memory from here on.
    for instance in instances {
        assert_eq!(count_of(instance, slug).await, 0);
        assert!(page_of(instance, slug)
            .await
            .contains("<strong>0</strong> confirmed signatures"));
    }

    // Everyone signs at once, every other signer on the other instance.
    let mut signing = Vec::new();
    for n in 0..SIGNERS {
        let url = instances[n % 2].url(&format!("/api/v1/petitions/{slug}/signatures"));
        signing.push(actix_web::rt::spawn(async move {
            let json = serde_json::json!({
                "name": format!("Signer {n}"),
                "email": address(n),
                "country": "NO",
                "consent": true,
            });
            client()
                .post(url)
                .send_json(&json)
                .await
                .expect("POST")
                .status()
        }));
    }
    for handle in signing {
        assert_eq!(handle.await.unwrap(), StatusCode::ACCEPTED);
    }

    // One confirmation email per signer, whichever worker sent it.
    smtp.wait_for_messages(SIGNERS, Duration::from_secs(60))
        .await;
    let mut paths = HashMap::new();
    for mail in smtp.messages() {
        let path = confirmation_path(&mail).expect("only confirmation emails so far");
        let to = mail.envelope_to.join(",");
        assert!(
            paths.insert(to.clone(), path).is_none(),
            "{to} got a second confirmation email"
        );
    }
    assert_eq!(paths.len(), SIGNERS);

    // Everyone confirms at once, each on the instance the other signed on.
    let mut confirming = Vec::new();
    for n in 0..SIGNERS {
        let path = &paths[&address(n)];
        let url = instances[(n + 1) % 2].url(path);
        confirming.push(actix_web::rt::spawn(async move {
            let mut response = client().post(url).send().await.expect("POST");
            let body = response.body().limit(1 << 20).await.unwrap();
            (
                response.status(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }));
    }
    for handle in confirming {
        let (status, body) = handle.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("your signature is confirmed"), "{body}");
    }

    // Each instance knows only its own confirmations at once; within a second it shows all.
    tokio::time::sleep(undersign::petitions::cache::FRESH_FOR + Duration::from_millis(100)).await;
    let expected = format!("<strong>{SIGNERS}</strong> confirmed signatures");
    for instance in instances {
        assert_eq!(count_of(instance, slug).await, SIGNERS as i64);
        assert!(page_of(instance, slug).await.contains(&expected));
    }

    // The counter moved in the same transactions as the statuses.
    let (counter, confirmed) = db(&first, move |conn| {
        let counter: i64 = petitions::table
            .filter(petitions::slug.eq(slug))
            .select(petitions::signature_count)
            .first(conn)
            .unwrap();
        let confirmed: i64 = signatures::table
            .filter(signatures::status.eq("confirmed"))
            .count()
            .get_result(conn)
            .unwrap();
        (counter, confirmed)
    })
    .await;
    assert_eq!(confirmed, SIGNERS as i64);
    assert_eq!(counter, confirmed);

    // Every confirmation queued a receipt: one more email each, then nothing more. Both
    // workers keep polling while we wait, so a row claimed twice would show up here.
    smtp.wait_for_messages(2 * SIGNERS, Duration::from_secs(60))
        .await;
    let settled = loop {
        let (unsent, all) = db(&first, |conn| {
            let unsent: i64 = outbox::table
                .filter(outbox::sent_at.is_null())
                .count()
                .get_result(conn)
                .unwrap();
            (
                unsent,
                outbox::table.count().get_result::<i64>(conn).unwrap(),
            )
        })
        .await;
        if unsent == 0 {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.messages();
    assert_eq!(settled, 2 * SIGNERS as i64);
    assert_eq!(mails.len(), 2 * SIGNERS, "an email was sent twice");
    let mut per_signer: HashMap<String, (usize, usize)> = HashMap::new();
    for mail in &mails {
        let counts = per_signer.entry(mail.envelope_to.join(",")).or_default();
        match confirmation_path(mail) {
            Some(_) => counts.0 += 1,
            None => counts.1 += 1,
        }
    }
    assert_eq!(per_signer.len(), SIGNERS);
    for (to, counts) in per_signer {
        assert_eq!(counts, (1, 1), "{to}: (confirmation, receipt) emails");
    }

    for instance in instances {
        instance.server.stop(true).await;
    }
    drop(database);
}
