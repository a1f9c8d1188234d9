//! Signing events: organizers vouch for a network and a time window, and signers from that
//! network within the window are not held back by the per-client rate limit (up to the
//! event's cap); the events page refuses bad input and other organizers; the dashboard says
//! prominently how many signatures wait in the suspect list.

use awc::http::StatusCode;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use undersign::config::Settings;
use undersign::db::schema::{audit_log, signatures, signing_events};
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{encode, Backend, Session, TestApp};

backend_tests!(
    a_vouched_event_lets_its_network_past_the_per_client_limit,
    signings_of_one_batch_share_the_event_cap,
    the_events_page_refuses_bad_input_and_stores_nothing,
    events_are_removed_with_an_audit_entry,
    another_organizers_events_page_is_404,
    the_dashboard_shows_the_held_back_notice,
    the_organizer_api_lists_and_creates_events,
);

const MEETING: &str = "203.0.113.7";

/// Abuse checks on, three signatures per client address, and the test client trusted as a
/// proxy, so each signing can say which address it comes from.
fn meeting_settings(settings: &mut Settings) {
    settings.abuse_checks = true;
    settings.abuse.per_client = 3;
    settings.abuse.per_domain = 1_000;
    settings.trusted_proxies =
        undersign::config::network::TrustedProxies::parse("127.0.0.1").unwrap();
}

async fn sign_from(app: &TestApp, slug: &str, email: &str, address: &str) {
    let body = serde_json::json!({
        "name": "Ana Ivanova",
        "email": email,
        "country": "NO",
        "consent": true,
    });
    let mut response = app
        .client
        .post(app.url(&format!("/api/v1/petitions/{slug}/signatures")))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Forwarded-For", address))
        .send_body(body.to_string())
        .await
        .expect("POST");
    let status = response.status();
    let text = response.body().await.unwrap_or_default();
    assert_eq!(status, StatusCode::ACCEPTED, "{text:?}");
}

/// Status, suspect reason and vouching event of the signature with this address.
async fn state_of(app: &TestApp, email: &str) -> (String, Option<String>, Option<i64>) {
    let key = app.email_key(email);
    app.db(move |conn| {
        signatures::table
            .filter(signatures::email_key.eq(key))
            .select((
                signatures::status,
                signatures::suspect_reason,
                signatures::signing_event_id,
            ))
            .first(conn)
            .unwrap()
    })
    .await
}

async fn status_of(app: &TestApp, email: &str) -> String {
    state_of(app, email).await.0
}

fn minute(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M").to_string()
}

fn event_form(label: &str, network: &str, starts: &str, ends: &str, max: &str) -> String {
    format!(
        "label={}&network={}&starts_at={}&ends_at={}&max_signatures={}",
        encode(label),
        encode(network),
        encode(starts),
        encode(ends),
        encode(max)
    )
}

/// An event running from an hour ago to three hours from now.
fn current_event(network: &str, max: &str) -> String {
    let now = undersign::core::clock::now();
    event_form(
        "Coalition meeting, Oslo",
        network,
        &minute(now - Duration::hours(1)),
        &minute(now + Duration::hours(3)),
        max,
    )
}

async fn organizer_of(app: &TestApp, slug: &str, email: &str) -> Session {
    let session = app.signed_in(email, Role::Organizer).await;
    app.add_organizer(slug, email).await;
    session
}

async fn create_event(app: &TestApp, session: &Session, slug: &str, form: &str) -> i64 {
    let created = app
        .post_form_as(session, &format!("/admin/petitions/{slug}/events"), form)
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(
        created.header("location"),
        Some(format!("/admin/petitions/{slug}/events?done=created").as_str())
    );
    app.db(|conn| {
        signing_events::table
            .select(signing_events::id)
            .order(signing_events::id.desc())
            .first(conn)
            .unwrap()
    })
    .await
}

