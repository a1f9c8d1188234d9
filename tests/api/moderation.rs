//! The petition dashboard and signature moderation in the workspace: counts, the chart and the
//! country table; searching; invalidating and undoing with exact counts; resending
//! confirmation emails; and nobody but the petition's organizers and admins getting in.

use std::time::Duration;
use undersign::core::email::EmailAddress;
use undersign::safety::encryption::Field;

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::{audit_log, outbox, petitions, signatures};
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{encode, Backend, TestApp};

backend_tests!(
    the_dashboard_shows_counts_the_chart_countries_and_email_health,
    signatures_can_be_searched_by_name_email_country_date_and_status,
    bad_search_input_is_a_400,
    invalidating_stops_counting_at_once_and_undo_restores,
    invalidated_pending_signatures_cannot_be_confirmed,
    moderation_forms_check_their_input_and_csrf,
    resending_delivers_a_new_working_link,
    resending_is_refused_when_it_cannot_help,
    other_organizers_get_404_and_admins_see_everything,
);

// ---- helpers shared with `organizer_api` ----

/// Signs through the public API with the given name and country.
pub(crate) async fn sign(app: &TestApp, slug: &str, email: &str, name: &str, country: &str) {
    let response = app
        .post_json(
            &format!("/api/v1/petitions/{slug}/signatures"),
            &serde_json::json!({
                "name": name,
                "email": email,
                "country": country,
                "consent": true,
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
}

/// Signs and confirms with the first emailed link.
pub(crate) async fn sign_and_confirm(
    app: &TestApp,
    slug: &str,
    email: &str,
    name: &str,
    country: &str,
) {
    sign(app, slug, email, name, country).await;
    let path = app.confirmation_path(email, 1).await;
    let confirmed = app.post_form(&path, "").await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
}

/// The id of the signature made with `email` (lowercase) on `slug`.
pub(crate) async fn signature_id(app: &TestApp, slug: &str, email: &str) -> i64 {
    let (slug, email_key) = (slug.to_owned(), app.email_key(email));
    app.db(move |conn| {
        signatures::table
            .inner_join(petitions::table)
            .filter(petitions::slug.eq(&slug))
            .filter(signatures::email_key.eq(&email_key))
            .select(signatures::id)
            .first(conn)
            .unwrap()
    })
    .await
}

pub(crate) async fn signature_status(app: &TestApp, id: i64) -> String {
    app.db(move |conn| {
        signatures::table
            .find(id)
            .select(signatures::status)
            .first(conn)
            .unwrap()
    })
    .await
}

/// Waits until the outbox has nothing left to send.
pub(crate) async fn wait_for_outbox_idle(app: &TestApp) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = app
            .db(|conn| {
                outbox::table
                    .filter(outbox::sent_at.is_null())
                    .filter(outbox::failed_at.is_null())
                    .count()
                    .get_result(conn)
                    .unwrap()
            })
            .await;
        if waiting == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox never emptied"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Inserts `n` pending signatures directly (no emails), one minute apart, the last one newest.
/// Returns their ids, oldest first.
pub(crate) async fn insert_signatures(app: &TestApp, slug: &str, n: usize) -> Vec<i64> {
    let slug = slug.to_owned();
    let key = app.data_key();
    app.db(move |conn| {
        let petition_id: i64 = petitions::table
            .filter(petitions::slug.eq(&slug))
            .select(petitions::id)
            .first(conn)
            .unwrap();
        let version_id =
            undersign::petitions::queries::current_version_id(conn, petition_id).unwrap();
        let start = undersign::core::clock::now() - chrono::Duration::days(1);
        (0..n)
            .map(|i| {
                let at = start + chrono::Duration::minutes(i as i64);
                let email = format!("bulk{i}@example.org");
                let address = EmailAddress::parse(&email).unwrap();
                diesel::insert_into(signatures::table)
                    .values((
                        signatures::petition_id.eq(petition_id),
                        signatures::version_id.eq(version_id),
                        signatures::email_key.eq(key.email_key(&address)),
                        signatures::email_domain.eq(key.domain_key(address.domain())),
                        signatures::email.eq(key.seal(Field::Email, &email)),
                        signatures::name.eq(key.seal(Field::Name, &format!("Bulk Signer {i}"))),
                        signatures::country.eq("DE"),
                        signatures::disclosure.eq("recipients"),
                        signatures::status.eq("pending"),
                        signatures::confirmation_emails.eq(1),
                        signatures::created_at.eq(at),
                        signatures::updated_at.eq(at),
                    ))
                    .returning(signatures::id)
                    .get_result::<i64>(conn)
                    .unwrap()
            })
            .collect()
    })
    .await
}

async fn set_created_at(app: &TestApp, id: i64, at: chrono::NaiveDateTime) {
    app.db(move |conn| {
        diesel::update(signatures::table.find(id))
            .set(signatures::created_at.eq(at))
            .execute(conn)
            .unwrap()
    })
    .await;
}

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
}

/// A petition run by olga@example.org, who is signed in.
async fn organizer_app(backend: Backend) -> (TestApp, crate::helpers::Session) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let session = app.signed_in("olga@example.org", Role::Organizer).await;
    app.add_organizer("free-them", "olga@example.org").await;
    (app, session)
}

// ---- the dashboard ----

async fn the_dashboard_shows_counts_the_chart_countries_and_email_health(backend: Backend) {
    let (app, session) = organizer_app(backend).await;
    sign_and_confirm(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    sign_and_confirm(&app, "free-them", "ales@example.org", "Aleś Bialacki", "BY").await;
    sign_and_confirm(&app, "free-them", "kari@example.org", "Kari Nordmann", "NO").await;
    sign(
        &app,
        "free-them",
        "pending@example.org",
        "Pat Pending",
        "SE",
    )
    .await;
    wait_for_outbox_idle(&app).await;
    // One confirmation two days ago, so the chart has two days with bars.
    let ales = signature_id(&app, "free-them", "ales@example.org").await;
    let two_days_ago = undersign::core::clock::now() - chrono::Duration::days(2);
    app.db(move |conn| {
        diesel::update(signatures::table.find(ales))
            .set((
                signatures::created_at.eq(two_days_ago),
                signatures::confirmed_at.eq(two_days_ago),
            ))
            .execute(conn)
            .unwrap()
    })
    .await;

    let page = app.get_as(&session, "/admin/petitions/free-them").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("Free them all (free-them)"));
    assert!(body.contains("<dd id=\"confirmed-count\">3</dd>"), "{body}");
    assert!(body.contains("<dd id=\"pending-count\">1</dd>"));
    // The chart: an accessible SVG drawn on the server, with its numbers as a table.
    assert!(body.contains("<svg class=\"chart\" role=\"img\""));
    assert!(body.contains("<title id=\"chart-title\">Confirmed signatures per day"));
    assert!(body.contains("3 confirmed signatures from"));
    assert_eq!(body.matches("<rect ").count(), 2, "two days with bars");
    let today = undersign::core::clock::now().date().to_string();
    let then = two_days_ago.date().to_string();
    assert!(body.contains(&format!("<title>{today}: 2 confirmed</title>")));
    assert!(body.contains(&format!("<td>{then}</td><td class=\"num\">1</td>")));
    // Countries: confirmed only, most first.
    let norway = body.find("<td>Norway").expect("Norway is listed");
    let belarus = body.find("<td>Belarus").expect("Belarus is listed");
    assert!(norway < belarus);
    assert!(body.contains("66.7%"));
    assert!(
        !body.contains("<td>Sweden <span"),
        "pending signatures are not counted"
    );
    // The latest signatures, whatever their status.
    for name in [
        "Ana Ivanova",
        "Aleś Bialacki",
        "Kari Nordmann",
        "Pat Pending",
    ] {
        assert!(body.contains(&format!("<td>{name}</td>")), "{name}");
    }
    // Emails (four confirmations, three receipts), and the links.
    assert!(body.contains("<dd id=\"outbox-sent\">7</dd>"), "{body}");
    assert!(body.contains("<dd id=\"outbox-queued\">0</dd>"));
    assert!(body.contains("<dd id=\"outbox-failed\">0</dd>"));
    for link in [
        "/admin/petitions/free-them/edit",
        "/admin/petitions/free-them/organizers",
        "/admin/petitions/free-them/signatures",
        "/p/free-them",
    ] {
        assert!(body.contains(&format!("href=\"{link}\"")), "{link}");
    }
    // Lifecycle buttons from the petition lifecycle: an open petition can be closed.
    assert!(body.contains("<form method=\"post\" action=\"/admin/petitions/free-them/status\""));
    assert!(body.contains("<input type=\"hidden\" name=\"to\" value=\"closed\">"));
    assert!(body.contains("Close now"));
    // Neither inline styles nor scripts.
    assert!(!body.contains("style=\""));
    assert!(!body.contains("<script"));

    // A failed email shows up with its error.
    app.db(|conn| {
        let id: i64 = outbox::table
            .select(outbox::id)
            .order(outbox::id.desc())
            .first(conn)
            .unwrap();
        diesel::update(outbox::table.find(id))
            .set((
                outbox::sent_at.eq(None::<chrono::NaiveDateTime>),
                outbox::failed_at.eq(undersign::core::clock::now()),
                outbox::last_error.eq("550 mailbox unavailable"),
            ))
            .execute(conn)
            .unwrap()
    })
    .await;
    let page = app.get_as(&session, "/admin/petitions/free-them").await;
    assert!(page.body.contains("<dd id=\"outbox-sent\">6</dd>"));
    assert!(page.body.contains("<dd id=\"outbox-failed\">1</dd>"));
    assert!(page.body.contains("550 mailbox unavailable"));
}

// ---- searching ----

/// The names listed on a moderation page, in order.
fn listed_names(body: &str) -> Vec<String> {
    body.split("<label for=\"tick-")
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find('>')? + 1;
            let end = rest.find("</label>")?;
            Some(rest[start..end].to_owned())
        })
        .collect()
}

