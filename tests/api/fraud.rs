//! Bots and fraud: email normalisation for duplicates, rate limits and the other automatic
//! checks that hold signatures back silently, accepting them, `UNDERSIGN_ABUSE_CHECKS=off`,
//! bulk invalidation with preview and revert, the fraud report, and the signer's disclosure
//! choice.

use std::collections::BTreeMap;
use std::time::Duration;
use undersign::safety::encryption::Field;

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::config::Settings;
use undersign::db::schema::{audit_log, moderation_batches, petitions, signatures};
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{encode, Backend, Response, TestApp};

backend_tests!(
    gmail_dots_tags_and_googlemail_are_one_signature,
    signatures_over_a_limit_are_held_back_silently,
    honeypot_timing_and_disposable_domains_hold_signatures_back,
    suspect_signatures_count_only_once_accepted,
    abuse_checks_off_hold_nothing_back,
    bulk_invalidation_previews_applies_and_reverts,
    the_fraud_report_counts_by_reason,
    other_organizers_get_404_on_fraud_routes,
    the_disclosure_choice_is_stored_from_form_and_json,
);

fn checks_on(limit_per_client: i64, limit_per_domain: i64) -> impl FnOnce(&mut Settings) {
    move |settings| {
        settings.abuse_checks = true;
        settings.abuse.per_client = limit_per_client;
        settings.abuse.per_domain = limit_per_domain;
    }
}

async fn sign(app: &TestApp, slug: &str, email: &str) -> Response {
    let response = app.sign_json(slug, email).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    response
}

/// Status and suspect reason of the signature with this address.
async fn state_of(app: &TestApp, email: &str) -> (String, Option<String>) {
    let key = app.email_key(email);
    app.db(move |conn| {
        signatures::table
            .filter(signatures::email_key.eq(key))
            .select((signatures::status, signatures::suspect_reason))
            .first(conn)
            .unwrap()
    })
    .await
}

async fn id_of(app: &TestApp, email: &str) -> i64 {
    let key = app.email_key(email);
    app.db(move |conn| {
        signatures::table
            .filter(signatures::email_key.eq(key))
            .select(signatures::id)
            .first(conn)
            .unwrap()
    })
    .await
}

/// What an attacker could compare: status, headers but the date and request id, and body.
fn observable(response: &Response) -> (StatusCode, BTreeMap<String, String>, String) {
    let headers = response
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (response.status, headers, response.body.clone())
}

async fn confirm(app: &TestApp, email: &str) {
    let path = app.confirmation_path(email, 1).await;
    let confirmed = app.post_form(&path, "").await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
}

/// The hidden form token of the petition page.
async fn form_token(app: &TestApp, slug: &str) -> String {
    let page = app.get(&format!("/p/{slug}")).await;
    let marker = "name=\"form_token\" value=\"";
    let start = page.body.find(marker).expect("the form has a token") + marker.len();
    let end = start + page.body[start..].find('"').unwrap();
    page.body[start..end].to_owned()
}

fn form_body(email: &str, extra: &str) -> String {
    format!(
        "name=Ana+Ivanova&email={}&country=NO&consent=on{extra}",
        encode(email)
    )
}

async fn gmail_dots_tags_and_googlemail_are_one_signature(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    for email in [
        "Ana.Lopez@gmail.com",
        "analopez+petitions@gmail.com",
        " A.N.A.Lopez@GoogleMail.com ",
    ] {
        sign(&app, "free-them", email).await;
    }
    assert_eq!(app.count_rows("signatures").await, 1);
    let (email, key, domain): (String, String, Option<String>) = app
        .db(|conn| {
            signatures::table
                .select((
                    signatures::email,
                    signatures::email_key,
                    signatures::email_domain,
                ))
                .first(conn)
                .unwrap()
        })
        .await;
    let data_key = app.data_key();
    assert_eq!(
        data_key.open(Field::Email, &email).unwrap(),
        "Ana.Lopez@gmail.com",
        "the address is kept as typed (encrypted)"
    );
    assert_eq!(key, app.email_key("analopez@gmail.com"));
    assert!(!key.contains("gmail"), "the duplicate key is a keyed hash");
    assert_eq!(domain, Some(data_key.domain_key("gmail.com")));
    // Each signing's email goes to the address as typed (one mailbox for Gmail).
    for typed in [
        "Ana.Lopez@gmail.com",
        "analopez+petitions@gmail.com",
        "A.N.A.Lopez@GoogleMail.com",
    ] {
        app.smtp
            .wait_for_messages_to(typed, 1, Duration::from_secs(10))
            .await;
    }
}

