//! Organizer accounts: sign-in, throttling, CSRF, sessions, users and API tokens pages.

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::user_sessions;
use undersign::organizers::accounts::Role;

use undersign::organizers::throttle;

use crate::backend_tests;
use crate::helpers::{cookie_pair, encode, hidden_csrf, Backend, Response, Session, TestApp};

backend_tests!(
    organizers_sign_in_and_out,
    wrong_passwords_and_unknown_accounts_are_refused_alike,
    five_failures_throttle_that_client_for_the_account,
    a_stranger_cannot_lock_the_owner_out,
    the_account_ceiling_slows_many_clients_but_not_the_owner_s_browser,
    forms_without_a_valid_csrf_token_are_forbidden,
    sessions_expire_when_idle_and_after_their_lifetime,
    admins_create_accounts_and_organizers_cannot,
    api_tokens_are_shown_once_and_can_be_revoked,
);

async fn organizers_sign_in_and_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The workspace asks for sign-in first.
    let anonymous = app.get("/admin").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header("location"), Some("/login"));

    let password = app.create_user("olga@example.org", Role::Organizer).await;
    let response = app.attempt_sign_in("Olga@Example.org ", &password).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let set_cookie = response
        .headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("undersign_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "plain http base URL: no Secure flag"
    );

    let session = app.sign_in("olga@example.org", &password).await;
    let home = app.get_as(&session, "/admin").await;
    assert!(home.body.contains("olga@example.org"));
    assert!(home.body.contains("Your petitions"));

    // Each sign-in is a new session.
    let second = app.sign_in("olga@example.org", &password).await;
    assert_ne!(second.cookie, session.cookie);

    let out = app.post_form_as(&session, "/logout", "").await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), Some("/login"));
    let after = app.get_as(&session, "/admin").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
    assert_eq!(app.get_as(&second, "/admin").await.status, StatusCode::OK);
}

async fn wrong_passwords_and_unknown_accounts_are_refused_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("olga@example.org", Role::Organizer).await;
    let wrong = app
        .attempt_sign_in("olga@example.org", "not the right password")
        .await;
    let unknown = app
        .attempt_sign_in("nobody@example.org", "not the right password")
        .await;
    for response in [&wrong, &unknown] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert!(response
            .body
            .contains("The email address or the password is not right."));
        assert!(cookie_pair(response, "undersign_session").is_none());
    }
}

async fn five_failures_throttle_that_client_for_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = app.create_user("olga@example.org", Role::Organizer).await;
    for _ in 0..5 {
        let response = app
            .attempt_sign_in("olga@example.org", "wrong password!!")
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused from this client, with a clear message.
    let refused = app.attempt_sign_in("olga@example.org", &password).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body.contains("Too many failed sign-ins"));
    assert!(refused.body.contains("wait 60 seconds"), "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("60"));

    // The wait passes: sign-in works again.
    app.db(|conn| {
        use undersign::db::schema::login_failures;
        let long_ago = undersign::core::clock::now() - chrono::Duration::minutes(2);
        diesel::update(login_failures::table)
            .set(login_failures::failed_at.eq(long_ago))
            .execute(conn)
            .unwrap()
    })
    .await;
    app.sign_in("olga@example.org", &password).await;
}