async fn signatures_can_be_searched_by_name_email_country_date_and_status(backend: Backend) {
    let (app, session) = organizer_app(backend).await;
    sign_and_confirm(&app, "free-them", "Ana@Example.org", "Ana Ivanova", "NO").await;
    sign(&app, "free-them", "ales@example.org", "Aleś Bialacki", "BY").await;
    sign(
        &app,
        "free-them",
        "percent@example.org",
        "100% Ivan_ov",
        "NO",
    )
    .await;
    let ales = signature_id(&app, "free-them", "ales@example.org").await;
    set_created_at(&app, ales, day(2026, 1, 15)).await;
    let search = |query: &'static str| {
        let app = &app;
        let session = &session;
        async move {
            let page = app
                .get_as(
                    session,
                    &format!("/admin/petitions/free-them/signatures{query}"),
                )
                .await;
            assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
            listed_names(&page.body)
        }
    };

    // Everything, newest first.
    assert_eq!(
        search("").await,
        vec!["100% Ivan_ov", "Ana Ivanova", "Aleś Bialacki"]
    );
    // Name: a case-insensitive substring on both backends; % and _ are plain characters.
    assert_eq!(search("?name=IVANOVA").await, vec!["Ana Ivanova"]);
    assert_eq!(
        search("?name=ivan").await,
        vec!["100% Ivan_ov", "Ana Ivanova"]
    );
    assert_eq!(search("?name=%25").await, vec!["100% Ivan_ov"]);
    assert_eq!(search("?name=n_o").await, vec!["100% Ivan_ov"]);
    assert!(search("?name=n_v").await.is_empty(), "_ is no wildcard");
    assert_eq!(search("?name=ale%C5%9B").await, vec!["Aleś Bialacki"]);
    // Email: the whole address, in any case.
    assert_eq!(
        search("?email=ANA%40example.ORG").await,
        vec!["Ana Ivanova"]
    );
    assert!(search("?email=ana%40example").await.is_empty());
    // Country and status.
    assert_eq!(search("?country=by").await, vec!["Aleś Bialacki"]);
    assert_eq!(
        search("?country=NO&status=confirmed").await,
        vec!["Ana Ivanova"]
    );
    assert_eq!(
        search("?status=pending").await,
        vec!["100% Ivan_ov", "Aleś Bialacki"]
    );
    // Dates (UTC, both ends included).
    assert_eq!(
        search("?from=2026-01-15&to=2026-01-15").await,
        vec!["Aleś Bialacki"]
    );
    assert_eq!(search("?from=2026-01-16&to=2026-01-31").await.len(), 0);
    let today = undersign::core::clock::now().date();
    let since_today = format!("?from={today}");
    let page = app
        .get_as(
            &session,
            &format!("/admin/petitions/free-them/signatures{since_today}"),
        )
        .await;
    assert_eq!(listed_names(&page.body).len(), 2);
    // Filters are kept in the form.
    let page = app
        .get_as(
            &session,
            "/admin/petitions/free-them/signatures?name=ivan&country=NO&status=pending",
        )
        .await;
    assert!(page.body.contains("value=\"ivan\""));
    assert!(page
        .body
        .contains("<option value=\"NO\" selected>Norway</option>"));
    assert!(page
        .body
        .contains("<option value=\"pending\" selected>pending</option>"));
    assert!(page.body.contains("1 matching signatures"));
    // Each row says where its confirmation email stands.
    wait_for_outbox_idle(&app).await;
    let page = app
        .get_as(&session, "/admin/petitions/free-them/signatures")
        .await;
    assert_eq!(page.body.matches("email-sent\">sent ").count(), 3);
    assert_eq!(page.header("cache-control"), Some("no-store"));
}