async fn signatures_over_a_limit_are_held_back_silently(backend: Backend) {
    let app = TestApp::spawn_with(backend, checks_on(3, 2)).await;
    for slug in ["by-domain", "by-client", "free-mail"] {
        app.create_petition(slug).await;
    }
    // Per email domain: the third from one domain within the window.
    let first = sign(&app, "by-domain", "a@d1.example.org").await;
    sign(&app, "by-domain", "b@d1.example.org").await;
    let limited = sign(&app, "by-domain", "c@d1.example.org").await;
    assert_eq!(observable(&first), observable(&limited));
    assert_eq!(state_of(&app, "a@d1.example.org").await.0, "pending");
    assert_eq!(
        state_of(&app, "c@d1.example.org").await,
        ("suspect".to_owned(), Some("limited".to_owned()))
    );
    // Per client: the fourth from one address, whatever the domains.
    for (n, email) in ["w@e1.org", "x@e2.org", "y@e3.org", "z@e4.org"]
        .iter()
        .enumerate()
    {
        sign(&app, "by-client", email).await;
        let (status, _) = state_of(&app, email).await;
        assert_eq!(status, if n < 3 { "pending" } else { "suspect" }, "{email}");
    }
    // Free-mail providers have no domain limit.
    for email in ["u1@gmail.com", "u2@gmail.com", "u3@gmail.com"] {
        sign(&app, "free-mail", email).await;
        assert_eq!(state_of(&app, email).await.0, "pending", "{email}");
    }
    // The limited signer gets the same confirmation email as anyone.
    let path = app.confirmation_path("c@d1.example.org", 1).await;
    assert!(path.starts_with("/confirm/"));
    // Client addresses are stored only as hashes: network, then address.
    let hashes: Vec<Option<String>> = app
        .db(|conn| {
            signatures::table
                .select(signatures::client_hash)
                .load(conn)
                .unwrap()
        })
        .await;
    let first_hash = hashes[0].clone().unwrap();
    assert!(hashes.iter().all(|hash| hash.as_ref() == Some(&first_hash)));
    assert!(!first_hash.contains("127.0.0.1"));
    assert_eq!(first_hash.split(':').count(), 2);
    assert_eq!(app.count_rows("client_keys").await, 1);
}

async fn honeypot_timing_and_disposable_domains_hold_signatures_back(backend: Backend) {
    let app = TestApp::spawn_with(backend, checks_on(100, 100)).await;
    app.create_petition("free-them").await;
    let token = form_token(&app, "free-them").await;
    // A person takes more than two seconds to fill the form in.
    actix_web::rt::time::sleep(Duration::from_millis(2_100)).await;
    let human = app
        .post_form(
            "/p/free-them/sign",
            &form_body(
                "human@example.org",
                &format!("&website=&form_token={}", encode(&token)),
            ),
        )
        .await;
    let bot = app
        .post_form(
            "/p/free-them/sign",
            &form_body(
                "bot@example.org",
                &format!(
                    "&website=http%3A%2F%2Fspam.example&form_token={}",
                    encode(&token)
                ),
            ),
        )
        .await;
    assert_eq!(human.status, StatusCode::SEE_OTHER, "{}", human.body);
    assert_eq!(observable(&human), observable(&bot));
    assert_eq!(state_of(&app, "human@example.org").await.0, "pending");
    assert_eq!(
        state_of(&app, "bot@example.org").await,
        ("suspect".to_owned(), Some("honeypot".to_owned()))
    );

    let fresh = form_token(&app, "free-them").await;
    let fast = app
        .post_form(
            "/p/free-them/sign",
            &form_body(
                "fast@example.org",
                &format!("&form_token={}", encode(&fresh)),
            ),
        )
        .await;
    assert_eq!(observable(&human), observable(&fast));
    let forged = format!("{}.{}", 1_000, "ab".repeat(32));
    for (email, extra) in [
        ("tokenless@example.org", String::new()),
        (
            "forged@example.org",
            format!("&form_token={}", encode(&forged)),
        ),
    ] {
        let response = app
            .post_form("/p/free-them/sign", &form_body(email, &extra))
            .await;
        assert_eq!(observable(&human), observable(&response));
    }
    for email in [
        "fast@example.org",
        "tokenless@example.org",
        "forged@example.org",
    ] {
        assert_eq!(
            state_of(&app, email).await,
            ("suspect".to_owned(), Some("too_fast".to_owned())),
            "{email}"
        );
    }

    let normal = sign(&app, "free-them", "someone@example.org").await;
    for email in ["x@mailinator.com", "y@inbox.yopmail.com"] {
        let response = sign(&app, "free-them", email).await;
        assert_eq!(observable(&normal), observable(&response));
        assert_eq!(
            state_of(&app, email).await,
            ("suspect".to_owned(), Some("disposable".to_owned()))
        );
    }
    assert_eq!(state_of(&app, "someone@example.org").await.0, "pending");
    // Everyone was sent a confirmation email, the held back too.
    for email in ["bot@example.org", "fast@example.org", "x@mailinator.com"] {
        app.confirmation_path(email, 1).await;
    }
}