async fn a_vouched_event_lets_its_network_past_the_per_client_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, meeting_settings).await;
    app.create_petition("letter").await;
    let session = organizer_of(&app, "letter", "org@example.org").await;

    // Without an event: the fourth signer from the meeting's address is held back.
    for n in 1..=4 {
        sign_from(&app, "letter", &format!("early{n}@example.org"), MEETING).await;
    }
    assert_eq!(status_of(&app, "early3@example.org").await, "pending");
    assert_eq!(
        state_of(&app, "early4@example.org").await,
        ("suspect".to_owned(), Some("limited".to_owned()), None)
    );

    // Vouch for the meeting's network, with room for four more signatures.
    let event_id = create_event(
        &app,
        &session,
        "letter",
        &current_event("203.0.113.0/24", "4"),
    )
    .await;
    for n in 1..=4 {
        let email = format!("vouched{n}@example.org");
        sign_from(&app, "letter", &email, MEETING).await;
        assert_eq!(
            state_of(&app, &email).await,
            ("pending".to_owned(), None, Some(event_id)),
            "{email}"
        );
    }
    // They count once confirmed, like any other signature.
    let path = app.confirmation_path("vouched1@example.org", 1).await;
    let confirmed = app.post_form(&path, "").await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(app.public_count("letter").await, 1);

    // The cap is reached: the per-client limit applies again.
    sign_from(&app, "letter", "over-cap@example.org", MEETING).await;
    assert_eq!(
        state_of(&app, "over-cap@example.org").await,
        ("suspect".to_owned(), Some("limited".to_owned()), None)
    );

    // Outside the network: held back as before.
    for n in 1..=4 {
        sign_from(
            &app,
            "letter",
            &format!("elsewhere{n}@example.org"),
            "198.51.100.20",
        )
        .await;
    }
    assert_eq!(status_of(&app, "elsewhere3@example.org").await, "pending");
    assert_eq!(status_of(&app, "elsewhere4@example.org").await, "suspect");

    // Another address of the network, with room in a second event: vouched.
    let second = create_event(
        &app,
        &session,
        "letter",
        &current_event("203.0.113.0/24", "100"),
    )
    .await;
    for n in 1..=4 {
        sign_from(
            &app,
            "letter",
            &format!("hall{n}@example.org"),
            "203.0.113.99",
        )
        .await;
    }
    assert_eq!(state_of(&app, "hall4@example.org").await.2, Some(second));
    assert_eq!(status_of(&app, "hall4@example.org").await, "pending");

    // Outside the window (it ended a minute ago, or starts tomorrow): held back again.
    let now = undersign::core::clock::now();
    app.db(move |conn| {
        diesel::update(signing_events::table.find(second))
            .set(signing_events::ends_at.eq(now - Duration::minutes(1)))
            .execute(conn)
            .unwrap();
    })
    .await;
    sign_from(&app, "letter", "after@example.org", MEETING).await;
    assert_eq!(
        state_of(&app, "after@example.org").await,
        ("suspect".to_owned(), Some("limited".to_owned()), None)
    );
    app.db(move |conn| {
        diesel::update(signing_events::table.find(second))
            .set((
                signing_events::starts_at.eq(now + Duration::days(1)),
                signing_events::ends_at.eq(now + Duration::days(2)),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
    sign_from(&app, "letter", "before@example.org", MEETING).await;
    assert_eq!(status_of(&app, "before@example.org").await, "suspect");

    // The events of one petition vouch for nothing on another.
    app.create_petition("other").await;
    for n in 1..=4 {
        sign_from(
            &app,
            "other",
            &format!("other{n}@example.org"),
            "203.0.113.50",
        )
        .await;
    }
    assert_eq!(status_of(&app, "other4@example.org").await, "suspect");

    // The page lists what each event vouched for.
    let page = app.get_as(&session, "/admin/petitions/letter/events").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Coalition meeting, Oslo"));
    assert!(page.body.contains("203.0.113.0/24"));
    assert!(page.body.contains("4 of 4"), "{}", page.body);
    assert!(page.body.contains("4 of 100"), "{}", page.body);
    assert!(page.body.contains("created") && page.body.contains("by org@example.org"));
    let audited: Vec<String> = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.eq("signing_event.create"))
                .select(audit_log::details)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(audited.len(), 2);
    assert!(audited[0].contains("203.0.113.0/24"), "{audited:?}");
}

/// Signings that reach the writer together are counted in order, as one by one: the cap holds
/// inside a batch too. (With several signing writers on PostgreSQL, two writers' batches in
/// flight at once may each see room, as for the per-client limit itself: one writer here.)
async fn signings_of_one_batch_share_the_event_cap(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        meeting_settings(settings);
        settings.signing_writers = 1;
    })
    .await;
    app.create_petition("letter").await;
    let session = organizer_of(&app, "letter", "org@example.org").await;
    create_event(&app, &session, "letter", &current_event(MEETING, "10")).await;
    let emails: Vec<String> = (1..=16).map(|n| format!("crowd{n}@example.org")).collect();
    futures_util::future::join_all(
        emails
            .iter()
            .map(|email| sign_from(&app, "letter", email, MEETING)),
    )
    .await;
    let (vouched, held): (Vec<_>, Vec<_>) = app
        .db(|conn| {
            signatures::table
                .select((signatures::signing_event_id, signatures::status))
                .load::<(Option<i64>, String)>(conn)
                .unwrap()
        })
        .await
        .into_iter()
        .partition(|(event, _)| event.is_some());
    assert_eq!(vouched.len(), 10, "the event vouches for exactly its cap");
    assert!(vouched.iter().all(|(_, status)| status == "pending"));
    // Past the cap, the per-client limit sees the address's 10 signatures: all held back.
    assert_eq!(held.len(), 6);
    assert!(held.iter().all(|(_, status)| status == "suspect"));
}