async fn bad_search_input_is_a_400(backend: Backend) {
    let (app, session) = organizer_app(backend).await;
    insert_signatures(&app, "free-them", 51).await;
    let first = app
        .get_as(&session, "/admin/petitions/free-them/signatures")
        .await;
    assert_eq!(listed_names(&first.body).len(), 50, "50 per page");
    assert!(first.body.contains("page 1 of 2"));
    assert!(first
        .body
        .contains("href=\"/admin/petitions/free-them/signatures?page=2\""));
    let second = app
        .get_as(&session, "/admin/petitions/free-them/signatures?page=2")
        .await;
    assert_eq!(listed_names(&second.body), vec!["Bulk Signer 0"]);
    let beyond = app
        .get_as(&session, "/admin/petitions/free-them/signatures?page=3")
        .await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert!(listed_names(&beyond.body).is_empty());

    for query in [
        "page=0",
        "page=-1",
        "page=two",
        "page=99999999999999999999",
        "from=2026-13-01",
        "to=28.11.2026",
        "from=2026-11-02&to=2026-11-01",
        "country=XX",
        "status=deleted",
        "name=%FF",
    ] {
        let page = app
            .get_as(
                &session,
                &format!("/admin/petitions/free-them/signatures?{query}"),
            )
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
    }
    let long_name = "x".repeat(201);
    let page = app
        .get_as(
            &session,
            &format!("/admin/petitions/free-them/signatures?name={long_name}"),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("at most 200 characters"));
}