async fn suspect_signatures_count_only_once_accepted(backend: Backend) {
    let app = TestApp::spawn_with(backend, checks_on(1, 100)).await;
    app.create_petition("free-them").await;
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    sign(&app, "free-them", "first@example.org").await;
    sign(&app, "free-them", "held@example.org").await;
    sign(&app, "free-them", "later@example.org").await;
    assert_eq!(state_of(&app, "held@example.org").await.0, "suspect");
    confirm(&app, "first@example.org").await;
    let path = app.confirmation_path("held@example.org", 1).await;
    let held_page = app.post_form(&path, "").await;
    assert_eq!(held_page.status, StatusCode::OK);
    // Confirmed by email, still held back and not counted.
    assert_eq!(app.public_count("free-them").await, 1);
    let (status, reason) = state_of(&app, "held@example.org").await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("suspect", Some("limited"))
    );
    // The link again says it is confirmed, as for anyone.
    let again = app.get(&path).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    // Invalidated, then restored, it is held back again and still not counted.
    let held = id_of(&app, "held@example.org").await;
    for (action, body) in [
        ("invalidate", format!("id={held}&reason=checking")),
        ("restore", format!("id={held}")),
    ] {
        let path = format!("/admin/petitions/free-them/signatures/{action}");
        let response = app.post_form_as(&admin, &path, &body).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    }
    assert_eq!(
        state_of(&app, "held@example.org").await,
        ("suspect".to_owned(), Some("limited".to_owned()))
    );
    assert_eq!(app.public_count("free-them").await, 1);

    let later = id_of(&app, "later@example.org").await;
    let accepted = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/signatures/accept",
            &format!("id={held}&id={later}"),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    assert_eq!(app.public_count("free-them").await, 2);
    assert_eq!(state_of(&app, "held@example.org").await.0, "confirmed");
    // Not confirmed by email yet: pending, and its link now counts it.
    assert_eq!(state_of(&app, "later@example.org").await.0, "pending");
    confirm(&app, "later@example.org").await;
    assert_eq!(app.public_count("free-them").await, 3);
    let audits: i64 = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.eq("signatures.accept"))
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(audits, 1);
    let list = app
        .get_as(
            &admin,
            "/admin/petitions/free-them/signatures?status=suspect",
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
}