async fn the_events_page_refuses_bad_input_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, meeting_settings).await;
    app.create_petition("letter").await;
    let session = organizer_of(&app, "letter", "org@example.org").await;
    let path = "/admin/petitions/letter/events";
    let page = app.get_as(&session, path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("name=\"csrf_token\""));

    let now = undersign::core::clock::now();
    let hour = |h: i64| minute(now + Duration::hours(h));
    let cases = [
        (
            event_form("Meeting", "the venue's wifi", &hour(0), &hour(2), ""),
            "is not an IP address or network",
        ),
        (
            event_form("Meeting", "203.0.113.7/24", &hour(0), &hour(2), ""),
            "write the network&#39;s first address",
        ),
        (
            event_form("Meeting", "10.0.0.0/8", &hour(0), &hour(2), ""),
            "is too wide",
        ),
        (
            event_form("Meeting", MEETING, &hour(3), &hour(2), ""),
            "The event must end after it starts.",
        ),
        (
            event_form("Meeting", MEETING, &hour(1), &hour(1 + 24 * 8), ""),
            "A signing event lasts at most 7 days.",
        ),
        (
            event_form("Meeting", MEETING, &hour(-30), &hour(-28), ""),
            "has already ended",
        ),
        (
            event_form("Meeting", MEETING, "next friday", &hour(2), ""),
            "as a date and time in UTC",
        ),
        (
            event_form("Meeting", MEETING, &hour(0), &hour(2), "0"),
            "a whole number from 1 to 10,000",
        ),
        (
            event_form("", MEETING, &hour(0), &hour(2), ""),
            "Give the event a name",
        ),
    ];
    for (form, message) in cases {
        let refused = app.post_form_as(&session, path, &form).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{form}");
        assert!(refused.body.contains(message), "{form}: {}", refused.body);
        assert!(refused.body.contains("The event was not saved."));
        assert!(refused.body.contains("aria-invalid=\"true\""));
    }
    // The typed values are shown again.
    let refused = app
        .post_form_as(
            &session,
            path,
            &event_form("Hall B", "203.0.113.300", &hour(0), &hour(2), ""),
        )
        .await;
    assert!(refused.body.contains("value=\"Hall B\""));
    assert!(refused.body.contains("value=\"203.0.113.300\""));

    // Without the CSRF token: refused before anything else.
    let forged = app
        .post_form_as_raw(&session, path, &current_event(MEETING, "10"))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A form that cannot be decoded.
    let garbled = app.post_form_as(&session, path, "label=%ZZ").await;
    assert!(garbled.status.is_client_error(), "{}", garbled.status);

    assert_eq!(app.count_rows("signing_events").await, 0);
    let audited = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.like("signing_event.%"))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(audited, 0);
}