/// A sign-in attempt as if from the client `client` (the test app trusts its proxy header),
/// with an optional extra cookie.
async fn attempt_from(
    app: &TestApp,
    client: &str,
    email: &str,
    password: &str,
    cookie: Option<&str>,
) -> Response {
    let form = app.get("/login").await;
    let login_cookie = cookie_pair(&form, "undersign_login").unwrap();
    let csrf = hidden_csrf(&form.body).unwrap();
    let cookies = match cookie {
        Some(cookie) => format!("{login_cookie}; {cookie}"),
        None => login_cookie,
    };
    let body = format!(
        "csrf_token={}&email={}&password={}",
        encode(&csrf),
        encode(email),
        encode(password)
    );
    let mut response = app
        .client
        .post(app.url("/login"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .insert_header(("Cookie", cookies))
        .insert_header(("X-Forwarded-For", client))
        .send_body(body)
        .await
        .unwrap();
    let body = response.body().await.unwrap();
    Response {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn behind_a_trusted_proxy(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.trusted_proxies =
            undersign::config::network::TrustedProxies::parse("127.0.0.0/8").unwrap();
    })
    .await
}

/// Moves every recorded failure `by` into the past, as if that time had passed.
async fn age_failures(app: &TestApp, by: chrono::Duration) {
    app.db(move |conn| {
        use undersign::db::schema::login_failures;
        let rows: Vec<(i64, chrono::NaiveDateTime)> = login_failures::table
            .select((login_failures::id, login_failures::failed_at))
            .load(conn)
            .unwrap();
        for (id, failed_at) in rows {
            diesel::update(login_failures::table.find(id))
                .set(login_failures::failed_at.eq(failed_at - by))
                .execute(conn)
                .unwrap();
        }
    })
    .await;
}

async fn a_stranger_cannot_lock_the_owner_out(backend: Backend) {
    let app = behind_a_trusted_proxy(backend).await;
    let password = app.create_user("olga@example.org", Role::Organizer).await;
    let stranger = "198.51.100.7";
    for n in 0..5 {
        let response = attempt_from(
            &app,
            stranger,
            "olga@example.org",
            &format!("guess {n}"),
            None,
        )
        .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    // The stranger is refused, even with the right password, and its refused attempts cost
    // the owner nothing.
    for _ in 0..3 {
        let refused = attempt_from(&app, stranger, "olga@example.org", &password, None).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.body.contains("Too many failed sign-ins"));
    }
    // The owner, from their own client, signs in at once.
    let owner = attempt_from(&app, "203.0.113.5", "olga@example.org", &password, None).await;
    assert_eq!(owner.status, StatusCode::SEE_OTHER, "{}", owner.body);
    assert!(cookie_pair(&owner, "undersign_session").is_some());

    // The stranger's wait grows: after a minute one more guess, then two minutes.
    age_failures(&app, chrono::Duration::seconds(61)).await;
    let response = attempt_from(&app, stranger, "olga@example.org", "guess 5", None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let refused = attempt_from(&app, stranger, "olga@example.org", &password, None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((100..=120).contains(&retry_after), "{retry_after}");
    // Still the owner is not held back.
    let owner = attempt_from(&app, "203.0.113.5", "olga@example.org", &password, None).await;
    assert_eq!(owner.status, StatusCode::SEE_OTHER, "{}", owner.body);
}

async fn the_account_ceiling_slows_many_clients_but_not_the_owner_s_browser(backend: Backend) {
    let app = behind_a_trusted_proxy(backend).await;
    let password = app.create_user("olga@example.org", Role::Organizer).await;
    // The owner signed in before: their browser keeps a device cookie for /login.
    let owner = attempt_from(&app, "203.0.113.5", "olga@example.org", &password, None).await;
    assert_eq!(owner.status, StatusCode::SEE_OTHER);
    let device_header = owner
        .headers
        .get_all("set-cookie")
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("undersign_device="))
        .expect("a device cookie")
        .to_owned();
    assert!(device_header.contains("HttpOnly") && device_header.contains("Path=/login"));
    let device = cookie_pair(&owner, "undersign_device").unwrap();

    // A guesser spread over many addresses, one guess each: no client is throttled ...
    for n in 0..throttle::ACCOUNT_CEILING {
        let client = format!("10.1.{}.{}", n / 200, n % 200 + 1);
        let response = attempt_from(
            &app,
            &client,
            "olga@example.org",
            &format!("guess {n}"),
            None,
        )
        .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "guess {n}");
    }
    // ... but now the account takes one attempt every few seconds from unknown clients,
    // the right password included.
    let refused = attempt_from(&app, "10.2.0.1", "olga@example.org", &password, None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=throttle::ACCOUNT_SLOW_SECONDS).contains(&retry_after),
        "{retry_after}"
    );
    let refused = attempt_from(&app, "10.2.0.2", "olga@example.org", "guess", None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // The owner's browser, even from a new network, is not slowed.
    let owner = attempt_from(
        &app,
        "192.0.2.99",
        "olga@example.org",
        &password,
        Some(&device),
    )
    .await;
    assert_eq!(owner.status, StatusCode::SEE_OTHER, "{}", owner.body);
    // A device cookie of another account does not help.
    app.create_user("ines@example.org", Role::Organizer).await;
    let refused = attempt_from(&app, "10.2.0.3", "ines@example.org", "guess", None).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "another account is not slowed"
    );
    let refused = attempt_from(&app, "10.2.0.4", "olga@example.org", "guess", Some(&device)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "the owner's browser may still err"
    );
    // Slowed, not locked: once the interval has passed, a new client with the right password
    // signs in.
    age_failures(
        &app,
        chrono::Duration::seconds(throttle::ACCOUNT_SLOW_SECONDS + 1),
    )
    .await;
    let later = attempt_from(&app, "10.2.0.5", "olga@example.org", &password, None).await;
    assert_eq!(later.status, StatusCode::SEE_OTHER, "{}", later.body);
}

async fn forms_without_a_valid_csrf_token_are_forbidden(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = app.signed_in("olga@example.org", Role::Organizer).await;
    for body in ["", "csrf_token=", "csrf_token=forged", "name=x"] {
        let response = app.post_form_as_raw(&session, "/admin/tokens", body).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{body:?}");
        assert!(response.body.contains("did not come from this site"));
        let response = app.post_form_as_raw(&session, "/logout", body).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(app.count_rows("api_tokens").await, 0);
    assert_eq!(app.get_as(&session, "/admin").await.status, StatusCode::OK);

    // The sign-in form is protected too: a post without the form's cookie is refused.
    let password = app.create_user("ivan@example.org", Role::Organizer).await;
    let forged = app
        .post_form(
            "/login",
            &format!(
                "csrf_token=x&email=ivan%40example.org&password={}",
                crate::helpers::encode(&password)
            ),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn age_session(app: &TestApp, created: chrono::Duration, seen: chrono::Duration) {
    app.db(move |conn| {
        let now = undersign::core::clock::now();
        diesel::update(user_sessions::table)
            .set((
                user_sessions::created_at.eq(now - created),
                user_sessions::last_seen_at.eq(now - seen),
            ))
            .execute(conn)
            .unwrap()
    })
    .await;
}

async fn sessions_expire_when_idle_and_after_their_lifetime(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = app.create_user("olga@example.org", Role::Organizer).await;

    let session: Session = app.sign_in("olga@example.org", &password).await;
    age_session(
        &app,
        chrono::Duration::minutes(30),
        chrono::Duration::minutes(59),
    )
    .await;
    assert_eq!(
        app.get_as(&session, "/admin").await.status,
        StatusCode::OK,
        "still active"
    );
    age_session(
        &app,
        chrono::Duration::minutes(90),
        chrono::Duration::minutes(61),
    )
    .await;
    let idle = app.get_as(&session, "/admin").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER, "idle for over an hour");
    assert_eq!(
        app.count_rows("user_sessions").await,
        0,
        "the expired session is gone"
    );

    let session = app.sign_in("olga@example.org", &password).await;
    age_session(
        &app,
        chrono::Duration::hours(13),
        chrono::Duration::minutes(1),
    )
    .await;
    let old = app.get_as(&session, "/admin").await;
    assert_eq!(
        old.status,
        StatusCode::SEE_OTHER,
        "older than the absolute lifetime"
    );
}

async fn admins_create_accounts_and_organizers_cannot(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    let page = app.get_as(&admin, "/admin/users").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("admin@example.org"));

    let created = app
        .post_form_as(
            &admin,
            "/admin/users",
            "email=New.Organizer%40Example.org&role=organizer&password=twelve+chars+at+least",
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created
        .body
        .contains("The account new.organizer@example.org was created."));
    app.sign_in("new.organizer@example.org", "twelve chars at least")
        .await;

    let short = app
        .post_form_as(
            &admin,
            "/admin/users",
            "email=x%40example.org&role=organizer&password=short",
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("at least 12 characters"));
    let duplicate = app
        .post_form_as(
            &admin,
            "/admin/users",
            "email=new.organizer%40example.org&role=admin&password=twelve+chars+at+least",
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);

    let organizer = app.signed_in("olga@example.org", Role::Organizer).await;
    assert_eq!(
        app.get_as(&organizer, "/admin/users").await.status,
        StatusCode::NOT_FOUND
    );
    let attempt = app
        .post_form_as(
            &organizer,
            "/admin/users",
            "email=evil%40example.org&role=admin&password=twelve+chars+at+least",
        )
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    assert!(!app
        .get_as(&organizer, "/admin")
        .await
        .body
        .contains("/admin/users"));
}

async fn api_tokens_are_shown_once_and_can_be_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = app.signed_in("olga@example.org", Role::Organizer).await;
    let created = app
        .post_form_as(&session, "/admin/tokens", "name=Reporting")
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let start = created.body.find("ust_").expect("the new token is shown");
    let secret: String = created.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let listed = app.get_as(&session, "/admin/tokens").await;
    assert!(listed.body.contains("Reporting"));
    assert!(!listed.body.contains(&secret), "shown only once");

    let api = app.api_get(&secret, "/api/v1/admin/petitions").await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);

    let token_id: i64 = app
        .db(|conn| {
            use undersign::db::schema::api_tokens;
            api_tokens::table
                .select(api_tokens::id)
                .first(conn)
                .unwrap()
        })
        .await;
    let revoked = app
        .post_form_as(&session, &format!("/admin/tokens/{token_id}/revoke"), "")
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let api = app.api_get(&secret, "/api/v1/admin/petitions").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert!(api.json()["error"].as_str().unwrap().contains("Bearer"));
}
