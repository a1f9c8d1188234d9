//! Privacy for signers: withdrawal from the link in every email, discreet emails, what the
//! disclosure choice shows where, and the retention rules (`undersign purge`).

use std::process::Command;
use std::time::Duration;

use awc::http::StatusCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use undersign::db::schema::{audit_log, client_keys, outbox, petitions, signatures};
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::delivery::{deliver_cli, undersign, unzip, verify_pinned};
use crate::helpers::{encode, Backend, TestApp};

backend_tests!(
    withdrawing_from_the_emailed_link_erases_and_uncounts,
    withdrawal_links_show_no_row_number_and_first_format_links_still_work,
    discreet_emails_use_the_petition_s_subject_and_sender_and_omit_the_title,
    the_disclosure_choice_decides_where_names_appear,
    purge_dry_run_reports_and_changes_nothing_then_removes_per_rule,
);

const SLUG: &str = "free-them";

async fn sign(app: &TestApp, slug: &str, name: &str, email: &str, disclosure: &str) {
    let response = app
        .post_json(
            &format!("/api/v1/petitions/{slug}/signatures"),
            &serde_json::json!({
                "name": name,
                "email": email,
                "country": "NO",
                "postal_code": "0150",
                "comment": format!("comment by {name}"),
                "disclosure": disclosure,
                "consent": true,
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
}

async fn sign_and_confirm(app: &TestApp, slug: &str, name: &str, email: &str, disclosure: &str) {
    sign(app, slug, name, email, disclosure).await;
    let nth = app.smtp.messages_to(email).len() + 1;
    let path = app.confirmation_path(email, nth).await;
    assert_eq!(app.post_form(&path, "").await.status, StatusCode::OK);
}

/// The withdrawal link of the `nth` (1-based) email to `address`, as a path.
async fn withdraw_path(app: &TestApp, address: &str, nth: usize) -> String {
    let mails = app
        .smtp
        .wait_for_messages_to(address, nth, Duration::from_secs(10))
        .await;
    let link = mails[nth - 1]
        .links()
        .into_iter()
        .find(|link| link.contains("/withdraw/"))
        .expect("every email to a signer has a withdrawal link");
    link.strip_prefix(&app.base_url).unwrap().to_owned()
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
);

async fn signature_row(app: &TestApp, id: i64) -> Row {
    app.db(move |conn| {
        signatures::table
            .find(id)
            .select((
                signatures::status,
                signatures::name,
                signatures::email,
                signatures::email_key,
                signatures::postal_code,
                signatures::comment,
                signatures::receipt_salt,
                signatures::withdrawn_at,
            ))
            .first(conn)
            .unwrap()
    })
    .await
}

async fn withdrawing_from_the_emailed_link_erases_and_uncounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    sign_and_confirm(&app, SLUG, "Ana Ivanova", "ana@example.org", "public").await;
    assert_eq!(app.public_count(SLUG).await, 1);
    let id: i64 = app
        .db(|conn| {
            signatures::table
                .select(signatures::id)
                .first(conn)
                .unwrap()
        })
        .await;

    // Both the confirmation and the receipt carry the same link.
    let from_confirmation = withdraw_path(&app, "ana@example.org", 1).await;
    let path = withdraw_path(&app, "ana@example.org", 2).await;
    assert_eq!(from_confirmation, path);

    // Where the signer was: the client hash and the signing event that vouched for them.
    app.db(move |conn| {
        diesel::update(signatures::table.find(id))
            .set((
                signatures::client_hash.eq("ab".repeat(32)),
                signatures::signing_event_id.eq(Some(7_i64)),
            ))
            .execute(conn)
            .unwrap()
    })
    .await;

    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Withdraw my signature"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(app.public_count(SLUG).await, 1, "GET changes nothing");

    let done = app.post_form(&path, "").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Your signature is withdrawn"));
    assert_eq!(app.public_count(SLUG).await, 0);

    let (status, name, email, email_key, postal_code, comment, salt, withdrawn_at) =
        signature_row(&app, id).await;
    assert_eq!(status, "withdrawn");
    assert_eq!(name, "");
    assert_eq!(email, format!("withdrawn:{id}"));
    assert_eq!(email_key, format!("withdrawn:{id}"));
    assert_eq!((postal_code, comment, salt), (None, None, None));
    assert!(withdrawn_at.is_some());
    let (client_hash, signing_event): (Option<String>, Option<i64>) = app
        .db(move |conn| {
            signatures::table
                .find(id)
                .select((signatures::client_hash, signatures::signing_event_id))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!((client_hash, signing_event), (None, None));
    let leftovers: i64 = app
        .db(move |conn| {
            outbox::table
                .filter(outbox::signature_id.eq(id))
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(leftovers, 0, "its confirmation and receipt emails are gone");
    let audit: Vec<(String, String)> = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.eq("signature.withdraw"))
                .select((audit_log::action, audit_log::details))
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].1.contains("Ana") && !audit[0].1.contains("ana@"));

    // Twice is harmless.
    let again = app.post_form(&path, "").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("already withdrawn"));
    assert_eq!(app.public_count(SLUG).await, 0);
    assert!(app.get(&path).await.body.contains("already withdrawn"));
    let withdrawals: i64 = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.eq("signature.withdraw"))
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(withdrawals, 1, "withdrawing again records nothing");

    // Bad tokens.
    for bad in [
        "/withdraw/garbage".to_owned(),
        "/withdraw/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        format!("{path}x"),
    ] {
        assert_eq!(app.get(&bad).await.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(
            app.post_form(&bad, "").await.status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }

    // The same address can sign again.
    sign_and_confirm(&app, SLUG, "Ana Ivanova", "ana@example.org", "public").await;
    assert_eq!(app.public_count(SLUG).await, 1);
}

/// The id of the signature made with `address`.
async fn signature_id(app: &TestApp, address: &'static str) -> i64 {
    let key =
        undersign::safety::encryption::DataKey::load_or_create(&app.database.dir.join("data.key"))
            .unwrap();
    let rows: Vec<(i64, String)> = app
        .db(|conn| {
            signatures::table
                .select((signatures::id, signatures::email))
                .load(conn)
                .unwrap()
        })
        .await;
    rows.into_iter()
        .find(|(_, sealed)| {
            key.open(undersign::safety::encryption::Field::Email, sealed)
                .is_ok_and(|email| email == address)
        })
        .map(|(id, _)| id)
        .expect("the signature is stored")
}

fn token_bytes(path: &str) -> Vec<u8> {
    use base64::Engine;
    let token = path.strip_prefix("/withdraw/").unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap()
}

async fn withdrawal_links_show_no_row_number_and_first_format_links_still_work(backend: Backend) {
    use hmac::Mac;

    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    let signers = ["ana@example.org", "boris@example.org", "chen@example.org"];
    let mut links = Vec::new();
    for address in signers {
        sign(&app, SLUG, "Ana Ivanova", address, "public").await;
        let path = withdraw_path(&app, address, 1).await;
        links.push((signature_id(&app, address).await, token_bytes(&path), path));
    }
    for (id, bytes, path) in &links {
        for shown in [
            &id.to_be_bytes()[..],
            &id.to_le_bytes()[..],
            &(*id as i32).to_be_bytes()[..],
            &(*id as i32).to_le_bytes()[..],
        ] {
            assert!(
                !bytes.windows(shown.len()).any(|window| window == shown),
                "signature {id}'s link {path} carries its id"
            );
        }
    }
    // Consecutive signatures' links have nothing in common: no counter, no shared prefix.
    for pair in links.windows(2) {
        let (a, b) = (&pair[0].1, &pair[1].1);
        assert_eq!(pair[1].0, pair[0].0 + 1, "consecutive rows");
        let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
        assert!(same < 8, "{same} of {} bytes in common", a.len());
    }

    // Tampered links are refused, and refuse to withdraw anything.
    let (_, bytes, path) = &links[0];
    for at in [0, 7, 8, 15, 16, bytes.len() - 1] {
        use base64::Engine;
        let mut changed = bytes.clone();
        changed[at] ^= 0x40;
        let forged = format!(
            "/withdraw/{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&changed)
        );
        assert_eq!(app.get(&forged).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.post_form(&forged, "").await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(signature_row(&app, links[0].0).await.0, "pending");

    // A link in the first format (the id in the clear, then its HMAC), as emails sent before
    // this version carry, still withdraws its signature.
    let secrets =
        undersign::secrets::Secrets::load_or_create(&app.database.dir.join("secret.key")).unwrap();
    let (id, _, _) = links[1];
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&secrets.derive("withdraw")).unwrap();
    mac.update(&id.to_be_bytes());
    let mut first_format = id.to_be_bytes().to_vec();
    first_format.extend_from_slice(&mac.finalize().into_bytes()[..16]);
    let old_path = {
        use base64::Engine;
        format!(
            "/withdraw/{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&first_format)
        )
    };
    assert!(app
        .get(&old_path)
        .await
        .body
        .contains("Withdraw my signature"));
    let done = app.post_form(&old_path, "").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(signature_row(&app, id).await.0, "withdrawn");
    // The new link of the same signature agrees.
    assert!(app
        .get(&links[1].2)
        .await
        .body
        .contains("already withdrawn"));
    // The others are untouched; the new-format link withdraws its own.
    assert_eq!(app.post_form(path, "").await.status, StatusCode::OK);
    assert_eq!(signature_row(&app, links[0].0).await.0, "withdrawn");
    assert_eq!(signature_row(&app, links[2].0).await.0, "pending");
}

async fn discreet_emails_use_the_petition_s_subject_and_sender_and_omit_the_title(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    let admin = app.signed_in("olga@example.org", Role::Admin).await;
    let form = |subject: &str, sender: &str| {
        format!(
            "action=save&title={}&slug={SLUG}&summary={}&body={}&targets=&goal=100&closes_on=\
             &email_subject={}&email_sender_name={}",
            encode("Free them all (free-them)"),
            encode("Release every political prisoner."),
            encode("Dear Prime Minister,\n\nWe ask you to **act**."),
            encode(subject),
            encode(sender),
        )
    };
    // A header injection attempt is refused with a message.
    let refused = app
        .post_form_as(
            &admin,
            &format!("/admin/petitions/{SLUG}/edit"),
            &form("Hello\r\nBcc: x@example.org", "Garden club"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("one line"));
    let saved = app
        .post_form_as(
            &admin,
            &format!("/admin/petitions/{SLUG}/edit"),
            &form("Your newsletter", "Garden club"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let edit = app
        .get_as(&admin, &format!("/admin/petitions/{SLUG}/edit"))
        .await;
    assert!(edit.body.contains("value=\"Your newsletter\""));

    sign_and_confirm(&app, SLUG, "Ana Ivanova", "ana@example.org", "recipients").await;
    let mails = app
        .smtp
        .wait_for_messages_to("ana@example.org", 2, Duration::from_secs(10))
        .await;
    for mail in &mails {
        assert_eq!(mail.subject(), "Your newsletter");
        let from = mail.header("from").unwrap();
        assert!(from.contains("Garden club"), "{from}");
        assert!(from.contains("noreply@"), "{from}");
        for body in [mail.text_body(), mail.html_body()] {
            assert!(!body.contains("Free them all"), "{body}");
            assert!(body.contains(&format!("/p/{SLUG}")));
            assert!(body.contains("/withdraw/"));
        }
    }

    // Without settings, the usual subject names the petition.
    app.create_petition("open-letter").await;
    sign(&app, "open-letter", "Ben", "ben@example.org", "public").await;
    let mails = app
        .smtp
        .wait_for_messages_to("ben@example.org", 1, Duration::from_secs(10))
        .await;
    assert!(mails[0].subject().contains("Free them all (open-letter)"));
    assert!(mails[0].text_body().contains("Free them all (open-letter)"));
}

fn pdf_text(dir: &std::path::Path, name: &str, pdf: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    let output = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

async fn the_disclosure_choice_decides_where_names_appear(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    sign_and_confirm(&app, SLUG, "Pia Publicname", "pia@example.org", "public").await;
    sign_and_confirm(
        &app,
        SLUG,
        "Rita Recipname",
        "rita@example.org",
        "recipients",
    )
    .await;
    sign_and_confirm(
        &app,
        SLUG,
        "Cora Countname",
        "cora@example.org",
        "count_only",
    )
    .await;
    assert_eq!(app.public_count(SLUG).await, 3);

    let page = app.get(&format!("/p/{SLUG}")).await;
    assert!(page.body.contains("Recent signers"));
    assert!(page.body.contains("Pia Publicname"));
    assert!(!page.body.contains("Rita Recipname"));
    assert!(!page.body.contains("Cora Countname"));

    let admin = app.signed_in("olga@example.org", Role::Admin).await;
    let path = format!("/admin/petitions/{SLUG}/export");
    let export = |format: &str| format!("format={format}&email=1");
    let csv = app.post_download_as(&admin, &path, &export("csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    let csv = csv.text().to_owned();
    assert!(csv.contains(",disclosure,"));
    assert!(csv.contains("Pia Publicname") && csv.contains("Rita Recipname"));
    assert!(!csv.contains("Cora") && !csv.contains("cora@"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "every signature keeps its row");
    assert!(csv.contains(",count_only,"));

    let ndjson = app.post_download_as(&admin, &path, &export("ndjson")).await;
    let lines: Vec<serde_json::Value> = ndjson
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let hidden = &lines[2];
    assert_eq!(hidden["disclosure"], "count_only");
    assert_eq!(hidden["name"], "");
    assert_eq!(hidden["postal_code"], serde_json::Value::Null);
    assert_eq!(hidden["comment"], serde_json::Value::Null);
    assert_eq!(hidden["country"], "NO");
    assert_eq!(hidden["commitment"].as_str().unwrap().len(), 64);
    assert!(!ndjson.text().contains("Cora"));

    let pdf = app.post_download_as(&admin, &path, &export("pdf")).await;
    let text = pdf_text(&app.database.dir, "export.pdf", &pdf.body);
    assert!(text.contains("Pia Publicname") && text.contains("Rita Recipname"));
    assert!(!text.contains("Cora"));
    assert!(text.contains("(name withheld at the signer"), "{text}");

    // The bundle: the row and its commitment stay, the name does not, and it verifies.
    let bundle = deliver_cli(&app, SLUG, "bundle.zip").await;
    let entries = unzip(&std::fs::read(&bundle).unwrap());
    for (name, content) in &entries {
        let text = if name.ends_with(".pdf") {
            pdf_text(&app.database.dir, "bundle-dossier.pdf", content)
        } else {
            String::from_utf8_lossy(content).into_owned()
        };
        assert!(!text.contains("Cora Countname"), "{name}");
        if name == "signatures.csv" {
            assert_eq!(text.lines().count(), 4);
            assert!(text.contains("Rita Recipname"));
        }
    }
    let run = verify_pinned(&app, &bundle, &[]).await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
}

/// How many signatures still hold this address (found through its keyed hash).
async fn count_with_email(app: &TestApp, email: &str) -> i64 {
    let email_key = app.email_key(email);
    app.db(move |conn| {
        signatures::table
            .filter(signatures::email_key.eq(email_key))
            .count()
            .get_result(conn)
            .unwrap()
    })
    .await
}

async fn count_erased_emails(app: &TestApp) -> i64 {
    app.db(move |conn| {
        signatures::table
            .filter(signatures::email.like("erased:%"))
            .count()
            .get_result(conn)
            .unwrap()
    })
    .await
}

async fn purge_dry_run_reports_and_changes_nothing_then_removes_per_rule(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = undersign::core::clock::now();
    let days = chrono::Duration::days;

    // An open petition: an old pending signature, a fresh one, a confirmed one.
    app.create_petition(SLUG).await;
    sign(&app, SLUG, "Old Pending", "old@example.org", "public").await;
    sign(&app, SLUG, "New Pending", "new@example.org", "public").await;
    sign_and_confirm(&app, SLUG, "Kept Confirmed", "kept@example.org", "public").await;
    app.smtp
        .wait_for_messages_to("new@example.org", 1, Duration::from_secs(10))
        .await;
    app.smtp
        .wait_for_messages_to("old@example.org", 1, Duration::from_secs(10))
        .await;
    let (old_key, kept_key) = (
        app.email_key("old@example.org"),
        app.email_key("kept@example.org"),
    );
    app.db(move |conn| {
        diesel::update(signatures::table.filter(signatures::email_key.eq(old_key)))
            .set(signatures::created_at.eq(now - days(20)))
            .execute(conn)
            .unwrap();
        // Every signature's client hash is old, and so is a daily key; each was vouched for by
        // a signing event, which says where its signer was just as much.
        diesel::update(signatures::table)
            .set((
                signatures::client_hash.eq("ab".repeat(32)),
                signatures::signing_event_id.eq(Some(42_i64)),
            ))
            .execute(conn)
            .unwrap();
        diesel::update(signatures::table.filter(signatures::email_key.eq(kept_key)))
            .set(signatures::created_at.eq(now - days(8)))
            .execute(conn)
            .unwrap();
        diesel::insert_into(client_keys::table)
            .values((
                client_keys::day.eq("2000-01-01"),
                client_keys::key.eq("old key"),
                client_keys::created_at.eq(now - days(8)),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;

    // A petition closed 100 days ago: one signer asked for news, one is count-only.
    app.create_petition("ended").await;
    sign_and_confirm(&app, "ended", "News Wanted", "news@example.org", "public").await;
    sign_and_confirm(
        &app,
        "ended",
        "Hidden Person",
        "hidden@example.org",
        "count_only",
    )
    .await;
    app.smtp
        .wait_for_messages_to("hidden@example.org", 2, Duration::from_secs(10))
        .await;
    // The worker records an email as sent just after the receiver has it.
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
        assert!(std::time::Instant::now() < deadline, "emails stay unsent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (news_key, hidden_key) = (
        app.email_key("news@example.org"),
        app.email_key("hidden@example.org"),
    );
    app.db(move |conn| {
        diesel::update(petitions::table.filter(petitions::slug.eq("ended")))
            .set((
                petitions::status.eq("closed"),
                petitions::closes_at.eq(now - days(100)),
            ))
            .execute(conn)
            .unwrap();
        diesel::update(signatures::table.filter(signatures::email_key.eq(&news_key)))
            .set(signatures::wants_updates.eq(true))
            .execute(conn)
            .unwrap();
        // Emails sent to the ended petition's signers are old.
        let ended_signers: Vec<i64> = signatures::table
            .filter(signatures::email_key.eq_any([&news_key, &hidden_key]))
            .select(signatures::id)
            .load(conn)
            .unwrap();
        diesel::update(outbox::table.filter(outbox::signature_id.eq_any(ended_signers)))
            .set(outbox::sent_at.eq(now - days(40)))
            .execute(conn)
            .unwrap();
    })
    .await;

    let signatures_before = app.count_rows("signatures").await;
    let vouched = || {
        app.db(|conn| {
            signatures::table
                .filter(signatures::signing_event_id.is_not_null())
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
    };
    let vouched_before = vouched().await;
    let keys_before = app.count_rows("client_keys").await;
    let outbox_before = app.count_rows("outbox").await;
    let dry = undersign(&app, &["purge", "--dry-run"]).await;
    assert!(dry.success, "{}\n{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("Dry run"), "{}", dry.stdout);
    for line in [
        "1  unconfirmed signatures deleted",
        "1  email addresses erased",
        "1  names of count-only signatures erased",
        "1  daily client keys deleted",
        "4  old sent or failed emails deleted",
    ] {
        assert!(dry.stdout.contains(line), "{line}: {}", dry.stdout);
    }
    assert!(
        dry.stdout.contains("1  client address hashes erased"),
        "{}",
        dry.stdout
    );
    assert_eq!(app.count_rows("signatures").await, signatures_before);
    assert_eq!(app.count_rows("outbox").await, outbox_before);
    assert_eq!(app.count_rows("client_keys").await, keys_before);
    assert_eq!(count_erased_emails(&app).await, 0);
    let purges = || async {
        app.db(|conn| {
            audit_log::table
                .filter(audit_log::action.eq("retention.purge"))
                .select(audit_log::details)
                .load::<String>(conn)
                .unwrap()
        })
        .await
    };
    assert!(purges().await.is_empty());

    let run = undersign(&app, &["purge"]).await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.replace(
            "Dry run: nothing was changed. A purge now would remove:",
            "Removed:"
        ),
        dry.stdout.replace(
            "Dry run: nothing was changed. A purge now would remove:",
            "Removed:"
        )
    );
    assert_eq!(app.count_rows("signatures").await, signatures_before - 1);
    assert_eq!(count_with_email(&app, "old@example.org").await, 0);
    assert_eq!(count_with_email(&app, "new@example.org").await, 1);
    assert_eq!(count_with_email(&app, "news@example.org").await, 1);
    assert_eq!(count_with_email(&app, "hidden@example.org").await, 0);
    assert_eq!(count_erased_emails(&app).await, 1);
    let hidden: (String, Option<String>, Option<String>) = app
        .db(|conn| {
            signatures::table
                .filter(signatures::disclosure.eq("count_only"))
                .select((
                    signatures::name,
                    signatures::postal_code,
                    signatures::commitment,
                ))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(hidden.0, "");
    assert_eq!(hidden.1, None);
    assert!(hidden.2.is_some(), "the commitment stays");
    assert_eq!(app.count_rows("client_keys").await, keys_before - 1);
    let old_hashes: i64 = app
        .db(|conn| {
            signatures::table
                .filter(signatures::client_hash.is_not_null())
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        old_hashes,
        signatures_before - 2,
        "only the 8-day-old hash is gone"
    );
    assert_eq!(
        vouched().await,
        vouched_before - 2,
        "the 8-day-old signature's event goes with its hash (and the deleted one with its row)"
    );
    assert_eq!(app.count_rows("outbox").await, outbox_before - 5);
    let audit = purges().await;
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].contains("example.org"));
    // The counts did not move: nothing purged was counted.
    assert_eq!(app.public_count(SLUG).await, 1);

    // A second run finds nothing.
    let again = undersign(&app, &["purge"]).await;
    assert!(again.stdout.contains("0  unconfirmed signatures deleted"));
    assert_eq!(purges().await.len(), 1);
}