async fn events_are_removed_with_an_audit_entry(backend: Backend) {
    let app = TestApp::spawn_with(backend, meeting_settings).await;
    app.create_petition("letter").await;
    let session = organizer_of(&app, "letter", "org@example.org").await;
    let id = create_event(&app, &session, "letter", &current_event(MEETING, "10")).await;
    let page = app.get_as(&session, "/admin/petitions/letter/events").await;
    let remove = format!("/admin/petitions/letter/events/{id}/remove");
    assert!(page.body.contains(&format!("action=\"{remove}\"")));

    assert_eq!(
        app.post_form_as_raw(&session, &remove, "").await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let removed = app.post_form_as(&session, &remove, "").await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    // A removed event vouches for nothing more, and stays listed.
    for n in 1..=4 {
        sign_from(&app, "letter", &format!("s{n}@example.org"), MEETING).await;
    }
    assert_eq!(status_of(&app, "s4@example.org").await, "suspect");
    let page = app
        .get_as(&session, "/admin/petitions/letter/events?done=removed")
        .await;
    assert!(page.body.contains("it vouches for nothing more"));
    assert!(page.body.contains("removed "));
    assert!(!page.body.contains(&format!("action=\"{remove}\"")));
    assert_eq!(
        app.post_form_as(&session, &remove, "").await.status,
        StatusCode::NOT_FOUND,
        "removed already"
    );
    assert_eq!(
        app.post_form_as(&session, "/admin/petitions/letter/events/abc/remove", "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let actions: Vec<String> = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.like("signing_event.%"))
                .order(audit_log::id.asc())
                .select(audit_log::action)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        actions,
        vec!["signing_event.create", "signing_event.remove"]
    );
}

async fn another_organizers_events_page_is_404(backend: Backend) {
    let app = TestApp::spawn_with(backend, meeting_settings).await;
    app.create_petition("ours").await;
    app.create_petition("theirs").await;
    let ours = organizer_of(&app, "ours", "ours@example.org").await;
    let theirs = organizer_of(&app, "theirs", "theirs@example.org").await;
    let id = create_event(&app, &theirs, "theirs", &current_event(MEETING, "10")).await;

    let page = app.get_as(&ours, "/admin/petitions/theirs/events").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let created = app
        .post_form_as(
            &ours,
            "/admin/petitions/theirs/events",
            &current_event(MEETING, "10"),
        )
        .await;
    assert_eq!(created.status, StatusCode::NOT_FOUND);
    let removed = app
        .post_form_as(
            &ours,
            &format!("/admin/petitions/theirs/events/{id}/remove"),
            "",
        )
        .await;
    assert_eq!(removed.status, StatusCode::NOT_FOUND);
    // Nor through their own petition's address.
    let removed = app
        .post_form_as(
            &ours,
            &format!("/admin/petitions/ours/events/{id}/remove"),
            "",
        )
        .await;
    assert_eq!(removed.status, StatusCode::NOT_FOUND);
    let (count, removed_at): (i64, Option<NaiveDateTime>) = app
        .db(move |conn| {
            let count = signing_events::table.count().get_result(conn).unwrap();
            let removed_at = signing_events::table
                .find(id)
                .select(signing_events::removed_at)
                .first(conn)
                .unwrap();
            (count, removed_at)
        })
        .await;
    assert_eq!((count, removed_at), (1, None));
    // Signed out: to the sign-in page.
    let anonymous = app.get("/admin/petitions/theirs/events").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    // Admins see every petition's events.
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    let page = app.get_as(&admin, "/admin/petitions/theirs/events").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("by theirs@example.org"));
}

async fn the_dashboard_shows_the_held_back_notice(backend: Backend) {
    let app = TestApp::spawn_with(backend, meeting_settings).await;
    app.create_petition("letter").await;
    let session = organizer_of(&app, "letter", "org@example.org").await;
    let dashboard = "/admin/petitions/letter";
    let page = app.get_as(&session, dashboard).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        !page.body.contains("id=\"held-back\""),
        "nothing is held back yet"
    );
    assert!(page
        .body
        .contains("href=\"/admin/petitions/letter/events\""));

    for n in 1..=5 {
        sign_from(&app, "letter", &format!("m{n}@example.org"), MEETING).await;
    }
    let page = app.get_as(&session, dashboard).await;
    let notice_at = page
        .body
        .find("id=\"held-back\"")
        .expect("the notice is shown");
    // At the top: before the figures, the chart and the fraud report.
    assert!(notice_at < page.body.find("id=\"confirmed-count\"").unwrap());
    assert!(notice_at < page.body.find("id=\"fraud\"").unwrap());
    assert!(page
        .body
        .contains("2 signatures are held back and not counted"));
    assert!(page.body.contains("2: over a rate limit"));
    assert!(page
        .body
        .contains("href=\"/admin/petitions/letter/signatures?status=suspect\">Review the held-back signatures"));
    assert!(page.body.contains("id=\"held-back-hint\""));
    assert!(page.body.contains("vouch for the signing event"));

    // Accepted, they wait no more: the notice goes.
    let ids: Vec<i64> = app
        .db(|conn| {
            signatures::table
                .filter(signatures::status.eq("suspect"))
                .select(signatures::id)
                .load(conn)
                .unwrap()
        })
        .await;
    let body: Vec<String> = ids.iter().map(|id| format!("id={id}")).collect();
    let accepted = app
        .post_form_as(
            &session,
            "/admin/petitions/letter/signatures/accept",
            &body.join("&"),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    let page = app.get_as(&session, dashboard).await;
    assert!(!page.body.contains("id=\"held-back\""));
}

async fn the_organizer_api_lists_and_creates_events(backend: Backend) {
    let app = TestApp::spawn_with(backend, meeting_settings).await;
    app.create_petition("ours").await;
    app.create_petition("theirs").await;
    app.create_user("org@example.org", Role::Organizer).await;
    app.add_organizer("ours", "org@example.org").await;
    let token = app.create_api_token("org@example.org").await;
    let path = "/api/v1/admin/petitions/ours/events";
    let now = undersign::core::clock::now();
    let rfc = |at: NaiveDateTime| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let event = |network: &str, ends_at: NaiveDateTime| {
        serde_json::json!({
            "label": "Coalition meeting, Oslo",
            "network": network,
            "starts_at": rfc(now - Duration::hours(1)),
            "ends_at": rfc(ends_at),
            "max_signatures": 50,
        })
    };

    let refused = app
        .api_post(
            &token,
            path,
            &event("not a network", now + Duration::hours(2)),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.json()["errors"]["network"][0].is_string());
    let refused = app
        .api_post(&token, path, &event(MEETING, now - Duration::hours(2)))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.json()["errors"]["ends_at"][0].is_string());
    assert_eq!(app.count_rows("signing_events").await, 0);

    let other = app
        .api_post(
            &token,
            "/api/v1/admin/petitions/theirs/events",
            &event(MEETING, now + Duration::hours(2)),
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.api_get(&token, "/api/v1/admin/petitions/theirs/events")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let created = app
        .api_post(
            &token,
            path,
            &event("203.0.113.0/24", now + Duration::hours(2)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.json()["event"]["network"], "203.0.113.0/24");
    assert_eq!(created.json()["event"]["vouched"], 0);
    for n in 1..=4 {
        sign_from(&app, "ours", &format!("api{n}@example.org"), MEETING).await;
    }
    assert_eq!(status_of(&app, "api4@example.org").await, "pending");
    let listed = app.api_get(&token, path).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let events = listed.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["vouched"], 4);
    assert_eq!(events[0]["max_signatures"], 50);
}