// ---- invalidating and undoing ----

async fn audit_rows(app: &TestApp) -> Vec<(String, String)> {
    app.db(|conn| {
        audit_log::table
            .filter(audit_log::action.like("signature%"))
            .order(audit_log::id.asc())
            .select((audit_log::action, audit_log::details))
            .load(conn)
            .unwrap()
    })
    .await
}

async fn invalidating_stops_counting_at_once_and_undo_restores(backend: Backend) {
    let (app, session) = organizer_app(backend).await;
    app.create_petition("other").await;
    sign_and_confirm(&app, "free-them", "a@example.org", "Ana Ivanova", "NO").await;
    sign_and_confirm(&app, "free-them", "b@example.org", "Boris Bot", "NO").await;
    sign_and_confirm(&app, "free-them", "c@example.org", "Carl Clone", "NO").await;
    sign(&app, "free-them", "d@example.org", "Dora Dup", "NO").await;
    sign_and_confirm(&app, "other", "e@example.org", "Eva Other", "NO").await;
    assert_eq!(app.public_count("free-them").await, 3);
    let b = signature_id(&app, "free-them", "b@example.org").await;
    let c = signature_id(&app, "free-them", "c@example.org").await;
    let d = signature_id(&app, "free-them", "d@example.org").await;
    let foreign = signature_id(&app, "other", "e@example.org").await;

    let response = app
        .post_form_as(
            &session,
            "/admin/petitions/free-them/signatures/invalidate",
            &format!(
                "id={b}&id={c}&id={d}&id={foreign}&reason={}&back={}",
                encode("Same IP, 40 signatures in a minute"),
                encode("status=confirmed&page=1")
            ),
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(
        response.header("location"),
        Some("/admin/petitions/free-them/signatures?status=confirmed&done=invalidated&n=3")
    );
    // Counted no more, at once; another petition's signature is untouched.
    assert_eq!(app.public_count("free-them").await, 1);
    assert_eq!(app.public_count("other").await, 1);
    assert_eq!(signature_status(&app, foreign).await, "confirmed");
    for id in [b, c, d] {
        assert_eq!(signature_status(&app, id).await, "invalidated");
    }
    let (reason, by): (Option<String>, Option<i64>) = app
        .db(move |conn| {
            signatures::table
                .find(b)
                .select((signatures::invalidation_reason, signatures::invalidated_by))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        reason.as_deref(),
        Some("Same IP, 40 signatures in a minute")
    );
    assert!(by.is_some());
    let audit = audit_rows(&app).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "signatures.invalidate");
    let details: serde_json::Value = serde_json::from_str(&audit[0].1).unwrap();
    let mut expected = vec![b, c, d];
    expected.sort_unstable();
    assert_eq!(details["ids"], serde_json::json!(expected));
    assert_eq!(details["reason"], "Same IP, 40 signatures in a minute");

    let list = app
        .get_as(
            &session,
            "/admin/petitions/free-them/signatures?status=invalidated&done=invalidated&n=3",
        )
        .await;
    assert!(list.body.contains("3 signatures invalidated."));
    assert!(list.body.contains("Same IP, 40 signatures in a minute"));
    assert_eq!(listed_names(&list.body).len(), 3);
    let dashboard = app.get_as(&session, "/admin/petitions/free-them").await;
    assert!(dashboard.body.contains("<dd id=\"confirmed-count\">1</dd>"));

    // Invalidating again changes nothing.
    let again = app
        .post_form_as(
            &session,
            "/admin/petitions/free-them/signatures/invalidate",
            &format!("id={b}&reason=again"),
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.header("location").unwrap().ends_with("n=0"));
    assert_eq!(app.public_count("free-them").await, 1);

    // Undo: confirmed ones count again, the pending one waits again.
    let undone = app
        .post_form_as(
            &session,
            "/admin/petitions/free-them/signatures/restore",
            &format!("id={b}&id={c}&id={d}&id={foreign}&reason="),
        )
        .await;
    assert_eq!(undone.status, StatusCode::SEE_OTHER);
    assert_eq!(
        undone.header("location"),
        Some("/admin/petitions/free-them/signatures?done=restored&n=3")
    );
    assert_eq!(app.public_count("free-them").await, 3);
    assert_eq!(signature_status(&app, b).await, "confirmed");
    assert_eq!(signature_status(&app, d).await, "pending");
    let cleared: (Option<String>, Option<i64>, Option<chrono::NaiveDateTime>) = app
        .db(move |conn| {
            signatures::table
                .find(b)
                .select((
                    signatures::invalidation_reason,
                    signatures::invalidated_by,
                    signatures::invalidated_at,
                ))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(cleared, (None, None, None));
    let audit = audit_rows(&app).await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].0, "signatures.restore");
}

async fn invalidated_pending_signatures_cannot_be_confirmed(backend: Backend) {
    let (app, session) = organizer_app(backend).await;
    sign(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    let path = app.confirmation_path("ana@example.org", 1).await;
    let id = signature_id(&app, "free-them", "ana@example.org").await;
    let response = app
        .post_form_as(
            &session,
            "/admin/petitions/free-them/signatures/invalidate",
            &format!("id={id}&reason=fake"),
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);

    let refused = app.post_form(&path, "").await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(app.public_count("free-them").await, 0);
    assert_eq!(signature_status(&app, id).await, "invalidated");
    // Signing again does not bring it back or send anything.
    sign(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    assert_eq!(signature_status(&app, id).await, "invalidated");

    let restored = app
        .post_form_as(
            &session,
            "/admin/petitions/free-them/signatures/restore",
            &format!("id={id}"),
        )
        .await;
    assert_eq!(restored.status, StatusCode::SEE_OTHER);
    assert_eq!(signature_status(&app, id).await, "pending");
    assert_eq!(app.post_form(&path, "").await.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);
}

async fn moderation_forms_check_their_input_and_csrf(backend: Backend) {
    let (app, session) = organizer_app(backend).await;
    sign_and_confirm(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    let id = signature_id(&app, "free-them", "ana@example.org").await;
    let invalidate = "/admin/petitions/free-them/signatures/invalidate";
    let too_long = "x".repeat(501);
    for (body, expected) in [
        (format!("id={id}"), "Give a reason"),
        (format!("id={id}&reason=+++"), "Give a reason"),
        (
            format!("id={id}&reason={too_long}"),
            "at most 500 characters",
        ),
        (format!("id={id}&reason=a%07b"), "control characters"),
        ("reason=duplicate".to_owned(), "Tick at least one"),
        (
            "id=abc&reason=duplicate".to_owned(),
            "is not a signature number",
        ),
        (
            "id=-3&reason=duplicate".to_owned(),
            "is not a signature number",
        ),
        (
            format!("id={id}&id=99999999999999999999&reason=x"),
            "not a signature",
        ),
        (format!("id={id}&reason=x&back=page%3D0"), "whole number"),
        (
            format!("id={id}&reason=x&back=country%3DZZ"),
            "country code",
        ),
    ] {
        let response = app.post_form_as(&session, invalidate, &body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            response.body.contains(expected),
            "{body}: {}",
            response.body
        );
    }
    // Exactly 500 characters is fine.
    let response = app
        .post_form_as(
            &session,
            invalidate,
            &format!("id={id}&reason={}", "y".repeat(500)),
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(signature_status(&app, id).await, "invalidated");
    let restore = "/admin/petitions/free-them/signatures/restore";
    for body in ["", "id=", "id=x1"] {
        let response = app.post_form_as(&session, restore, body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body:?}");
    }
    // Without the CSRF token nothing changes.
    for path in [invalidate, restore] {
        let response = app
            .post_form_as_raw(&session, path, &format!("id={id}&reason=x"))
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
    }
    let response = app
        .post_form_as_raw(
            &session,
            &format!("/admin/petitions/free-them/signatures/{id}/resend"),
            "csrf_token=forged",
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(signature_status(&app, id).await, "invalidated");
    assert_eq!(app.public_count("free-them").await, 0);
    // Signed out, the forms lead to sign-in.
    let anonymous = app
        .post_form(invalidate, &format!("id={id}&reason=x"))
        .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header("location"), Some("/login"));
}

// ---- resending ----

async fn resending_delivers_a_new_working_link(backend: Backend) {
    let (app, session) = organizer_app(backend).await;
    sign(&app, "free-them", "Ana@Example.org", "Ana Ivanova", "NO").await;
    let first = app.confirmation_path("ana@example.org", 1).await;
    wait_for_outbox_idle(&app).await;
    let id = signature_id(&app, "free-them", "ana@example.org").await;

    let list = app
        .get_as(&session, "/admin/petitions/free-them/signatures")
        .await;
    assert!(list.body.contains("email-sent\">sent "));
    assert!(list.body.contains(&format!(
        "formaction=\"/admin/petitions/free-them/signatures/{id}/resend\""
    )));
    assert!(list.body.contains("Resend confirmation"));

    let response = app
        .post_form_as(
            &session,
            &format!("/admin/petitions/free-them/signatures/{id}/resend"),
            "back=name%3Dana",
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(
        response.header("location"),
        Some("/admin/petitions/free-them/signatures?name=ana&done=resent&n=1")
    );
    let second = app.confirmation_path("ana@example.org", 2).await;
    assert_ne!(first, second, "a new link");
    let mails = app.smtp.messages_to("ana@example.org");
    assert_eq!(mails.len(), 2);
    assert!(mails[1].text_body().contains("Ana Ivanova"));
    wait_for_outbox_idle(&app).await;
    let list = app
        .get_as(&session, "/admin/petitions/free-them/signatures")
        .await;
    assert!(list.body.contains("(2 emails)"));

    let confirmed = app.post_form(&second, "").await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);
    // The first link still works too (harmlessly: already confirmed).
    assert_eq!(app.post_form(&first, "").await.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);
    let audit = audit_rows(&app).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "signature.resend_confirmation");
}

async fn resending_is_refused_when_it_cannot_help(backend: Backend) {
    let (mut app, session) = organizer_app(backend).await;
    app.create_petition("other").await;
    sign_and_confirm(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    sign(&app, "free-them", "bo@example.org", "Bo Berg", "SE").await;
    sign(&app, "other", "eva@example.org", "Eva Other", "NO").await;
    app.confirmation_path("bo@example.org", 1).await;
    app.confirmation_path("eva@example.org", 1).await;
    wait_for_outbox_idle(&app).await;
    let ana = signature_id(&app, "free-them", "ana@example.org").await;
    let bo = signature_id(&app, "free-them", "bo@example.org").await;
    let eva = signature_id(&app, "other", "eva@example.org").await;
    let resend = |id: String| format!("/admin/petitions/free-them/signatures/{id}/resend");

    // Already confirmed: nothing to confirm.
    let response = app
        .post_form_as(&session, &resend(ana.to_string()), "")
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("only pending signatures"));
    // Another petition's signature, or none at all: not found. A bad id: 400.
    for id in [eva.to_string(), "987654".to_owned()] {
        let response = app.post_form_as(&session, &resend(id), "").await;
        assert_eq!(response.status, StatusCode::NOT_FOUND);
    }
    for id in ["abc", "0", "1.5"] {
        let response = app.post_form_as(&session, &resend(id.to_owned()), "").await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{id}");
    }
    // An email still waiting in the outbox: no second one on top.
    app.smtp.stop().await;
    let response = app
        .post_form_as(&session, &resend(bo.to_string()), "")
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = app
        .post_form_as(&session, &resend(bo.to_string()), "")
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("still waiting to be sent"));
    app.smtp.restart().await;
    app.confirmation_path("bo@example.org", 2).await;
    wait_for_outbox_idle(&app).await;
    // The cap: five emails per signature in all.
    for n in 3..=5 {
        let response = app
            .post_form_as(&session, &resend(bo.to_string()), "")
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "email {n}");
        app.confirmation_path("bo@example.org", n).await;
        wait_for_outbox_idle(&app).await;
    }
    let response = app
        .post_form_as(&session, &resend(bo.to_string()), "")
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("the most we send"));
    // A closed petition would refuse the confirmation anyway.
    app.db(|conn| {
        diesel::update(petitions::table.filter(petitions::slug.eq("free-them")))
            .set(
                petitions::closes_at
                    .eq(undersign::core::clock::now() - chrono::Duration::minutes(1)),
            )
            .execute(conn)
            .unwrap()
    })
    .await;
    app.db(move |conn| {
        diesel::update(signatures::table.find(bo))
            .set(signatures::confirmation_emails.eq(1))
            .execute(conn)
            .unwrap()
    })
    .await;
    let response = app
        .post_form_as(&session, &resend(bo.to_string()), "")
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("no longer accepts signatures"));
    assert_eq!(app.smtp.messages_to("bo@example.org").len(), 5);
}

