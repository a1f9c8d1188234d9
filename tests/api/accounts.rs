//! Organizer accounts: sign-in, throttling, CSRF, sessions, users and API tokens pages.

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::user_sessions;
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{cookie_pair, Backend, Session, TestApp};

backend_tests!(
    organizers_sign_in_and_out,
    wrong_passwords_and_unknown_accounts_are_refused_alike,
    five_failures_throttle_the_account,
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

async fn five_failures_throttle_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = app.create_user("olga@example.org", Role::Organizer).await;
    for _ in 0..5 {
        let response = app
            .attempt_sign_in("olga@example.org", "wrong password!!")
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, with a clear message.
    let refused = app.attempt_sign_in("olga@example.org", &password).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body.contains("Too many failed sign-ins"));

    // The window passes: sign-in works again.
    app.db(|conn| {
        use undersign::db::schema::login_failures;
        let long_ago = undersign::now() - chrono::Duration::minutes(16);
        diesel::update(login_failures::table)
            .set(login_failures::failed_at.eq(long_ago))
            .execute(conn)
            .unwrap()
    })
    .await;
    app.sign_in("olga@example.org", &password).await;
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
        let now = undersign::now();
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