async fn abuse_checks_off_hold_nothing_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    for n in 0..8 {
        sign(&app, "free-them", &format!("s{n}@same.example.org")).await;
    }
    sign(&app, "free-them", "x@mailinator.com").await;
    let response = app
        .post_form(
            "/p/free-them/sign",
            &form_body("bot@example.org", "&website=spam"),
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let rows: Vec<(String, Option<String>, Option<String>)> = app
        .db(|conn| {
            signatures::table
                .select((
                    signatures::status,
                    signatures::suspect_reason,
                    signatures::client_hash,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(rows.len(), 10);
    for (status, reason, hash) in rows {
        assert_eq!((status.as_str(), reason), ("pending", None));
        assert!(hash.is_some(), "hashes are kept for fraud analysis");
    }
}

async fn bulk_invalidation_previews_applies_and_reverts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let organizer = app.signed_in("org@example.org", Role::Organizer).await;
    app.add_organizer("free-them", "org@example.org").await;
    for n in 1..=3 {
        let email = format!("bot{n}@bot.example");
        crate::moderation::sign_and_confirm(&app, "free-them", &email, &format!("BOT {n}"), "BY")
            .await;
    }
    crate::moderation::sign_and_confirm(&app, "free-them", "ana@other.org", "Ana", "NO").await;
    sign(&app, "free-them", "pending@bot.example").await;
    assert_eq!(app.public_count("free-them").await, 4);

    let page = app
        .get_as(&organizer, "/admin/petitions/free-them/signatures/bulk")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let path = "/admin/petitions/free-them/signatures/bulk";
    let preview = app
        .post_form_as(&organizer, path, "action=preview&domain=bot.example")
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(
        preview.body.contains("<strong>4</strong> signatures match"),
        "{}",
        preview.body
    );
    let by_name = app
        .post_form_as(&organizer, path, "action=preview&name=bot&country=BY")
        .await;
    assert!(by_name.body.contains("<strong>3</strong> signatures match"));
    let anchor = id_of(&app, "ana@other.org").await;
    let by_network = app
        .post_form_as(
            &organizer,
            path,
            &format!("action=preview&network_of={anchor}"),
        )
        .await;
    assert!(by_network
        .body
        .contains("<strong>5</strong> signatures match"));
    let window = app
        .post_form_as(
            &organizer,
            path,
            "action=preview&from=2000-01-01T00%3A00&to=2000-01-02T00%3A00",
        )
        .await;
    assert!(window.body.contains("<strong>0</strong> signatures match"));
    assert_eq!(
        app.public_count("free-them").await,
        4,
        "a preview changes nothing"
    );
    assert_eq!(app.count_rows("moderation_batches").await, 0);

    for bad in [
        "action=apply&domain=bot.example",
        "action=apply&reason=spam",
        "action=preview&network_of=999999",
        "action=explode&domain=bot.example",
    ] {
        let response = app.post_form_as(&organizer, path, bad).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(app.count_rows("moderation_batches").await, 0);

    let applied = app
        .post_form_as(
            &organizer,
            path,
            "action=apply&domain=bot.example&reason=a+bot+farm",
        )
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    assert_eq!(app.public_count("free-them").await, 1);
    let (batch, affected, criteria): (i64, i64, String) = app
        .db(|conn| {
            moderation_batches::table
                .select((
                    moderation_batches::id,
                    moderation_batches::affected,
                    moderation_batches::criteria,
                ))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(affected, 4);
    assert!(criteria.contains("bot.example"));
    assert_eq!(state_of(&app, "bot1@bot.example").await.0, "invalidated");
    assert_eq!(state_of(&app, "pending@bot.example").await.0, "invalidated");
    let listed = app.get_as(&organizer, path).await;
    assert!(listed.body.contains("a bot farm"));

    let revert = format!("{path}/{batch}/revert");
    let reverted = app.post_form_as(&organizer, &revert, "").await;
    assert_eq!(reverted.status, StatusCode::SEE_OTHER, "{}", reverted.body);
    assert_eq!(app.public_count("free-them").await, 4);
    assert_eq!(state_of(&app, "bot1@bot.example").await.0, "confirmed");
    assert_eq!(state_of(&app, "pending@bot.example").await.0, "pending");
    let again = app.post_form_as(&organizer, &revert, "").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let (stored_count, actions): (i64, Vec<String>) = app
        .db(|conn| {
            let count = petitions::table
                .select(petitions::signature_count)
                .first(conn)
                .unwrap();
            let actions = audit_log::table
                .filter(audit_log::action.like("signatures.bulk%"))
                .order(audit_log::id.asc())
                .select(audit_log::action)
                .load(conn)
                .unwrap();
            (count, actions)
        })
        .await;
    assert_eq!(stored_count, 4);
    assert_eq!(
        actions,
        vec!["signatures.bulk_invalidate", "signatures.bulk_revert"]
    );
}

async fn the_fraud_report_counts_by_reason(backend: Backend) {
    let app = TestApp::spawn_with(backend, checks_on(2, 100)).await;
    app.create_petition("free-them").await;
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    sign(&app, "free-them", "a@example.org").await;
    sign(&app, "free-them", "x@mailinator.com").await;
    sign(&app, "free-them", "b@example.org").await;
    sign(&app, "free-them", "c@example.org").await;
    let by_hand = id_of(&app, "a@example.org").await;
    let invalidated = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/signatures/invalidate",
            &format!("id={by_hand}&reason=duplicate"),
        )
        .await;
    assert_eq!(invalidated.status, StatusCode::SEE_OTHER);
    let dashboard = app.get_as(&admin, "/admin/petitions/free-them").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    for (id, n) in [
        ("fraud-limited", 2),
        ("fraud-disposable", 1),
        ("fraud-honeypot", 0),
        ("fraud-too-fast", 0),
        ("fraud-by-hand", 1),
        ("fraud-bulk", 0),
    ] {
        assert!(
            dashboard.body.contains(&format!("id=\"{id}\">{n}<")),
            "{id} should be {n}: {}",
            dashboard.body
        );
    }
    assert!(dashboard.body.contains("id=\"fraud-hours\""));
}

async fn other_organizers_get_404_on_fraud_routes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("theirs").await;
    let outsider = app.signed_in("outsider@example.org", Role::Organizer).await;
    sign(&app, "theirs", "a@example.org").await;
    let id = id_of(&app, "a@example.org").await;
    let base = "/admin/petitions/theirs/signatures";
    assert_eq!(
        app.get_as(&outsider, &format!("{base}/bulk")).await.status,
        StatusCode::NOT_FOUND
    );
    for (path, body) in [
        (
            format!("{base}/bulk"),
            "action=preview&domain=example.org".to_owned(),
        ),
        (
            format!("{base}/bulk"),
            "action=apply&domain=example.org&reason=x".to_owned(),
        ),
        (format!("{base}/bulk/1/revert"), String::new()),
        (format!("{base}/accept"), format!("id={id}")),
    ] {
        let response = app.post_form_as(&outsider, &path, &body).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.public_count("theirs").await, 0);
    assert_eq!(app.count_rows("moderation_batches").await, 0);
}

async fn the_disclosure_choice_is_stored_from_form_and_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let api = "/api/v1/petitions/free-them/signatures";
    let json = |email: &str, extra: serde_json::Value| {
        let mut body = serde_json::json!({
            "name": "Ana", "email": email, "country": "NO", "consent": true,
        });
        if let serde_json::Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        body
    };
    for (email, extra) in [
        (
            "count@example.org",
            serde_json::json!({"disclosure": "count_only"}),
        ),
        ("legacy@example.org", serde_json::json!({"public": true})),
        ("default@example.org", serde_json::json!({})),
        (
            "both@example.org",
            serde_json::json!({"public": true, "disclosure": "recipients"}),
        ),
    ] {
        let response = app.post_json(api, &json(email, extra)).await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    }
    let invalid = app
        .post_json(
            api,
            &json(
                "bad@example.org",
                serde_json::json!({"disclosure": "everyone"}),
            ),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.json()["errors"]["disclosure"].is_array());
    let wrong_type = app
        .post_json(
            api,
            &json("bad@example.org", serde_json::json!({"disclosure": 3})),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);

    let page = app.get("/p/free-them").await;
    assert!(page
        .body
        .contains("name=\"disclosure\" type=\"radio\" value=\"recipients\" checked"));
    assert!(page
        .body
        .contains("name=\"website\" type=\"text\" tabindex=\"-1\" autocomplete=\"off\""));
    for (email, extra) in [
        ("form-public@example.org", "&disclosure=public"),
        ("form-legacy@example.org", "&public=on"),
        ("form-count@example.org", "&disclosure=count_only"),
    ] {
        let response = app
            .post_form("/p/free-them/sign", &form_body(email, extra))
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    }
    let bad_form = app
        .post_form(
            "/p/free-them/sign",
            &form_body("bad-form@example.org", "&disclosure=everyone"),
        )
        .await;
    assert_eq!(bad_form.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_form.body.contains("disclosure-error"));
    assert_eq!(app.count_rows("signatures").await, 7);

    let stored: BTreeMap<String, String> = app
        .db(|conn| {
            signatures::table
                .select((signatures::email_key, signatures::disclosure))
                .load::<(String, String)>(conn)
                .unwrap()
                .into_iter()
                .collect()
        })
        .await;
    let expect = |email: &str, disclosure: &str| {
        assert_eq!(stored[&app.email_key(email)], disclosure, "{email}");
    };
    expect("count@example.org", "count_only");
    expect("legacy@example.org", "public");
    expect("default@example.org", "recipients");
    expect("both@example.org", "recipients");
    expect("form-public@example.org", "public");
    expect("form-legacy@example.org", "public");
    expect("form-count@example.org", "count_only");
}