// ---- access ----

async fn other_organizers_get_404_and_admins_see_everything(backend: Backend) {
    let (app, _olga) = organizer_app(backend).await;
    sign_and_confirm(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    let id = signature_id(&app, "free-them", "ana@example.org").await;
    let stranger = app.signed_in("ivan@example.org", Role::Organizer).await;
    let stranger_token = app.create_api_token("ivan@example.org").await;

    for path in [
        "/admin/petitions/free-them".to_owned(),
        "/admin/petitions/free-them/signatures".to_owned(),
        "/admin/petitions/free-them/signatures?page=0".to_owned(),
        "/admin/petitions/no-such-petition".to_owned(),
        "/admin/petitions/no-such-petition/signatures".to_owned(),
    ] {
        let page = app.get_as(&stranger, &path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.body.contains("Ana Ivanova"));
    }
    for (path, body) in [
        (
            "/admin/petitions/free-them/signatures/invalidate".to_owned(),
            format!("id={id}&reason=mine+now"),
        ),
        (
            "/admin/petitions/free-them/signatures/restore".to_owned(),
            format!("id={id}"),
        ),
        (
            format!("/admin/petitions/free-them/signatures/{id}/resend"),
            String::new(),
        ),
        (
            "/admin/petitions/free-them/signatures/invalidate".to_owned(),
            "id=abc".to_owned(),
        ),
    ] {
        let response = app.post_form_as(&stranger, &path, &body).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path} {body}");
    }
    let api = "/api/v1/admin/petitions/free-them/signatures";
    for path in [api.to_owned(), format!("{api}?per_page=0")] {
        let response = app.api_get(&stranger_token, &path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert!(response.json()["error"].is_string());
    }
    for action in ["invalidate", "restore"] {
        let response = app
            .api_post(
                &stranger_token,
                &format!("{api}/{id}/{action}"),
                &serde_json::json!({ "reason": "mine now" }),
            )
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(signature_status(&app, id).await, "confirmed");
    assert_eq!(app.public_count("free-them").await, 1);
    assert!(audit_rows(&app).await.is_empty());

    // An admin runs every petition without being one of its organizers.
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    let admin_token = app.create_api_token("admin@example.org").await;
    let page = app.get_as(&admin, "/admin/petitions/free-them").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Ana Ivanova"));
    let list = app
        .get_as(&admin, "/admin/petitions/free-them/signatures")
        .await;
    assert_eq!(listed_names(&list.body), vec!["Ana Ivanova"]);
    let response = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/signatures/invalidate",
            &format!("id={id}&reason=admin+check"),
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(app.public_count("free-them").await, 0);
    let response = app
        .api_post(
            &admin_token,
            &format!("{api}/{id}/restore"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let listed = app.api_get(&admin_token, api).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()["total"], 1);
    assert_eq!(app.public_count("free-them").await, 1);
}
